"""SQLite writers of one process commit in groups (db.CommitGroup), and a write counts as done, so its message
may be acked, only once its group is committed: a caller returns after the COMMIT, a crash before it loses
the group's writes, and their messages come again."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from deephype.common.db import Database
from deephype.common.rabbit import RabbitBus
from deephype.common.settings import Settings
from tests.conftest import wait_until
from tests.test_bus import mention

REPO = Path(__file__).resolve().parents[1]
TABLE = "CREATE TABLE IF NOT EXISTS handled (message_id TEXT PRIMARY KEY, pid INTEGER)"


def committed(path: Path) -> set[str]:
    """What another process (a connection of its own) can read: committed rows only."""
    with sqlite3.connect(path) as outside:
        return {row[0] for row in outside.execute("SELECT message_id FROM handled")}


class Writer(threading.Thread):
    """Writes one row in a transaction; its body may wait for `release` before it ends."""

    def __init__(self, db: Database, name: str, release: threading.Event | None = None, fail: bool = False) -> None:
        super().__init__(daemon=True)
        self.db, self.row, self.release, self.fail = db, name, release, fail
        self.inside, self.returned = threading.Event(), threading.Event()  # in its body; back from it
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.db.transaction() as connection:
                connection.execute("INSERT INTO handled (message_id, pid) VALUES (?, 0)", (self.row,))
                self.inside.set()
                if self.release is not None:
                    self.release.wait()
                if self.fail:
                    raise ValueError(f"{self.row} refused")
        except BaseException as exc:
            self.error = exc
        self.returned.set()


def test_writers_waiting_their_turn_commit_together_and_none_returns_before_its_commit(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.sqlite3", TABLE)
    before = db.commits
    first_release, later_release = threading.Event(), threading.Event()
    first = Writer(db, "first", first_release)
    first.start()
    assert first.inside.wait(10)
    later = [Writer(db, "second", later_release), Writer(db, "third", later_release)]
    for writer in later:
        writer.start()
    assert wait_until(lambda: db.writers_waiting() == 2, timeout=10)

    first_release.set()  # the first ends with two waiting: its group stays open for them
    assert wait_until(lambda: db.writers_waiting() == 1, timeout=10)  # one of them holds the turn now
    assert not any(writer.returned.is_set() for writer in (first, *later))  # written, not committed: not done
    assert committed(db.path) == set()

    later_release.set()  # the last of the group commits for all three
    for writer in (first, *later):
        assert writer.returned.wait(10) and writer.error is None
    assert committed(db.path) == {"first", "second", "third"}
    assert db.commits == before + 1

    alone = Writer(db, "alone")  # nobody waiting: a writer commits at once, as without groups
    alone.run()
    assert "alone" in committed(db.path) and db.commits == before + 2


def test_a_body_that_raises_is_undone_alone_and_its_group_still_commits(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.sqlite3", TABLE)
    release = threading.Event()
    first = Writer(db, "first", release)
    first.start()
    assert first.inside.wait(10)
    failing, last = Writer(db, "failing", fail=True), Writer(db, "last")
    failing.start()
    assert wait_until(lambda: db.writers_waiting() == 1, timeout=10)
    last.start()
    assert wait_until(lambda: db.writers_waiting() == 2, timeout=10)
    release.set()
    for writer in (first, failing, last):
        assert writer.returned.wait(10)
    assert isinstance(failing.error, ValueError) and first.error is None and last.error is None
    assert committed(db.path) == {"first", "last"}
    with pytest.raises(sqlite3.OperationalError, match="within a transaction"), db.transaction():
        db.transaction().__enter__()  # nested on one thread: refused, as SQLite refuses it


@pytest.mark.rabbitmq
def test_killed_with_a_group_written_but_not_committed_both_messages_come_again_and_are_stored_once(
    rabbit_settings: Settings, tmp_path: Path
) -> None:
    log, db_path = tmp_path / "handled.log", tmp_path / "consumer.sqlite3"
    log.touch()
    bus = RabbitBus(rabbit_settings, connection_name="group-crash-test")
    waits, hangs = mention("first"), mention("hang-second")
    bus.publish(waits)
    bus.publish(hangs)

    def consumer(*flags: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "TEST_AMQP_URL": rabbit_settings.amqp_url, "TEST_EXCHANGE": rabbit_settings.exchange}
        command = [sys.executable, "-m", "tests.helpers.slow_consumer", "--log", str(log), "--db", str(db_path)]
        return subprocess.Popen([*command, *flags], cwd=REPO, env=env)

    first = consumer("--hang")
    try:
        assert wait_until(lambda: f"holding {hangs.message_id}" in log.read_text(), timeout=30)
        assert committed(db_path) == set()  # both written in one open group, neither committed
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        first.kill()
    assert "done" not in log.read_text()  # so neither was acked

    second = consumer()
    try:
        ids = {waits.message_id, hangs.message_id}
        assert wait_until(lambda: all(f"done {i} pid={second.pid}" in log.read_text() for i in ids), timeout=60)
        assert wait_until(lambda: bus.queue_depths()["enricher"] == 0)
        with sqlite3.connect(db_path) as outside:
            assert dict(outside.execute("SELECT message_id, pid FROM handled")) == dict.fromkeys(ids, second.pid)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=10)
        bus.stop()
    assert bus.dead_letters() == []

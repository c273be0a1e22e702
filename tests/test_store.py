"""The store layer on both engines: SQLite (the embedded default) and the local PostgreSQL (a fresh database
per test run). Copies of a service are simulated by separate handles on one store (own connections);
tests/test_postgres_copies.py runs real processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deephype.common.db import Schema, split_statements
from deephype.common.music_lookup.providers import CACHE_MIGRATIONS, CachedProvider, SongInfo
from deephype.common.signing import ApprovalKeys
from deephype.curator.store import MIGRATIONS as CURATOR
from deephype.curator.store import CuratorStore
from deephype.listener.handlers import MIGRATIONS as LISTENER
from deephype.poster.handlers import SCHEMA as POSTER
from deephype.poster.handlers import PostQueue, make_approval_handler
from deephype.poster.publishers import DryRunPublisher
from deephype.poster.schedule import Pacing, TestClock
from tests.conftest import TEST_APPROVAL_KEY, wait_until
from tests.factories import candidates
from tests.helpers.postgres import BACKENDS, open_store, same_store

REPO = Path(__file__).resolve().parents[1]
KEYS = ApprovalKeys([TEST_APPROVAL_KEY])
STEPS = (
    "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, weight REAL);",
    "ALTER TABLE notes ADD COLUMN author TEXT; -- a ';' in a comment\nCREATE INDEX notes_author ON notes (author);",
)


def together(*work: Callable[[], None]) -> None:
    """Run each callable on its own thread, all at once, and wait for all."""
    threads = [threading.Thread(target=job) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def test_statements_split_outside_quotes_and_comments() -> None:
    script = "CREATE TABLE a (x TEXT DEFAULT 'a;b'); -- c;d\nCREATE TABLE b (y TEXT); ;"
    assert split_statements(script) == ["CREATE TABLE a (x TEXT DEFAULT 'a;b')", "-- c;d\nCREATE TABLE b (y TEXT)"]


def test_migrations_are_applied_once_in_order_and_new_steps_later(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    first = Schema("notes", STEPS[:1])
    db = open_store(request, backend, tmp_path / "notes.sqlite3", first)
    assert db.schema_version("notes") == 1
    with db.transaction() as connection:
        connection.execute("INSERT INTO notes (body, weight) VALUES (?, ?)", ("kept", 0.1 + 0.2))
    again = same_store(db)
    request.addfinalizer(again.close)
    assert again.migrate(first) == []  # nothing left to do
    assert again.migrate(Schema("notes", STEPS)) == [2]
    assert again.migrate(Schema("notes", STEPS)) == []
    with db.transaction() as connection:
        connection.execute("INSERT INTO notes (body, author) VALUES (?, ?)", ("new", "me"))
    rows = db.query("SELECT * FROM notes ORDER BY id")
    assert [(r["body"], r["author"]) for r in rows] == [("kept", None), ("new", "me")]
    assert rows[0]["weight"] == 0.1 + 0.2  # REAL is a double on both engines
    assert db.schema_version("notes") == 2


def test_copies_starting_together_migrate_once_without_error(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    db = open_store(request, backend, tmp_path / "race.sqlite3", "")
    schema = Schema("race", STEPS)
    errors: list[BaseException] = []
    applied: list[list[int]] = []
    start = threading.Barrier(4)

    def copy() -> None:
        handle = same_store(db)
        try:
            start.wait()
            applied.append(handle.migrate(schema))
        except BaseException as exc:
            errors.append(exc)
        finally:
            handle.close()

    together(*[copy] * 4)
    assert errors == []
    assert sorted(version for versions in applied for version in versions) == [1, 2]  # each step by one copy
    rows = db.query("SELECT component, version FROM schema_migrations ORDER BY version")
    assert [(r["component"], r["version"]) for r in rows] == [("race", 1), ("race", 2)]


def test_check_then_write_is_atomic_across_copies(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> None:
    """Read-modify-write in a transaction from 4 copies: no update is lost (PostgreSQL's READ COMMITTED alone
    would lose some; the write lock makes it serial, as SQLite's BEGIN IMMEDIATE does)."""
    db = open_store(request, backend, tmp_path / "count.sqlite3", "CREATE TABLE counter (n INTEGER NOT NULL);")
    with db.transaction() as connection:
        connection.execute("INSERT INTO counter (n) VALUES (0)")

    def copy() -> None:
        handle = same_store(db)
        for _ in range(25):
            with handle.transaction() as connection:
                [row] = connection.execute("SELECT n FROM counter").fetchall()
                time.sleep(0.001)  # widen the window a lost update needs
                connection.execute("UPDATE counter SET n=?", (row["n"] + 1,))
        handle.close()

    together(*[copy] * 4)
    assert db.query("SELECT n FROM counter")[0][0] == 100


def test_one_spelling_of_sql_runs_on_both(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> None:
    db = open_store(request, backend, tmp_path / "sql.sqlite3", "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT);")
    with db.transaction() as connection:
        connection.executemany("INSERT INTO kv (k, v) VALUES (?, ?)", [("a?", "100%"), ("b", "x")])
        inserted = connection.execute("INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING", ("b", "y"))
        assert inserted.rowcount == 0
        [returned] = connection.execute(
            "INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v=excluded.v RETURNING *", ("b", "z")
        ).fetchall()
        assert dict(returned) == {"k": "b", "v": "z"}
    assert [r["k"] for r in db.query("SELECT k FROM kv WHERE v LIKE '%\\%' ESCAPE '\\' OR k = '?'")] == ["a?"]
    assert [r["k"] for r in db.query("SELECT k FROM kv WHERE v LIKE ? ORDER BY k", ("%0%",))] == ["a?"]
    assert [tuple(r[i] for i in range(2)) for r in db.query("SELECT k, v FROM kv ORDER BY k")] == [
        ("a?", "100%"),
        ("b", "z"),
    ]
    with pytest.raises(RuntimeError), db.transaction() as connection:  # a failed transaction leaves nothing
        connection.execute("INSERT INTO kv (k, v) VALUES (?, ?)", ("c", "gone"))
        raise RuntimeError("rolled back")
    assert len(db.query("SELECT * FROM kv")) == 2


def test_sqlite_only_spellings_are_refused_on_postgres_with_a_clear_error() -> None:
    from deephype.common.store_postgres import ddl_for_postgres, to_postgres

    with pytest.raises(ValueError, match="ON CONFLICT"):
        to_postgres("INSERT OR IGNORE INTO kv (k) VALUES (?)")
    assert to_postgres("SELECT '?', ? WHERE v LIKE '5%'") == "SELECT '?', %s WHERE v LIKE '5%%'"
    assert "IDENTITY" in ddl_for_postgres("id INTEGER PRIMARY KEY AUTOINCREMENT, w REAL")


def test_presence_tells_a_running_copy_from_a_dead_one(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    db = open_store(request, backend, tmp_path / "presence.sqlite3", "")
    mark = db.presence("copy-a")
    assert db.alive("copy-a") and not db.alive("copy-b")
    mark.ensure()
    mark.release()
    assert not db.alive("copy-a")
    # A copy killed with -9 leaves no mark behind.
    code = (
        "import sys, time; from tests.helpers.postgres import reopen; db = reopen(sys.argv[1], sys.argv[2]);"
        "mark = db.presence('copy-k'); print('held', flush=True); time.sleep(60)"
    )
    where = db._url if backend == "postgres" else str(db.path)  # type: ignore[attr-defined]
    name = getattr(db, "namespace", "")
    process = subprocess.Popen([sys.executable, "-c", code, where, name], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        assert db.alive("copy-k")
    finally:
        process.kill()
        process.wait()
    assert wait_until(lambda: not db.alive("copy-k"), timeout=10)


# --- the services' stores, on both engines ---


def test_curator_store_on_both(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> None:
    store = CuratorStore(open_store(request, backend, tmp_path / "curator.sqlite3", CURATOR), KEYS)
    message = candidates()
    assert store.add_candidates(message) and not store.add_candidates(message)
    other = CuratorStore(same_store(store.db), KEYS)  # another copy sees the same songs
    request.addfinalizer(other.db.close)
    [song] = other.songs()
    assert song.set_id == message.message_id and len(song.candidates) == 2
    approval = store.approve(message.message_id, message.candidates[1].candidate_id, None, by="me", post_platform="x")
    from deephype.curator.store import AlreadyDecided

    with pytest.raises(AlreadyDecided):
        other.approve(message.message_id, message.candidates[0].candidate_id, None, by="you", post_platform="x")
    assert [a.message_id for a in other.unsent_approvals()] == [approval.message_id]
    [decision] = other.decisions()
    assert decision["decision"] == "approved" and decision["edited"] == 0 and isinstance(decision["id"], int)
    assert store.use_token("t1") and not other.use_token("t1")


def test_listener_cursors_on_both(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> None:
    db = open_store(request, backend, tmp_path / "listener.sqlite3", LISTENER)
    for value in ("100", "250"):
        with db.transaction() as connection:
            connection.execute(
                "INSERT INTO cursors (source, value) VALUES (?, ?)"
                " ON CONFLICT (source) DO UPDATE SET value=excluded.value",
                ("mastodon", value),
            )
    assert [dict(r) for r in db.query("SELECT * FROM cursors")] == [{"source": "mastodon", "value": "250"}]


def test_the_lookup_cache_on_both(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> None:
    class Counting:
        name = "spotify"
        calls = 0

        def lookup(self, artist: str, title: str, track_id: str | None) -> SongInfo | None:
            self.calls += 1
            return None if title == "unknown" else SongInfo(artist=artist, title=title, provider="spotify")

    inner = Counting()
    cache = CachedProvider(inner, open_store(request, backend, tmp_path / "c.sqlite3", CACHE_MIGRATIONS), 60)
    for _ in range(2):
        assert cache.lookup("Low Tide", "Glass Harbour", None) is not None
        assert cache.lookup("Low Tide", "unknown", None) is None
    assert inner.calls == 2  # hits and misses both cached


def test_two_poster_copies_claim_each_due_post_exactly_once(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    from tests.test_poster import approval

    db = open_store(request, backend, tmp_path / "poster.sqlite3", POSTER)
    clock = TestClock(datetime(2026, 5, 1, 12, tzinfo=UTC))
    no_pacing = Pacing(max_per_hour=10_000, max_per_day=10_000, min_gap=timedelta(0), jitter=timedelta(0))
    first = PostQueue(db, no_pacing, clock, copy_id="copy-1")
    second_db = same_store(db, POSTER)
    request.addfinalizer(second_db.close)
    second = PostQueue(second_db, no_pacing, clock, copy_id="copy-2")
    handle = make_approval_handler(first, DryRunPublisher(db), KEYS)
    for index in range(30):
        handle(approval(tmp_path / str(index), f"Take {index}.", post_platform="dry_run", post_id=str(index)))
    wins: dict[str, list[str]] = {"copy-1": [], "copy-2": []}

    def run(queue: PostQueue) -> None:
        for row in queue.due():
            if queue.claim(row["approval_id"], row["platform"]) is not None:
                wins[queue.copy_id].append(row["approval_id"])

    together(lambda: run(first), lambda: run(second))
    claimed = wins["copy-1"] + wins["copy-2"]
    assert len(claimed) == len(set(claimed)) == 30  # every row, each by one copy
    # Nothing is taken over while both copies run; once copy-1 is gone, copy-2 takes its claims.
    assert second.in_flight() == [] and first.in_flight() == []
    first.release()
    taken = second.in_flight()
    assert sorted(r["approval_id"] for r in taken) == sorted(wins["copy-1"])
    assert all(r["claimed_by"] == "copy-2" for r in taken) and second.in_flight() == []
    second.release()


def test_curator_copies_without_a_configured_key_share_one(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    """A review link emailed by one curator copy opens on another: on PostgreSQL the key made for itself
    is kept in the database (copies on several hosts share no folder); on SQLite in the state folder."""
    from deephype.curator.auth import Auth
    from deephype.curator.store import SessionRegistry
    from tests.conftest import make_settings

    db = open_store(request, backend, tmp_path / "curator.sqlite3", CURATOR)
    other_db = same_store(db, CURATOR)
    request.addfinalizer(other_db.close)
    settings = make_settings(tmp_path)
    assert not settings.curator_secret_key.get_secret_value()
    # On PostgreSQL the second copy is on another host: a state folder of its own.
    elsewhere = make_settings(tmp_path / "host-2") if backend == "postgres" else settings
    one, two = Auth(settings, SessionRegistry(db)), Auth(elsewhere, SessionRegistry(other_db))
    assert two.read_review_token(one.review_token("song-1"))[0] == "song-1"
    if backend == "postgres":
        registry = SessionRegistry(db)
        first = registry.shared_key("curator_secret_key", lambda: "never used")
        assert SessionRegistry(other_db).shared_key("curator_secret_key", lambda: "other") == first
        assert registry.shared_key("curator_secret_key", lambda: "rotated", replace=True) == "rotated"

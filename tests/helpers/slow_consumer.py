"""A consumer process for the crash test: consumes the enricher queue with the real RabbitBus and notes
each message id it starts and finishes in a file. With --hang it never finishes (so it can be killed
mid-message, before the ack).

With --db each message is also stored, in a SQLite transaction whose commit is grouped with the others'
(db.CommitGroup); with --hang too, the mention whose post id starts with "hang" holds its transaction open
after its write, once a first mention's write has joined the same group: killed then, both messages are
written but neither is committed, acked or done."""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

from deephype.common.bus import Subscription
from deephype.common.contracts import Envelope, SongMention
from deephype.common.db import Database
from deephype.common.rabbit import RabbitBus
from deephype.common.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--hang", action="store_true")
    parser.add_argument("--db", type=Path)
    args = parser.parse_args()
    db = (
        Database(args.db, "CREATE TABLE IF NOT EXISTS handled (message_id TEXT PRIMARY KEY, pid INTEGER)")
        if args.db
        else None
    )
    settings = Settings(
        _env_file=None,
        amqp_url=os.environ["TEST_AMQP_URL"],
        exchange=os.environ["TEST_EXCHANGE"],
        retry_delays=[0.2, 0.5, 1.0],
        heartbeat_seconds=5,
    )  # type: ignore[call-arg]

    def note(line: str) -> None:
        with args.log.open("a") as log:
            log.write(f"{line} pid={os.getpid()}\n")

    def store(message: SongMention) -> None:
        assert db is not None
        with db.transaction() as connection:
            connection.execute(
                "INSERT INTO handled (message_id, pid) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (message.message_id, os.getpid()),
            )
            if args.hang and message.post_id.startswith("hang"):
                note(f"holding {message.message_id}")
                threading.Event().wait()  # the group stays uncommitted until we are killed
            while args.hang and not db.writers_waiting():
                time.sleep(0.01)  # the first write: end only once the hanging one queues behind it

    def handle(message: Envelope) -> list[Envelope]:
        assert isinstance(message, SongMention)
        note(f"started {message.message_id}")
        if db is not None:
            store(message)
        elif args.hang:
            threading.Event().wait()  # hold the message unacked until we are killed
        note(f"done {message.message_id}")
        return []

    bus = RabbitBus(settings, connection_name="slow-consumer")
    bus.subscribe(Subscription("enricher", {SongMention: handle}))
    bus.start()
    threading.Event().wait()


if __name__ == "__main__":
    main()

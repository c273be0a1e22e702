"""A consumer process for the crash test: consumes the enricher queue with the real RabbitBus and notes
each message id it starts and finishes in a file. With --hang it never finishes (so it can be killed
mid-message, before the ack)."""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path

from deephype.common.bus import Subscription
from deephype.common.contracts import Envelope, SongMention
from deephype.common.rabbit import RabbitBus
from deephype.common.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--hang", action="store_true")
    args = parser.parse_args()
    settings = Settings(
        _env_file=None,
        amqp_url=os.environ["TEST_AMQP_URL"],
        exchange=os.environ["TEST_EXCHANGE"],
        retry_delays=[0.2, 0.5, 1.0],
        heartbeat_seconds=5,
    )  # type: ignore[call-arg]

    def handle(message: Envelope) -> list[Envelope]:
        with args.log.open("a") as log:
            log.write(f"started {message.message_id} pid={os.getpid()}\n")
        if args.hang:
            threading.Event().wait()  # hold the message unacked until we are killed
        with args.log.open("a") as log:
            log.write(f"done {message.message_id} pid={os.getpid()}\n")
        return []

    bus = RabbitBus(settings, connection_name="slow-consumer")
    bus.subscribe(Subscription("enricher", {SongMention: handle}))
    bus.start()
    threading.Event().wait()


if __name__ == "__main__":
    main()

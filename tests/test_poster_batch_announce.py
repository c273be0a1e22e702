"""The poster's dispatcher with the bus's batch publish: a tick's announcements and state reports are
published together and marked only once all are confirmed; a failed batch is sent again, nothing lost."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from deephype.common.contracts import Envelope, PostStatus, PublishedPost
from deephype.common.db import Database
from deephype.poster.handlers import SCHEMA, Dispatcher, PostQueue, make_approval_handler
from deephype.poster.publishers import DryRunPublisher
from deephype.poster.schedule import Pacing, TestClock
from tests.test_poster import KEYS, START, approval


class BatchBus:
    """Records each batch; refuses the first `fail` batches as a broker that did not confirm would."""

    def __init__(self, fail: int = 0) -> None:
        self.batches: list[list[Envelope]] = []
        self.fail = fail

    def publish_many(self, messages: Sequence[Envelope]) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("not confirmed")
        self.batches.append(list(messages))

    def publish_one(self, message: Envelope) -> None:
        raise AssertionError("with a batch publish, nothing goes one by one")


def test_posts_of_a_tick_are_announced_and_reported_in_batches_and_a_failed_batch_is_sent_again(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "poster.sqlite3", SCHEMA)
    unpaced = Pacing(max_per_hour=100, max_per_day=100, min_gap=timedelta(0), jitter=timedelta(0))
    queue = PostQueue(db, unpaced, TestClock(START))
    publisher = DryRunPublisher(db)
    bus = BatchBus(fail=2)  # the first tick's announcement batch and report batch both fail
    dispatcher = Dispatcher(queue, publisher, bus.publish_one, report=bus.publish_one, publish_many=bus.publish_many)
    handle = make_approval_handler(queue, publisher, KEYS)
    for index in range(3):
        handle(approval(tmp_path / str(index), post_platform="dry_run", post_id=str(index)))

    posted = dispatcher.run_due()
    assert len(posted) == 3 and bus.batches == []  # posted, but nothing confirmed: nothing marked
    dispatcher.run_due()
    announced = [m for batch in bus.batches for m in batch if isinstance(m, PublishedPost)]
    reported = [m for batch in bus.batches for m in batch if isinstance(m, PostStatus)]
    assert sorted(m.message_id for m in announced) == sorted(p.message_id for p in posted)
    assert {m.approval_id for m in reported} == {p.approval_id for p in posted}
    assert len(bus.batches) == 2  # one batch of announcements, one of reports
    dispatcher.run_due()
    assert len(bus.batches) == 2  # all marked: nothing sent again

"""The poster queues each approval per platform, posts it at a human pace, and exactly once."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deephype.common.bus import PermanentError
from deephype.common.compose import PostFormat
from deephype.common.contracts import Approval, Envelope, Platform, ReplyTarget
from deephype.common.db import Database
from deephype.common.signing import ApprovalKeys
from deephype.curator.store import SCHEMA as CURATOR_SCHEMA
from deephype.curator.store import CuratorStore
from deephype.poster.handlers import SCHEMA, Dispatcher, PostQueue, make_approval_handler
from deephype.poster.publishers import DryRunPublisher, PublishRefused, PublishResult
from deephype.poster.schedule import Pacing, TestClock, parse_quiet_hours
from tests.conftest import TEST_APPROVAL_KEY
from tests.factories import candidates
from tests.helpers.postgres import BACKENDS, open_store

KEYS = ApprovalKeys([TEST_APPROVAL_KEY])
START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def approval(
    tmp_path: Path,
    text: str | None = None,
    post_platform: str | tuple[str, ...] = "x",
    post_id: str = "1",
    on_demand: bool = False,
    **kw: object,
) -> Approval:
    platforms = (post_platform,) if isinstance(post_platform, str) else post_platform
    store = CuratorStore(Database(tmp_path / "curator.sqlite3", CURATOR_SCHEMA), KEYS, PostFormat(platforms))
    message = candidates(post_id, on_demand=on_demand, platform="x" if on_demand else "http")
    store.add_candidates(message)
    return store.approve(
        message.message_id, message.candidates[0].candidate_id, text, by="t", post_platform=platforms, **kw
    )


class FlakyPlatform:
    """A stand-in for an outside platform (not our code): refuses, or dies mid-call, on request."""

    idempotent = False
    text_limit = 280

    def __init__(self, behaviour: str, platform: Platform = Platform.x) -> None:
        self.behaviour = behaviour
        self.platform = platform
        self.calls: list[str] = []

    def publish(self, text: str, reply_to: ReplyTarget | None, idempotency_key: str) -> PublishResult:
        self.calls.append(text)
        if self.behaviour == "refuse":
            raise PublishRefused("429 Too Many Requests", retry_after_seconds=42)
        if self.behaviour == "forbidden":
            raise PublishRefused("403 Forbidden", permanent=True)
        if self.behaviour == "timeout":
            raise TimeoutError("read timed out")
        return PublishResult(post_id=str(len(self.calls)), url=f"https://x.com/bot/status/{len(self.calls)}")


class Announced(list[Envelope]):
    def __call__(self, message: Envelope) -> None:
        self.append(message)


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """The poster's queue on SQLite and on the local PostgreSQL."""
    return open_store(request, request.param, tmp_path / "poster.sqlite3", SCHEMA)


@pytest.fixture
def clock() -> TestClock:
    return TestClock(START)


def test_a_redelivered_approval_is_queued_and_published_once(tmp_path: Path, db: Database, clock: TestClock) -> None:
    publisher = DryRunPublisher(db)
    queue = PostQueue(db, Pacing(), clock)
    announced = Announced()
    dispatcher = Dispatcher(queue, publisher, announced)
    handle = make_approval_handler(queue, publisher, KEYS)
    message = approval(tmp_path, post_platform="dry_run")
    assert handle(message) == [] and handle(message) == []
    [post] = dispatcher.run_due()
    assert dispatcher.run_due() == []
    assert handle(message) == [post]  # after it went out: announced again with the same id, deduped downstream
    assert dispatcher.run_due() == [] and announced == [post]
    assert post.trace_id == message.trace_id and post.dry_run
    assert post.text == 'First take.\n\nLow Tide - "Glass Harbour"'  # composed: it says what it is about
    assert len(publisher.timeline()) == 1


def test_an_interrupted_call_on_a_non_idempotent_platform_is_held_not_retried(
    tmp_path: Path, db: Database, clock: TestClock
) -> None:
    platform = FlakyPlatform("timeout")
    queue = PostQueue(db, Pacing(), clock)
    dispatcher = Dispatcher(queue, platform, Announced())
    make_approval_handler(queue, platform, KEYS)(message := approval(tmp_path))
    assert dispatcher.run_due() == []
    platform.behaviour = "ok"
    clock.advance(days=2)
    assert dispatcher.run_due() == [] and len(platform.calls) == 1
    [row] = queue.schedule()
    assert row["state"] == "held" and "never post twice" in row["error"]
    assert row["approval_id"] == message.message_id


def test_a_crash_during_the_call_holds_a_non_idempotent_platform_and_retries_an_idempotent_one(
    tmp_path: Path, db: Database, clock: TestClock
) -> None:
    queue = PostQueue(db, Pacing(), clock)
    x, dry_run = FlakyPlatform("ok"), DryRunPublisher(db)
    make_approval_handler(queue, {"x": x, "dry_run": dry_run}, KEYS)(message := approval(tmp_path))
    for platform in ("x", "dry_run"):  # as a kill -9 between 'publishing' and 'published' leaves them
        queue.claim(message.message_id, platform)
    queue.release()  # ... and the process is gone
    restarted = Dispatcher(PostQueue(db, Pacing(), clock), {"x": x, "dry_run": dry_run}, Announced())
    restarted.recover()
    [post] = restarted.run_due()
    assert post.platform == Platform.dry_run and x.calls == []
    assert queue.get(message.message_id, "x")["state"] == "held"


def test_a_refusal_is_retried_after_the_platforms_delay_and_then_published(
    tmp_path: Path, db: Database, clock: TestClock
) -> None:
    platform = FlakyPlatform("refuse")
    queue = PostQueue(db, Pacing(), clock)
    dispatcher = Dispatcher(queue, platform, Announced())
    make_approval_handler(queue, platform, KEYS)(message := approval(tmp_path))
    assert dispatcher.run_due() == []
    row = queue.get(message.message_id, "x")
    assert row["state"] == "queued" and "429" in row["error"]
    platform.behaviour = "ok"
    clock.advance(seconds=41)
    assert dispatcher.run_due() == []  # the platform asked for 42 seconds
    clock.advance(seconds=1)
    [post] = dispatcher.run_due()
    assert post.url == "https://x.com/bot/status/2"
    assert [p["post_id"] for p in queue.published()] == ["2"]


def test_one_platform_failing_does_not_block_the_others(tmp_path: Path, db: Database, clock: TestClock) -> None:
    x, mastodon = FlakyPlatform("forbidden"), FlakyPlatform("ok", Platform.mastodon)
    queue = PostQueue(db, Pacing(), clock)
    dispatcher = Dispatcher(queue, {"x": x, "mastodon": mastodon}, Announced())
    make_approval_handler(queue, {"x": x, "mastodon": mastodon}, KEYS)(
        approval(tmp_path, post_platform=("x", "mastodon"))
    )
    [post] = dispatcher.run_due()
    assert post.platform == Platform.mastodon
    assert [row["state"] for row in queue.schedule()] == ["failed"]
    assert len(x.calls) == 1


def test_text_over_a_platforms_limit_is_refused_before_it_is_queued(tmp_path: Path, db: Database) -> None:
    queue = PostQueue(db)
    handle = make_approval_handler(queue, FlakyPlatform("ok"), KEYS)
    # The curator refuses such edits; this approval was made for another platform (a changed setting).
    with pytest.raises(PermanentError, match="not queued, x: the text is 309 characters as x counts them"):
        handle(approval(tmp_path, "x" * 281, post_platform="mastodon"))
    assert queue.schedule() == []


def test_the_curator_refuses_a_composed_post_over_the_limit(tmp_path: Path) -> None:
    # 270 characters fit X alone, not with the song's credit after them.
    with pytest.raises(ValueError, match=r"x: the text is \d+ characters as x counts them; x allows 280"):
        approval(tmp_path, "y" * 270)


def test_the_schedule_keeps_the_gap_and_the_hourly_and_daily_limits(
    tmp_path: Path, db: Database, clock: TestClock
) -> None:
    pacing = Pacing(max_per_hour=3, max_per_day=5, min_gap=timedelta(minutes=10), jitter=timedelta(minutes=5))
    queue = PostQueue(db, pacing, clock, random.Random(7))
    publisher = DryRunPublisher(db)
    dispatcher = Dispatcher(queue, publisher, Announced())
    handle = make_approval_handler(queue, publisher, KEYS)
    for i in range(7):
        handle(approval(tmp_path / str(i), f"Take number {i}.", post_platform="dry_run", post_id=str(i)))
    planned = [datetime.fromisoformat(row["due_at"]) for row in queue.schedule()]
    assert planned[0] == START  # nothing went out lately: the first goes now
    gaps = [b - a for a, b in itertools.pairwise(planned)]
    assert all(gap >= timedelta(minutes=10) for gap in gaps)
    assert len({gap for gap in gaps}) > 1  # jittered, not clockwork
    for i, when in enumerate(planned):
        assert sum(when - timedelta(hours=1) < other <= when for other in planned[: i + 1]) <= 3
        assert sum(when - timedelta(days=1) < other <= when for other in planned[: i + 1]) <= 5
    assert planned[3] >= planned[0] + timedelta(hours=1)  # the fourth waits for the hour to roll over
    assert planned[5] >= planned[0] + timedelta(days=1)  # the sixth for the day

    # Walk the clock: each goes out at its time, never before.
    sent: list[datetime] = []
    while len(sent) < 7:
        due = queue.next_due_at()
        assert due is not None
        clock.now = due - timedelta(seconds=1)
        assert dispatcher.run_due() == []
        clock.now = due
        sent += [post.published_at for post in dispatcher.run_due()]
    assert sent == planned


def test_quiet_hours_in_the_curators_time_zone_wrap_midnight(clock: TestClock) -> None:
    from zoneinfo import ZoneInfo

    pacing = Pacing(quiet_hours=parse_quiet_hours("22:30-07:00"), zone=ZoneInfo("Europe/Berlin"))
    late = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)  # 23:00 in Berlin (UTC+1 in winter)
    assert pacing.next_slot(late, [], random.Random(1)) == datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    early = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)  # 06:00 in Berlin
    assert pacing.next_slot(early, [], random.Random(1)) == datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    noon = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)
    assert pacing.next_slot(noon, [], random.Random(1)) == noon


def test_now_and_on_demand_replies_skip_the_schedule(tmp_path: Path, db: Database, clock: TestClock) -> None:
    pacing = Pacing(max_per_hour=1, min_gap=timedelta(hours=2), jitter=timedelta(0))
    queue = PostQueue(db, pacing, clock)
    platform = FlakyPlatform("ok")
    handle = make_approval_handler(queue, platform, KEYS)
    handle(approval(tmp_path / "a", "First of all.", post_id="a"))
    handle(approval(tmp_path / "b", "Waits its turn.", post_id="b"))
    handle(approval(tmp_path / "c", "Right now please.", post_id="c", post_now=True))
    reply = approval(tmp_path / "d", "Since you asked.", post_id="d", on_demand=True)
    assert reply.reply_to is not None
    handle(reply)
    by_text = {row["text"].split("\n")[0]: row for row in queue.schedule()}
    assert datetime.fromisoformat(by_text["Waits its turn."]["due_at"]) == START + timedelta(hours=2)
    assert datetime.fromisoformat(by_text["Right now please."]["due_at"]) == START
    assert datetime.fromisoformat(by_text["Since you asked."]["due_at"]) == START
    posts = Dispatcher(queue, platform, Announced()).run_due()
    assert [p.text.split("\n")[0] for p in posts] == ["Right now please.", "Since you asked.", "First of all."]
    assert queue.mark_now(by_text["Waits its turn."]["approval_id"]) == 1
    [last] = Dispatcher(queue, platform, Announced()).run_due()
    assert last.text.startswith("Waits its turn.")


def test_the_schedule_survives_a_restart(tmp_path: Path, clock: TestClock) -> None:
    pacing = Pacing(min_gap=timedelta(minutes=30), jitter=timedelta(0))
    first = PostQueue(Database(tmp_path / "poster.sqlite3", SCHEMA), pacing, clock)
    platform = FlakyPlatform("ok")
    handle = make_approval_handler(first, platform, KEYS)
    for name in ("a", "b"):
        handle(approval(tmp_path / name, f"Take {name}.", post_id=name))
    before = first.schedule()
    again = PostQueue(Database(tmp_path / "poster.sqlite3", SCHEMA), pacing, clock)
    assert again.schedule() == before
    assert [row["due_at"] for row in before] == [START.isoformat(), (START + timedelta(minutes=30)).isoformat()]


def test_the_timeline_page_and_the_queue_show_each_post_as_it_looks_and_when(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from deephype.common.memory_bus import InMemoryBus
    from deephype.common.service import create_app
    from deephype.poster.app import build
    from tests.conftest import make_settings

    clock = TestClock(START)
    settings = make_settings(tmp_path, poster_min_gap_seconds=3600.0, poster_gap_jitter_seconds=0.0)
    bus = InMemoryBus(settings)
    parts, queue = build(settings, bus, clock=clock)
    handle = parts.subscriptions[0].handlers[Approval]
    handle(approval(tmp_path / "a", "Out now <script>alert(1)</script>", post_platform="dry_run", post_id="a"))
    handle(approval(tmp_path / "b", "Later on.", post_platform="dry_run", post_id="b"))
    Dispatcher(queue, DryRunPublisher(queue.db), bus.publish).run_due()
    with TestClient(create_app(parts, bus)) as client:
        page = client.get("/")
        scheduled = client.get("/v1/queue").json()
        published = client.get("/v1/posts").json()
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert" not in page.text
    assert "Low Tide - &#34;Glass Harbour&#34;" in page.text or 'Low Tide - "Glass Harbour"' in page.text
    assert "dry_run" in page.text and "2026-12-01 12:00 UTC" in page.text and "2026-12-01 13:00 UTC" in page.text
    assert published[0]["url"] in page.text
    assert [(row["state"], row["due_at"]) for row in scheduled] == [("queued", "2026-12-01T13:00:00+00:00")]
    assert scheduled[0]["text"].startswith("Later on.\n\nLow Tide")

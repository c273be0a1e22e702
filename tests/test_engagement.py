"""The poster reads back what the audience did with each post (likes, reposts, replies) at 1 h, 24 h and
7 d, from the fake X, Mastodon and Bluesky servers in their real formats: within rate limits, X only when
its paid reads are on, a deleted post never read again."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from deephype.common.contracts import Approval
from deephype.common.db import Database
from deephype.common.memory_bus import InMemoryBus
from deephype.common.service import create_app
from deephype.poster.app import build as build_poster
from deephype.poster.engagement import EngagementReader, engagement_readers
from deephype.poster.handlers import SCHEMA, Dispatcher, PostQueue, make_approval_handler
from deephype.poster.publishers import DryRunPublisher
from deephype.poster.schedule import Pacing, TestClock
from tests.conftest import make_settings
from tests.fakes import bluesky as fb
from tests.fakes import mastodon as fm
from tests.fakes import x as fx
from tests.test_platform_publishers import bluesky_publisher, mastodon_publisher, x_publisher
from tests.test_poster import KEYS, START, Announced, approval

PLATFORMS = ("x", "mastodon", "bluesky")


def publish_everywhere(
    tmp_path: Path, x: fx.FakeX, mastodon: fm.FakeMastodon, bluesky: fb.FakeBluesky, clock: TestClock
) -> tuple[Database, dict[str, Any]]:
    """One approval cross-posted to the three fake platforms by the real queue and dispatcher."""
    db = Database(tmp_path / "poster.sqlite3", SCHEMA)
    publishers: dict[str, Any] = {
        "x": x_publisher(tmp_path, x),
        "mastodon": mastodon_publisher(tmp_path, mastodon),
        "bluesky": bluesky_publisher(tmp_path, bluesky),
    }
    queue = PostQueue(db, Pacing(), clock)
    handle = make_approval_handler(queue, publishers, KEYS)
    handle(approval(tmp_path, "A warm and tender little song.", post_platform=PLATFORMS, post_now=True))
    posted = Dispatcher(queue, publishers, Announced()).run_due()
    assert sorted(p.platform.value for p in posted) == sorted(PLATFORMS)
    return db, publishers


def audience(x: fx.FakeX, mastodon: fm.FakeMastodon, bluesky: fb.FakeBluesky, likes: int) -> None:
    x.posted_by_bot()[-1].like_count = likes
    x.posted_by_bot()[-1].retweet_count = 2
    status = mastodon.posted_by_bot()[-1]
    status.favourites_count, status.reblogs_count, status.replies_count = likes, 3, 1
    post = bluesky.posted_by_bot()[-1]
    post.like_count, post.repost_count, post.reply_count = likes, 4, 2


def reads(fake: Any, path_start: str) -> int:
    return sum(1 for r in fake.server.requests if r.method == "GET" and r.path.startswith(path_start))


def by_platform(reader: EngagementReader) -> dict[str, dict[str, Any]]:
    return {post["platform"]: post for post in reader.engagement()}


def test_counts_are_read_at_each_checkpoint_and_x_only_when_its_paid_reads_are_on(
    tmp_path: Path, x: fx.FakeX, mastodon: fm.FakeMastodon, bluesky: fb.FakeBluesky
) -> None:
    clock = TestClock(START)
    db, publishers = publish_everywhere(tmp_path, x, mastodon, bluesky, clock)
    reader = EngagementReader(db, engagement_readers(publishers, read_x=False), clock=clock)
    assert sorted(reader.readers) == ["bluesky", "mastodon"]  # X bills reads: off by default

    clock.advance(minutes=30)
    assert reader.run_round() == 0 and reads(mastodon, "/api/v1/statuses/") == 0

    audience(x, mastodon, bluesky, likes=5)
    clock.advance(minutes=31)
    assert reader.run_round() == 2
    assert reader.run_round() == 0  # read once per checkpoint
    posts = by_platform(reader)
    assert posts["mastodon"]["latest"] == {"hours": 1.0, "likes": 5, "reposts": 3, "replies": 1, "quotes": None}
    assert posts["bluesky"]["latest"] == {"hours": 1.0, "likes": 5, "reposts": 4, "replies": 2, "quotes": 0}
    assert posts["x"]["checkpoints"] == [] and reads(x, "/2/tweets/") == 0

    audience(x, mastodon, bluesky, likes=40)
    clock.advance(hours=24)
    paid = EngagementReader(db, engagement_readers(publishers, read_x=True), clock=clock)
    assert paid.run_round() == 3
    posts = by_platform(paid)
    assert posts["x"]["latest"] == {"hours": 24.0, "likes": 40, "reposts": 2, "replies": 0, "quotes": 0}
    # X's 1 h checkpoint had passed unread: one read (one charge) stands for both.
    assert [c["state"] for c in posts["x"]["checkpoints"]] == ["missed", "read"]
    assert [c["likes"] for c in posts["mastodon"]["checkpoints"]] == [5, 40]


def test_a_rate_limit_pauses_only_its_platform_and_a_deleted_post_is_never_read_again(
    tmp_path: Path, x: fx.FakeX, mastodon: fm.FakeMastodon, bluesky: fb.FakeBluesky
) -> None:
    clock = TestClock(START)
    db, publishers = publish_everywhere(tmp_path, x, mastodon, bluesky, clock)
    reader = EngagementReader(db, engagement_readers(publishers, read_x=False), clock=clock)
    mastodon.server.fail("/api/v1/statuses/", fm.rate_limited(START + timedelta(hours=3), times=1))
    bluesky.posts.remove(bluesky.posted_by_bot()[-1])  # deleted by a human on the platform

    clock.advance(hours=2)
    assert reader.run_round() == 0
    posts = by_platform(reader)
    assert posts["mastodon"]["checkpoints"] == []  # paused, not given up
    assert [c["state"] for c in posts["bluesky"]["checkpoints"]] == ["gone", "gone", "gone"]
    asked = reads(mastodon, "/api/v1/statuses/")
    assert reader.run_round() == 0 and reads(mastodon, "/api/v1/statuses/") == asked  # waits for the reset

    clock.advance(days=8)
    before = reads(bluesky, "/xrpc/app.bsky.feed.getPosts")
    assert reader.run_round() == 1
    assert reads(bluesky, "/xrpc/app.bsky.feed.getPosts") == before
    states = [c["state"] for c in by_platform(reader)["mastodon"]["checkpoints"]]
    assert states == ["missed", "missed", "read"]


def test_the_poster_serves_engagement_and_dry_run_posts_have_none(tmp_path: Path) -> None:
    clock = TestClock(START)
    settings = make_settings(tmp_path)
    bus = InMemoryBus(settings)
    parts, queue = build_poster(settings, bus, clock=clock)
    handle = parts.subscriptions[0].handlers[Approval]
    message = approval(tmp_path, "Out now.", post_platform="dry_run")
    handle(message)
    Dispatcher(queue, DryRunPublisher(queue.db), bus.publish).run_due()
    with TestClient(create_app(parts, bus)) as client:
        served = client.get("/v1/engagement").json()
        one = client.get("/v1/engagement", params={"approval_id": message.message_id}).json()
        bad = client.get("/v1/engagement", params={"limit": 0})
    assert [(p["approval_id"], p["platform"], p["checkpoints"], p["latest"]) for p in served] == [
        (message.message_id, "dry_run", [], None)
    ]
    assert one == served and bad.status_code == 422

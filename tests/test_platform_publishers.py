"""The X, Mastodon and Bluesky publishers against local fakes in each platform's wire format.

What matters most: PublishRefused only when the platform answered and did not post (with the delay it
asked for, and `permanent` when retrying cannot help); a timeout or a garbled success is 'unknown' and
goes up unchanged, so the poster never posts twice on a platform without an idempotency key."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from deephype.common.contracts import Approval, Platform, ReplyTarget, Song
from deephype.common.db import Database
from deephype.common.platforms.base import PlatformOptions
from deephype.common.platforms.bluesky import BlueskyPublisher
from deephype.common.platforms.build import build_platform_publisher
from deephype.common.platforms.mastodon import MastodonPublisher
from deephype.common.platforms.x import XPublisher
from deephype.common.signing import ApprovalKeys
from deephype.poster.app import build as build_poster
from deephype.poster.handlers import SCHEMA, Dispatcher, PostLedger, make_approval_handler
from deephype.poster.publishers import PublishRefused
from deephype.poster.schedule import Pacing, TestClock
from tests.conftest import TEST_APPROVAL_KEY, make_settings, wait_until
from tests.fakes import bluesky as fb
from tests.fakes import mastodon as fm
from tests.fakes import x as fx
from tests.fakes.server import Fault
from tests.test_platform_sources import FakeClock

FAST = PlatformOptions(timeout_seconds=0.5)
KEYS = ApprovalKeys([TEST_APPROVAL_KEY])


def x_publisher(tmp_path: Path, fake: fx.FakeX, clock: Any = time.time, **options: Any) -> XPublisher:
    settings = make_settings(
        tmp_path,
        x_base_url=fake.url,
        x_consumer_key=fx.CONSUMER_KEY,
        x_consumer_secret=fx.CONSUMER_SECRET,
        x_access_token=fx.ACCESS_TOKEN,
        x_access_token_secret=fx.ACCESS_TOKEN_SECRET,
    )
    publisher = build_platform_publisher("x", settings, PlatformOptions(timeout_seconds=0.5, **options), clock)
    assert isinstance(publisher, XPublisher)
    return publisher


def mastodon_publisher(tmp_path: Path, fake: fm.FakeMastodon, clock: Any = time.time) -> MastodonPublisher:
    settings = make_settings(tmp_path, mastodon_base_url=fake.url, mastodon_access_token=fm.ACCESS_TOKEN)
    publisher = build_platform_publisher("mastodon", settings, FAST, clock)
    assert isinstance(publisher, MastodonPublisher)
    return publisher


def bluesky_settings(tmp_path: Path, fake: fb.FakeBluesky, password: str = fb.BOT_PASSWORD) -> Any:
    return make_settings(
        tmp_path, bluesky_base_url=fake.url, bluesky_handle=fb.BOT_HANDLE, bluesky_app_password=password
    )


def bluesky_publisher(tmp_path: Path, fake: fb.FakeBluesky, clock: Any = time.time) -> BlueskyPublisher:
    publisher = build_platform_publisher("bluesky", bluesky_settings(tmp_path, fake), FAST, clock)
    assert isinstance(publisher, BlueskyPublisher)
    return publisher


def posts_to(fake: Any, path: str) -> list[Any]:
    return [r for r in fake.server.requests if r.method == "POST" and r.path == path]


# ------------------------------------------------------------------------------------------------ X


def test_x_posts_top_level_and_replies_only_when_asked(tmp_path: Path, x: fx.FakeX) -> None:
    ask = x.post("fan", "@deephype what about Paper Boats?")
    publisher = x_publisher(tmp_path, x)
    assert (publisher.platform, publisher.idempotent, publisher.text_limit) == (Platform.x, False, 280)

    top = publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")
    reply = publisher.publish("It is a quiet storm.", ReplyTarget(platform=Platform.x, post_id=str(ask.id)), "a-2")
    elsewhere = publisher.publish("Heard on Mastodon.", ReplyTarget(platform=Platform.mastodon, post_id="9"), "a-3")

    bodies = [json.loads(r.body) for r in posts_to(x, "/2/tweets")]
    assert bodies == [
        {"text": "Paper Boats: a quiet storm."},
        {"text": "It is a quiet storm.", "reply": {"in_reply_to_tweet_id": str(ask.id)}},
        {"text": "Heard on Mastodon."},  # a reply target on another platform means top-level
    ]
    posted = x.posted_by_bot()
    assert [p.in_reply_to for p in posted] == [None, ask.id, None]
    assert top.post_id == str(posted[0].id)
    assert top.url == f"https://x.com/deephype/status/{posted[0].id}"
    assert reply.post_id == str(posted[1].id) and elsewhere.post_id == str(posted[2].id)
    assert all(r.headers["authorization"].startswith("OAuth ") for r in posts_to(x, "/2/tweets"))


def test_x_429_is_refused_with_the_delay_until_reset(tmp_path: Path, x: fx.FakeX) -> None:
    clock = FakeClock()
    publisher = x_publisher(tmp_path, x, clock)
    x.server.fail("/2/tweets", fx.rate_limited(int(clock.now) + 120))
    with pytest.raises(PublishRefused) as refused:
        publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")
    assert not refused.value.permanent
    assert 118 <= (refused.value.retry_after_seconds or 0) <= 120
    assert x.posted_by_bot() == []


def test_x_402_is_refused_for_the_payment_pause(tmp_path: Path, x: fx.FakeX) -> None:
    publisher = x_publisher(tmp_path, x, x_payment_pause_seconds=3600)
    x.server.fail("/2/tweets", fx.error(402))
    with pytest.raises(PublishRefused, match=r"402 Payment Required.*credits") as refused:
        publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")
    assert (refused.value.permanent, refused.value.retry_after_seconds) == (False, 3600)


@pytest.mark.parametrize(("status", "permanent"), [(401, True), (403, True), (400, True), (500, False), (503, False)])
def test_x_error_answers_are_refusals(tmp_path: Path, x: fx.FakeX, status: int, permanent: bool) -> None:
    publisher = x_publisher(tmp_path, x)
    x.server.fail("/2/tweets", fx.error(status))
    with pytest.raises(PublishRefused) as refused:
        publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")
    assert refused.value.permanent is permanent
    assert f"({status})" in str(refused.value) or f"error {status}" in str(refused.value)


def test_x_duplicate_text_is_a_permanent_refusal_with_x_reason(tmp_path: Path, x: fx.FakeX) -> None:
    publisher = x_publisher(tmp_path, x)
    publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")
    with pytest.raises(PublishRefused, match="duplicate content") as refused:
        publisher.publish("Paper Boats: a quiet storm.", None, "approval-2")
    assert refused.value.permanent


def test_x_timeout_while_posting_is_an_unknown_outcome(tmp_path: Path, x: fx.FakeX) -> None:
    publisher = x_publisher(tmp_path, x)
    x.server.fail("/2/tweets", Fault.hanging())
    with pytest.raises(requests.Timeout):
        publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")


def test_x_garbled_success_is_an_unknown_outcome(tmp_path: Path, x: fx.FakeX) -> None:
    publisher = x_publisher(tmp_path, x)
    x.server.fail("/2/tweets", Fault(Fault.malformed().response))
    with pytest.raises(ValueError) as raised:
        publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")
    assert not isinstance(raised.value, PublishRefused)


def test_x_account_lookup_failing_before_posting_is_a_refusal(tmp_path: Path, x: fx.FakeX) -> None:
    publisher = x_publisher(tmp_path, x)
    x.server.fail("/2/users/me", Fault.hanging())
    with pytest.raises(PublishRefused, match="before posting"):
        publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")
    assert posts_to(x, "/2/tweets") == []


# ----------------------------------------------------------------------------------------- Mastodon


def test_mastodon_posts_with_the_idempotency_key_and_replies(tmp_path: Path, mastodon: fm.FakeMastodon) -> None:
    ask = mastodon.post("fan", "@deephype what about Paper Boats?")
    publisher = mastodon_publisher(tmp_path, mastodon)
    assert (publisher.platform, publisher.idempotent, publisher.text_limit) == (Platform.mastodon, True, 500)

    first = publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")
    again = publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")  # e.g. after a crash
    publisher.publish("A quiet storm.", ReplyTarget(platform=Platform.mastodon, post_id=str(ask.id)), "a-2")

    assert first == again
    assert [(s.text, s.in_reply_to_id) for s in mastodon.posted_by_bot()] == [
        ("Paper Boats: a quiet storm.", None),
        ("A quiet storm.", str(ask.id)),
    ]
    sent = posts_to(mastodon, "/api/v1/statuses")
    assert [r.headers.get("idempotency-key") for r in sent] == ["approval-1", "approval-1", "a-2"]
    assert sent[2].form()["in_reply_to_id"] == str(ask.id)
    posted = mastodon.posted_by_bot()[0]
    assert first.post_id == str(posted.id)
    assert first.url == f"https://{fm.DOMAIN}/@deephype/{posted.id}"


def test_mastodon_429_is_refused_with_the_delay_until_reset(tmp_path: Path, mastodon: fm.FakeMastodon) -> None:
    from datetime import UTC, datetime, timedelta

    publisher = mastodon_publisher(tmp_path, mastodon)
    mastodon.server.fail("/api/v1/statuses", fm.rate_limited(datetime.now(UTC) + timedelta(minutes=3)))
    with pytest.raises(PublishRefused, match="429") as refused:
        publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")
    assert not refused.value.permanent
    # From the X-RateLimit-Reset header: about three minutes, whatever the test machine's speed.
    assert 150 < (refused.value.retry_after_seconds or 0) <= 185


@pytest.mark.parametrize(("status", "permanent"), [(401, True), (403, True), (422, True), (500, False), (503, False)])
def test_mastodon_error_answers_are_refusals(
    tmp_path: Path, mastodon: fm.FakeMastodon, status: int, permanent: bool
) -> None:
    publisher = mastodon_publisher(tmp_path, mastodon)
    mastodon.server.fail("/api/v1/statuses", fm.error(status))
    with pytest.raises(PublishRefused) as refused:
        publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")
    assert refused.value.permanent is permanent
    assert fm.ERRORS[status] in str(refused.value)


def test_mastodon_timeout_and_garbled_success_are_unknown_outcomes(tmp_path: Path, mastodon: fm.FakeMastodon) -> None:
    from mastodon import MastodonAPIError, MastodonNetworkError

    publisher = mastodon_publisher(tmp_path, mastodon)
    mastodon.server.fail("/api/v1/statuses", Fault(hang=True, times=1))
    with pytest.raises(MastodonNetworkError):
        publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")
    mastodon.server.fail("/api/v1/statuses", Fault(Fault.malformed().response, times=1))
    with pytest.raises(MastodonAPIError) as raised:
        publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")
    assert not isinstance(raised.value, PublishRefused)


# ------------------------------------------------------------------------------------------ Bluesky


def test_bluesky_posts_top_level_and_threads_replies_under_the_root(tmp_path: Path, bluesky: fb.FakeBluesky) -> None:
    root = bluesky.post("fan.bsky.example", "Paper Boats thread, go")
    ask = bluesky.post(
        "fan2.bsky.example",
        f"@{fb.BOT_HANDLE} what do you think?",
        reply={"root": {"uri": root.uri, "cid": root.cid}, "parent": {"uri": root.uri, "cid": root.cid}},
    )
    publisher = bluesky_publisher(tmp_path, bluesky)
    assert (publisher.platform, publisher.idempotent, publisher.text_limit) == (Platform.bluesky, False, 300)

    top = publisher.publish("Paper Boats: a quiet storm. https://example.com/paper-boats", None, "approval-1")
    reply = publisher.publish("A quiet storm.", ReplyTarget(platform=Platform.bluesky, post_id=ask.uri), "a-2")

    first, second = bluesky.posted_by_bot()
    assert top.post_id == first.uri
    assert top.url == f"https://bsky.app/profile/{fb.BOT_HANDLE}/post/{first.uri.rsplit('/', 1)[-1]}"
    assert reply.post_id == second.uri
    records = [json.loads(r.body) for r in posts_to(bluesky, "/xrpc/com.atproto.repo.createRecord")]
    assert records[0]["repo"] == bluesky.bot.did
    assert "reply" not in records[0]["record"]
    assert records[0]["record"]["facets"][0]["features"][0]["uri"] == "https://example.com/paper-boats"
    parent, thread_root = records[1]["record"]["reply"]["parent"], records[1]["record"]["reply"]["root"]
    assert (parent["uri"], parent["cid"]) == (ask.uri, ask.cid)
    assert (thread_root["uri"], thread_root["cid"]) == (root.uri, root.cid)


def test_bluesky_reuses_the_saved_session(tmp_path: Path, bluesky: fb.FakeBluesky) -> None:
    bluesky_publisher(tmp_path, bluesky).publish("one", None, "approval-1")
    bluesky_publisher(tmp_path, bluesky).publish("two", None, "approval-2")  # a restart
    assert bluesky.server.count("/xrpc/com.atproto.server.createSession") == 1
    assert (tmp_path / "state" / "poster" / "bluesky.session").exists()
    assert [p.text for p in bluesky.posted_by_bot()] == ["one", "two"]


def test_bluesky_429_is_refused_with_the_delay_until_reset(tmp_path: Path, bluesky: fb.FakeBluesky) -> None:
    clock = FakeClock()
    publisher = bluesky_publisher(tmp_path, bluesky, clock)
    bluesky.server.fail("/xrpc/com.atproto.repo.createRecord", fb.rate_limited(int(clock.now) + 90))
    with pytest.raises(PublishRefused, match="429") as refused:
        publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")
    assert not refused.value.permanent
    assert 88 <= (refused.value.retry_after_seconds or 0) <= 90


@pytest.mark.parametrize(("status", "permanent"), [(401, True), (403, True), (400, True), (500, False), (502, False)])
def test_bluesky_error_answers_are_refusals(
    tmp_path: Path, bluesky: fb.FakeBluesky, status: int, permanent: bool
) -> None:
    publisher = bluesky_publisher(tmp_path, bluesky)
    bluesky.server.fail("/xrpc/com.atproto.repo.createRecord", fb.error(status))
    with pytest.raises(PublishRefused) as refused:
        publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")
    assert refused.value.permanent is permanent
    assert bluesky.posted_by_bot() == []


def test_bluesky_reply_to_a_deleted_post_is_a_permanent_refusal(tmp_path: Path, bluesky: fb.FakeBluesky) -> None:
    gone = f"at://{bluesky.actor('fan.bsky.example').did}/app.bsky.feed.post/3kdeletedpost"
    publisher = bluesky_publisher(tmp_path, bluesky)
    with pytest.raises(PublishRefused, match="no longer exists") as refused:
        publisher.publish("A quiet storm.", ReplyTarget(platform=Platform.bluesky, post_id=gone), "approval-1")
    assert refused.value.permanent
    assert posts_to(bluesky, "/xrpc/com.atproto.repo.createRecord") == []


def test_bluesky_wrong_password_is_a_permanent_refusal(tmp_path: Path, bluesky: fb.FakeBluesky) -> None:
    settings = bluesky_settings(tmp_path, bluesky, password="wrong")
    publisher = build_platform_publisher("bluesky", settings, FAST)
    for _ in range(2):  # the second time without asking Bluesky again
        with pytest.raises(PublishRefused) as refused:
            publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")
        assert refused.value.permanent
    assert bluesky.server.count("/xrpc/com.atproto.server.createSession") == 1


def test_bluesky_timeout_while_posting_is_an_unknown_outcome(tmp_path: Path, bluesky: fb.FakeBluesky) -> None:
    from atproto_client.exceptions import InvokeTimeoutError

    publisher = bluesky_publisher(tmp_path, bluesky)
    bluesky.server.fail("/xrpc/com.atproto.repo.createRecord", Fault.hanging())
    with pytest.raises(InvokeTimeoutError):
        publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")


def test_bluesky_garbled_success_is_an_unknown_outcome(tmp_path: Path, bluesky: fb.FakeBluesky) -> None:
    publisher = bluesky_publisher(tmp_path, bluesky)
    bluesky.server.fail("/xrpc/com.atproto.repo.createRecord", Fault(Fault.malformed().response))
    with pytest.raises(Exception) as raised:
        publisher.publish("Paper Boats: a quiet storm.", None, "approval-1")
    assert not isinstance(raised.value, PublishRefused)


# ---------------------------------------------------------------------------- settings and the poster


@pytest.mark.parametrize(
    ("platform", "missing"),
    [
        ("x", "DEEPHYPE_X_CONSUMER_KEY"),
        ("mastodon", "DEEPHYPE_MASTODON_BASE_URL"),
        ("bluesky", "DEEPHYPE_BLUESKY_HANDLE"),
    ],
)
def test_missing_credentials_name_the_setting(tmp_path: Path, platform: str, missing: str) -> None:
    with pytest.raises(ValueError, match=missing):
        build_platform_publisher(platform, make_settings(tmp_path))


def approval(text: str, reply_to: ReplyTarget | None = None) -> Approval:
    """An approval as the curator signs it."""
    approval = Approval(
        candidates_message_id="candidates-1",
        candidate_id="candidate-1",
        final_text=text,
        edited=False,
        song=Song(artist="Lantern Hollow", title="Paper Boats"),
        reply_to=reply_to,
    )
    return KEYS.sign(approval)


def test_the_poster_retries_an_x_refusal_and_never_repeats_an_unknown_outcome(tmp_path: Path, x: fx.FakeX) -> None:
    db = Database(tmp_path / "poster.sqlite3", SCHEMA)
    clock = TestClock(datetime.now(UTC))
    queue = PostLedger(db, Pacing(min_gap=timedelta(0), jitter=timedelta(0)), clock)
    publisher = x_publisher(tmp_path, x)
    handle = make_approval_handler(queue, publisher, KEYS)
    dispatcher = Dispatcher(queue, publisher, lambda message: None)

    refused = approval("Paper Boats: a quiet storm.")
    x.server.fail("/2/tweets", fx.rate_limited(int(time.time()) + 60, times=1))
    handle(refused)
    assert dispatcher.run_due() == []
    assert queue.get(refused.message_id, "x")["state"] == "queued"  # waits for the rate limit's reset
    clock.advance(seconds=61)
    [published] = dispatcher.run_due()
    assert published.post_id == str(x.posted_by_bot()[0].id)

    unknown = approval("Glass Orchard: bright and brittle.")
    x.server.fail("/2/tweets", Fault(hang=True, times=1))
    handle(unknown)
    assert dispatcher.run_due() == []
    clock.advance(days=1)
    assert dispatcher.run_due() == []  # it may have gone out: a human checks, the poster does not post again
    assert queue.get(unknown.message_id, "x")["state"] == "held"
    assert len(posts_to(x, "/2/tweets")) == 3  # refused, published, timed out: no fourth try


def test_poster_service_builds_the_configured_platform(tmp_path: Path, mastodon: fm.FakeMastodon) -> None:
    from deephype.common.memory_bus import InMemoryBus

    settings = make_settings(
        tmp_path,
        poster_platform="mastodon",
        mastodon_base_url=mastodon.url,
        mastodon_access_token=SecretStr(fm.ACCESS_TOKEN),
    )
    bus = InMemoryBus(settings)
    parts, ledger = build_poster(settings, bus)
    handler = parts.subscriptions[0].handlers[Approval]
    assert handler(approval("Paper Boats: a quiet storm.")) == []
    parts.start()
    try:
        assert wait_until(ledger.published)
    finally:
        parts.stop()
    [published] = ledger.published()
    assert published["platform"] == "mastodon" and published["url"].startswith("https://tunes.example/@deephype/")

"""The X, Mastodon and Bluesky sources against local fakes that speak each platform's wire format:
posts become RawPosts, cursors resume exactly, rate limits and X's 402 pause a source instead of failing
every round, and every other failure reaches the poller as an error. Nothing here leaves 127.0.0.1."""

from __future__ import annotations

import json
import logging
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from deephype.common.memory_bus import InMemoryBus
from deephype.common.platforms.base import PlatformOptions
from deephype.common.platforms.bluesky import BlueskyLoginError, BlueskySource
from deephype.common.platforms.build import build_platform_publisher, build_platform_source
from deephype.common.platforms.mastodon import MastodonSource, html_to_text
from deephype.common.platforms.x import XSource
from deephype.common.settings import Settings
from deephype.listener import app as listener_app
from tests.conftest import make_settings
from tests.fakes import bluesky as fb
from tests.fakes import mastodon as fm
from tests.fakes import x as fx
from tests.fakes.server import Fault

FAST = PlatformOptions(timeout_seconds=0.5)


class FakeClock:
    """Epoch seconds that only move when a test says so, to step past a pause without waiting."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def unique(posts: list[Any]) -> list[str]:
    """Post ids in first-seen order: a post two timelines show comes twice, and the listener dedupes it."""
    return list(dict.fromkeys(post.post_id for post in posts))


def drain(source: Any, cursor: str | None = None) -> tuple[list[Any], str | None]:
    """Everything a source yields now, and the cursor the listener would have saved."""
    posts = []
    for post, new_cursor in source.fetch(cursor):
        posts.append(post)
        cursor = new_cursor
    return posts, cursor


def x_settings(tmp_path: Path, fake: fx.FakeX, **extra: Any) -> Settings:
    return make_settings(
        tmp_path,
        x_base_url=fake.url,
        x_consumer_key=fx.CONSUMER_KEY,
        x_consumer_secret=fx.CONSUMER_SECRET,
        x_access_token=fx.ACCESS_TOKEN,
        x_access_token_secret=fx.ACCESS_TOKEN_SECRET,
        x_bearer_token=fx.BEARER_TOKEN,
        **extra,
    )


def mastodon_settings(tmp_path: Path, fake: fm.FakeMastodon, **extra: Any) -> Settings:
    return make_settings(tmp_path, mastodon_base_url=fake.url, mastodon_access_token=fm.ACCESS_TOKEN, **extra)


def bluesky_settings(tmp_path: Path, fake: fb.FakeBluesky, **extra: Any) -> Settings:
    return make_settings(
        tmp_path,
        bluesky_base_url=fake.url,
        bluesky_handle=fb.BOT_HANDLE,
        bluesky_app_password=fb.BOT_PASSWORD,
        **extra,
    )


def x_source(tmp_path: Path, fake: fx.FakeX, clock: FakeClock | None = None, **options: Any) -> XSource:
    options.setdefault("x_timelines", ("mentions", "home"))
    source = build_platform_source(
        "x", x_settings(tmp_path, fake), PlatformOptions(timeout_seconds=0.5, **options), clock or time.time
    )
    assert isinstance(source, XSource)
    return source


def mastodon_source(
    tmp_path: Path, fake: fm.FakeMastodon, clock: FakeClock | None = None, **options: Any
) -> MastodonSource:
    source = build_platform_source(
        "mastodon",
        mastodon_settings(tmp_path, fake),
        PlatformOptions(timeout_seconds=0.5, **options),
        clock or time.time,
    )
    assert isinstance(source, MastodonSource)
    return source


def bluesky_source(
    tmp_path: Path, fake: fb.FakeBluesky, clock: FakeClock | None = None, **options: Any
) -> BlueskySource:
    source = build_platform_source(
        "bluesky",
        bluesky_settings(tmp_path, fake),
        PlatformOptions(timeout_seconds=0.5, **options),
        clock or time.time,
    )
    assert isinstance(source, BlueskySource)
    return source


# ------------------------------------------------------------------------------------------------ X


def test_x_mentions_and_home_timeline_become_posts_and_the_cursor_resumes(tmp_path: Path, x: fx.FakeX) -> None:
    ask = x.post("lanternfan", "@deephype thoughts on Paper Boats by Lantern Hollow?")
    x.post("deephype", "Paper Boats is a quiet storm of a song.")  # the bot's own post: skipped
    other = x.post("velafan", "Glass Orchard by Vela North on repeat today")

    source = x_source(tmp_path, x)
    posts, cursor = drain(source)

    assert [(p.post_id, p.author, p.mentions_bot) for p in posts] == [
        (str(ask.id), "lanternfan", True),  # mentions first ...
        (str(ask.id), "lanternfan", True),  # ... then home shows it again; the listener dedupes by id
        (str(other.id), "velafan", False),
    ]
    assert posts[0].platform == "x"
    assert posts[0].text == ask.text
    assert posts[0].url == f"https://x.com/lanternfan/status/{ask.id}"
    assert posts[0].created_at == ask.created_at
    assert json.loads(cursor or "") == {"mentions": str(ask.id), "home": str(other.id)}

    # A restart (a new source) with the saved cursor asks X only for newer posts and finds none.
    restarted = x_source(tmp_path, x)
    assert drain(restarted, cursor)[0] == []
    since = [r.arg("since_id") for r in x.server.requests if r.path.endswith(("/mentions", "/reverse_chronological"))]
    assert since[-2:] == [str(ask.id), str(other.id)]

    newer = x.post("velafan", "@deephype and what about Static Bloom?")
    assert [(p.post_id, p.mentions_bot) for p in drain(restarted, cursor)[0]] == [(str(newer.id), True)] * 2


def test_x_home_post_that_tags_the_bot_is_marked_as_a_mention(tmp_path: Path, x: fx.FakeX) -> None:
    tagged = x.post("velafan", "Glass Orchard, anyone? cc @DeepHype")
    posts, _ = drain(x_source(tmp_path, x, x_timelines=("home",)))
    assert [(p.post_id, p.mentions_bot) for p in posts] == [(str(tagged.id), True)]


def test_x_catches_up_over_several_pages_oldest_first(tmp_path: Path, x: fx.FakeX) -> None:
    first = x.post("fan", "@deephype first")
    source = x_source(tmp_path, x, x_timelines=("mentions",), page_size=5)
    _, cursor = drain(source)
    burst = [x.post("fan", f"@deephype number {n}") for n in range(12)]

    posts, cursor = drain(source, cursor)

    assert [p.post_id for p in posts] == [str(t.id) for t in burst]
    assert json.loads(cursor or "") == {"mentions": str(burst[-1].id)}
    tokens = [r.arg("pagination_token") for r in x.server.requests if r.arg("since_id") == str(first.id)]
    assert tokens == [None, "p5", "p10"]


def test_x_backlog_beyond_max_pages_keeps_the_newest_and_says_so(
    tmp_path: Path, x: fx.FakeX, caplog: pytest.LogCaptureFixture
) -> None:
    x.post("fan", "@deephype first")
    source = x_source(tmp_path, x, x_timelines=("mentions",), page_size=5, max_pages=2)
    _, cursor = drain(source)
    burst = [x.post("fan", f"@deephype number {n}") for n in range(12)]
    with caplog.at_level(logging.WARNING):
        posts, _ = drain(source, cursor)
    assert [p.post_id for p in posts] == [str(t.id) for t in burst[2:]]
    assert "more than 2 pages of new posts" in caplog.text


def test_x_search_sends_the_query_with_since_id(tmp_path: Path, x: fx.FakeX) -> None:
    x.post("fan", "now playing Paper Boats")
    hit = x.post("fan2", "Paper Boats live was something else")
    x.post("fan3", "nothing to see")
    source = x_source(tmp_path, x, x_timelines=("search",), x_search_query="paper boats")
    posts, cursor = drain(source)
    assert len(posts) == 2
    assert drain(source, cursor)[0] == []
    searches = [r for r in x.server.requests if r.path == "/2/tweets/search/recent"]
    assert searches[-1].arg("query") == "paper boats"
    assert searches[-1].arg("since_id") == str(hit.id)


def test_x_rate_limit_pauses_the_source_until_the_reset_time(
    tmp_path: Path, x: fx.FakeX, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    reset = int(clock.now) + 600
    x.post("fan", "@deephype Paper Boats?")
    source = x_source(tmp_path, x, clock)
    x.server.fail("/2/users/", fx.rate_limited(reset))

    with caplog.at_level(logging.WARNING):
        assert drain(source)[0] == []
        asked = x.server.count()
        clock.advance(599)
        assert drain(source)[0] == []  # still paused: not a single request
    assert x.server.count() == asked
    assert source.pause.until == reset
    assert sum("X rate limit reached (429)" in r.getMessage() for r in caplog.records) == 1

    x.server.clear_faults()
    clock.advance(2)
    assert len(unique(drain(source)[0])) == 1


def test_x_pauses_early_when_remaining_reaches_zero(tmp_path: Path, x: fx.FakeX) -> None:
    clock = FakeClock()
    x.rate_limit_remaining = 0
    x.rate_limit_reset = int(clock.now) + 300
    x.post("fan", "@deephype Paper Boats?")
    source = x_source(tmp_path, x, clock, x_timelines=("mentions",))
    assert len(unique(drain(source)[0])) == 1  # what came with the last allowed call is still used
    asked = x.server.count()
    assert drain(source)[0] == []
    assert x.server.count() == asked


def test_x_402_credits_depleted_pauses_for_the_configured_time(
    tmp_path: Path, x: fx.FakeX, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    x.post("fan", "@deephype Paper Boats?")
    source = x_source(tmp_path, x, clock, x_payment_pause_seconds=1800)
    x.server.fail("/2/users/", fx.error(402))

    with caplog.at_level(logging.WARNING):
        assert drain(source)[0] == []
    assert "402 Payment Required" in caplog.text and "credits" in caplog.text
    asked = x.server.count()
    clock.advance(1799)
    assert drain(source)[0] == []
    assert x.server.count() == asked

    x.server.clear_faults()
    clock.advance(2)
    assert len(unique(drain(source)[0])) == 1


@pytest.mark.parametrize("status", [401, 403, 500, 503])
def test_x_errors_reach_the_poller_and_do_not_pause(tmp_path: Path, x: fx.FakeX, status: int) -> None:
    import tweepy

    x.post("fan", "@deephype Paper Boats?")
    source = x_source(tmp_path, x)
    x.server.fail("/2/users/", fx.error(status, times=1))
    with pytest.raises(tweepy.HTTPException) as raised:
        drain(source)
    assert raised.value.response.status_code == status
    assert len(unique(drain(source)[0])) == 1  # the next round simply tries again


def test_x_wrong_credentials_are_a_401(tmp_path: Path, x: fx.FakeX) -> None:
    import tweepy

    settings = x_settings(tmp_path, x).model_copy(update={"x_access_token": SecretStr("someone-else")})
    source = build_platform_source("x", settings, FAST)
    with pytest.raises(tweepy.Unauthorized):
        drain(source)


def test_x_timeout_raises_instead_of_hanging(tmp_path: Path, x: fx.FakeX) -> None:
    import requests

    source = x_source(tmp_path, x)
    x.server.fail("/2/users/me", Fault.hanging())
    with pytest.raises(requests.Timeout):
        drain(source)


def test_x_malformed_body_raises(tmp_path: Path, x: fx.FakeX) -> None:
    source = x_source(tmp_path, x)
    x.server.fail("/2/users/", Fault.malformed())
    with pytest.raises(ValueError):
        drain(source)


def test_x_needs_user_context_credentials(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, x_consumer_key="key", x_access_token="token")
    with pytest.raises(ValueError, match="DEEPHYPE_X_CONSUMER_SECRET, DEEPHYPE_X_ACCESS_TOKEN_SECRET"):
        build_platform_source("x", settings)


def test_x_search_needs_a_query(tmp_path: Path, x: fx.FakeX) -> None:
    with pytest.raises(ValueError, match="x_search_query"):
        x_source(tmp_path, x, x_timelines=("search",))
    with pytest.raises(ValueError, match="choose from mentions, home, search"):
        x_source(tmp_path, x, x_timelines=("likes",))


# ----------------------------------------------------------------------------------------- Mastodon


def test_mastodon_notifications_home_and_hashtags_become_plain_text_posts(
    tmp_path: Path, mastodon: fm.FakeMastodon
) -> None:
    text = "@deephype is Paper Boats by Lantern Hollow any good?\n\nAsking for <a> friend & me"
    ask = mastodon.post("lanternfan", text)
    mastodon.post("deephype", "Paper Boats is a quiet storm.")  # own post
    other = mastodon.post("velafan", "Glass Orchard by Vela North #NowPlaying", domain="other.example")
    mastodon.boost("velafan", ask)  # a boost is not a new post
    mastodon.follow_notification("newfan")  # not a mention

    source = mastodon_source(
        tmp_path,
        mastodon,
        mastodon_timelines=("notifications", "home", "hashtags"),
        mastodon_hashtags=("#nowplaying",),
    )
    posts, cursor = drain(source)

    assert [(p.post_id, p.author, p.mentions_bot) for p in posts] == [
        (str(ask.id), "lanternfan", True),  # the mention notification
        (str(ask.id), "lanternfan", True),  # the same status on the home timeline
        (str(other.id), "velafan@other.example", False),
        (str(other.id), "velafan@other.example", False),  # and on #nowplaying
    ]
    assert posts[0].text == text
    assert posts[0].url == f"https://{fm.DOMAIN}/@lanternfan/{ask.id}"
    assert posts[0].created_at == ask.created_at
    assert posts[0].created_at.utcoffset().total_seconds() == 0
    assert set(json.loads(cursor or "")) == {"notifications", "home", "tag:nowplaying"}

    restarted = mastodon_source(
        tmp_path, mastodon, mastodon_timelines=("notifications", "home", "hashtags"), mastodon_hashtags=("nowplaying",)
    )
    assert drain(restarted, cursor)[0] == []
    home_asks = [r for r in mastodon.server.requests if r.path == "/api/v1/timelines/home"]
    assert home_asks[-1].arg("min_id") == json.loads(cursor or "")["home"]


def test_mastodon_reads_a_burst_forward_page_by_page(tmp_path: Path, mastodon: fm.FakeMastodon) -> None:
    mastodon.post("fan", "first")
    source = mastodon_source(tmp_path, mastodon, mastodon_timelines=("home",), page_size=20)
    _, cursor = drain(source)
    burst = [mastodon.post("fan", f"song number {n}") for n in range(45)]
    posts, cursor = drain(source, cursor)
    assert [p.post_id for p in posts] == [str(s.id) for s in burst]
    assert json.loads(cursor or "") == {"home": str(burst[-1].id)}


def test_mastodon_marks_a_home_post_that_mentions_the_bot(tmp_path: Path, mastodon: fm.FakeMastodon) -> None:
    tagged = mastodon.post("velafan", "Glass Orchard, thoughts @deephype?")
    posts, _ = drain(mastodon_source(tmp_path, mastodon, mastodon_timelines=("home",)))
    assert [(p.post_id, p.mentions_bot) for p in posts] == [(str(tagged.id), True)]


def test_mastodon_429_pauses_until_x_ratelimit_reset(
    tmp_path: Path, mastodon: fm.FakeMastodon, caplog: pytest.LogCaptureFixture
) -> None:
    from datetime import UTC, datetime, timedelta

    clock = FakeClock()
    mastodon.post("fan", "@deephype Paper Boats?")
    source = mastodon_source(tmp_path, mastodon, clock)
    reset = datetime.now(UTC) + timedelta(minutes=10)
    mastodon.server.fail("/api/v1/notifications", fm.rate_limited(reset))

    with caplog.at_level(logging.WARNING):
        assert drain(source)[0] == []
    assert "Mastodon rate limit reached (429)" in caplog.text
    # The reset time came from the header (give or take the clock skew Mastodon.py corrects with Date).
    assert abs(source.pause.until - reset.timestamp()) < 5
    asked = mastodon.server.count()
    assert drain(source)[0] == []
    assert mastodon.server.count() == asked

    mastodon.server.clear_faults()
    clock.advance(601 + 5)
    assert len(unique(drain(source)[0])) == 1


@pytest.mark.parametrize("status", [401, 403, 500, 503])
def test_mastodon_errors_reach_the_poller(tmp_path: Path, mastodon: fm.FakeMastodon, status: int) -> None:
    from mastodon import MastodonAPIError

    source = mastodon_source(tmp_path, mastodon)
    mastodon.server.fail("/api/v1/", fm.error(status))
    with pytest.raises(MastodonAPIError) as raised:
        drain(source)
    assert raised.value.args[1] == status
    assert not source.pause.active()


def test_mastodon_timeout_and_malformed_body_raise(tmp_path: Path, mastodon: fm.FakeMastodon) -> None:
    from mastodon import MastodonAPIError, MastodonNetworkError

    source = mastodon_source(tmp_path, mastodon)
    mastodon.server.fail("/api/v1/accounts", Fault(hang=True, times=1))
    with pytest.raises(MastodonNetworkError):
        drain(source)
    mastodon.server.fail("/api/v1/accounts", Fault(Fault.malformed().response, times=1))
    with pytest.raises(MastodonAPIError, match="Could not parse response as JSON"):
        drain(source)


def test_mastodon_needs_a_server_and_a_token(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="DEEPHYPE_MASTODON_BASE_URL, DEEPHYPE_MASTODON_ACCESS_TOKEN"):
        build_platform_source("mastodon", make_settings(tmp_path))


def test_html_to_text_keeps_line_breaks_and_decodes_entities() -> None:
    html = '<p>Paper Boats &amp; <a href="https://x.example">Glass<br>Orchard</a></p><p>&lt;3 &#8212; ok</p>'
    assert html_to_text(html) == "Paper Boats & Glass\nOrchard\n\n<3 — ok"


# ------------------------------------------------------------------------------------------ Bluesky


def test_bluesky_mentions_replies_and_timeline_become_posts(tmp_path: Path, bluesky: fb.FakeBluesky) -> None:
    ask = bluesky.post("lanternfan.bsky.example", f"@{fb.BOT_HANDLE} is Paper Boats by Lantern Hollow good?")
    own = bluesky.post(fb.BOT_HANDLE, "Paper Boats is a quiet storm.")
    reply = bluesky.post(
        "velafan.bsky.example",
        "agreed, and Glass Orchard too",
        reply={"root": {"uri": own.uri, "cid": own.cid}, "parent": {"uri": own.uri, "cid": own.cid}},
    )
    other = bluesky.post("third.bsky.example", "Static Bloom by Vela North is out")
    bluesky.repost("fourth.bsky.example", other)  # shown again as a repost: skipped
    bluesky.like_notification("fourth.bsky.example", own)  # not a mention

    source = bluesky_source(tmp_path, bluesky)
    posts, cursor = drain(source)

    assert [(p.post_id, p.author, p.mentions_bot) for p in posts] == [
        (ask.uri, "lanternfan.bsky.example", True),  # notifications: the mention (facet) ...
        (reply.uri, "velafan.bsky.example", True),  # ... and the reply to the bot
        (ask.uri, "lanternfan.bsky.example", True),  # timeline: the mention facet names the bot
        (reply.uri, "velafan.bsky.example", False),
        (other.uri, "third.bsky.example", False),
    ]
    rkey = ask.uri.rsplit("/", 1)[-1]
    assert posts[0].url == f"https://bsky.app/profile/lanternfan.bsky.example/post/{rkey}"
    assert posts[0].text == ask.text
    assert posts[0].created_at == ask.created_at

    assert drain(bluesky_source(tmp_path, bluesky), cursor)[0] == []
    newer = bluesky.post("third.bsky.example", "one more: Low Tide")
    assert [p.post_id for p in drain(bluesky_source(tmp_path, bluesky), cursor)[0]] == [newer.uri]


def test_bluesky_timeline_catches_up_over_pages(tmp_path: Path, bluesky: fb.FakeBluesky) -> None:
    bluesky.post("fan.bsky.example", "first")
    source = bluesky_source(tmp_path, bluesky, bluesky_timelines=("timeline",), page_size=10)
    _, cursor = drain(source)
    burst = [bluesky.post("fan.bsky.example", f"song {n}") for n in range(25)]
    posts, _ = drain(source, cursor)
    assert [p.post_id for p in posts] == [p.uri for p in burst]


def test_bluesky_session_is_saved_and_reused_across_restarts(tmp_path: Path, bluesky: fb.FakeBluesky) -> None:
    bluesky.post("fan.bsky.example", f"@{fb.BOT_HANDLE} hello")
    drain(bluesky_source(tmp_path, bluesky))
    session_file = tmp_path / "state" / "listener" / "bluesky.session"
    assert session_file.exists()
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    assert bluesky.server.count("/xrpc/com.atproto.server.createSession") == 1

    bluesky.post("fan.bsky.example", f"@{fb.BOT_HANDLE} again")
    posts, _ = drain(bluesky_source(tmp_path, bluesky))  # a restart: new client, same state dir
    assert len(unique(posts)) == 2
    assert bluesky.server.count("/xrpc/com.atproto.server.createSession") == 1
    saved_access = session_file.read_text().split(":::")[2]
    assert bluesky.server.requests[-1].headers["authorization"] == f"Bearer {saved_access}"


def test_bluesky_refreshes_an_expiring_session_and_saves_it(tmp_path: Path, bluesky: fb.FakeBluesky) -> None:
    bluesky.access_ttl_seconds = 60  # inside atproto's 15-minute refresh margin
    source = bluesky_source(tmp_path, bluesky)
    drain(source)
    first = (tmp_path / "state" / "listener" / "bluesky.session").read_text()
    drain(source)
    assert bluesky.server.count("/xrpc/com.atproto.server.refreshSession") >= 1
    assert (tmp_path / "state" / "listener" / "bluesky.session").read_text() != first
    assert bluesky.server.count("/xrpc/com.atproto.server.createSession") == 1


def test_bluesky_ignores_a_saved_session_of_another_account(tmp_path: Path, bluesky: fb.FakeBluesky) -> None:
    drain(bluesky_source(tmp_path, bluesky))
    session_file = tmp_path / "state" / "listener" / "bluesky.session"
    session_file.write_text(session_file.read_text().replace(fb.BOT_HANDLE, "previous-bot.bsky.example", 1))
    drain(bluesky_source(tmp_path, bluesky))
    assert bluesky.server.count("/xrpc/com.atproto.server.createSession") == 2
    assert session_file.read_text().startswith(f"{fb.BOT_HANDLE}:::")


def test_bluesky_logs_in_again_when_the_saved_session_is_dead(tmp_path: Path, bluesky: fb.FakeBluesky) -> None:
    bluesky.post("fan.bsky.example", f"@{fb.BOT_HANDLE} hello")
    drain(bluesky_source(tmp_path, bluesky))
    bluesky.revoke_sessions()
    posts, _ = drain(bluesky_source(tmp_path, bluesky))
    assert len(unique(posts)) == 1
    assert bluesky.server.count("/xrpc/com.atproto.server.createSession") == 2


def test_bluesky_429_pauses_until_ratelimit_reset(
    tmp_path: Path, bluesky: fb.FakeBluesky, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    reset = int(clock.now) + 300
    bluesky.post("fan.bsky.example", f"@{fb.BOT_HANDLE} hello")
    source = bluesky_source(tmp_path, bluesky, clock)
    bluesky.server.fail("/xrpc/app.bsky.notification", fb.rate_limited(reset))
    with caplog.at_level(logging.WARNING):
        assert drain(source)[0] == []
    assert "Bluesky rate limit reached (429)" in caplog.text
    assert source.pause.until == reset
    asked = bluesky.server.count()
    assert drain(source)[0] == []
    assert bluesky.server.count() == asked
    bluesky.server.clear_faults()
    clock.advance(301)
    assert len(unique(drain(source)[0])) == 1


def test_bluesky_wrong_password_and_server_errors_raise(tmp_path: Path, bluesky: fb.FakeBluesky) -> None:
    from atproto_client.exceptions import RequestException, UnauthorizedError

    settings = bluesky_settings(tmp_path, bluesky).model_copy(update={"bluesky_app_password": SecretStr("wrong")})
    wrong = build_platform_source("bluesky", settings, FAST)
    with pytest.raises(UnauthorizedError):
        drain(wrong)
    assert not (tmp_path / "state" / "listener" / "bluesky.session").exists()
    # The next rounds do not hammer createSession (limited per account): they fail without asking.
    with pytest.raises(BlueskyLoginError, match="DEEPHYPE_BLUESKY_APP_PASSWORD"):
        drain(wrong)
    assert bluesky.server.count("/xrpc/com.atproto.server.createSession") == 1

    source = bluesky_source(tmp_path, bluesky)
    bluesky.server.fail("/xrpc/app.bsky.feed.getTimeline", fb.error(500))
    with pytest.raises(RequestException):
        drain(source)


def test_bluesky_timeout_and_malformed_body_raise(tmp_path: Path, bluesky: fb.FakeBluesky) -> None:
    from atproto_client.exceptions import InvokeTimeoutError

    source = bluesky_source(tmp_path, bluesky)
    bluesky.server.fail("/xrpc/app.bsky.notification", Fault(hang=True, times=1))
    with pytest.raises(InvokeTimeoutError):
        drain(source)
    bluesky.server.fail("/xrpc/app.bsky.notification", Fault(Fault.malformed().response, times=1))
    with pytest.raises(ValueError):
        drain(source)


def test_bluesky_needs_a_handle_and_an_app_password(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="DEEPHYPE_BLUESKY_HANDLE, DEEPHYPE_BLUESKY_APP_PASSWORD"):
        build_platform_source("bluesky", make_settings(tmp_path))


# -------------------------------------------------------------------------------- all at once, end to end


class Recorder(InMemoryBus):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.published: list[Any] = []

    def publish(self, message: Any) -> None:
        self.published.append(message)
        super().publish(message)


def test_the_listener_polls_all_three_platforms_and_never_re_emits_after_a_restart(
    tmp_path: Path, x: fx.FakeX, mastodon: fm.FakeMastodon, bluesky: fb.FakeBluesky
) -> None:
    x.post("fan", "@deephype #np Lantern Hollow - Paper Boats")
    mastodon.post("fan", "@deephype #np Vela North - Glass Orchard")
    bluesky.post("fan.bsky.example", f"@{fb.BOT_HANDLE} #np Kilo Marsh - Low Tide")
    settings = make_settings(
        tmp_path,
        listener_sources=["x", "mastodon", "bluesky"],
        bot_handles=["deephype", fb.BOT_HANDLE],
        x_base_url=x.url,
        x_consumer_key=fx.CONSUMER_KEY,
        x_consumer_secret=fx.CONSUMER_SECRET,
        x_access_token=fx.ACCESS_TOKEN,
        x_access_token_secret=fx.ACCESS_TOKEN_SECRET,
        mastodon_base_url=mastodon.url,
        mastodon_access_token=fm.ACCESS_TOKEN,
        bluesky_base_url=bluesky.url,
        bluesky_handle=fb.BOT_HANDLE,
        bluesky_app_password=fb.BOT_PASSWORD,
    )
    bus = Recorder(settings)
    _, _, poller = listener_app.build(settings, bus)
    assert [source.name for source in poller.sources] == ["x", "mastodon", "bluesky"]
    assert poller.poll_once() == 5  # the X and Bluesky mentions also show on the home timelines
    assert sorted((m.platform.value, m.artist, m.title, m.on_demand) for m in bus.published) == [
        ("bluesky", "Kilo Marsh", "Low Tide", True),
        ("mastodon", "Vela North", "Glass Orchard", True),
        ("x", "Lantern Hollow", "Paper Boats", True),
    ]
    assert poller.poll_once() == 0

    _, _, restarted = listener_app.build(settings, bus)
    assert restarted.poll_once() == 0
    assert len(bus.published) == 3


def test_no_secret_reaches_the_logs_even_at_debug(
    tmp_path: Path,
    x: fx.FakeX,
    mastodon: fm.FakeMastodon,
    bluesky: fb.FakeBluesky,
    caplog: pytest.LogCaptureFixture,
) -> None:

    x.post("fan", "@deephype #np Lantern Hollow - Paper Boats")
    settings = make_settings(
        tmp_path,
        x_base_url=x.url,
        x_consumer_key=fx.CONSUMER_KEY,
        x_consumer_secret=fx.CONSUMER_SECRET,
        x_access_token=fx.ACCESS_TOKEN,
        x_access_token_secret=fx.ACCESS_TOKEN_SECRET,
        x_bearer_token=fx.BEARER_TOKEN,
        mastodon_base_url=mastodon.url,
        mastodon_access_token=fm.ACCESS_TOKEN,
        bluesky_base_url=bluesky.url,
        bluesky_handle=fb.BOT_HANDLE,
        bluesky_app_password=fb.BOT_PASSWORD,
    )
    options = PlatformOptions(x_timelines=("mentions", "search"), x_search_query="paper", timeout_seconds=0.5)
    with caplog.at_level(logging.DEBUG):
        for platform in ("x", "mastodon", "bluesky"):
            drain(build_platform_source(platform, settings, options))
            build_platform_publisher(platform, settings, options).publish("Paper Boats: a quiet storm.", None, "k")
    assert len(caplog.records) > 10
    assert not [secret for secret in settings.secret_values() if secret in caplog.text]

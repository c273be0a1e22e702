"""Posts that say what they are about, against the fake X, Mastodon and Bluesky servers: composed from the
template (commentary, artist, title, link), cross-posted with one ledger row per platform, Bluesky rich
text at the right UTF-8 byte offsets, Mastodon unlisted, X replies only to posts that asked the bot."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from deephype.common.compose import PostFormat, commentary_of, compose_post, song_link, track_url
from deephype.common.contracts import Approval, Platform, Song, text_length
from deephype.common.db import Database
from deephype.common.platforms.base import PlatformOptions
from deephype.common.platforms.build import build_platform_publisher
from deephype.curator.store import SCHEMA as CURATOR_SCHEMA
from deephype.curator.store import CuratorStore
from deephype.poster.handlers import SCHEMA, Dispatcher, PostQueue, make_approval_handler
from deephype.poster.schedule import Pacing, TestClock
from tests.factories import candidates
from tests.fakes import bluesky as fb
from tests.fakes import mastodon as fm
from tests.fakes import x as fx
from tests.test_platform_publishers import KEYS, bluesky_publisher, mastodon_publisher, posts_to, x_publisher

LINK = "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC"
CREDIT = '\n\nLow Tide - "Glass Harbour" ' + LINK


def approve(
    tmp_path: Path, platforms: tuple[str, ...], text: str | None = None, *, on_demand_on: str | None = None, **kw: Any
) -> Approval:
    """An approval as the curator makes it: the candidate composed into each platform's template."""
    store = CuratorStore(Database(tmp_path / "curator.sqlite3", CURATOR_SCHEMA), KEYS, PostFormat(platforms))
    message = candidates(
        kw.pop("post_id", "1"),
        on_demand=on_demand_on is not None,
        platform=on_demand_on or "http",
        url="https://example.social/@fan/1",
    )
    enriched = message.enriched.model_copy(
        update={"song": message.enriched.song.model_copy(update={"track_id": "4uLU6hMCjMI75M1A2tKUQC"})}
    )
    message = message.model_copy(update={"enriched": enriched})
    store.add_candidates(message)
    return store.approve(
        message.message_id, message.candidates[0].candidate_id, text, by="t", post_platform=platforms, **kw
    )


def test_a_post_is_the_commentary_in_the_template_with_the_song_and_its_link() -> None:
    song = Song(artist="Daft Punk", title="Digital Love")
    template = '{text}\n\n{artist} - "{title}" {link}'
    post = compose_post(template, "Warm and sly.", song, "https://open.spotify.com/track/x")
    assert post == 'Warm and sly.\n\nDaft Punk - "Digital Love" https://open.spotify.com/track/x'
    assert compose_post(template, "Warm and sly.", song, None) == 'Warm and sly.\n\nDaft Punk - "Digital Love"'
    assert commentary_of(post, template, song, "https://open.spotify.com/track/x") == "Warm and sly."
    assert commentary_of("Something else entirely", template, song, None) is None
    assert track_url("musicbrainz:recording:abc") == "https://musicbrainz.org/recording/abc"
    assert track_url("4uLU6hMCjMI75M1A2tKUQC") == LINK
    assert track_url("offline:radiohead-weird-fishes") is None  # our own catalog has no public page
    with pytest.raises(ValueError, match=r"has no \{text\}"):
        PostFormat(("x",), "{artist} - {title}")
    with pytest.raises(ValueError, match="names \\['album'\\]"):
        PostFormat(("x",), "{text} {album}")


def test_the_link_is_spotify_musicbrainz_or_the_original_post() -> None:
    message = candidates("1", url="https://example.social/@fan/1")
    assert song_link(message.enriched) == "https://example.social/@fan/1"
    with_id = message.enriched.model_copy(
        update={"song": message.enriched.song.model_copy(update={"track_id": "musicbrainz:recording:r1"})}
    )
    assert song_link(with_id) == "https://musicbrainz.org/recording/r1"


def test_cross_posted_to_every_platform_each_names_the_song_and_carries_the_link(
    tmp_path: Path, x: fx.FakeX, mastodon: fm.FakeMastodon, bluesky: fb.FakeBluesky
) -> None:
    publishers = {
        "x": x_publisher(tmp_path / "x", x),
        "mastodon": mastodon_publisher(tmp_path / "m", mastodon),
        "bluesky": bluesky_publisher(tmp_path / "b", bluesky),
    }
    queue = PostQueue(Database(tmp_path / "poster.sqlite3", SCHEMA), Pacing(), TestClock(datetime.now(UTC)))
    announced: list[Any] = []
    make_approval_handler(queue, publishers, KEYS)(approve(tmp_path, tuple(publishers), "Cold water, warm light."))
    posts = Dispatcher(queue, publishers, announced.append).run_due()
    assert {p.platform for p in posts} == {Platform.x, Platform.mastodon, Platform.bluesky}
    assert len({p.message_id for p in announced}) == 3  # one PublishedPost per platform
    expected = "Cold water, warm light." + CREDIT
    [tweet], [status], [skeet] = x.posted_by_bot(), mastodon.posted_by_bot(), bluesky.posted_by_bot()
    assert tweet.text == status.text == skeet.text == expected
    assert status.visibility == "unlisted"  # bot etiquette, the default setting
    [link] = [f for f in skeet.facets if f["features"][0]["$type"] == "app.bsky.richtext.facet#link"]
    assert link["features"][0]["uri"] == LINK


def test_one_platform_failing_leaves_the_others_posting(tmp_path: Path, x: fx.FakeX, mastodon: fm.FakeMastodon) -> None:
    publishers = {"x": x_publisher(tmp_path / "x", x), "mastodon": mastodon_publisher(tmp_path / "m", mastodon)}
    clock = TestClock(datetime.now(UTC))
    queue = PostQueue(Database(tmp_path / "poster.sqlite3", SCHEMA), Pacing(), clock)
    x.server.fail("/2/tweets", fx.error(503, times=1))
    make_approval_handler(queue, publishers, KEYS)(approve(tmp_path, ("x", "mastodon"), "Still here."))
    dispatcher = Dispatcher(queue, publishers, lambda post: None)
    [first] = dispatcher.run_due()
    assert first.platform == Platform.mastodon and x.posted_by_bot() == []
    clock.advance(seconds=5)
    [second] = dispatcher.run_due()  # X's own retry, later
    assert second.platform == Platform.x
    dispatcher.run_due()
    assert len(x.posted_by_bot()) == len(mastodon.posted_by_bot()) == 1


def test_bluesky_facets_have_utf8_byte_offsets_after_emoji_and_accents(tmp_path: Path, bluesky: fb.FakeBluesky) -> None:
    bluesky.actor("mira.bsky.social")  # exists, so the mention resolves
    text = "Crème brûlée 🎧🇫🇷 for @mira.bsky.social — écoute https://ex.am/plé?x=1 #DreamPop 👍🏽"
    publisher = bluesky_publisher(tmp_path, bluesky)
    publisher.publish(text, None, "facets-1")
    [post] = bluesky.posted_by_bot()
    raw = text.encode("utf-8")
    spans = {
        f["features"][0]["$type"].rsplit("#", 1)[1]: raw[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode()
        for f in post.facets
    }
    assert spans == {"mention": "@mira.bsky.social", "link": "https://ex.am/plé?x=1", "tag": "#DreamPop"}
    mention = next(f for f in post.facets if f["features"][0]["$type"].endswith("#mention"))
    assert mention["features"][0]["did"] == bluesky.actor("mira.bsky.social").did
    # Character offsets would be wrong here: the emoji and accents before each span take several bytes.
    assert text.index("@mira") != mention["index"]["byteStart"]


def test_bluesky_counts_graphemes_and_an_over_limit_post_is_refused_before_it_is_queued(
    tmp_path: Path, bluesky: fb.FakeBluesky
) -> None:
    family = "👩‍👩‍👧"  # one grapheme, five code points
    assert text_length(family * 300, "bluesky") == 300 and text_length(family * 301, "bluesky") == 301
    publisher = bluesky_publisher(tmp_path, bluesky)
    queue = PostQueue(Database(tmp_path / "poster.sqlite3", SCHEMA))
    handle = make_approval_handler(queue, publisher, KEYS)
    room = 300 - text_length(CREDIT, "bluesky")
    with pytest.raises(ValueError, match="bluesky: the text is 301 characters"):
        approve(tmp_path / "curator-says-no", ("bluesky",), family * (room + 1))
    fits = approve(tmp_path / "fits", ("bluesky",), family * room)
    handle(fits)
    too_long = fits.model_copy(update={"posts": {"bluesky": fits.posts["bluesky"] + "!"}})
    from deephype.common.bus import PermanentError

    with pytest.raises(PermanentError, match="not queued"):
        handle(KEYS.sign(too_long.model_copy(update={"message_id": "other"})))
    assert [row["approval_id"] for row in queue.schedule()] == [fits.message_id]
    [post] = Dispatcher(queue, publisher, lambda post: None).run_due()
    assert len(bluesky.posted_by_bot()) == 1 and post.text.endswith(LINK)


def test_mastodon_visibility_is_a_setting(tmp_path: Path, mastodon: fm.FakeMastodon) -> None:
    from tests.conftest import make_settings

    settings = make_settings(
        tmp_path, mastodon_base_url=mastodon.url, mastodon_access_token=fm.ACCESS_TOKEN, mastodon_visibility="public"
    )
    build_platform_publisher("mastodon", settings, PlatformOptions(timeout_seconds=2)).publish("Hi.", None, "v-1")
    mastodon_publisher(tmp_path, mastodon).publish("Hello.", None, "v-2")
    assert [s.visibility for s in mastodon.posted_by_bot()] == ["public", "unlisted"]
    assert [parse_qs(r.body.decode())["visibility"][0] for r in posts_to(mastodon, "/api/v1/statuses")] == [
        "public",
        "unlisted",
    ]


def test_x_replies_only_to_a_post_that_mentioned_the_bot(tmp_path: Path, x: fx.FakeX) -> None:
    publisher = x_publisher(tmp_path / "x", x)
    no_gap = Pacing(min_gap=timedelta(0), jitter=timedelta(0))
    queue = PostQueue(Database(tmp_path / "poster.sqlite3", SCHEMA), no_gap, TestClock(datetime.now(UTC)))
    handle = make_approval_handler(queue, publisher, KEYS)
    ask = x.post("fan", "@deephype what about Glass Harbour?")
    asked = approve(tmp_path / "asked", ("x",), "Since you asked.", on_demand_on="x", post_id=str(ask.id))
    overheard = approve(tmp_path / "overheard", ("x",), "Overheard.", post_id="43")
    assert asked.reply_to is not None and asked.reply_to.post_id == str(ask.id) and overheard.reply_to is None
    handle(asked)
    handle(overheard)
    Dispatcher(queue, publisher, lambda post: None).run_due()
    bodies = [json.loads(r.body) for r in posts_to(x, "/2/tweets")]
    assert [b.get("reply") for b in bodies] == [{"in_reply_to_tweet_id": str(ask.id)}, None]
    assert bodies[0]["text"].startswith("Since you asked.") and bodies[1]["text"].startswith("Overheard.")


def test_the_curator_edits_the_composed_post(tmp_path: Path) -> None:
    # Only the commentary edited in the post box: each platform keeps its own template around it.
    fmt = PostFormat(("x", "mastodon"), templates={"mastodon": "{text} {link} #nowplaying"})
    store = CuratorStore(Database(tmp_path / "c.sqlite3", CURATOR_SCHEMA), KEYS, fmt)
    message = candidates("e1")
    store.add_candidates(message)
    shown = 'First take.\n\nLow Tide - "Glass Harbour"'  # what the page shows for candidate 1 (no link known)
    assert store.song(message.message_id).candidates[0].composed == shown
    first = message.candidates[0].candidate_id
    approval = store.approve(
        message.message_id, first, None, by="t", post_platform=fmt.platforms, post_text=shown.replace("First", "Best")
    )
    assert approval.final_text == "Best take." and approval.edited
    assert approval.posts == {"x": 'Best take.\n\nLow Tide - "Glass Harbour"', "mastodon": "Best take. #nowplaying"}

    # The credit line itself edited: posted as written, everywhere.
    other = candidates("e2")
    store.add_candidates(other)
    mine = "Best take.\n\nLow Tide, Glass Harbour (2024)"
    approval = store.approve(
        other.message_id, other.candidates[0].candidate_id, None, by="t", post_platform=fmt.platforms, post_text=mine
    )
    assert approval.posts == {"x": mine, "mastodon": mine} and approval.edited

    # The post box left as shown, the sentence edited: the sentence decides.
    third = candidates("e3")
    store.add_candidates(third)
    shown_here = fmt.compose("x", "First take.", third.enriched.song, None)
    approval = store.approve(
        third.message_id,
        third.candidates[0].candidate_id,
        "A new sentence.",
        by="t",
        post_platform=fmt.platforms,
        post_text=shown_here,
        post_now=True,
    )
    assert approval.posts["x"].startswith("A new sentence.\n\n") and approval.post_now

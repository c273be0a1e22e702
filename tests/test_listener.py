"""The listener: every post handled once, across restarts; bad feed lines skipped with their line number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from deephype.common.contracts import SongMention
from deephype.common.memory_bus import InMemoryBus
from deephype.common.service import create_app
from deephype.listener import app as listener_app
from tests.conftest import make_settings


def feed(path: Path, posts: list[dict[str, object] | str]) -> Path:
    path.write_text("".join((p if isinstance(p, str) else json.dumps(p)) + "\n" for p in posts))
    return path


def post(post_id: str, text: str, author: str = "ana", **extra: object) -> dict[str, object]:
    return {"post_id": post_id, "author": author, "text": text, **extra}


class Recorder(InMemoryBus):
    """The real in-memory bus, remembering what was published."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.published: list[SongMention] = []

    def publish(self, message):  # type: ignore[no-untyped-def, override]
        self.published.append(message)
        super().publish(message)


def test_feed_posts_become_mentions_once_even_after_a_restart(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = feed(
        tmp_path / "feed.jsonl",
        [
            post("1", "#np Low Tide - Glass Harbour"),
            "{broken json",
            post("2", "Arsenal 2 - 1 Chelsea what a game"),
            post("3", "Now playing: Velvet Static - Lantern Hours", author="deephype"),
            post("4", "@deephype thoughts on “Paper Moons” by The Quiet Hours?", mentions_bot=True),
        ],
    )
    settings = make_settings(tmp_path, listener_feed_path=path)
    bus = Recorder(settings)
    _, listener, poller = listener_app.build(settings, bus)
    assert poller.poll_once() == 4
    assert "line 2 skipped" in caplog.text
    assert [(m.post_id, m.artist, m.title, m.on_demand) for m in bus.published] == [
        ("1", "Low Tide", "Glass Harbour", False),
        ("4", "The Quiet Hours", "Paper Moons", True),
    ]
    assert listener.status("feed", "2").status == "no_song"
    assert listener.status("feed", "3").status == "own_post"

    # A new process over the same state: nothing is emitted again; new lines are.
    bus2 = Recorder(settings)
    _, _, poller2 = listener_app.build(settings, bus2)
    assert poller2.poll_once() == 0
    with path.open("a") as f:
        f.write(json.dumps(post("5", "listening to Low Tide - Salt Lines")) + "\n")
    assert poller2.poll_once() == 1
    assert [m.post_id for m in bus2.published] == ["5"]
    assert bus2.published[0].message_id != bus.published[0].message_id


def test_post_mentions_endpoint(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, listener_sources=[], listener_api_token="token")
    bus = Recorder(settings)
    parts, _, _ = listener_app.build(settings, bus)
    client = TestClient(create_app(parts, bus, manage_bus=False), headers={"Authorization": "Bearer token"})
    body = {"platform": "mastodon", "post_id": "99", "author": "ana", "text": "#np Low Tide - Glass Harbour"}
    first = client.post("/v1/mentions", json=body)
    assert first.status_code == 202 and first.json()["status"] == "on_bus"
    again = client.post("/v1/mentions", json=body)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert again.json()["message_id"] == first.json()["message_id"]
    assert len(bus.published) == 1
    assert client.get("/v1/mentions/mastodon/99").json()["artist"] == "Low Tide"
    assert client.get("/v1/mentions/mastodon/100").status_code == 404
    bad = client.post("/v1/mentions", json={"platform": "myspace", "post_id": "", "text": "hi"})
    assert bad.status_code == 422
    fields = {tuple(e["loc"]) for e in bad.json()["detail"]}
    assert ("body", "platform") in fields and ("body", "author") in fields
    assert client.get("/readyz").json()["checks"] == {"broker": True, "database": True}
    assert "deephype_messages_out_total" in client.get("/metrics").text


def test_unknown_source_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown listener source 'myspace'"):
        listener_app.build(make_settings(tmp_path, listener_sources=["myspace"]), InMemoryBus(make_settings(tmp_path)))


def test_a_bluesky_or_mastodon_handle_of_the_bot_addresses_it(tmp_path: Path) -> None:
    """Bluesky writes the bot as @deephype.bsky.social and Mastodon as @deephype@instance: both address the
    bot (the detector then gives the post the benefit of the doubt), and neither handle ends up in a name."""
    path = feed(
        tmp_path / "feed.jsonl",
        [
            post("1", "@deephype.bsky.social Low Tide - Glass Harbour"),
            post("2", "Low Tide - Salt Lines @deephype@mastodon.social"),
            post("3", "@someone.bsky.social Low Tide - Glass Harbour"),
            post("4", "mail me at ana@deephype.example"),
        ],
    )
    settings = make_settings(tmp_path, listener_feed_path=path)
    bus = Recorder(settings)
    _, listener, poller = listener_app.build(settings, bus)
    assert poller.poll_once() == 4
    assert [(m.post_id, m.artist, m.title) for m in bus.published] == [
        ("1", "Low Tide", "Glass Harbour"),
        ("2", "Low Tide", "Salt Lines"),
        ("3", "Low Tide", "Glass Harbour"),
    ]
    assert listener.addresses_bot("@deephype.bsky.social Low Tide - Glass Harbour")
    assert listener.addresses_bot("Low Tide - Salt Lines @deephype@mastodon.social")
    assert listener.addresses_bot("hi @DeepHype.bsky.social.")
    assert not listener.addresses_bot("@someone.bsky.social Low Tide - Glass Harbour")
    assert not listener.addresses_bot("mail me at ana@deephype.example")
    assert not listener.addresses_bot("@deephyper hi")


def test_bot_handles_may_be_written_in_full(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, bot_handles=["deephype.bsky.social", "deephype@mastodon.social"])
    _, listener, _ = listener_app.build(settings, Recorder(settings))
    assert listener.addresses_bot("@deephype.bsky.social Low Tide - Glass Harbour")
    assert listener.addresses_bot("Low Tide - Salt Lines @deephype@mastodon.social")
    assert not listener.addresses_bot("@someone.bsky.social Low Tide - Glass Harbour")

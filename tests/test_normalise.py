"""Text from outside is normalised once, where it comes in: invisible and control characters never reach
detection, a message or a post; what cannot be cleaned is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from deephype.common.db import Database
from deephype.common.memory_bus import InMemoryBus
from deephype.common.normalise import UncleanableText, normalise_text
from deephype.common.service import create_app
from deephype.common.signing import ApprovalKeys
from deephype.curator.store import SCHEMA, CuratorStore
from deephype.listener import app as listener_app
from deephype.listener.handlers import IngestStatus
from tests.conftest import TEST_APPROVAL_KEY, make_settings
from tests.factories import candidates

TOKEN = "listener-token"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Radio\u200bhead - Cr\u200deep", "Radiohead - Creep"),  # zero-width space and joiner in Latin words
        ("Radio\x00head", "Radiohead"),
        ("Nice \u202etake\u202c", "Nice take"),  # a right-to-left override
        ("\ufeffbom\u2060joined\u00adsoft", "bomjoinedsoft"),
        ("Cafe\u0301", "Caf\u00e9"),  # NFC
        ("one\r\ntwo\rthree\tfour\x07", "one\ntwo\nthree\tfour"),
        ("\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f468\u200d\U0001f469\u200d\U0001f467"),  # a family
        ("\u0915\u094d\u200d\u0937", "\u0915\u094d\u200d\u0937"),  # a joiner in Devanagari means something
        ("\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", None),  # Scotland's flag
        ("tag\U000e0041ged\ufdd0\uffff", "tagged"),  # tags outside a flag, noncharacters
    ],
)
def test_normalise_text(raw: str, clean: str | None) -> None:
    assert normalise_text(raw) == (raw if clean is None else clean)


@pytest.mark.parametrize("raw", ["lone \ud800 surrogate", "Creep" + "\u0301" * 19_000])
def test_what_cannot_be_cleaned_is_refused(raw: str) -> None:
    with pytest.raises(UncleanableText):
        normalise_text(raw)


def listener_client(tmp_path: Path, feed: Path | None = None) -> tuple[TestClient, InMemoryBus]:
    settings = make_settings(tmp_path, listener_sources=[], listener_api_token=TOKEN)
    if feed is not None:
        settings = settings.with_overrides(listener_sources=["feed"], listener_feed_path=feed)
    bus = InMemoryBus(settings)
    parts, _, _ = listener_app.build(settings, bus)
    return TestClient(create_app(parts, bus, manage_bus=False), headers={"Authorization": f"Bearer {TOKEN}"}), bus


@pytest.mark.parametrize(
    ("text", "artist", "title"),
    [
        ("#NowPlaying Radio\u200bhead - Cr\u200deep", "Radiohead", "Creep"),
        ("#NowPlaying Radio\x00head - Creep", "Radiohead", "Creep"),
        ("#np \u202eRadiohead - Creep\u202c", "Radiohead", "Creep"),
    ],
)
def test_invisible_characters_never_reach_detection(tmp_path: Path, text: str, artist: str, title: str) -> None:
    client, _ = listener_client(tmp_path)
    response = client.post("/v1/mentions", json={"post_id": "1", "author": "ana\x00", "text": text})
    assert response.status_code == 202, response.text
    assert (response.json()["artist"], response.json()["title"]) == (artist, title)


def test_a_post_that_cannot_be_cleaned_gets_a_422(tmp_path: Path) -> None:
    client, _ = listener_client(tmp_path)
    text = "#NowPlaying Radiohead - Creep" + "\u0301" * 19_000
    response = client.post("/v1/mentions", json={"post_id": "1", "author": "ana", "text": text})
    assert response.status_code == 422 and "combining marks" in response.text


def test_feed_posts_are_normalised_and_uncleanable_lines_skipped(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        json.dumps({"post_id": "1", "author": "ana", "text": "#np Radio\u200bhead - Cr\u200deep"})
        + "\n"
        + '{"post_id": "2", "author": "ana", "text": "#np Radiohead - Creep \\ud800"}\n'
    )
    settings = make_settings(tmp_path, listener_feed_path=feed)
    bus = InMemoryBus(settings)
    _, listener, poller = listener_app.build(settings, bus)
    assert poller.poll_once() == 1
    seen = listener.status("feed", "1")
    assert seen is not None and seen.status == IngestStatus.on_bus
    assert (seen.artist, seen.title) == ("Radiohead", "Creep")
    assert listener.status("feed", "2") is None


def test_the_curators_edit_is_cleaned_before_it_can_be_posted(tmp_path: Path) -> None:
    store = CuratorStore(Database(tmp_path / "curator.sqlite3", SCHEMA), ApprovalKeys([TEST_APPROVAL_KEY]))
    message = candidates()
    store.add_candidates(message)
    candidate_id = message.candidates[0].candidate_id
    approval = store.approve(
        message.message_id, candidate_id, "Nice\x00 one \u202eevil\u202c", by="me", post_platform="x"
    )
    assert approval.final_text == "Nice one evil"

    other = candidates("2")
    store.add_candidates(other)
    with pytest.raises(ValueError, match="surrogate"):
        store.approve(other.message_id, other.candidates[0].candidate_id, "bad \ud800", by="me", post_platform="x")
    with pytest.raises(ValueError, match="empty"):
        store.approve(
            other.message_id, other.candidates[0].candidate_id, "\x00\u202e\u200b", by="me", post_platform="x"
        )

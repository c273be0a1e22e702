"""Bad input at the HTTP edge of every service gets a clear 4xx, never a 500 or a reset connection:
numbers JSON does not have (NaN, Infinity, 1e400), lone surrogates, bodies nested too deep, and posts
whose detected song is longer than a message may carry."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from deephype.common.memory_bus import InMemoryBus
from deephype.pipeline import Pipeline, build_pipeline
from tests.conftest import bundled_model, make_settings

LISTENER_TOKEN = "listener-token"
SONG = '{"artist": "Radiohead", "title": "Creep"}'
# Every JSON endpoint, with a body in which VALUE stands where a number or a string belongs.
JSON_ENDPOINTS = [
    ("listener", "/v1/mentions", '{"post_id": VALUE, "author": "ana", "text": "#np Radiohead - Creep"}'),
    ("listener", "/v1/mentions", '{"post_id": "1", "author": "ana", "text": "#np Radiohead - Creep", "x": [VALUE]}'),
    ("generator", "/v1/samples", '{"song": ' + SONG + ', "temperature": VALUE}'),
    ("generator", "/v1/samples", '{"song": {"artist": "A", "title": "B", "audio_features": {"tempo": VALUE}}}'),
    ("curator", "/v1/songs/some-set/approve", '{"candidate_id": VALUE}'),
]
NOT_JSON_VALUES = {
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "overflow": "1e400",
    "lone surrogate": '"\\ud800"',
    "lone low surrogate in a key": '{"\\udfff": 1}',
}


@cache
def pipeline() -> Pipeline:
    config = make_settings(
        Path(tempfile.mkdtemp(prefix="deephype-bad-input-")), listener_sources=[], listener_api_token=LISTENER_TOKEN
    )
    return build_pipeline(config, InMemoryBus(config), candidate_source=bundled_model())


@cache
def apps() -> dict[str, FastAPI]:
    return pipeline().apps()


def client(service: str) -> TestClient:
    auth = {"Authorization": f"Bearer {LISTENER_TOKEN}"} if service == "listener" else {}
    return TestClient(apps()[service], raise_server_exceptions=False, headers=auth)


@pytest.mark.parametrize("value", NOT_JSON_VALUES.values(), ids=NOT_JSON_VALUES.keys())
@pytest.mark.parametrize(("service", "path", "template"), JSON_ENDPOINTS, ids=lambda p: str(p)[:30])
def test_numbers_and_strings_json_does_not_have_get_a_clear_422(
    service: str, path: str, template: str, value: str
) -> None:
    body = template.replace("VALUE", value)
    response = client(service).post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["type"] == "json_invalid" and error["loc"][0] == "body"
    assert any(word in error["msg"] for word in ("NaN", "Infinity", "too large", "surrogate")), error


def test_raw_surrogate_bytes_and_deep_nesting_get_a_clear_422() -> None:
    listener = client("listener")
    raw_surrogate = b'{"post_id": "1", "author": "ana", "text": "\xed\xa0\x80"}'
    response = listener.post("/v1/mentions", content=raw_surrogate, headers={"content-type": "application/json"})
    assert response.status_code == 422 and "not UTF-8" in response.json()["detail"][0]["msg"]
    response = listener.post("/v1/mentions", content="[" * 200_000)  # no content type: still read as JSON
    assert response.status_code == 422 and "too deeply" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    "text",
    [
        "#NowPlaying " + "A" * 600 + " - Creep",
        "#NowPlaying Radiohead - Creep" + "\u0301" * 19_000,
    ],
    ids=["600-letter artist", "19000 combining accents"],
)
def test_a_detected_song_too_long_for_a_message_is_refused_or_no_song(text: str) -> None:
    published_before = pipeline().listener.db.query("SELECT COUNT(*) AS n FROM posts WHERE status='published'")
    body = {"post_id": f"long-{len(text)}", "author": "ana", "text": text}
    response = client("listener").post("/v1/mentions", json=body)
    assert response.status_code == 422 or response.json()["status"] == "no_song", response.text
    published_after = pipeline().listener.db.query("SELECT COUNT(*) AS n FROM posts WHERE status='published'")
    assert published_after[0]["n"] == published_before[0]["n"]

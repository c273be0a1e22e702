"""POST /v1/mentions is not open: a sender needs the bearer token or a fresh Standard Webhooks signature,
a captured signed request cannot be replayed, and a post injected over HTTP never makes the bot reply."""

from __future__ import annotations

import json
import time
from pathlib import Path

from fastapi.testclient import TestClient

from deephype.common.contracts import SongMention
from deephype.common.memory_bus import InMemoryBus
from deephype.common.service import create_app
from deephype.common.settings import Settings
from deephype.listener import app as listener_app
from deephype.listener.sender_auth import sign
from tests.conftest import make_settings

TOKEN = "listener-token-5d1e"
SECRET = "whsec_c2VjcmV0LWZvci10ZXN0cw=="


class Recorder(InMemoryBus):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.published: list[SongMention] = []

    def publish(self, message):  # type: ignore[no-untyped-def, override]
        self.published.append(message)
        super().publish(message)


def listener(settings: Settings) -> tuple[TestClient, Recorder]:
    bus = Recorder(settings)
    parts, _, _ = listener_app.build(settings, bus)
    return TestClient(create_app(parts, bus, manage_bus=False)), bus


def body(post_id: str, **extra: object) -> dict[str, object]:
    return {"platform": "x", "post_id": post_id, "author": "mallory", "text": "#np Low Tide - Glass Harbour", **extra}


def signed_headers(content: bytes, webhook_id: str, timestamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(SECRET, webhook_id, stamp, content),
    }


def test_without_a_configured_secret_the_endpoint_is_closed(tmp_path: Path) -> None:
    client, bus = listener(make_settings(tmp_path, listener_sources=[]))
    response = client.post("/v1/mentions", json=body("1"))
    assert response.status_code == 403 and "DEEPHYPE_LISTENER_API_TOKEN" in response.json()["detail"]
    assert bus.published == []


def test_the_bearer_token_is_required(tmp_path: Path) -> None:
    client, bus = listener(make_settings(tmp_path, listener_sources=[], listener_api_token=TOKEN))
    assert client.post("/v1/mentions", json=body("1")).status_code == 401
    assert client.post("/v1/mentions", json=body("1"), headers={"Authorization": "Bearer guess"}).status_code == 401
    assert bus.published == []
    ok = client.post("/v1/mentions", json=body("1"), headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 202, ok.text
    assert [m.post_id for m in bus.published] == ["1"]


def test_signed_requests_are_checked_and_never_replayed(tmp_path: Path) -> None:
    client, bus = listener(make_settings(tmp_path, listener_sources=[], listener_webhook_secret=SECRET))
    content = json.dumps(body("1")).encode()
    first = client.post("/v1/mentions", content=content, headers=signed_headers(content, "msg-1"))
    assert first.status_code == 202, first.text

    replay = client.post("/v1/mentions", content=content, headers=signed_headers(content, "msg-1"))
    assert replay.status_code == 401 and "replay" in replay.json()["detail"]

    other = json.dumps(body("2")).encode()
    altered = client.post("/v1/mentions", content=other, headers=signed_headers(content, "msg-2"))
    assert altered.status_code == 401 and "does not match" in altered.json()["detail"]

    stale = signed_headers(other, "msg-3", timestamp=int(time.time()) - 3600)
    assert client.post("/v1/mentions", content=other, headers=stale).status_code == 401
    # A bearer token is not accepted where none is configured, even an empty one.
    assert client.post("/v1/mentions", json=body("2"), headers={"Authorization": "Bearer "}).status_code == 401
    assert [m.post_id for m in bus.published] == ["1"]


def test_a_post_injected_over_http_is_never_one_the_bot_may_reply_to(tmp_path: Path) -> None:
    client, bus = listener(make_settings(tmp_path, listener_sources=[], listener_api_token=TOKEN))
    injected = body("1600000000000000000", mentions_bot=True)
    response = client.post("/v1/mentions", json=injected, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 202, response.text
    [mention] = bus.published
    assert mention.on_demand is False

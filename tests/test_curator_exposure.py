"""What the curator shows to whom (issue 12, item 10): its API docs, OpenAPI schema and metrics need the
API token (the metrics also take a token of their own), and the review pages forbid framing and any
script or style but their own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from deephype.common.memory_bus import InMemoryBus
from deephype.common.service import create_app
from deephype.curator.app import build
from tests.conftest import make_settings
from tests.factories import candidates

API_TOKEN = "api-token-2c7e9d1f"
METRICS_TOKEN = "metrics-token-8a3b6e0c"


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    settings = make_settings(
        tmp_path,
        curator_password="pw",
        curator_api_token=API_TOKEN,
        curator_metrics_token=METRICS_TOKEN,
        curator_secret_key="k" * 32,
    )
    bus = InMemoryBus(settings)
    parts, store, _ = build(settings, bus)
    store.add_candidates(candidates("e1"))
    return TestClient(create_app(parts, bus, manage_bus=False), follow_redirects=False)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/metrics"])
def test_docs_schema_and_metrics_need_a_token(client: TestClient, path: str) -> None:
    for headers in ({}, bearer("wrong"), bearer("pw")):  # nothing, a guess, the login password
        refused = client.get(path, headers=headers)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer", path
    assert client.get(path, headers=bearer(API_TOKEN)).status_code == 200
    # The metrics token opens /metrics and nothing else.
    assert client.get(path, headers=bearer(METRICS_TOKEN)).status_code == (200 if path == "/metrics" else 401)


def test_health_and_readiness_stay_open_for_the_orchestrator(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code in (200, 503)  # not 401: the bus is simply not started here


def test_review_pages_forbid_framing_and_foreign_scripts(client: TestClient) -> None:
    pages = [client.get("/login")]
    page = pages[0]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    client.post("/login", data={"password": "pw", "csrf": csrf})
    song = client.get("/?status=all").text.split('href="/songs/', 1)[1].split('"', 1)[0]
    pages += [client.get("/?status=all"), client.get("/songs/no-such-song"), client.get(f"/songs/{song}")]
    for response in pages:
        assert response.headers["X-Frame-Options"] == "DENY"
        policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
        assert policy["frame-ancestors"] == "'none'" and policy["default-src"] == "'none'"
        nonce = re.fullmatch(r"'nonce-([\w-]+)'", policy["style-src"]).group(1)  # type: ignore[union-attr]
        assert f'<style nonce="{nonce}">' in response.text  # the page's own style still applies
        # Issue 15: the page's own script (live count, shortcuts) runs by the same nonce, and nothing else.
        assert policy["script-src"] == f"'nonce-{nonce}'"
        assert re.findall(r"<script[^>]*>", response.text) in ([], [f'<script nonce="{nonce}">'])
    assert "Glass Harbour" in pages[1].text
    assert "<script nonce=" in pages[3].text  # a pending song's page has the count and the shortcuts
    nonces = {r.headers["Content-Security-Policy"] for r in pages}
    assert len(nonces) == len(pages)  # a fresh nonce per response

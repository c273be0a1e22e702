"""Brute force (issue 12, item 3): 100 wrong logins and 300 wrong bearer tokens used to get 100 and 300
plain 401s. Now failures are counted per client and over all clients, and past the limit every attempt,
even the right secret, gets 429 with Retry-After. The JSON API has its own token, not the login password."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from deephype.common.memory_bus import InMemoryBus
from deephype.common.service import create_app
from deephype.common.settings import Settings
from deephype.curator.app import build
from tests.conftest import make_settings

PASSWORD = "correct horse battery"
TOKEN = "api-token-5f0e9c2d"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        curator_password=PASSWORD,
        curator_api_token=TOKEN,
        curator_secret_key="k" * 32,
        curator_auth_max_failures_per_client=5,
        curator_auth_max_failures_total=12,
        curator_auth_failure_window_seconds=600,
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    bus = InMemoryBus(settings)
    parts, _, _ = build(settings, bus)
    yield create_app(parts, bus, manage_bus=False)


def client_at(app: FastAPI, address: str) -> TestClient:
    return TestClient(app, client=(address, 40000), follow_redirects=False)


def try_login(client: TestClient, password: str) -> int:
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = client.post("/login", data={"password": password, "csrf": csrf})
    if response.status_code == 429:
        assert int(response.headers["Retry-After"]) > 0 and "Too many failed logins" in response.text
    return response.status_code


def test_wrong_logins_are_throttled_per_client_and_then_for_everyone(app: FastAPI) -> None:
    attacker = client_at(app, "203.0.113.7")
    codes = [try_login(attacker, f"guess-{i}") for i in range(100)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    assert try_login(attacker, PASSWORD) == 429  # blocked: the right password is not even compared

    # Another address is not blocked by the first one's failures...
    assert try_login(client_at(app, "198.51.100.1"), PASSWORD) == 303
    # ...but guessing spread over many addresses hits the overall limit (12): then everyone waits.
    for address in ("198.51.100.2", "198.51.100.3"):
        spread = client_at(app, address)
        while try_login(spread, "spread-guess") == 401:
            pass
    assert try_login(client_at(app, "198.51.100.9"), PASSWORD) == 429


def test_wrong_bearer_tokens_are_throttled_and_the_api_has_its_own_token(app: FastAPI) -> None:
    api = client_at(app, "203.0.113.8")
    assert api.get("/v1/songs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    # The login password is not the API's token.
    assert api.get("/v1/songs", headers={"Authorization": f"Bearer {PASSWORD}"}).status_code == 401
    codes = [api.get("/v1/songs", headers={"Authorization": f"Bearer guess-{i}"}).status_code for i in range(300)]
    assert codes[:4] == [401] * 4 and set(codes[4:]) == {429}
    blocked = api.get("/v1/songs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    # Logins are counted apart: the API guesses did not lock the review page.
    assert try_login(client_at(app, "203.0.113.8"), PASSWORD) == 303


def test_the_api_is_closed_without_a_token_of_its_own(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, curator_password=PASSWORD)
    bus = InMemoryBus(settings)
    parts, _, _ = build(settings, bus)
    api = client_at(create_app(parts, bus, manage_bus=False), "192.0.2.1")
    for token in (PASSWORD, ""):
        refused = api.get("/v1/songs", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401 and "DEEPHYPE_CURATOR_API_TOKEN" in refused.text

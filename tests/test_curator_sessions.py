"""Sessions end on the server (issue 12, item 2): a session cookie saved before logging out, or before the
password changed, no longer reads the review page or decides anything."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from deephype.common.memory_bus import InMemoryBus
from deephype.common.service import create_app
from deephype.common.settings import Settings
from deephype.curator.app import build
from deephype.curator.auth import SESSION_COOKIE
from deephype.curator.store import CuratorStore
from tests.conftest import make_settings
from tests.factories import candidates

PASSWORD = "correct horse battery"


def curator(settings: Settings) -> tuple[TestClient, CuratorStore]:
    bus = InMemoryBus(settings)
    parts, store, _ = build(settings, bus)
    return TestClient(create_app(parts, bus, manage_bus=False)), store


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def log_in(client: TestClient, password: str = PASSWORD) -> str:
    """Log in through the form; the session cookie, as an attacker who copied it would have it."""
    client.cookies.clear()
    page = client.get("/login")
    response = client.post("/login", data={"password": password, "csrf": csrf_of(page.text)})
    assert response.status_code == 200 and str(response.url).endswith("/"), response.text
    return client.cookies[SESSION_COOKIE]


def with_cookie(client: TestClient, cookie: str) -> TestClient:
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, cookie)
    return client


def test_a_cookie_saved_before_logout_reads_and_decides_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, curator_password=PASSWORD, curator_secret_key="k" * 32)
    client, store = curator(settings)
    message = candidates("s1")
    store.add_candidates(message)
    with client:
        saved = log_in(client)
        page = client.get("/?status=all")
        assert page.status_code == 200 and "Glass Harbour" in page.text
        csrf = csrf_of(page.text)
        assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303

        stolen = with_cookie(client, saved)
        read = stolen.get("/?status=all", follow_redirects=False)
        assert read.status_code == 303 and read.headers["location"] == "/login"
        with_cookie(client, saved)
        song = stolen.get(f"/songs/{message.message_id}", follow_redirects=False)
        assert song.status_code == 303 and song.headers["location"] == "/login"
        with_cookie(client, saved)
        reject = stolen.post(f"/songs/{message.message_id}/reject", data={"csrf": csrf}, follow_redirects=False)
        assert reject.status_code in (303, 403) and reject.headers.get("location", "/login") == "/login"
    assert store.song(message.message_id).status == "pending"


def test_a_new_password_ends_the_sessions_begun_under_the_old_one(tmp_path: Path) -> None:
    old = make_settings(tmp_path, curator_password=PASSWORD, curator_secret_key="k" * 32)
    client, _ = curator(old)
    with client:
        saved = log_in(client)
        assert client.get("/?status=all", follow_redirects=False).status_code == 200

    # The operator sets a new password and restarts the curator (same state, same secret key).
    restarted, _ = curator(old.with_overrides(curator_password="a brand new passphrase"))
    with restarted:
        read = with_cookie(restarted, saved).get("/?status=all", follow_redirects=False)
        assert read.status_code == 303 and read.headers["location"] == "/login"
        log_in(restarted, "a brand new passphrase")  # the new password works, and its session does
        assert restarted.get("/?status=all", follow_redirects=False).status_code == 200


def test_a_session_survives_a_restart_with_the_same_password(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, curator_password=PASSWORD, curator_secret_key="k" * 32)
    client, _ = curator(settings)
    with client:
        saved = log_in(client)
    again, _ = curator(settings)
    with again:
        assert with_cookie(again, saved).get("/?status=all", follow_redirects=False).status_code == 200

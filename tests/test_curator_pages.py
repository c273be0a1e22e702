"""The review page's approve form (no browser needed): bad edits are refused with the reason, and
refusing them does not spend the single-use review link."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from deephype.common.memory_bus import InMemoryBus
from deephype.common.service import create_app
from deephype.curator.app import build
from tests.conftest import make_settings
from tests.factories import candidates


def test_a_too_long_edit_is_refused_without_spending_the_review_link(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, curator_secret_key="k" * 32, poster_platform="x")
    bus = InMemoryBus(settings)
    parts, store, auth = build(settings, bus)
    message = candidates("p1")
    store.add_candidates(message)
    set_id = message.message_id
    with TestClient(create_app(parts, bus)) as client:
        page = client.get(f"/review/{auth.review_token(set_id)}")
        assert page.status_code == 200 and f"/songs/{set_id}" in str(page.url)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        form = {"csrf": csrf, "candidate_id": message.candidates[0].candidate_id}

        refused = client.post(f"/songs/{set_id}/approve", data={**form, "text": "so good " * 40})
        assert refused.status_code == 422
        assert "319 characters as x counts them; x allows 280" in refused.text
        empty = client.post(f"/songs/{set_id}/approve", data={**form, "text": "   "})
        assert empty.status_code == 422 and "empty" in empty.text
        assert store.song(set_id).status == "pending"

        # 151 characters with a long link, 39 as X counts them: it fits, and the same link still works.
        text = "Short and true. https://example.com/" + "a" * 100
        approved = client.post(f"/songs/{set_id}/approve", data={**form, "text": text})
        assert approved.status_code == 200 and "Approved" in approved.text
    assert store.song(set_id).status == "approved"
    [decision] = store.decisions()
    assert (decision["decision"], decision["final_text"]) == ("approved", text)


def test_a_failed_attempt_does_not_spend_the_review_link_and_a_decision_does(tmp_path: Path) -> None:
    """Issue 12, item 6: a wrong candidate id (404) used to spend the link, so the retry was refused."""
    settings = make_settings(tmp_path, curator_secret_key="k" * 32)
    bus = InMemoryBus(settings)
    parts, store, auth = build(settings, bus)
    message = candidates("p6")
    store.add_candidates(message)
    set_id = message.message_id
    link = f"/review/{auth.review_token(set_id)}"
    with TestClient(create_app(parts, bus)) as client:
        page = client.get(link)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]

        wrong = client.post(
            f"/songs/{set_id}/approve", data={"csrf": csrf, "candidate_id": "no-such-candidate", "text": "Fine."}
        )
        assert wrong.status_code == 404
        assert store.song(set_id).status == "pending"

        right = message.candidates[1].candidate_id
        approved = client.post(f"/songs/{set_id}/approve", data={"csrf": csrf, "candidate_id": right, "text": "Fine."})
        assert approved.status_code == 200 and "Approved" in approved.text
        assert store.song(set_id).status == "approved"

        # The decision spent the link: deciding again with its session, or opening it again, is refused.
        reject = client.post(f"/songs/{set_id}/reject", data={"csrf": csrf})
        assert reject.status_code == 403 and "Link already used" in reject.text
        again = client.get(link)
        assert again.status_code == 403 and "Link already used" in again.text
    assert store.song(set_id).status == "approved"

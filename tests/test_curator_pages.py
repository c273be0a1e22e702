"""The review page's approve form (no browser needed): bad edits are refused with the reason, and
refusing them does not spend the single-use review link."""

from __future__ import annotations

import html
import re
from pathlib import Path

from fastapi.testclient import TestClient

from deephype.common.contracts import text_length
from deephype.common.memory_bus import InMemoryBus
from deephype.common.service import create_app
from deephype.curator.app import build
from deephype.curator.review import outcome
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
        assert "the post for X is 319 characters as X counts them, and 280 is the most it takes." in refused.text
        assert "Cut at least 39 characters. Change it and approve again." in refused.text
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


def test_a_cross_post_too_long_for_one_platform_names_it_and_keeps_the_edit(tmp_path: Path) -> None:
    """Mastodon first (its post is the one on the page), X too: an edit that fits Mastodon but not X comes
    back with X named, how much to cut, and the edit still in its box."""
    settings = make_settings(tmp_path, curator_secret_key="k" * 32, poster_platforms=["mastodon", "x"])
    bus = InMemoryBus(settings)
    parts, store, auth = build(settings, bus)
    message = candidates("p2")
    store.add_candidates(message)
    set_id, candidate = message.message_id, message.candidates[0]
    with TestClient(create_app(parts, bus)) as client:
        page = client.get(f"/review/{auth.review_token(set_id)}")
        # The live count counts as the strictest of the two does.
        assert "Up to 280 characters as X counts them, the strictest of them." in page.text
        assert 'data-limit="280" data-platform="x"' in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        post = " ".join(["A long, loving look at this song."] * 10) + '\n\nLow Tide - "Glass Harbour"'
        refused = client.post(
            f"/songs/{set_id}/approve",
            data={"csrf": csrf, "candidate_id": candidate.candidate_id, "text": candidate.text, "post": post},
        )
        assert refused.status_code == 422
        over = text_length(post, "x") - 280
        assert f"the post for X is {over + 280} characters as X counts them" in refused.text
        assert f"Cut at least {over} characters." in refused.text
        box = re.search(r'<textarea id="box-1"[^>]*>([^<]*)</textarea>', refused.text).group(1)  # type: ignore[union-attr]
        assert html.unescape(box) == post
    assert store.song(set_id).status == "pending"


def test_my_own_text_too_long_comes_back_in_its_own_box_and_a_short_one_gets_the_credit(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, curator_secret_key="k" * 32, poster_platform="x")
    bus = InMemoryBus(settings)
    parts, store, auth = build(settings, bus)
    message = candidates("p3", url="https://social.example/@ana/7")
    store.add_candidates(message)
    set_id = message.message_id
    with TestClient(create_app(parts, bus)) as client:
        page = client.get(f"/review/{auth.review_token(set_id)}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        form = {"csrf": csrf, "candidate_id": message.candidates[0].candidate_id, "own": "true"}
        mine = " ".join(["My own words about this one."] * 10)
        refused = client.post(f"/songs/{set_id}/approve", data={**form, "text": mine})
        assert refused.status_code == 422 and "Cut at least" in refused.text
        own = re.search(r'<textarea id="box-own"[^>]*>([^<]*)</textarea>', refused.text).group(1)  # type: ignore[union-attr]
        assert html.unescape(own) == mine  # kept where it was written, the candidates as they were
        box = re.search(r'<textarea id="box-1"[^>]*>([^<]*)</textarea>', refused.text).group(1)  # type: ignore[union-attr]
        assert html.unescape(box).startswith(message.candidates[0].text)
        approved = client.post(f"/songs/{set_id}/approve", data={**form, "text": "Mine, short."})
        assert approved.status_code == 200
    [decision] = store.decisions()
    assert decision["final_text"] == "Mine, short."
    post = outcome(store, set_id).posts["x"]  # type: ignore[union-attr]
    assert post.startswith("Mine, short.\n\n") and 'Low Tide - "Glass Harbour"' in post  # the credit is added


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


def test_the_queue_is_paged_newest_first_with_a_filter_per_status(tmp_path: Path) -> None:
    """Issue 15: not one long scroll of every song: 20 a page, newest first, one status at a time."""
    settings = make_settings(tmp_path, curator_password="pw", curator_secret_key="k" * 32)
    bus = InMemoryBus(settings)
    parts, store, _ = build(settings, bus)
    for n in range(25):
        store.add_candidates(candidates(f"q{n}"))
    rejected = candidates("q-rejected")
    store.add_candidates(rejected)
    store.reject(rejected.message_id, by="curator")
    with TestClient(create_app(parts, bus)) as client:
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
        client.post("/login", data={"password": "pw", "csrf": csrf})
        first, second = client.get("/"), client.get("/?status=pending&page=2")
        shown = [re.findall(r'id="row-(\w+)"', page.text) for page in (first, second)]
        assert [len(rows) for rows in shown] == [20, 5]
        pending = {s.set_id: s.created_at for s in store.songs("pending")}
        assert set(shown[0]) | set(shown[1]) == set(pending) and not set(shown[0]) & set(shown[1])
        order = [pending[set_id] for set_id in shown[0] + shown[1]]
        assert order == sorted(order, reverse=True)
        assert "Page 1 of 2" in first.text and "Older" in first.text and "Newer" in second.text
        assert "Pending (25)" in first.text and "Rejected (1)" in first.text and "All (26)" in first.text
        assert re.findall(r'id="row-(\w+)"', client.get("/?status=rejected").text) == [rejected.message_id]
        assert client.get("/?status=approved").text.count('id="row-') == 0
        assert client.get("/?status=everything").status_code == 400
        assert client.get("/?page=0").status_code == 422
        assert len(re.findall(r'id="row-', client.get("/?page=99").text)) == 5  # past the end: the last page


def test_a_review_link_opens_its_own_song_and_no_other(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, curator_secret_key="k" * 32)
    bus = InMemoryBus(settings)
    parts, store, auth = build(settings, bus)
    mine, other = candidates("own-song"), candidates("other-song")
    store.add_candidates(mine)
    store.add_candidates(other)
    with TestClient(create_app(parts, bus)) as client:
        page = client.get(f"/review/{auth.review_token(mine.message_id)}")
        assert f"/songs/{mine.message_id}" in str(page.url)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        assert client.get("/", follow_redirects=False).headers["location"] == f"/songs/{mine.message_id}"
        for response in (
            client.get(f"/songs/{other.message_id}", follow_redirects=False),
            client.post(f"/songs/{other.message_id}/reject", data={"csrf": csrf}, follow_redirects=False),
            client.post(
                f"/songs/{other.message_id}/approve",
                data={"csrf": csrf, "candidate_id": other.candidates[0].candidate_id, "text": "Mine now."},
                follow_redirects=False,
            ),
        ):
            assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert store.song(other.message_id).status == "pending"

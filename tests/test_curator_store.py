from __future__ import annotations

from pathlib import Path

import pytest

from deephype.common.signing import ApprovalKeys
from deephype.curator.store import MIGRATIONS, AlreadyDecided, CuratorStore, NotFound
from tests.conftest import TEST_APPROVAL_KEY
from tests.factories import candidates
from tests.helpers.postgres import BACKENDS, open_store


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> CuratorStore:
    """The curator's store on SQLite and on the local PostgreSQL."""
    db = open_store(request, request.param, tmp_path / "curator.sqlite3", MIGRATIONS)
    return CuratorStore(db, ApprovalKeys([TEST_APPROVAL_KEY]))


def test_a_redelivered_candidate_set_is_stored_once(store: CuratorStore) -> None:
    message = candidates()
    assert store.add_candidates(message) is True
    assert store.add_candidates(message) is False
    [song] = store.songs()
    assert [c.text for c in song.candidates] == ["First take.", "Second take."]
    assert song.status == "pending" and song.trace_id == message.trace_id


def test_a_song_is_approved_once_with_a_stable_approval_id(store: CuratorStore) -> None:
    message = candidates()
    store.add_candidates(message)
    second = message.candidates[1]
    approval = store.approve(
        message.message_id, second.candidate_id, "Second take, edited.", by="me", post_platform="x"
    )
    assert approval.final_text == "Second take, edited." and approval.edited
    assert approval.trace_id == message.trace_id and approval.reply_to is None
    with pytest.raises(AlreadyDecided):
        store.approve(message.message_id, second.candidate_id, None, by="me", post_platform="x")
    with pytest.raises(AlreadyDecided):
        store.reject(message.message_id, by="me")
    assert [a.message_id for a in store.unsent_approvals()] == [approval.message_id]
    store.mark_approval_sent(approval.message_id)
    assert store.unsent_approvals() == []
    [decision] = store.decisions()
    assert (decision["decision"], decision["text"], decision["final_text"]) == (
        "approved",
        "Second take.",
        "Second take, edited.",
    )


def test_replies_only_to_posts_that_asked_the_bot_on_the_same_platform(store: CuratorStore) -> None:
    asked = candidates("7", on_demand=True, platform="x")
    store.add_candidates(asked)
    approval = store.approve(asked.message_id, asked.candidates[0].candidate_id, None, by="me", post_platform="x")
    assert approval.reply_to is not None and approval.reply_to.post_id == "7"
    other = candidates("8", on_demand=True, platform="mastodon")
    store.add_candidates(other)
    approval = store.approve(other.message_id, other.candidates[0].candidate_id, None, by="me", post_platform="x")
    assert approval.reply_to is None


def test_rejection_records_every_candidate_and_bad_requests_are_refused(store: CuratorStore) -> None:
    message = candidates()
    store.add_candidates(message)
    with pytest.raises(NotFound):
        store.approve(message.message_id, "no-such-candidate", None, by="me", post_platform="x")
    with pytest.raises(ValueError, match="empty"):
        store.approve(message.message_id, message.candidates[0].candidate_id, "   ", by="me", post_platform="x")
    with pytest.raises(NotFound):
        store.reject("no-such-song", by="me")
    store.reject(message.message_id, by="me")
    assert [d["decision"] for d in store.decisions()] == ["rejected", "rejected"]
    assert store.song(message.message_id).status == "rejected"


def test_review_tokens_are_single_use(store: CuratorStore) -> None:
    assert store.use_token("abc") is True
    assert store.token_used("abc")
    assert store.use_token("abc") is False

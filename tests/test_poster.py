"""The poster publishes each approval exactly once, whatever is redelivered or interrupted."""

from __future__ import annotations

from pathlib import Path

import pytest

from deephype.common.bus import PermanentError, RetryLater
from deephype.common.contracts import Approval, Platform, PublishedPost, ReplyTarget
from deephype.common.db import Database
from deephype.common.signing import ApprovalKeys
from deephype.curator.store import SCHEMA as CURATOR_SCHEMA
from deephype.curator.store import CuratorStore
from deephype.poster.handlers import SCHEMA, PostLedger, make_approval_handler
from deephype.poster.publishers import DryRunPublisher, PublishRefused, PublishResult
from tests.conftest import TEST_APPROVAL_KEY
from tests.factories import candidates

KEYS = ApprovalKeys([TEST_APPROVAL_KEY])


def approval(tmp_path: Path, text: str | None = None, post_platform: str = "x") -> Approval:
    store = CuratorStore(Database(tmp_path / "curator.sqlite3", CURATOR_SCHEMA), KEYS)
    message = candidates()
    store.add_candidates(message)
    return store.approve(
        message.message_id, message.candidates[0].candidate_id, text, by="t", post_platform=post_platform
    )


class FlakyPlatform:
    """A stand-in for an outside platform (not our code): refuses, or dies mid-call, on request."""

    platform = Platform.x
    idempotent = False
    text_limit = 280

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.calls = 0

    def publish(self, text: str, reply_to: ReplyTarget | None, idempotency_key: str) -> PublishResult:
        self.calls += 1
        if self.behaviour == "refuse":
            raise PublishRefused("429 Too Many Requests", retry_after_seconds=42)
        if self.behaviour == "timeout":
            raise TimeoutError("read timed out")
        return PublishResult(post_id="123", url="https://x.com/bot/status/123")


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "poster.sqlite3", SCHEMA)


def test_a_redelivered_approval_publishes_nothing_new(tmp_path: Path, db: Database) -> None:
    publisher = DryRunPublisher(db)
    handle = make_approval_handler(PostLedger(db), publisher, KEYS)
    message = approval(tmp_path)
    [first] = handle(message)
    [again] = handle(message)
    assert isinstance(first, PublishedPost) and first == again
    assert first.trace_id == message.trace_id and first.dry_run
    assert len(publisher.timeline()) == 1


def test_an_interrupted_call_on_a_non_idempotent_platform_is_never_retried(tmp_path: Path, db: Database) -> None:
    platform = FlakyPlatform("timeout")
    handle = make_approval_handler(PostLedger(db), platform, KEYS)
    message = approval(tmp_path)
    with pytest.raises(TimeoutError):
        handle(message)
    platform.behaviour = "ok"
    with pytest.raises(PermanentError, match="never post twice"):
        handle(message)
    assert platform.calls == 1


def test_a_refusal_is_retried_after_the_platforms_delay_and_then_published(tmp_path: Path, db: Database) -> None:
    platform = FlakyPlatform("refuse")
    ledger = PostLedger(db)
    handle = make_approval_handler(ledger, platform, KEYS)
    message = approval(tmp_path)
    with pytest.raises(RetryLater) as refused:
        handle(message)
    assert refused.value.delay_seconds == 42
    assert ledger.get(message.message_id) is None
    platform.behaviour = "ok"
    [post] = handle(message)
    assert isinstance(post, PublishedPost) and post.url == "https://x.com/bot/status/123"
    assert [p["post_id"] for p in ledger.published()] == ["123"]


def test_text_over_the_platform_limit_is_dead_lettered_not_cut(tmp_path: Path, db: Database) -> None:
    handle = make_approval_handler(PostLedger(db), FlakyPlatform("ok"), KEYS)
    # The curator refuses such edits; this approval was made for another platform (a changed setting).
    with pytest.raises(PermanentError, match="281 characters as x counts them"):
        handle(approval(tmp_path, "x" * 281, post_platform="mastodon"))
    # 256 characters, but X counts the link as 23 and the CJK characters twice.
    with pytest.raises(PermanentError, match="286 characters as x counts them"):
        handle(approval(tmp_path / "cjk", "日" * 131 + " https://example.com/" + "a" * 104, post_platform="mastodon"))

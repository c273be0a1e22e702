"""The poster's handler: an approval in, exactly one post out, whatever crashes in between.

A ledger row per approval records the state before and after the platform call:
- no row: publish; 'publishing' is written (and committed) first, 'published' with the post id after.
- 'published': a redelivery; send the same PublishedPost again (same id, downstream dedupes), post nothing.
- 'publishing' found on arrival: we crashed during the call and cannot know if it went out. An idempotent
  platform (dry-run, Mastodon with its Idempotency-Key) is simply called again; for the others the approval
  is dead-lettered for a human to check, because posting twice is worse than not posting.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from deephype.common.bus import Handler, PermanentError, RetryLater, derive_id
from deephype.common.contracts import Approval, Envelope, PublishedPost, text_length, utcnow
from deephype.common.db import Database
from deephype.common.signing import ApprovalKeys
from deephype.poster.publishers import Publisher, PublishRefused

log = logging.getLogger("deephype.poster")

SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    approval_id TEXT PRIMARY KEY,
    trace_id TEXT NOT NULL,
    state TEXT NOT NULL,          -- publishing | published
    platform TEXT NOT NULL,
    text TEXT NOT NULL,
    reply_to TEXT,
    artist TEXT NOT NULL,
    title TEXT NOT NULL,
    post_id TEXT,
    url TEXT,
    message TEXT,                 -- the PublishedPost, JSON
    started_at TEXT NOT NULL,
    published_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 1
);
"""


class PostLedger:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, approval_id: str) -> Any:
        rows = self.db.query("SELECT * FROM posts WHERE approval_id=?", (approval_id,))
        return rows[0] if rows else None

    def begin(self, approval: Approval, platform: str) -> None:
        with self.db.transaction() as connection:
            connection.execute(
                "INSERT INTO posts (approval_id, trace_id, state, platform, text, reply_to, artist, title, started_at)"
                " VALUES (?, ?, 'publishing', ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (approval_id) DO UPDATE SET attempts = attempts + 1",
                (
                    approval.message_id,
                    approval.trace_id,
                    platform,
                    approval.final_text,
                    approval.reply_to and approval.reply_to.model_dump_json(),
                    approval.song.artist,
                    approval.song.title,
                    utcnow().isoformat(),
                ),
            )

    def refused(self, approval_id: str) -> None:
        """The platform said no, so nothing went out: forget the attempt."""
        with self.db.transaction() as connection:
            connection.execute("DELETE FROM posts WHERE approval_id=? AND state='publishing'", (approval_id,))

    def finish(self, post: PublishedPost) -> None:
        with self.db.transaction() as connection:
            connection.execute(
                "UPDATE posts SET state='published', post_id=?, url=?, message=?, published_at=? WHERE approval_id=?",
                (post.post_id, post.url, post.model_dump_json(), post.published_at.isoformat(), post.approval_id),
            )

    def published(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM posts WHERE state='published' ORDER BY published_at DESC LIMIT ?", (limit,))
        posts = []
        for row in rows:
            post = dict(row)
            del post["message"]
            post["reply_to"] = _json(post["reply_to"])
            posts.append(post)
        return posts


def _json(value: str | None) -> Any:
    return json.loads(value) if value else None


def make_approval_handler(ledger: PostLedger, publisher: Publisher, keys: ApprovalKeys) -> Handler:
    """`keys` check that the curator signed each approval: a forged or altered one is never published."""

    def handle(message: Envelope) -> list[Envelope]:
        assert isinstance(message, Approval)
        if problem := keys.problem(message):
            raise PermanentError(f"approval {message.message_id} refused: {problem}")
        text = message.final_text
        length = text_length(text, publisher.platform)
        if length > publisher.text_limit:
            raise PermanentError(
                f"text is {length} characters as {publisher.platform} counts them; it allows {publisher.text_limit}"
            )
        row = ledger.get(message.message_id)
        if row is not None and row["state"] == "published":
            return [PublishedPost.model_validate_json(row["message"])]
        if row is not None and not publisher.idempotent:
            raise PermanentError(
                f"publishing to {publisher.platform} was interrupted (crash or timeout) and it may have gone out; "
                "not retrying, to never post twice: check the account, then replay or drop this message"
            )
        ledger.begin(message, publisher.platform.value)
        try:
            result = publisher.publish(text, message.reply_to, idempotency_key=message.message_id)
        except PublishRefused as exc:
            ledger.refused(message.message_id)
            if exc.permanent:
                raise PermanentError(str(exc)) from exc
            raise RetryLater(str(exc), exc.retry_after_seconds or 30.0) from exc
        post = message.child(
            PublishedPost,
            message_id=derive_id(message.message_id, "published"),
            approval_id=message.message_id,
            candidate_id=message.candidate_id,
            platform=publisher.platform,
            post_id=result.post_id,
            url=result.url,
            text=text,
            dry_run=publisher.platform.value == "dry_run",
        )
        ledger.finish(post)
        log.info(
            "published %s - %s to %s: %s",
            message.song.artist,
            message.song.title,
            publisher.platform,
            result.url or result.post_id,
        )
        return [post]

    return handle

"""Where approved posts go: the dry-run timeline (the default) or a platform from deephype.common.platforms."""

from __future__ import annotations

import logging

from deephype.common.bus import derive_id
from deephype.common.contracts import PLATFORM_TEXT_LIMITS, Platform, ReplyTarget, utcnow
from deephype.common.db import Database

# Re-exported: the poster's code and tests name them from here.
from deephype.common.platforms.base import Publisher, PublishRefused, PublishResult

log = logging.getLogger("deephype.poster")


TIMELINE_SCHEMA = """
CREATE TABLE IF NOT EXISTS timeline (
    idempotency_key TEXT PRIMARY KEY,
    post_id TEXT NOT NULL,
    text TEXT NOT NULL,
    reply_to TEXT,
    created_at TEXT NOT NULL
);
"""


class DryRunPublisher:
    """Publishes to a local timeline (SQLite + log): the offline default."""

    platform = Platform.dry_run
    idempotent = True

    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema(TIMELINE_SCHEMA)

    @property
    def text_limit(self) -> int:
        return PLATFORM_TEXT_LIMITS["dry_run"]

    def publish(self, text: str, reply_to: ReplyTarget | None, idempotency_key: str) -> PublishResult:
        post_id = derive_id(idempotency_key, "dry-run-post")[:16]
        with self.db.transaction() as connection:
            connection.execute(
                "INSERT INTO timeline (idempotency_key, post_id, text, reply_to, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
                (
                    idempotency_key,
                    post_id,
                    text,
                    reply_to and f"{reply_to.platform}/{reply_to.post_id}",
                    utcnow().isoformat(),
                ),
            )
        log.info("DRY RUN post %s: %s", post_id, text)
        return PublishResult(post_id=post_id, url=f"dry-run://timeline/{post_id}")

    def timeline(self) -> list[dict[str, str]]:
        return [dict(row) for row in self.db.query("SELECT * FROM timeline ORDER BY created_at")]


def build_publisher(platform: str, db: Database, settings: object) -> Publisher:
    if platform == "dry_run":
        return DryRunPublisher(db)
    if platform in {"x", "mastodon", "bluesky"}:
        from deephype.common.platforms.build import build_platform_publisher  # needs the poster extra

        return build_platform_publisher(platform, settings)
    raise ValueError(f"unknown poster_platform {platform!r} (dry_run, x, mastodon or bluesky)")


__all__ = ["DryRunPublisher", "PublishRefused", "PublishResult", "Publisher", "build_publisher"]

"""The listener's logic: a raw post in, at most one SongMention out, never the same post twice."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from deephype.common.bus import Bus, derive_id
from deephype.common.contracts import Platform, SongMention, utcnow
from deephype.common.db import Database, Schema
from deephype.common.platforms.base import RawPost
from deephype.common.settings import Settings

log = logging.getLogger("deephype.listener")

SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    platform TEXT NOT NULL,
    post_id TEXT NOT NULL,
    -- pending (mention not yet confirmed by the broker) | on_bus (published before issue 15) | no_song | own_post
    status TEXT NOT NULL,
    message_id TEXT,
    trace_id TEXT,
    artist TEXT,
    title TEXT,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (platform, post_id)
);
CREATE TABLE IF NOT EXISTS cursors (source TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# The listener's versioned schema: a change to its tables is a new step here.
MIGRATIONS = Schema("listener", (SCHEMA,))


class IngestStatus(StrEnum):
    on_bus = "on_bus"  # the mention was put on the bus for the enricher; nothing is posted anywhere yet
    no_song = "no_song"
    duplicate = "duplicate"
    own_post = "own_post"


class IngestResult(BaseModel):
    status: IngestStatus
    platform: Platform
    post_id: str
    message_id: str | None = None
    trace_id: str | None = None
    artist: str | None = None
    title: str | None = None


# "@deephype", Bluesky's "@deephype.bsky.social", Mastodon's "@deephype@mastodon.social"
BOT_MENTION = re.compile(r"(?<![\w@])@(\w[\w.-]*(?:@[\w-]+(?:\.[\w-]+)+)?)")


class Detector(Protocol):
    """text -> object with artist, title, spotify_track_id, confidence; on_demand: the post asks the bot."""

    def __call__(self, text: str, *, on_demand: bool = False) -> Any: ...


def default_detector(settings: Settings | None = None) -> Detector:
    """Detection confirmed by the lookup settings.listener_lookup names (no settings: the bundled catalog)."""
    from deephype.listener.confirm import build_lookup
    from deephype.listener.detect import SongDetector, detect_song

    return detect_song if settings is None else SongDetector(build_lookup(settings))


class Listener:
    def __init__(self, db: Database, bus: Bus, bot_handles: Iterable[str], detector: Detector) -> None:
        self.db = db
        self.bus = bus
        self.bot_handles = {handle.lower().lstrip("@") for handle in bot_handles}
        self.detector = detector

    def addresses_bot(self, text: str) -> bool:
        handles = {handle.lower().rstrip(".-") for handle in BOT_MENTION.findall(text)}
        # a full handle names the bot, and so does its local part ("deephype" of "deephype.bsky.social")
        handles |= {re.split(r"[.@]", handle, maxsplit=1)[0] for handle in handles}
        return bool(handles & self.bot_handles)

    def ingest(self, post: RawPost) -> IngestResult:
        key = (post.platform.value, post.post_id)
        [existing] = self.db.query("SELECT * FROM posts WHERE platform=? AND post_id=?", key) or [None]
        if existing is not None and existing["status"] != "pending":
            return IngestResult(
                status=IngestStatus.duplicate,
                platform=post.platform,
                post_id=post.post_id,
                message_id=existing["message_id"],
                trace_id=existing["trace_id"],
                artist=existing["artist"],
                title=existing["title"],
            )
        if post.author.lower().lstrip("@") in self.bot_handles:
            self._record(post, "own_post")
            return IngestResult(status=IngestStatus.own_post, platform=post.platform, post_id=post.post_id)

        # A post that names the bot asks for a song: the detector gives it a little more benefit of the doubt.
        on_demand = post.mentions_bot or self.addresses_bot(post.text)
        detection = self.detector(post.text, on_demand=on_demand)
        if not detection.artist or not detection.title:
            self._record(post, "no_song")
            return IngestResult(status=IngestStatus.no_song, platform=post.platform, post_id=post.post_id)

        # The ids depend only on the post, so a post seen again (restart, webhook retry) makes the same
        # message, which every later stage recognises as a duplicate.
        message_id = derive_id("post", post.platform.value, post.post_id)
        try:
            mention = self._mention(post, detection, message_id)
        except ValidationError as exc:
            # The post itself was valid, so the detector named something no message can carry (600
            # letters of artist, say): that is no song we can comment on.
            log.warning("post %s %s: detected song refused: %s", post.platform, post.post_id, exc.errors()[0]["msg"])
            self._record(post, "no_song")
            return IngestResult(status=IngestStatus.no_song, platform=post.platform, post_id=post.post_id)
        # Recorded as pending first: if we crash before the broker confirms, the next sight of the post
        # publishes it again instead of treating it as done.
        self._record(post, "pending", mention)
        self.bus.publish(mention)
        self._record(post, "on_bus", mention)
        log.info(
            "mention %s: %s - %s (%s %s)",
            message_id,
            mention.artist,
            mention.title,
            post.platform,
            post.post_id,
            extra={"trace_id": mention.trace_id},
        )
        return IngestResult(
            status=IngestStatus.on_bus,
            platform=post.platform,
            post_id=post.post_id,
            message_id=message_id,
            trace_id=mention.trace_id,
            artist=mention.artist,
            title=mention.title,
        )

    @staticmethod
    def _mention(post: RawPost, detection: Any, message_id: str) -> SongMention:
        return SongMention(
            message_id=message_id,
            trace_id=message_id,
            platform=post.platform,
            post_id=post.post_id,
            author=post.author,
            text=post.text,
            url=post.url,
            artist=detection.artist,
            title=detection.title,
            spotify_track_id=detection.spotify_track_id,
            detection_confidence=detection.confidence,
            observed_at=post.created_at or utcnow(),
            on_demand=post.mentions_bot,
        )

    def _record(self, post: RawPost, status: str, mention: SongMention | None = None) -> None:
        with self.db.transaction() as connection:
            connection.execute(
                "INSERT INTO posts (platform, post_id, status, message_id, trace_id, artist, title, seen_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (platform, post_id) DO UPDATE SET status=excluded.status",
                (
                    post.platform.value,
                    post.post_id,
                    status,
                    mention and mention.message_id,
                    mention and mention.trace_id,
                    mention and mention.artist,
                    mention and mention.title,
                    utcnow().isoformat(),
                ),
            )

    def status(self, platform: str, post_id: str) -> IngestResult | None:
        rows = self.db.query("SELECT * FROM posts WHERE platform=? AND post_id=?", (platform, post_id))
        if not rows:
            return None
        row = rows[0]
        on_bus = ("pending", "on_bus", "published")  # "published": what older versions wrote
        status = IngestStatus.on_bus if row["status"] in on_bus else IngestStatus(row["status"])
        return IngestResult(
            status=status,
            platform=Platform(row["platform"]),
            post_id=row["post_id"],
            message_id=row["message_id"],
            trace_id=row["trace_id"],
            artist=row["artist"],
            title=row["title"],
        )

    # --- cursors, so a restarted source never re-reads what it has handled ---

    def cursor(self, source: str) -> str | None:
        rows = self.db.query("SELECT value FROM cursors WHERE source=?", (source,))
        return rows[0]["value"] if rows else None

    def save_cursor(self, source: str, value: str) -> None:
        with self.db.transaction() as connection:
            connection.execute(
                "INSERT INTO cursors (source, value) VALUES (?, ?)"
                " ON CONFLICT (source) DO UPDATE SET value=excluded.value",
                (source, value),
            )

"""What the audience did: the poster reads each published post's likes, reposts and replies back from its
platform at checkpoints after it went out (about 1 h, 24 h and 7 d) and stores them with the post.

A small job beside the dispatcher, off the posting path. It looks at the outbox's published rows (read
only) and keeps its own table, one row per post and checkpoint:
- 'read': the counts as the platform gave them at read_at (read late, e.g. after downtime, read_at says so).
- 'missed': a later checkpoint was already due when this one came up (the poster was down); one read
  stands for both, so a paid platform is not billed twice for the same moment.
- 'gone': the post was deleted (or is no longer visible): never read again.
- 'failed': the platform kept failing at this checkpoint; the next checkpoint tries again.
Rate limits: a 429 pauses that platform until its reset; other platforms keep reading. X bills every read,
so X is read only when DEEPHYPE_ENGAGEMENT_READ_X is on. A dry-run post has no audience and is skipped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from deephype.common.contracts import utcnow
from deephype.common.db import Database
from deephype.common.platforms.base import PostMetrics, ReadRefused, ReadsMetrics
from deephype.poster.schedule import Clock, stamp, unstamp

log = logging.getLogger("deephype.poster")

SCHEMA = """
CREATE TABLE IF NOT EXISTS engagement (
    approval_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    checkpoint_hours REAL NOT NULL,
    post_id TEXT NOT NULL,
    state TEXT NOT NULL,          -- read | missed | gone | failed
    read_at TEXT,
    likes INTEGER,
    reposts INTEGER,
    replies INTEGER,
    quotes INTEGER,
    error TEXT,
    PRIMARY KEY (approval_id, platform, checkpoint_hours)
);
"""

# A read that fails in an unknown way (a timeout, a 5xx) is tried again after 1, 2, 4, ... minutes; after
# this many tries the checkpoint is given up ('failed') and the next one tries afresh.
MAX_ATTEMPTS = 6
BASE_BACKOFF = timedelta(minutes=1)
# A post older than its last checkpoint plus this is not looked at any more (a long outage).
LATE_LIMIT = timedelta(days=30)


@dataclass(frozen=True)
class DueRead:
    approval_id: str
    platform: str
    post_id: str
    published_at: datetime
    checkpoint_hours: float
    missed: tuple[float, ...]  # earlier checkpoints this read stands in for


class EngagementReader:
    """Reads due engagement for every platform in `readers` (platform name → publisher that can read)."""

    def __init__(
        self,
        db: Database,
        readers: Mapping[str, ReadsMetrics],
        *,
        checkpoints_hours: Sequence[float] = (1.0, 24.0, 168.0),
        max_reads_per_round: int = 20,
        poll_seconds: float = 60.0,
        clock: Clock = utcnow,
    ) -> None:
        if not checkpoints_hours or any(hours <= 0 for hours in checkpoints_hours):
            raise ValueError(f"engagement checkpoints must be positive hours, got {list(checkpoints_hours)}")
        self.db = db
        db.ensure_schema(SCHEMA)
        self.readers = dict(readers)
        self.checkpoints = tuple(sorted(set(float(hours) for hours in checkpoints_hours)))
        self.max_reads = max_reads_per_round
        self.poll_seconds = poll_seconds
        self.clock = clock
        self._paused_until: dict[str, datetime] = {}
        self._retry: dict[tuple[str, str, float], tuple[int, datetime]] = {}  # attempts, not before
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- what is due ---

    def due(self) -> list[DueRead]:
        now = self.clock()
        if not self.readers:
            return []
        oldest = now - timedelta(hours=self.checkpoints[-1]) - LATE_LIMIT
        placeholders = ",".join("?" * len(self.readers))
        rows = self.db.query(
            "SELECT approval_id, platform, post_id, published_at FROM outbox WHERE state='published'"
            f" AND post_id IS NOT NULL AND published_at >= ? AND platform IN ({placeholders}) ORDER BY published_at",
            (stamp(oldest), *self.readers),
        )
        done: dict[tuple[str, str], set[float]] = {}
        for row in self.db.query(
            "SELECT approval_id, platform, checkpoint_hours, state FROM engagement WHERE approval_id IN"
            " (SELECT approval_id FROM outbox WHERE state='published' AND published_at >= ?)",
            (stamp(oldest),),
        ):
            done.setdefault((row["approval_id"], row["platform"]), set()).add(float(row["checkpoint_hours"]))
        due = []
        for row in rows:
            published_at = unstamp(row["published_at"])
            recorded = done.get((row["approval_id"], row["platform"]), set())
            pending = [h for h in self.checkpoints if published_at + timedelta(hours=h) <= now and h not in recorded]
            if not pending:
                continue
            due.append(
                DueRead(
                    row["approval_id"],
                    row["platform"],
                    row["post_id"],
                    published_at,
                    pending[-1],
                    tuple(pending[:-1]),
                )
            )
        return due

    # --- one round ---

    def run_round(self) -> int:
        """Read what is due now (at most max_reads); the number of posts read."""
        now = self.clock()
        read = 0
        for item in self.due():
            if read >= self.max_reads:
                break
            if self._paused_until.get(item.platform, now) > now:
                continue
            key = (item.approval_id, item.platform, item.checkpoint_hours)
            attempts, not_before = self._retry.get(key, (0, now))
            if not_before > now:
                continue
            try:
                metrics = self.readers[item.platform].read_metrics(item.post_id)
            except ReadRefused as exc:
                if exc.gone:
                    self._record_gone(item, str(exc))
                elif exc.retry_after_seconds is not None:
                    self._paused_until[item.platform] = now + timedelta(seconds=exc.retry_after_seconds)
                    log.warning("engagement on %s paused for %.0f s: %s", item.platform, exc.retry_after_seconds, exc)
                else:
                    self._failed_attempt(item, key, attempts, now, str(exc))
                continue
            except Exception as exc:  # a timeout or a dropped connection: try again later
                self._failed_attempt(item, key, attempts, now, repr(exc))
                continue
            self._retry.pop(key, None)
            self._record(item, metrics)
            read += 1
        return read

    def _failed_attempt(
        self, item: DueRead, key: tuple[str, str, float], attempts: int, now: datetime, error: str
    ) -> None:
        attempts += 1
        if attempts >= MAX_ATTEMPTS:
            self._retry.pop(key, None)
            log.warning("engagement of %s on %s at %gh given up: %s", item.post_id, item.platform, key[2], error)
            self._write(item, [(item.checkpoint_hours, "failed", None, error)])
            return
        self._retry[key] = (attempts, now + BASE_BACKOFF * 2 ** (attempts - 1))
        log.info("engagement of %s on %s not read (%s); trying again later", item.post_id, item.platform, error)

    def _record(self, item: DueRead, metrics: PostMetrics) -> None:
        rows: list[tuple[float, str, PostMetrics | None, str | None]] = [
            (hours, "missed", None, None) for hours in item.missed
        ]
        rows.append((item.checkpoint_hours, "read", metrics, None))
        self._write(item, rows)

    def _record_gone(self, item: DueRead, error: str) -> None:
        later = [h for h in self.checkpoints if h >= item.checkpoint_hours or h in item.missed]
        self._write(item, [(hours, "gone", None, error) for hours in later])

    def _write(self, item: DueRead, rows: list[tuple[float, str, PostMetrics | None, str | None]]) -> None:
        read_at = stamp(self.clock())
        with self.db.transaction() as connection:
            for hours, state, metrics, error in rows:
                connection.execute(
                    "INSERT INTO engagement (approval_id, platform, checkpoint_hours, post_id, state, read_at, likes,"
                    " reposts, replies, quotes, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (
                        item.approval_id,
                        item.platform,
                        hours,
                        item.post_id,
                        state,
                        read_at if state in {"read", "gone"} else None,
                        metrics and metrics.likes,
                        metrics and metrics.reposts,
                        metrics and metrics.replies,
                        metrics and metrics.quotes,
                        error,
                    ),
                )

    # --- what was read ---

    def engagement(self, approval_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Per published post (newest first): its checkpoints as read, and the latest counts."""
        where, params = ("AND o.approval_id=?", (approval_id,)) if approval_id else ("", ())
        posts = self.db.query(
            "SELECT o.approval_id, o.platform, o.candidate_id, o.post_id, o.url, o.published_at FROM outbox o"
            f" WHERE o.state='published' {where} ORDER BY o.published_at DESC LIMIT ?",
            (*params, limit),
        )
        result = []
        for post in posts:
            checkpoints = [
                {
                    "hours": row["checkpoint_hours"],
                    "state": row["state"],
                    "read_at": unstamp(row["read_at"]).isoformat() if row["read_at"] else None,
                    "likes": row["likes"],
                    "reposts": row["reposts"],
                    "replies": row["replies"],
                    "quotes": row["quotes"],
                    "error": row["error"],
                }
                for row in self.db.query(
                    "SELECT * FROM engagement WHERE approval_id=? AND platform=? ORDER BY checkpoint_hours",
                    (post["approval_id"], post["platform"]),
                )
            ]
            latest = next((c for c in reversed(checkpoints) if c["state"] == "read"), None)
            result.append(
                {
                    **dict(post),
                    "published_at": unstamp(post["published_at"]).isoformat(),
                    "checkpoints": checkpoints,
                    "latest": None
                    if latest is None
                    else {name: latest[name] for name in ("hours", "likes", "reposts", "replies", "quotes")},
                }
            )
        return result

    # --- the job ---

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_round()
            except Exception:  # the job must outlive a bad round (e.g. the database busy); it logs and goes on
                log.exception("engagement round failed")
            self._stop.wait(self.poll_seconds)

    def start(self) -> None:
        if not self.readers:
            return
        self._thread = threading.Thread(target=self._run, name="poster-engagement", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def engagement_readers(publishers: Mapping[str, Any], *, read_x: bool) -> dict[str, ReadsMetrics]:
    """The publishers that can read their posts' counts; X only when its paid reads are turned on."""
    return {
        name: publisher
        for name, publisher in publishers.items()
        if callable(getattr(publisher, "read_metrics", None)) and (name != "x" or read_x)
    }

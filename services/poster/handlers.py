"""The poster: approvals wait in a queue and go out at a human pace, exactly once per platform.

An approval is checked (signature, each platform's length) and put in the SQLite queue, one row per
platform, with the time it is due (schedule.py); only then is the message acked. A dispatcher posts what is
due. Each row records the state before and after the platform call:
- 'queued': waiting for its time. 'publishing' is written (and committed) before the call, 'published'
  with the post id after, and the PublishedPost is announced on the bus (again after a crash, same id).
- Copies of the poster (on one host over SQLite, on several over PostgreSQL) share the queue: a row is
  claimed for its call by one conditional update ('queued' and due -> 'publishing', claimed_by = this
  copy), which only one copy can win, so two copies never call a platform for the same row.
- 'publishing' claimed by a copy that is gone (crashed: its presence mark, a file lock or a PostgreSQL
  session lock, went with it), found at start and every few seconds after: the call was cut off. One
  copy takes the row over (the same kind of conditional update) and applies the rule: an idempotent
  platform (dry-run, Mastodon with its Idempotency-Key) is simply called again; X and Bluesky are asked for
  the bot's latest posts: found means it went out (recorded, not posted again), not found means it did not
  (posted now). Where that cannot be told, the row is 'held' for a human, because posting twice is worse
  than not posting.
- 'failed': the platform refused for good (a 4xx); retrying the same request cannot help.
- A curator may then requeue a held or failed row (it goes out at once) or drop it, or drop a queued one
  ('dropped': never posted); see PostQueue.decide.
One platform failing changes only its own row: the others go out on their own schedule.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from deephype.common.bus import Handler, PermanentError, backoff_delay, derive_id
from deephype.common.contracts import (
    Approval,
    Envelope,
    PostDecision,
    PostStatus,
    PublishedPost,
    ReplyTarget,
    length_problem,
    utcnow,
)
from deephype.common.db import Database, Presence, Schema
from deephype.common.logs import trace
from deephype.common.signing import ApprovalKeys
from deephype.poster.publishers import Publisher, PublishRefused, PublishResult
from deephype.poster.schedule import Clock, Pacing, stamp, unstamp

log = logging.getLogger("deephype.poster")

OUTBOX = """
CREATE TABLE IF NOT EXISTS outbox (
    approval_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    candidate_id TEXT NOT NULL,
    state TEXT NOT NULL,          -- queued | publishing | published | failed | held | dropped
    text TEXT NOT NULL,           -- the composed post, as the curator approved it
    reply_to TEXT,                -- ReplyTarget JSON
    artist TEXT NOT NULL,
    title TEXT NOT NULL,
    now INTEGER NOT NULL DEFAULT 0,  -- skips the schedule (curator's "now", an on-demand reply)
    due_at TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    started_at TEXT,
    published_at TEXT,
    post_id TEXT,
    url TEXT,
    message TEXT,                 -- the PublishedPost, JSON
    announced INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    PRIMARY KEY (approval_id, platform)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, due_at);
CREATE TABLE IF NOT EXISTS status_reports (  -- the last state of each outbox row told to the curator
    approval_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    reported TEXT NOT NULL,       -- state|due_at|error of the row when it was reported (see STATUS_OF_ROW)
    PRIMARY KEY (approval_id, platform)
);
"""
CLAIMS = """
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;  -- the copy making (or that made) the platform call
"""
# The poster's versioned schema: a change to its tables is a new step at the end, never an edit of an old one.
SCHEMA = Schema("poster", (OUTBOX, CLAIMS))


def new_copy_id() -> str:
    """This process's name among the poster's copies: host, pid and a random part (pids repeat)."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:60]
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


# What a PostStatus says about one outbox row; a row whose value differs from its last report is reported
# again. 'publishing' is a moment, not a state the curator needs to see. The attempt count is part of it:
# held at the 2nd attempt (after a curator's requeue) is news even where due time and reason are the same.
STATUS_OF_ROW = "o.state || '|' || o.due_at || '|' || o.attempts || '|' || COALESCE(o.error, '')"
REPORTED_STATES = "('queued', 'published', 'failed', 'held', 'dropped')"


class PostQueue:
    """The poster's queue and ledger in one table: what waits, when it is due, and what went out."""

    def __init__(
        self,
        db: Database,
        pacing: Pacing | None = None,
        clock: Clock = utcnow,
        rng: random.Random | None = None,
        copy_id: str | None = None,
    ) -> None:
        self.db = db
        self.pacing = pacing or Pacing()
        self.clock = clock
        self.rng = rng or random.Random()
        self.copy_id = copy_id or new_copy_id()
        self._lock = threading.Lock()  # one scheduling decision at a time within this process
        self._presence: Presence | None = None
        self._presence_lock = threading.Lock()

    def get(self, approval_id: str, platform: str) -> Any:
        rows = self.db.query("SELECT * FROM outbox WHERE approval_id=? AND platform=?", (approval_id, platform))
        return rows[0] if rows else None

    def enqueue(self, approval: Approval, platform: str, text: str, *, now: bool) -> bool:
        """Queue one approval for one platform at its slot; False when it was queued before (a redelivery)."""
        with self._lock, self.db.transaction() as connection:
            if connection.execute(
                "SELECT 1 FROM outbox WHERE approval_id=? AND platform=?", (approval.message_id, platform)
            ).fetchone():
                return False
            current = self.clock()
            due = current if now else self.pacing.next_slot(current, self._taken(connection, platform), self.rng)
            connection.execute(
                "INSERT INTO outbox (approval_id, platform, trace_id, candidate_id, state, text, reply_to, artist,"
                " title, now, due_at, queued_at) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                (
                    approval.message_id,
                    platform,
                    approval.trace_id,
                    approval.candidate_id,
                    text,
                    approval.reply_to and approval.reply_to.model_dump_json(),
                    approval.song.artist,
                    approval.song.title,
                    int(now),
                    stamp(due),
                    stamp(current),
                ),
            )
        return True

    def _taken(self, connection: Any, platform: str) -> list[datetime]:
        """Every slot of this platform in the last day and ahead: sent, sending, or scheduled."""
        since = stamp(self.clock() - timedelta(days=1))
        rows = connection.execute(
            "SELECT COALESCE(published_at, due_at) AS at FROM outbox WHERE platform=?"
            " AND state IN ('queued', 'publishing', 'published', 'held') AND COALESCE(published_at, due_at) > ?",
            (platform, since),
        ).fetchall()
        return [unstamp(row["at"]) for row in rows]

    def due(self) -> list[Any]:
        return self.db.query(
            "SELECT * FROM outbox WHERE state='queued' AND due_at <= ? ORDER BY now DESC, due_at",
            (stamp(self.clock()),),
        )

    def next_due_at(self) -> datetime | None:
        rows = self.db.query("SELECT MIN(due_at) AS at FROM outbox WHERE state='queued'")
        return unstamp(rows[0]["at"]) if rows and rows[0]["at"] else None

    def _update(self, approval_id: str, platform: str, sql: str, *values: Any, claimed: bool = False) -> bool:
        """Change one row; with `claimed`, only while this copy's claim on it stands. False: nothing changed."""
        where = "approval_id=? AND platform=?"
        keys: tuple[Any, ...] = (approval_id, platform)
        if claimed:
            where, keys = where + " AND state='publishing' AND claimed_by=?", (*keys, self.copy_id)
        with self.db.transaction() as connection:
            return connection.execute(f"UPDATE outbox SET {sql} WHERE {where}", (*values, *keys)).rowcount > 0

    # --- which copy makes a call ---

    def present(self) -> None:
        """Mark this copy as running (before its first claim), so its peers leave its claims alone."""
        with self._presence_lock:
            if self._presence is None:
                self._presence = self.db.presence(self.copy_id)
            else:
                self._presence.ensure()

    def release(self) -> None:
        """This copy stops: its claims become a crashed copy's (a clean stop leaves none)."""
        with self._presence_lock:
            presence, self._presence = self._presence, None
        if presence is not None:
            presence.release()

    def claim(self, approval_id: str, platform: str) -> Any:
        """Take a due row for its platform call: the row as claimed, or None when another copy has it (or it is
        not due any more). One conditional update: of all copies, exactly one wins."""
        self.present()
        now = stamp(self.clock())
        with self.db.transaction() as connection:
            return connection.execute(
                "UPDATE outbox SET state='publishing', attempts=attempts+1, started_at=?, claimed_by=?"
                " WHERE approval_id=? AND platform=? AND state='queued' AND due_at <= ? RETURNING *",
                (now, self.copy_id, approval_id, platform, now),
            ).fetchone()

    def retry_later(self, approval_id: str, platform: str, seconds: float, error: str) -> None:
        due = self.clock() + timedelta(seconds=seconds)
        self._update(approval_id, platform, "state='queued', due_at=?, error=?", stamp(due), error, claimed=True)

    def give_up(self, approval_id: str, platform: str, state: str, error: str, *, claimed: bool = True) -> None:
        self._update(approval_id, platform, "state=?, error=?", state, error, claimed=claimed)

    def finish(self, post: PublishedPost) -> bool:
        """Record a post made under this copy's claim; False (and a warning) when the claim was taken over."""
        done = self._update(
            post.approval_id,
            post.platform.value,
            "state='published', post_id=?, url=?, message=?, published_at=?, error=NULL",
            post.post_id,
            post.url,
            post.model_dump_json(),
            stamp(post.published_at),
            claimed=True,
        )
        if not done:
            log.warning("post %s to %s went out, but another copy took the call over", post.approval_id, post.platform)
        return done

    def mark_announced(self, approval_id: str, platform: str) -> None:
        self._update(approval_id, platform, "announced=1")

    def unannounced(self) -> list[PublishedPost]:
        rows = self.db.query("SELECT message FROM outbox WHERE state='published' AND announced=0")
        return [PublishedPost.model_validate_json(row["message"]) for row in rows]

    def unreported(self) -> list[Any]:
        """Rows whose state the curator has not been told yet (or has been told an older one)."""
        return self.db.query(
            f"SELECT o.*, {STATUS_OF_ROW} AS status_now FROM outbox o LEFT JOIN status_reports r"
            " ON r.approval_id = o.approval_id AND r.platform = o.platform"
            f" WHERE o.state IN {REPORTED_STATES} AND (r.reported IS NULL OR r.reported != {STATUS_OF_ROW})"
            " ORDER BY o.queued_at"
        )

    def mark_reported(self, approval_id: str, platform: str, reported: str) -> None:
        with self.db.transaction() as connection:
            connection.execute(
                "INSERT INTO status_reports (approval_id, platform, reported) VALUES (?, ?, ?)"
                " ON CONFLICT (approval_id, platform) DO UPDATE SET reported = excluded.reported",
                (approval_id, platform, reported),
            )

    def in_flight(self) -> list[Any]:
        """Rows whose platform call was cut off (their copy is gone), each now taken over by this copy."""
        rows = self.db.query(
            "SELECT approval_id, platform, claimed_by FROM outbox WHERE state='publishing'"
            " AND COALESCE(claimed_by, '') != ?",
            (self.copy_id,),
        )
        owners = {row["claimed_by"] for row in rows}
        gone = {owner for owner in owners if owner is None or not self.db.alive(owner)}
        taken = []
        for row in rows:
            if row["claimed_by"] not in gone:
                continue
            self.present()
            with self.db.transaction() as connection:
                mine = connection.execute(
                    "UPDATE outbox SET claimed_by=? WHERE approval_id=? AND platform=? AND state='publishing'"
                    " AND COALESCE(claimed_by, '')=? RETURNING *",
                    (self.copy_id, row["approval_id"], row["platform"], row["claimed_by"] or ""),
                ).fetchone()
            if mine is not None:
                taken.append({**dict(mine), "claimed_by_before": row["claimed_by"]})
        return taken

    def requeue(self, approval_id: str, platform: str, note: str | None = None) -> None:
        self._update(
            approval_id, platform, "state='queued', due_at=?, error=?", stamp(self.clock()), note, claimed=True
        )

    def decide(self, decision: PostDecision) -> str | None:
        """Apply a curator's requeue or drop; None when it was applied, else why not. It applies only while
        the row is in the state the curator saw (same attempt count): a redelivered or stale decision
        changes nothing, so a requeue never sends a post out twice."""
        if decision.action == "requeue":  # out at once: the curator is waiting for it
            allowed, change = ("held", "failed"), "state='queued', now=1, due_at=?, error=?"
            values: tuple[Any, ...] = (stamp(self.clock()), f"requeued by {decision.decided_by}")
        else:
            allowed, change = ("queued", "held", "failed"), "state='dropped', error=?"
            values = (f"dropped by {decision.decided_by}",)
        with self.db.transaction() as connection:
            changed = connection.execute(
                f"UPDATE outbox SET {change} WHERE approval_id=? AND platform=? AND attempts=?"
                f" AND state IN ({', '.join('?' for _ in allowed)})",
                (*values, decision.approval_id, decision.platform.value, decision.attempts, *allowed),
            ).rowcount
        if changed:
            return None
        row = self.get(decision.approval_id, decision.platform.value)
        if row is None:
            return f"there is no post {decision.approval_id} for {decision.platform.value}"
        if row["attempts"] != decision.attempts:
            return f"the post has changed since (attempt {row['attempts']}; the decision saw {decision.attempts})"
        return f"a {row['state']} post cannot be {decision.action}{'d' if decision.action == 'requeue' else 'ped'}"

    def mark_now(self, approval_id: str) -> int:
        """The curator's "now": every queued platform of this approval is due at once."""
        with self.db.transaction() as connection:
            return connection.execute(
                "UPDATE outbox SET now=1, due_at=? WHERE approval_id=? AND state='queued'",
                (stamp(self.clock()), approval_id),
            ).rowcount

    def schedule(self) -> list[dict[str, Any]]:
        """What will go out when (and what is held or failed), soonest first."""
        rows = self.db.query(
            "SELECT * FROM outbox WHERE state IN ('queued', 'publishing', 'held', 'failed') ORDER BY due_at"
        )
        return [_public(row) for row in rows]

    def published(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT * FROM outbox WHERE state='published' ORDER BY published_at DESC LIMIT ?", (limit,)
        )
        return [_public(row) for row in rows]

    def timeline(self, limit: int = 100) -> list[dict[str, Any]]:
        """Scheduled and published posts together, newest (or latest due) first: the dry-run page."""
        rows = self.db.query("SELECT * FROM outbox ORDER BY COALESCE(published_at, due_at) DESC LIMIT ?", (limit,))
        return [_public(row) for row in rows]


def _public(row: Any) -> dict[str, Any]:
    post = dict(row)
    del post["message"]
    post["reply_to"] = json.loads(post["reply_to"]) if post["reply_to"] else None
    post["now"] = bool(post["now"])
    post["announced"] = bool(post["announced"])
    for name in ("due_at", "queued_at", "started_at", "published_at"):
        if post[name]:
            post[name] = unstamp(post[name]).isoformat()
    return post


# Older callers and the pipeline know the queue as the poster's ledger.
PostLedger = PostQueue


def post_text_for(approval: Approval, platform: str) -> str:
    """The composed post the curator approved for `platform` (any platform's when this one is not named)."""
    return approval.posts.get(platform) or next(iter(approval.posts.values()), approval.final_text)


def make_approval_handler(
    queue: PostQueue,
    publishers: Mapping[str, Publisher] | Publisher,
    keys: ApprovalKeys,
    *,
    replies_skip_queue: bool = True,
    wake: Callable[[], None] = lambda: None,
) -> Handler:
    """`keys` check that the curator signed each approval: a forged or altered one is never published.
    A post over a platform's limit is refused here, before anything is queued."""
    publishers = _by_platform(publishers)

    def handle(message: Envelope) -> list[Envelope]:
        assert isinstance(message, Approval)
        if problem := keys.problem(message):
            raise PermanentError(f"approval {message.message_id} refused: {problem}")
        texts = {platform: post_text_for(message, platform) for platform in publishers}
        problems = [
            f"{platform}: {problem}" for platform, text in texts.items() if (problem := length_problem(text, platform))
        ]
        if problems:
            raise PermanentError("not queued, " + "; ".join(problems))
        now = message.post_now or (replies_skip_queue and message.reply_to is not None)
        # A redelivery of an approval already posted: its posts are announced again (same ids, deduped).
        again = [
            PublishedPost.model_validate_json(row["message"])
            for platform in texts
            if (row := queue.get(message.message_id, platform)) is not None and row["state"] == "published"
        ]
        for platform, text in texts.items():
            if queue.enqueue(message, platform, text, now=now):
                row = queue.get(message.message_id, platform)
                log.info(
                    "queued %s - %s for %s, due %s", message.song.artist, message.song.title, platform, row["due_at"]
                )
        wake()
        return again

    return handle


def make_decision_handler(queue: PostQueue, keys: ApprovalKeys, *, wake: Callable[[], None] = lambda: None) -> Handler:
    """A curator's requeue or drop of one post (PostDecision), signed like an approval. One that no longer
    applies (the post went out, or changed since the curator saw it) is logged and acked: it is done with."""

    def handle(message: Envelope) -> list[Envelope]:
        assert isinstance(message, PostDecision)
        if problem := keys.problem(message):
            raise PermanentError(f"post decision {message.message_id} refused: {problem}")
        if why_not := queue.decide(message):
            log.warning(
                "%s of %s on %s not applied: %s", message.action, message.approval_id, message.platform, why_not
            )
        else:
            log.info("%s of %s on %s by %s", message.action, message.approval_id, message.platform, message.decided_by)
            wake()
        return []

    return handle


def status_of(row: Any, at: datetime) -> PostStatus:
    """The PostStatus of one outbox row (its id derives from the state, so a repeat of it is a duplicate)."""
    return PostStatus(
        message_id=derive_id(row["approval_id"], "status", row["platform"], row["status_now"]),
        trace_id=row["trace_id"],
        approval_id=row["approval_id"],
        platform=row["platform"],
        state=row["state"],
        at=at,
        due_at=unstamp(row["due_at"]) if row["state"] == "queued" else None,
        post_id=row["post_id"],
        url=row["url"],
        error=row["error"][:2000] if row["error"] else None,
        attempts=row["attempts"],
    )


def _by_platform(publishers: Mapping[str, Publisher] | Publisher) -> dict[str, Publisher]:
    if isinstance(publishers, Mapping):
        return dict(publishers)
    return {publishers.platform.value: publishers}


class Dispatcher:
    """Posts what is due, one row at a time, and announces each post on the bus."""

    def __init__(
        self,
        queue: PostQueue,
        publishers: Mapping[str, Publisher] | Publisher,
        announce: Callable[[Envelope], None],
        *,
        report: Callable[[Envelope], None] | None = None,
        interval: float = 1.0,
        retry_delays: Sequence[float] = (1.0, 5.0, 30.0, 300.0, 3600.0),
        max_attempts: int = 5,
        recover_interval: float = 2.0,
        publish_many: Callable[[Sequence[Envelope]], None] | None = None,
    ) -> None:
        self.queue, self.publishers, self.announce = queue, _by_platform(publishers), announce
        self.report = report  # where each post's state goes (PostStatus: queued, published, failed, held)
        # The bus's batch publish, when there is one: a tick's announcements (and reports) are confirmed
        # together, not one broker round trip after the other.
        self.publish_many = publish_many
        self.interval = interval
        # How often a running copy looks for calls cut off by another copy's crash (and takes them over).
        self.recover_interval = recover_interval
        # A refusal without a delay of its own, or an idempotent call that failed, waits a growing delay;
        # after max_attempts of those the row fails (a rate limit with its own reset time does not count).
        self.retry_delays, self.max_attempts = retry_delays, max_attempts
        self._stop, self._wake = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._run_lock = threading.Lock()

    def recover(self) -> None:
        """After a crash, each call that was under way: made again where that is safe (an idempotent
        platform), looked up on the account where the platform can say (X, Bluesky: found means published,
        not found means it never went out), and held for a human where nobody can tell."""
        for row in self.queue.in_flight():
            approval_id, platform = row["approval_id"], row["platform"]
            publisher = self.publishers.get(platform)
            if publisher is None:
                continue
            if publisher.idempotent:
                log.info(
                    "the call posting %s to %s was cut off (copy %s stopped): making it again, idempotently",
                    approval_id,
                    platform,
                    row["claimed_by_before"] or "unknown",
                )
                self.queue.requeue(approval_id, platform)
                continue
            find_posted = getattr(publisher, "find_posted", None)
            try:
                found = find_posted(row["text"]) if find_posted is not None else None
            except Exception as exc:
                log.warning("could not check %s for post %s after a crash: %r", platform, approval_id, exc)
                find_posted = None
            if find_posted is None:
                self.queue.give_up(
                    approval_id,
                    platform,
                    "held",
                    f"the poster stopped while posting to {platform}: it may have gone out; check the "
                    "account, then requeue or drop it",
                )
            elif found is None:
                log.info("%s has no post %s: it never went out, posting it now", platform, approval_id)
                self.queue.requeue(approval_id, platform, "cut off by a crash before it went out")
            else:
                log.info("%s already has post %s (%s): recorded, not posted again", platform, approval_id, found.url)
                self.queue.finish(self._published(row, publisher, found))

    def run_due(self) -> list[PublishedPost]:
        """Post every row that is due now; returns what went out."""
        with self._run_lock:
            sent = []
            for row in self.queue.due():
                with trace(row["trace_id"]):  # this post's log lines carry its mention's trace id
                    post = self._publish(row)
                if post is not None:
                    sent.append(post)
            self._announce_pending()
            self._report_states()
            return sent

    def _publish(self, row: Any) -> PublishedPost | None:
        approval_id, platform = row["approval_id"], row["platform"]
        publisher = self.publishers.get(platform)
        if publisher is None:
            self.queue.give_up(
                approval_id, platform, "failed", f"no publisher for {platform} is configured", claimed=False
            )
            return None
        row = self.queue.claim(approval_id, platform)
        if row is None:
            return None  # another copy took it first (or it was rescheduled meanwhile)
        reply_to = ReplyTarget.model_validate_json(row["reply_to"]) if row["reply_to"] else None
        try:
            result = publisher.publish(row["text"], reply_to, idempotency_key=derive_id(approval_id, "post", platform))
        except PublishRefused as exc:
            attempts = row["attempts"] + 1
            if exc.permanent or (exc.retry_after_seconds is None and attempts >= self.max_attempts):
                log.error("%s refused %s for good: %s", platform, approval_id, exc)
                self.queue.give_up(approval_id, platform, "failed", str(exc))
            else:
                log.warning("%s refused %s for now: %s", platform, approval_id, exc)
                delay = exc.retry_after_seconds or backoff_delay(self.retry_delays, attempts)
                self.queue.retry_later(approval_id, platform, delay, str(exc))
            return None
        except Exception as exc:
            if publisher.idempotent and row["attempts"] + 1 < self.max_attempts:
                log.warning("posting %s to %s failed (%r); asking again later", approval_id, platform, exc)
                delay = backoff_delay(self.retry_delays, row["attempts"] + 1)
                self.queue.retry_later(approval_id, platform, delay, repr(exc))
            elif publisher.idempotent:
                self.queue.give_up(approval_id, platform, "failed", f"gave up after {self.max_attempts} tries: {exc!r}")
            else:
                log.error("posting %s to %s was interrupted (%r): held for a human", approval_id, platform, exc)
                self.queue.give_up(
                    approval_id,
                    platform,
                    "held",
                    f"publishing to {platform} was interrupted ({exc!r}) and it may have gone out; not retrying, "
                    "to never post twice: check the account, then requeue or drop it",
                )
            return None
        post = self._published(row, publisher, result)
        if not self.queue.finish(post):
            return None
        log.info("published %s - %s to %s: %s", row["artist"], row["title"], platform, result.url or result.post_id)
        return post

    def _published(self, row: Any, publisher: Publisher, result: PublishResult) -> PublishedPost:
        return PublishedPost(
            message_id=derive_id(row["approval_id"], "published", row["platform"]),
            trace_id=row["trace_id"],
            approval_id=row["approval_id"],
            candidate_id=row["candidate_id"],
            platform=publisher.platform,
            post_id=result.post_id,
            url=result.url,
            text=row["text"],
            dry_run=publisher.platform.value == "dry_run",
            published_at=self.queue.clock(),
        )

    def _announce_pending(self) -> None:
        self._send_then_mark(
            self.queue.unannounced(),
            lambda post: post,
            self.announce,
            lambda post: self.queue.mark_announced(post.approval_id, post.platform.value),
            "announcement",
        )

    def _report_states(self) -> None:
        """Tell the curator each post's new state: at least once (reported, then marked), in order per post."""
        if self.report is None:
            return
        now = self.queue.clock()
        self._send_then_mark(
            self.queue.unreported(),
            lambda row: status_of(row, now),
            self.report,
            lambda row: self.queue.mark_reported(row["approval_id"], row["platform"], row["status_now"]),
            "post state",
        )

    def _send_then_mark(
        self,
        items: Sequence[Any],
        message_of: Callable[[Any], Envelope],
        send_one: Callable[[Envelope], None],
        mark: Callable[[Any], None],
        what: str,
    ) -> None:
        """Publish each item's message, then mark the item sent (at least once, in order). With the bus's
        batch publish, a tick's messages are confirmed together instead of one round trip after another."""
        messages = [message_of(item) for item in items]
        if self.publish_many is not None and messages:
            try:
                self.publish_many(messages)
            except Exception:
                log.exception("could not send %d %s messages yet; trying again", len(messages), what)
                return
            for item in items:  # marked only once every one is confirmed
                mark(item)
            return
        for item, message in zip(items, messages, strict=True):
            try:
                send_one(message)
            except Exception:
                log.exception("could not send the %s %s yet; trying again", what, message.message_id)
                return
            mark(item)

    def wake(self) -> None:
        self._wake.set()

    def _recover_now(self) -> None:
        try:
            with self._run_lock:
                self.recover()
        except Exception:
            log.exception("recovering the calls cut off by a crash failed; trying again")

    def _run(self) -> None:
        self._recover_now()  # here, not in start(): looking posts up on a platform must not hold up startup
        recovered = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - recovered >= self.recover_interval:
                self._recover_now()  # another copy may have crashed mid-call since
                recovered = time.monotonic()
            try:
                self.run_due()
            except Exception:
                log.exception("dispatching the post queue failed; trying again")
            self._wake.wait(self.interval)
            self._wake.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="poster-dispatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._thread is None or not self._thread.is_alive():
            self.queue.release()  # after the last call: a clean stop leaves no claim behind

"""The curator's records: candidate sets per song, the human's decisions, and the approvals to send.

Every write is keyed so that a redelivered message changes nothing: a candidate set is stored once per
message id, a song is decided once (pending → approved | rejected), and an approval's id is derived from
the set, so even a double click yields one approval and the poster publishes once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from deephype.common.bus import derive_id
from deephype.common.compose import PostFormat, commentary_of, song_link
from deephype.common.contracts import (
    Approval,
    Candidates,
    PostDecision,
    PostStatus,
    PublishedPost,
    ReplyTarget,
    length_problem,
    utcnow,
)
from deephype.common.db import Connection, Database, Schema
from deephype.common.normalise import normalise_text
from deephype.common.signing import ApprovalKeys

SCHEMA = """
CREATE TABLE IF NOT EXISTS songs (
    set_id TEXT PRIMARY KEY,             -- the Candidates message id
    trace_id TEXT NOT NULL,
    artist TEXT NOT NULL,
    title TEXT NOT NULL,
    genres TEXT NOT NULL,                -- JSON list
    message TEXT NOT NULL,               -- the Candidates message, JSON
    model TEXT NOT NULL,
    status TEXT NOT NULL,                -- pending | approved | rejected | published
    created_at TEXT NOT NULL,
    emailed_at TEXT,
    decided_at TEXT,
    approval_id TEXT,
    approval TEXT,                       -- the Approval message, JSON (an outbox until sent)
    approval_sent_at TEXT,
    post_platform TEXT,
    post_id TEXT,
    post_url TEXT,
    published_at TEXT
);
CREATE INDEX IF NOT EXISTS songs_status ON songs (status, created_at);
CREATE TABLE IF NOT EXISTS candidates (
    candidate_id TEXT PRIMARY KEY,
    set_id TEXT NOT NULL REFERENCES songs (set_id),
    rank INTEGER NOT NULL,
    text TEXT NOT NULL,
    score REAL NOT NULL,
    scores TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS candidates_set ON candidates (set_id, rank);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    set_id TEXT NOT NULL,
    candidate_id TEXT,
    decision TEXT NOT NULL,              -- approved | rejected
    text TEXT,                           -- the candidate's text as generated
    final_text TEXT,                     -- what the curator approved (maybe edited)
    edited INTEGER NOT NULL DEFAULT 0,
    decided_by TEXT NOT NULL,
    decided_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS post_states (  -- the poster's latest word on each approved post, per platform
    approval_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    state TEXT NOT NULL,                 -- queued | published | failed | held
    at TEXT NOT NULL,                    -- when the poster reported it (ISO); a report older than this is ignored
    due_at TEXT,                         -- queued: when it goes out
    post_id TEXT,
    url TEXT,
    error TEXT,                          -- failed/held: why; queued: why the last try failed
    attempts INTEGER NOT NULL DEFAULT 0,
    message_id TEXT NOT NULL,
    PRIMARY KEY (approval_id, platform)
);
CREATE TABLE IF NOT EXISTS used_tokens (token_id TEXT PRIMARY KEY, used_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (    -- signed-in sessions: a cookie works only while its row is here
    session_id TEXT PRIMARY KEY,
    password_fingerprint TEXT NOT NULL,  -- of the password it began under: a new password ends it
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
"""
SHARED_KEYS = """
CREATE TABLE IF NOT EXISTS shared_keys (  -- keys the copies made for themselves (PostgreSQL: on several hosts)
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""
# The curator's versioned schema: a change to the tables is a new step here, never an edit of an old one.
MIGRATIONS = Schema("curator", (SCHEMA, SHARED_KEYS))


# Two reports of one post at the same time: the later stage wins.
_STATE_ORDER = {"queued": 0, "held": 1, "failed": 2, "dropped": 3, "published": 4}
# What a curator may do with a post in each state the poster reported (PostDecision).
POST_ACTIONS = {"queued": ("drop",), "held": ("requeue", "drop"), "failed": ("requeue", "drop")}


class AlreadyDecided(Exception):
    """The song was approved or rejected already."""


class PostRefused(ValueError):
    """A platform's post of an approval is too long (or empty): the page says which and by how much."""

    def __init__(self, platform: str, post: str, problem: str) -> None:
        super().__init__(f"{platform}: {problem}")
        self.platform, self.post = platform, post


class NotFound(Exception):
    pass


class PostNotActionable(Exception):
    """A requeue or drop that the post's state does not allow (a published post cannot be dropped)."""


class LinkUsed(Exception):
    """The single-use review link already decided something."""


@dataclass(frozen=True)
class CandidateView:
    candidate_id: str
    rank: int
    text: str
    score: float
    scores: dict[str, float]
    # The post as the first platform gets it (template + song + link): what the curator really approves.
    composed: str = ""


@dataclass(frozen=True)
class SongView:
    set_id: str
    trace_id: str
    artist: str
    title: str
    genres: list[str]
    status: str
    model: str
    created_at: str
    mention_text: str
    mention_url: str | None
    mention_author: str
    candidates: list[CandidateView]
    approval_id: str | None
    post_url: str | None
    published_at: str | None
    # The poster's latest word on each platform's post (state, due_at, url, error, ...): see PostStatus.
    post_states: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "candidates": [c.__dict__ for c in self.candidates]}


def approval_text_problem(text: str, post_platform: str) -> str | None:
    """Why `text` (already stripped) cannot be approved for `post_platform`; None when it can."""
    return "the approved text is empty" if not text else length_problem(text, post_platform)


class CuratorStore:
    def __init__(self, db: Database, keys: ApprovalKeys, post_format: PostFormat | None = None) -> None:
        self.db = db
        self.keys = keys  # every approval is signed before it is stored, so the outbox holds signed ones
        self.post_format = post_format or PostFormat()

    def add_candidates(self, message: Candidates) -> bool:
        """Store a candidate set; False when it was stored before (a redelivery)."""
        song = message.enriched.song
        with self.db.transaction() as connection:
            inserted = connection.execute(
                "INSERT INTO songs (set_id, trace_id, artist, title, genres, message, model, status,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT (set_id) DO NOTHING",
                (
                    message.message_id,
                    message.trace_id,
                    song.artist,
                    song.title,
                    json.dumps(song.genres),
                    message.model_dump_json(),
                    f"{message.model.name} {message.model.version}",
                    utcnow().isoformat(),
                ),
            ).rowcount
            if inserted:
                connection.executemany(
                    "INSERT INTO candidates (candidate_id, set_id, rank, text, score, scores)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (c.candidate_id, message.message_id, rank, c.text, c.score, json.dumps(c.scores))
                        for rank, c in enumerate(message.candidates)
                    ],
                )
        return bool(inserted)

    def needs_email(self, set_id: str) -> bool:
        rows = self.db.query("SELECT emailed_at FROM songs WHERE set_id=?", (set_id,))
        return bool(rows) and rows[0]["emailed_at"] is None

    def mark_emailed(self, set_id: str) -> None:
        with self.db.transaction() as connection:
            connection.execute("UPDATE songs SET emailed_at=? WHERE set_id=?", (utcnow().isoformat(), set_id))

    def song(self, set_id: str) -> SongView:
        rows = self.db.query("SELECT * FROM songs WHERE set_id=?", (set_id,))
        if not rows:
            raise NotFound(f"no song with id {set_id}")
        return self._view(rows[0])

    def songs(self, status: str | None = None, limit: int = 100) -> list[SongView]:
        if status:
            rows = self.db.query("SELECT * FROM songs WHERE status=? ORDER BY created_at DESC LIMIT ?", (status, limit))
        else:
            rows = self.db.query("SELECT * FROM songs ORDER BY created_at DESC LIMIT ?", (limit,))
        return [self._view(row) for row in rows]

    def _view(self, row: Any) -> SongView:
        message = Candidates.model_validate_json(row["message"])
        mention = message.enriched.mention
        link, first = song_link(message.enriched), self.post_format.platforms[0]
        candidates = [
            CandidateView(
                r["candidate_id"],
                r["rank"],
                r["text"],
                r["score"],
                json.loads(r["scores"]),
                self.post_format.compose(first, r["text"], message.enriched.song, link),
            )
            for r in self.db.query("SELECT * FROM candidates WHERE set_id=? ORDER BY rank", (row["set_id"],))
        ]
        return SongView(
            set_id=row["set_id"],
            trace_id=row["trace_id"],
            artist=row["artist"],
            title=row["title"],
            genres=json.loads(row["genres"]),
            status=row["status"],
            model=row["model"],
            created_at=row["created_at"],
            mention_text=mention.text,
            mention_url=mention.url,
            mention_author=mention.author,
            candidates=candidates,
            approval_id=row["approval_id"],
            post_url=row["post_url"],
            published_at=row["published_at"],
            post_states=self.post_states(row["approval_id"]) if row["approval_id"] else [],
        )

    def approve(
        self,
        set_id: str,
        candidate_id: str,
        final_text: str | None,
        *,
        by: str,
        post_platform: str | Sequence[str],
        token_id: str | None = None,
        post_text: str | None = None,
        post_now: bool = False,
    ) -> Approval:
        """Approve one candidate (maybe edited) for posting on `post_platform` (one or several). Atomic: a
        song is approved at most once. Each platform's post is composed from its template; a post too long
        for its platform is refused here, where the curator can fix it, not dead-lettered by the poster later.
        `post_text` is the composed post as the curator edited it (the page shows it): left as shown, the
        sentence decides; changed, it is what goes out. A review link's `token_id` is spent only if the
        approval is made."""
        platforms = [post_platform] if isinstance(post_platform, str) else list(post_platform)
        with self.db.transaction() as connection:
            row = connection.execute("SELECT * FROM songs WHERE set_id=?", (set_id,)).fetchone()
            if row is None:
                raise NotFound(f"no song with id {set_id}")
            if row["status"] != "pending":
                raise AlreadyDecided(f"{row['artist']} - {row['title']} is already {row['status']}")
            candidate = connection.execute(
                "SELECT * FROM candidates WHERE candidate_id=? AND set_id=?", (candidate_id, set_id)
            ).fetchone()
            if candidate is None:
                raise NotFound(f"no candidate {candidate_id} for song {set_id}")
            # An edit is input from outside: cleaned (or refused, as a ValueError) before it can be posted.
            text = normalise_text(final_text if final_text is not None else candidate["text"]).strip()
            message = Candidates.model_validate_json(row["message"])
            song, link = message.enriched.song, song_link(message.enriched)
            posts = self._compose(message, candidate["text"], text, post_text, platforms)
            text = commentary_of(posts[platforms[0]], self.post_format.template(platforms[0]), song, link) or text
            if not text:
                raise ValueError("the approved text is empty")
            for platform, post in posts.items():
                if problem := approval_text_problem(post, platform):
                    raise PostRefused(platform, post, problem)
            _spend_token(connection, token_id)
            mention = message.enriched.mention
            # Reply only to posts that asked the bot (X allows replies only to posts that mention it).
            reply_to = (
                ReplyTarget(platform=mention.platform, post_id=mention.post_id)
                if mention.on_demand and mention.platform.value in platforms
                else None
            )
            approval = self.keys.sign(
                message.child(
                    Approval,
                    message_id=derive_id(set_id, "approval"),
                    candidates_message_id=set_id,
                    candidate_id=candidate_id,
                    final_text=text,
                    edited=text != candidate["text"]
                    or posts[platforms[0]] != self.post_format.compose(platforms[0], text, song, link),
                    song=message.enriched.song,
                    reply_to=reply_to,
                    approved_by=by,
                    posts=posts,
                    post_now=post_now,
                )
            )
            now = utcnow().isoformat()
            connection.execute(
                "UPDATE songs SET status='approved', decided_at=?, approval_id=?, approval=? WHERE set_id=?",
                (now, approval.message_id, approval.model_dump_json(), set_id),
            )
            connection.execute(
                "INSERT INTO decisions (set_id, candidate_id, decision, text, final_text, edited, decided_by,"
                " decided_at) VALUES (?, ?, 'approved', ?, ?, ?, ?, ?)",
                (set_id, candidate_id, candidate["text"], text, int(approval.edited), by, now),
            )
        return approval

    def _compose(
        self, message: Candidates, original: str, text: str, post_text: str | None, platforms: list[str]
    ) -> dict[str, str]:
        """Each platform's post: `text` in its template, or the curator's own edit of the whole post."""
        song, link = message.enriched.song, song_link(message.enriched)
        fmt = self.post_format
        posts = {platform: fmt.compose(platform, text, song, link) for platform in platforms}
        if post_text is None:
            return posts
        edited = normalise_text(post_text).strip()
        if not edited or edited == fmt.compose(platforms[0], original, song, link):
            return posts  # the post box was left as shown: the sentence box decides
        commentary = commentary_of(edited, fmt.template(platforms[0]), song, link)
        if commentary is not None:  # only the commentary changed: every platform keeps its own template
            return {platform: fmt.compose(platform, commentary, song, link) for platform in platforms}
        return dict.fromkeys(platforms, edited)  # the credit line itself was edited: post it as written

    def reject(self, set_id: str, *, by: str, token_id: str | None = None) -> None:
        """Reject every candidate of a song; a review link's `token_id` is spent only if it is rejected."""
        with self.db.transaction() as connection:
            row = connection.execute("SELECT status, artist, title FROM songs WHERE set_id=?", (set_id,)).fetchone()
            if row is None:
                raise NotFound(f"no song with id {set_id}")
            if row["status"] != "pending":
                raise AlreadyDecided(f"{row['artist']} - {row['title']} is already {row['status']}")
            _spend_token(connection, token_id)
            now = utcnow().isoformat()
            connection.execute("UPDATE songs SET status='rejected', decided_at=? WHERE set_id=?", (now, set_id))
            connection.executemany(
                "INSERT INTO decisions (set_id, candidate_id, decision, text, decided_by, decided_at)"
                " VALUES (?, ?, 'rejected', ?, ?, ?)",
                [
                    (set_id, r["candidate_id"], r["text"], by, now)
                    for r in connection.execute("SELECT candidate_id, text FROM candidates WHERE set_id=?", (set_id,))
                ],
            )

    def unsent_approvals(self, older_than_seconds: float = 0.0) -> list[Approval]:
        """Approvals stored but not known to be on the bus (the sender or the process died first)."""
        cutoff = (utcnow() - timedelta(seconds=older_than_seconds)).isoformat()
        rows = self.db.query(
            "SELECT approval FROM songs WHERE approval IS NOT NULL AND approval_sent_at IS NULL AND decided_at <= ?",
            (cutoff,),
        )
        return [Approval.model_validate_json(row["approval"]) for row in rows]

    def mark_approval_sent(self, approval_id: str) -> None:
        with self.db.transaction() as connection:
            connection.execute(
                "UPDATE songs SET approval_sent_at=? WHERE approval_id=? AND approval_sent_at IS NULL",
                (utcnow().isoformat(), approval_id),
            )

    def mark_published(self, post: PublishedPost) -> None:
        with self.db.transaction() as connection:
            connection.execute(
                "UPDATE songs SET status='published', post_platform=?, post_id=?, post_url=?, published_at=?,"
                " approval_sent_at=COALESCE(approval_sent_at, ?) WHERE approval_id=?",
                (
                    post.platform.value,
                    post.post_id,
                    post.url,
                    post.published_at.isoformat(),
                    utcnow().isoformat(),
                    post.approval_id,
                ),
            )

    def record_post_status(self, status: PostStatus) -> bool:
        """Keep the poster's report on one post unless a newer one is stored; False when it was not newer
        (a redelivery, or a report overtaken by a later one). A published post stays published."""
        with self.db.transaction() as connection:
            row = connection.execute(
                "SELECT state, at, message_id FROM post_states WHERE approval_id=? AND platform=?",
                (status.approval_id, status.platform.value),
            ).fetchone()
            if row is not None and (
                row["message_id"] == status.message_id
                or row["state"] == "published"
                or (datetime.fromisoformat(row["at"]), _STATE_ORDER[row["state"]])
                > (status.at, _STATE_ORDER[status.state])
            ):
                return False
            connection.execute(
                "INSERT INTO post_states (approval_id, platform, state, at, due_at, post_id, url, error, attempts,"
                " message_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (approval_id, platform) DO UPDATE"
                " SET state=excluded.state, at=excluded.at, due_at=excluded.due_at, post_id=excluded.post_id,"
                " url=excluded.url, error=excluded.error, attempts=excluded.attempts, message_id=excluded.message_id",
                (
                    status.approval_id,
                    status.platform.value,
                    status.state,
                    status.at.isoformat(),
                    status.due_at.isoformat() if status.due_at else None,
                    status.post_id,
                    status.url,
                    status.error,
                    status.attempts,
                    status.message_id,
                ),
            )
        return True

    def post_decision(
        self, set_id: str, platform: str, action: str, *, by: str, attempts: int | None = None
    ) -> PostDecision:
        """A signed requeue or drop of one approved post on one platform, checked against the poster's last
        report: NotFound (no such song or post), PostNotActionable (its state does not allow it). `attempts`
        is what the curator was shown (default: the stored report's); the poster applies the decision only
        while the post is still at that attempt."""
        rows = self.db.query("SELECT approval_id FROM songs WHERE set_id=?", (set_id,))
        if not rows:
            raise NotFound(f"no song {set_id}")
        approval_id = rows[0]["approval_id"]
        report = (
            next((r for r in self.post_states(approval_id) if r["platform"] == platform), None) if approval_id else None
        )
        if report is None:
            raise NotFound(f"song {set_id} has no post for {platform} that the poster has reported")
        if action not in POST_ACTIONS.get(report["state"], ()):
            raise PostNotActionable(
                f"a {report['state']} post cannot be {'requeued' if action == 'requeue' else 'dropped'}"
            )
        decision = PostDecision(
            approval_id=approval_id,
            platform=platform,
            action=action,
            attempts=report["attempts"] if attempts is None else attempts,
            decided_by=by,
        )
        return self.keys.sign(decision)

    def post_states(self, approval_id: str) -> list[dict[str, Any]]:
        """The poster's latest word on each platform's post of this approval, by platform."""
        rows = self.db.query(
            "SELECT platform, state, at, due_at, post_id, url, error, attempts FROM post_states"
            " WHERE approval_id=? ORDER BY platform",
            (approval_id,),
        )
        return [dict(row) for row in rows]

    def decisions(self) -> list[dict[str, Any]]:
        """Approved vs rejected texts: the training signal for the LC-GAN 'approval' value. An approved
        one carries the poster's state of each of its posts ("posts": queued, published, failed, held)."""
        decisions = [dict(row) for row in self.db.query("SELECT * FROM decisions ORDER BY id")]
        approvals = {
            row["set_id"]: row["approval_id"]
            for row in self.db.query("SELECT set_id, approval_id FROM songs WHERE approval_id IS NOT NULL")
        }
        for decision in decisions:
            approval_id = approvals.get(decision["set_id"]) if decision["decision"] == "approved" else None
            decision["posts"] = self.post_states(approval_id) if approval_id else []
        return decisions

    def token_used(self, token_id: str) -> bool:
        return bool(self.db.query("SELECT 1 FROM used_tokens WHERE token_id=?", (token_id,)))

    def use_token(self, token_id: str) -> bool:
        """Spend a single-use link token; False when it was used before."""
        try:
            with self.db.transaction() as connection:
                _spend_token(connection, token_id)
        except LinkUsed:
            return False
        return True


def _spend_token(connection: Connection, token_id: str | None) -> None:
    """Inside a decision's transaction: the link is spent together with the decision, or not at all."""
    if token_id is None:
        return
    spent = connection.execute(
        "INSERT INTO used_tokens (token_id, used_at) VALUES (?, ?) ON CONFLICT (token_id) DO NOTHING",
        (token_id, utcnow().isoformat()),
    ).rowcount
    if not spent:
        raise LinkUsed("This review link was used already.")


class SessionRegistry:
    """Server-side record of signed-in sessions, so logging out (or a new password) really ends them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def shared_key(self, name: str, make: Callable[[], str], *, replace: bool = False) -> str:
        """A key every copy of the curator uses: the first copy to ask makes it, the others read it (or, with
        `replace`, a new one takes its place)."""
        with self.db.transaction() as connection:
            connection.execute(
                "INSERT INTO shared_keys (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO "
                + ("UPDATE SET value=excluded.value, created_at=excluded.created_at" if replace else "NOTHING"),
                (name, make(), utcnow().isoformat()),
            )
            return str(connection.execute("SELECT value FROM shared_keys WHERE name=?", (name,)).fetchone()[0])

    def begin(self, session_id: str, password_fingerprint: str, max_age_seconds: int) -> None:
        now = utcnow()
        with self.db.transaction() as connection:
            connection.execute("DELETE FROM sessions WHERE expires_at < ?", (now.isoformat(),))
            connection.execute(
                "INSERT INTO sessions (session_id, password_fingerprint, created_at, expires_at) VALUES (?, ?, ?, ?)",
                (
                    session_id,
                    password_fingerprint,
                    now.isoformat(),
                    (now + timedelta(seconds=max_age_seconds)).isoformat(),
                ),
            )

    def alive(self, session_id: str, password_fingerprint: str) -> bool:
        rows = self.db.query(
            "SELECT 1 FROM sessions WHERE session_id=? AND password_fingerprint=? AND expires_at >= ?",
            (session_id, password_fingerprint, utcnow().isoformat()),
        )
        return bool(rows)

    def end(self, session_id: str) -> None:
        with self.db.transaction() as connection:
            connection.execute("DELETE FROM sessions WHERE session_id=?", (session_id,))

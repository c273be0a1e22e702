"""What the review page shows, in the curator's words: the queue a page at a time, where a post goes,
scores as plain words, and what became of a decision (approved by whom, with the poster, published).

Read-only views over the curator's database; the decisions themselves are made in store.py.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from deephype.common.compose import track_url
from deephype.common.contracts import PLATFORM_TEXT_LIMITS, Candidates, text_length
from deephype.curator.store import POST_ACTIONS, CuratorStore, SongView

STATUSES = ("pending", "approved", "rejected", "published")
PAGE_SIZE = 20
PLATFORM_NAMES = {
    "x": "X",
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "dry_run": "the dry-run timeline",
    "feed": "a feed file",
    "http": "the mentions API",
}


@dataclass(frozen=True)
class QueueRow:
    set_id: str
    artist: str
    title: str
    genres: list[str]
    status: str
    created_at: str
    mention_author: str
    mention_text: str
    posts: list[tuple[str, str]] = field(default_factory=list)  # (platform, state) as the poster last said


@dataclass(frozen=True)
class QueuePage:
    status: str  # one of STATUSES, or "all"
    rows: list[QueueRow]
    page: int
    pages: int
    counts: dict[str, int]  # per status, for the filter tabs


def queue_page(store: CuratorStore, status: str, page: int) -> QueuePage:
    """One page of songs in `status` ("all": every status), newest first."""
    counts = dict.fromkeys(STATUSES, 0)
    counts.update(
        {row["status"]: row["n"] for row in store.db.query("SELECT status, COUNT(*) AS n FROM songs GROUP BY status")}
    )
    total = sum(counts.values()) if status == "all" else counts.get(status, 0)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(page, 1), pages)
    where, parameters = ("", ()) if status == "all" else ("WHERE status=?", (status,))
    rows = store.db.query(
        f"SELECT set_id, artist, title, genres, status, created_at, message, approval_id FROM songs {where}"
        " ORDER BY created_at DESC, set_id LIMIT ? OFFSET ?",  # `where`: one of two fixed texts
        (*parameters, PAGE_SIZE, (page - 1) * PAGE_SIZE),
    )
    return QueuePage(status, [_row(store, r) for r in rows], page, pages, counts)


def _row(store: CuratorStore, row: Any) -> QueueRow:
    mention = json.loads(row["message"])["enriched"]["mention"]
    reports = store.post_states(row["approval_id"]) if row["approval_id"] else []
    return QueueRow(
        set_id=row["set_id"],
        artist=row["artist"],
        title=row["title"],
        genres=json.loads(row["genres"]),
        status=row["status"],
        created_at=row["created_at"],
        mention_author=mention["author"],
        mention_text=mention["text"],
        posts=[(r["platform"], r["state"]) for r in reports],
    )


def next_pending(store: CuratorStore, set_id: str) -> str | None:
    """The pending song to review after this one: the next older one, else the newest still pending."""
    rows = store.db.query(
        "SELECT set_id FROM songs WHERE status='pending' AND set_id != ? AND created_at <= "
        "(SELECT created_at FROM songs WHERE set_id=?) ORDER BY created_at DESC LIMIT 1",
        (set_id, set_id),
    ) or store.db.query(
        "SELECT set_id FROM songs WHERE status='pending' AND set_id != ? ORDER BY created_at DESC LIMIT 1", (set_id,)
    )
    return rows[0]["set_id"] if rows else None


@dataclass(frozen=True)
class Outcome:
    """What became of a decided song."""

    decision: str  # approved | rejected
    decided_by: str
    decided_at: str
    final_text: str | None  # the approved sentence
    edited: bool
    posts: dict[str, str]  # platform -> the post as approved for it
    post_now: bool
    sent_at: str | None  # when the approval reached the bus (the poster's queue)
    published_at: str | None
    post_url: str | None
    post_platform: str | None
    # The poster's word on each platform's post, in words: what the page shows under "Now".
    platforms: list[PlatformState] = field(default_factory=list)

    @property
    def stage(self) -> str:
        """Where the post is now, in words, until the poster has reported on it (then: `platforms`)."""
        if self.decision == "rejected":
            return "Rejected: nothing will be posted."
        if self.published_at:
            return f"Published on {platform_name(self.post_platform or '')} at {when(self.published_at)} UTC."
        if self.sent_at:
            return f"Sent to the poster at {when(self.sent_at)} UTC; waiting for it to say when it goes out."
        return "Approved; waiting to reach the poster (the message broker has not taken it yet, it is retried)."


@dataclass(frozen=True)
class PlatformState:
    """One platform's post of an approval as the poster last reported it (PostStatus)."""

    platform: str
    state: str  # queued | published | failed | held | dropped
    words: str  # what it means, for the page
    url: str | None = None  # published: the post
    error: str | None = None
    attempts: int = 0  # what a requeue or drop from the page is about (PostDecision.attempts)

    @property
    def actions(self) -> tuple[str, ...]:
        """What the curator may do with it from the page: requeue and/or drop (store.POST_ACTIONS)."""
        return POST_ACTIONS.get(self.state, ())


def platform_state(report: dict[str, Any]) -> PlatformState:
    """A PostStatus as stored (CuratorStore.post_states) in the curator's words."""
    name, state, error = platform_name(report["platform"]), report["state"], report["error"]
    if state == "published":
        words = f"Published on {name} at {when(report['at'])} UTC."
    elif state == "queued":
        words = f"Queued for {name}: due to go out at {when(report['due_at'] or report['at'])} UTC."
        if error:
            words += f" The last try failed ({error}); it is tried again then."
    elif state == "failed":
        words = f"Failed on {name}: {error or 'no reason given'}. Nothing was posted there."
    elif state == "dropped":
        words = f"Dropped: it will not go out on {name} ({error or 'by the curator'})."
    else:
        words = f"Held on {name} for a person to check: {error or 'no reason given'}"
    url = report["url"] if state == "published" else None
    return PlatformState(report["platform"], state, words, url, error, int(report.get("attempts") or 0))


def when(iso: str) -> str:
    """An ISO timestamp to the minute, as people write it."""
    return iso[:16].replace("T", " ")


def length_words(text: str, platform: str) -> str | None:
    """Why `text` cannot be posted on `platform`, in the curator's words with what to change; None: it can."""
    text = text.strip()
    if not text:
        return "the text is empty"
    length, limit = text_length(text, platform), PLATFORM_TEXT_LIMITS.get(platform)
    if limit is None or length <= limit:
        return None
    name = platform_name(platform)
    return (
        f"the post for {name} is {length} characters as {name} counts them, and {limit} is the most it takes."
        f" Cut at least {length - limit} characters"
    )


def outcome(store: CuratorStore, set_id: str) -> Outcome | None:
    rows = store.db.query("SELECT * FROM songs WHERE set_id=?", (set_id,))
    if not rows or rows[0]["status"] == "pending":
        return None
    song = rows[0]
    decisions = store.db.query(
        "SELECT * FROM decisions WHERE set_id=? ORDER BY decision = 'approved' DESC, id LIMIT 1", (set_id,)
    )
    decision = decisions[0] if decisions else None
    approval = json.loads(song["approval"]) if song["approval"] else {}
    return Outcome(
        decision="rejected" if song["status"] == "rejected" else "approved",
        decided_by=decision["decided_by"] if decision else "unknown",
        decided_at=song["decided_at"] or "",
        final_text=approval.get("final_text"),
        edited=bool(approval.get("edited")),
        posts=dict(approval.get("posts") or {}),
        post_now=bool(approval.get("post_now")),
        sent_at=song["approval_sent_at"],
        published_at=song["published_at"],
        post_url=song["post_url"],
        post_platform=song["post_platform"],
        platforms=[platform_state(r) for r in store.post_states(song["approval_id"])] if song["approval_id"] else [],
    )


DECIDED_BY = {
    "curator": "you (logged in)",
    "review-link": "the emailed review link",
    "curator-api": "the JSON API",
    "auto-approve": "auto-approve (no human)",
}


@dataclass(frozen=True)
class PlainScore:
    name: str  # fluent | on-genre | novel
    words: str
    level: str  # good | fair | weak: the colour on the page


def plain_scores(scores: dict[str, float]) -> list[PlainScore]:
    """The model's numbers as three judgements a person can use; the raw numbers stay one click away.

    fluent: the independent ranker's per-token log-likelihood (else the decoder's own); -2.5 is about what
    held-out human sentences score. on-genre: the masked genre judge's probability that the sentence comes
    from this song's genre family. novel: how far the LC-GAN moved the sample away from where it began."""
    plain = []
    fluency = scores.get("fluency", scores.get("loglik_per_token"))
    if fluency is not None:
        plain.append(
            PlainScore("fluent", "reads smoothly", "good")
            if fluency >= -2.5
            else PlainScore("fluent", "mostly", "fair")
            if fluency >= -3.5
            else PlainScore("fluent", "clumsy in places", "weak")
        )
    if (genre_fit := scores.get("genre_fit")) is not None:
        chance = math.exp(min(genre_fit, 0.0))
        level = "good" if chance >= 0.5 else "fair" if chance >= 0.2 else "weak"
        plain.append(PlainScore("on-genre", f"{chance:.0%} likely", level))
    if (move := scores.get("latent_move")) is not None:
        plain.append(
            PlainScore("novel", "a fresh angle", "good")
            if move >= 2.0
            else PlainScore("novel", "somewhat", "fair")
            if move >= 0.5
            else PlainScore("novel", "close to the usual", "weak")
        )
    return plain


def platform_name(platform: str) -> str:
    return PLATFORM_NAMES.get(platform, platform)


def destination(author: str, platforms: list[str], mention_platform: str, on_demand: bool) -> str:
    """Where an approval of this song goes, in words (a reply only to a post that asked the bot)."""
    names = " and ".join(platform_name(p) for p in platforms)
    if on_demand and mention_platform in platforms:
        return f"{names}, as a reply to {author}'s post"
    return f"{names}, as a new post" + (" (nothing leaves this machine)" if platforms == ["dry_run"] else "")


def song_context(store: CuratorStore, song: SongView, platforms: list[str]) -> dict[str, Any]:
    """Everything the song page shows besides the song itself."""
    message = Candidates.model_validate_json(
        store.db.query("SELECT message FROM songs WHERE set_id=?", (song.set_id,))[0]["message"]
    )
    mention = message.enriched.mention
    first = song.candidates[0] if song.candidates else None
    composed = getattr(first, "composed", "") if first else ""
    # Cross-posted, a post must fit every platform: the live count counts as the strictest one does.
    strictest = min(platforms, key=lambda p: PLATFORM_TEXT_LIMITS.get(p, 10**9))
    return {
        "song": song,
        "song_url": track_url(message.enriched.song.track_id) or track_url(mention.spotify_track_id),
        # No id from a provider (the offline catalog): a search the curator can still listen from.
        "song_search_url": "https://musicbrainz.org/search?"
        + urlencode({"type": "recording", "query": f'artist:"{song.artist}" AND recording:"{song.title}"'}),
        "mention_platform": mention.platform.value,
        "destination": destination(song.mention_author, platforms, mention.platform.value, mention.on_demand),
        "platform": strictest,
        "destination_count": len(platforms),
        "limit": PLATFORM_TEXT_LIMITS.get(strictest),
        "outcome": outcome(store, song.set_id),
        "next_id": next_pending(store, song.set_id),
        # The first candidate's post with its sentence cut out: where "write my own" text goes, for the count.
        "own_frame": composed.replace(first.text, "{text}", 1) if first and first.text in composed else "{text}",
    }


def decided_by_words(by: str) -> str:
    return DECIDED_BY.get(by, by)

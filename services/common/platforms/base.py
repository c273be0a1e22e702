"""What every platform module shares: options, pauses, cursors, the post a source hands in, and the
publisher interface with its one rule (PublishRefused only when the platform certainly did NOT publish: a
timeout, a dropped connection or a garbled success body leaves the outcome unknown and goes up unchanged).

One module per platform (x.py, mastodon.py, bluesky.py) holds everything the project knows about it: client
and auth, errors and rate-limit headers, reading timelines, posting, URLs. build.py picks them by name.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import ConfigDict, Field, SecretStr, ValidationError

from deephype.common.contracts import Platform, ReplyTarget
from deephype.common.normalise import NormalisedInput

log = logging.getLogger("deephype.platforms")
Clock = Callable[[], float]  # epoch seconds; tests pass a fake one to step past a pause

X_TIMELINES = ("mentions", "home", "search")
MASTODON_TIMELINES = ("notifications", "home", "hashtags")
BLUESKY_TIMELINES = ("notifications", "timeline")


@dataclass(frozen=True)
class PlatformOptions:
    """Knobs of the platform clients, read from settings (see .env.example)."""

    # Mentions first: a post seen there is marked as mentioning the bot before another timeline shows it.
    x_timelines: tuple[str, ...] = ("mentions",)
    x_search_query: str = ""
    # X is pay-per-use: with the credits gone every call fails until someone tops up.
    x_payment_pause_seconds: float = 3600.0
    mastodon_timelines: tuple[str, ...] = ("notifications", "home")
    mastodon_hashtags: tuple[str, ...] = ()
    bluesky_timelines: tuple[str, ...] = ("notifications", "timeline")
    # Used when a 429 carries no usable reset time.
    default_rate_limit_pause_seconds: float = 60.0
    timeout_seconds: float = 30.0
    page_size: int = 50
    # Pages read per timeline and round when catching up; the rest comes next round.
    max_pages: int = 5

    @classmethod
    def from_settings(cls, settings: Any) -> PlatformOptions:
        values: dict[str, Any] = {}
        for name, default in cls.__dataclass_fields__.items():
            # Platform-specific knobs keep their names; the shared ones are platform_<name> in Settings.
            value = getattr(settings, name, None)
            if value is None:
                value = getattr(settings, f"platform_{name}", None)
            if value is not None:
                values[name] = tuple(value) if isinstance(default.default, tuple) else value
        return cls(**values)


def require(settings: Any, *names: str) -> list[str]:
    """The values of these settings; a clear error naming every one that is empty."""
    values = []
    missing = []
    for name in names:
        value = getattr(settings, name, "")
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not value:
            missing.append(f"DEEPHYPE_{name.upper()}")
        values.append(value)
    if missing:
        raise ValueError(f"missing setting(s) {', '.join(missing)}")
    return values


def check_timelines(platform: str, timelines: Iterable[str], known: tuple[str, ...]) -> tuple[str, ...]:
    timelines = tuple(timelines)
    unknown = [name for name in timelines if name not in known]
    if unknown or not timelines:
        raise ValueError(f"{platform} timelines {list(timelines)!r}: choose from {', '.join(known)}")
    return timelines


class Pause:
    """Until when a source stays quiet, and why; logs once when it starts and once when it ends."""

    def __init__(self, source: str, clock: Clock) -> None:
        self.source = source
        self.clock = clock
        self.until = 0.0
        self.reason = ""

    def active(self) -> bool:
        if not self.until:
            return False
        if self.clock() < self.until:
            return True
        log.info("%s: pause over (%s), reading again", self.source, self.reason)
        self.until, self.reason = 0.0, ""
        return False

    def start(self, until: float, reason: str) -> None:
        self.until = max(until, self.clock() + 1.0)
        self.reason = reason
        log.warning(
            "%s: %s; pausing for %.0f s, until %s",
            self.source,
            reason,
            self.until - self.clock(),
            datetime.fromtimestamp(self.until, UTC).isoformat(timespec="seconds"),
        )


def load_cursor(cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    try:
        positions = json.loads(cursor)
    except ValueError:
        positions = None
    if not isinstance(positions, dict):
        raise ValueError(f"saved cursor {cursor!r} is not a JSON object of timeline positions")
    return {str(key): str(value) for key, value in positions.items()}


def dump_cursor(positions: dict[str, str]) -> str:
    return json.dumps(positions, sort_keys=True, separators=(",", ":"))


def make_post(**fields: Any) -> RawPost | None:
    """A RawPost, or None (logged) when the platform gave us something we cannot use, e.g. no text."""
    try:
        return RawPost(**fields)
    except ValidationError as exc:
        log.info("%s post %s skipped: %s", fields.get("platform"), fields.get("post_id"), str(exc).splitlines()[0])
        return None


class TimelineSource:
    """What the three platform sources share: one position per timeline in the cursor, the pause, and
    remembering positions past posts it skipped (own posts, boosts), which the listener never saves
    because nothing is yielded for them, so they are not read again every round."""

    def __init__(self, name: str, timelines: tuple[str, ...], options: PlatformOptions, clock: Clock) -> None:
        self.name = name
        self.timelines = timelines
        self.options = options
        self.clock = clock
        self.pause = Pause(name, clock)
        self._handled: dict[str, str] = {}

    def fetch(self, cursor: str | None) -> Iterator[tuple[RawPost, str]]:
        if self.pause.active():
            return
        positions = load_cursor(cursor)
        for feed, position in self._handled.items():
            if feed not in positions or self._position_key(position) > self._position_key(positions[feed]):
                positions[feed] = position
        try:
            self._prepare()
            for feed in self._feeds():
                for position, post in self._read(feed, positions.get(feed)):
                    positions[feed] = position
                    # A post two timelines show goes out twice (the listener dedupes by post id), so
                    # that each timeline's position is saved. Mentions come first, so they win.
                    if post is not None:
                        yield post, dump_cursor(positions)
                    # Only reached once the listener has handled the post (or it was skipped).
                    self._handled[feed] = position
                if self.pause.active():
                    return
        except Exception as exc:
            pause = self._pause_for(exc)
            if pause is None:
                raise
            self.pause.start(*pause)

    def _feeds(self) -> Iterable[str]:
        return self.timelines

    def _prepare(self) -> None:
        """Look up what the source needs once (the bot's own account)."""

    def _read(self, feed: str, position: str | None) -> Iterable[tuple[str, RawPost | None]]:
        raise NotImplementedError

    def _position_key(self, position: str) -> Any:
        return int(position)

    def _pause_for(self, exc: Exception) -> tuple[float, str] | None:
        """(until, reason) when this error means 'wait', else None and the error goes up."""
        return None


class RawPost(NormalisedInput):
    """A post as a source (or POST /v1/mentions) hands it to the listener; its text normalised here, at
    the edge, before detection sees it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    platform: Platform = Platform.http
    post_id: str = Field(min_length=1, max_length=256)
    author: str = Field(min_length=1, max_length=256)
    text: str = Field(min_length=1, max_length=20_000)
    url: str | None = Field(default=None, max_length=2048)
    created_at: datetime | None = None
    # The post mentions the bot: an on-demand request the poster may reply to.
    mentions_bot: bool = False


@dataclass(frozen=True)
class PublishResult:
    post_id: str
    url: str | None


class PublishRefused(Exception):
    """The platform answered and did NOT publish (4xx, 429, 5xx with a response): safe to try again later."""

    def __init__(self, reason: str, retry_after_seconds: float | None = None, permanent: bool = False) -> None:
        super().__init__(reason)
        self.retry_after_seconds = retry_after_seconds
        self.permanent = permanent


class Publisher(Protocol):
    platform: Platform
    # True when calling publish again with the same key can never make a second post
    # (Mastodon's Idempotency-Key, the poster's own dry-run table). Otherwise an interrupted call is never retried.
    idempotent: bool

    @property
    def text_limit(self) -> int: ...

    def publish(self, text: str, reply_to: ReplyTarget | None, idempotency_key: str) -> PublishResult:
        """Publish, or raise PublishRefused when the platform said no. Any other error means 'unknown'."""


@dataclass(frozen=True)
class PostMetrics:
    """What the audience did with one of the bot's posts, as the platform counts it at read time."""

    likes: int
    reposts: int
    replies: int
    quotes: int | None = None  # X and Bluesky count quotes; Mastodon has none


class ReadRefused(Exception):
    """Reading a post's counts failed in a known way: wait `retry_after_seconds` (None: the reader's own
    backoff), or never again when the post is `gone` (deleted, or not visible to the bot)."""

    def __init__(self, reason: str, retry_after_seconds: float | None = None, gone: bool = False) -> None:
        super().__init__(reason)
        self.retry_after_seconds = retry_after_seconds
        self.gone = gone


class ReadsMetrics(Protocol):
    """A publisher that can read back the likes, reposts and replies of a post it made."""

    def read_metrics(self, post_id: str) -> PostMetrics:
        """The post's counts now; ReadRefused when the platform said no (rate limit, gone)."""


class FindsOwnPosts(Protocol):
    """A platform without idempotency keys that can say, after a crash, whether a post went out."""

    def find_posted(self, text: str) -> PublishResult | None:
        """The bot's recent post with this text, or None when there is none. Raises when it cannot tell."""


_LINK = re.compile(r"https?://\S+")


def same_post_text(posted: str, ours: str) -> bool:
    """Whether a post read back from a platform is ours: links compared as links (X shortens them to t.co),
    HTML entities undone (X escapes &, <, >)."""
    return _LINK.sub("<link>", html.unescape(posted).strip()) == _LINK.sub("<link>", ours.strip())


def refusal_for_status(platform: str, status: int, detail: str, retry_after: float | None) -> PublishRefused:
    """How an HTTP error status maps onto the poster's choices: wait and retry, or give up for good."""
    if status == 429:
        return PublishRefused(f"{platform} rate limit reached (429): {detail}", retry_after)
    if status >= 500:
        return PublishRefused(f"{platform} server error {status}: {detail}", retry_after)
    # 401/403 (credentials, permissions, duplicate text), 400/404/422 (the request itself): retrying the
    # same request cannot help, a human has to look.
    return PublishRefused(f"{platform} refused the post ({status}): {detail}", permanent=True)


def reply_id(platform: Platform, reply_to: ReplyTarget | None) -> str | None:
    if reply_to is None:
        return None
    if reply_to.platform != platform:
        log.warning("reply target is on %s, not %s: posting top-level instead", reply_to.platform, platform)
        return None
    return reply_to.post_id


def write_private(path: Path, text: str) -> None:
    """Write a secret atomically (temp file + rename), readable only by us."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def utc(value: datetime | None) -> datetime | None:
    # Mastodon.py hands out local-time datetimes; the rest of the bot works in UTC.
    return value.astimezone(UTC) if value is not None else None


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))

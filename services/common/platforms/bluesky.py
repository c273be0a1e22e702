"""Bluesky (atproto): the saved session and its login backoff, errors and rate limits, reading
notifications / timeline, posting with rich-text facets (links, mentions, tags at UTF-8 byte offsets), URLs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from deephype.common.contracts import PLATFORM_TEXT_LIMITS, Platform, ReplyTarget
from deephype.common.platforms.base import (
    BLUESKY_TIMELINES,
    Clock,
    PlatformOptions,
    PostMetrics,
    PublishRefused,
    PublishResult,
    RawPost,
    ReadRefused,
    TimelineSource,
    check_timelines,
    make_post,
    parse_time,
    refusal_for_status,
    reply_id,
    require,
    same_post_text,
    write_private,
)

log = logging.getLogger("deephype.platforms")


LOGIN_RETRY_SECONDS = 900.0


class BlueskyLoginError(Exception):
    """Not logging in now: the last password login was refused moments ago."""


# Errors that mean the saved session is no longer any good, so logging in again with the password helps.
BLUESKY_TOKEN_ERRORS = {"ExpiredToken", "InvalidToken", "AuthenticationRequired", "AuthMissing"}


@dataclass
class BlueskySession:
    """An atproto Client that logs in once and then reuses its session across restarts.

    createSession is rate limited per account (30 per 5 minutes, 300 a day), so the session string is
    saved after every login and refresh and restored at the next start."""

    base_url: str
    handle: str
    password: str
    session_path: Path
    timeout: float
    did: str = ""
    _client: Any = field(default=None, repr=False)
    _restored: bool = False
    _login_blocked_until: float = 0.0

    @classmethod
    def from_settings(cls, settings: Any, service: str, timeout: float) -> BlueskySession:
        handle, password = require(settings, "bluesky_handle", "bluesky_app_password")
        session_path = settings.service_state_dir(service) / "bluesky.session"
        return cls(settings.bluesky_base_url, handle, password, session_path, timeout)

    def client(self) -> Any:
        if self._client is None:
            from atproto import Client
            from atproto_client.request import Request

            client = Client(base_url=self.base_url, request=Request(timeout=self.timeout))
            client.on_session_change(self._on_session_change)
            saved = self._saved_session()
            if saved:
                client.login(session_string=saved, fetch_bsky_profile=False)
                self._restored = True
                log.info("bluesky: restored the saved session of %s", self.handle)
            else:
                self._login(client)
            self._client = client
        return self._client

    def _saved_session(self) -> str:
        if not self.session_path.exists():
            return ""
        saved = self.session_path.read_text(encoding="utf-8").strip()
        saved_handle, _, rest = saved.partition(":::")
        saved_did = rest.partition(":::")[0]
        if self.handle.lower() not in {saved_handle.lower(), saved_did.lower()}:
            log.info("bluesky: the saved session is for %s, not %s; logging in afresh", saved_handle, self.handle)
            return ""
        return saved

    def _login(self, client: Any) -> None:
        """Log in with the app password; after a refusal, wait before trying again, because createSession
        is limited per account and a wrong password retried every poll would lock the account out."""
        from atproto_client.exceptions import UnauthorizedError

        if time.monotonic() < self._login_blocked_until:
            raise BlueskyLoginError(
                f"bluesky: logging in as {self.handle} was refused; not trying again for "
                f"{self._login_blocked_until - time.monotonic():.0f} s (check DEEPHYPE_BLUESKY_APP_PASSWORD)"
            )
        try:
            client.login(self.handle, self.password, fetch_bsky_profile=False)
        except UnauthorizedError:
            self._login_blocked_until = time.monotonic() + LOGIN_RETRY_SECONDS
            raise

    def call(self, action: Callable[[Any], Any]) -> Any:
        """Run action(client); if a restored session turns out dead, log in with the password once."""
        from atproto_client.exceptions import BadRequestError, UnauthorizedError

        client = self.client()
        try:
            return action(client)
        except (UnauthorizedError, BadRequestError) as exc:
            if not self._restored or bluesky_error_name(exc) not in BLUESKY_TOKEN_ERRORS:
                raise
            log.warning("bluesky: the saved session is no longer valid (%s); logging in again", exc)
            self._restored = False
            self._login(client)
            return action(client)

    def _on_session_change(self, event: Any, session: Any) -> None:
        self.did = session.did
        self.handle = session.handle or self.handle
        if getattr(event, "value", event) != "import":  # an import is what we saved already
            write_private(self.session_path, session.export())


def bluesky_error_name(exc: BaseException) -> str:
    content = getattr(getattr(exc, "response", None), "content", None)
    return str(getattr(content, "error", "") or "")


def bluesky_rate_limit_reset(exc: Any, clock: Clock, default_pause: float) -> float:
    """When a 429 from Bluesky ends, in epoch seconds: ratelimit-reset, else retry-after, else a default."""
    if exc.reset_at is not None:
        return exc.reset_at.timestamp()
    if exc.retry_after is not None:
        return clock() + exc.retry_after
    return clock() + default_pause


def bluesky_post_url(handle_or_did: str, uri: str) -> str:
    rkey = uri.rstrip("/").rsplit("/", 1)[-1]
    return f"https://bsky.app/profile/{handle_or_did}/post/{rkey}"


class BlueskySource(TimelineSource):
    """Bluesky notifications (mentions, replies) and home timeline via atproto. Neither endpoint reads
    forward from a position, so each timeline remembers the indexedAt of the newest post it handled and
    pages back until it reaches it."""

    def __init__(
        self,
        session: BlueskySession,
        timelines: Iterable[str],
        bot_handles: Iterable[str],
        options: PlatformOptions,
        clock: Clock = time.time,
    ) -> None:
        super().__init__("bluesky", check_timelines("bluesky", timelines, BLUESKY_TIMELINES), options, clock)
        self.session = session
        self.bot_handles = {handle.lower().lstrip("@") for handle in bot_handles}

    def _prepare(self) -> None:
        self.session.client()  # log in (or restore the saved session) before the first read

    def _pause_for(self, exc: Exception) -> tuple[float, str] | None:
        from atproto_client.exceptions import RateLimitExceededError

        if not isinstance(exc, RateLimitExceededError):
            return None
        reset = bluesky_rate_limit_reset(exc, self.clock, self.options.default_rate_limit_pause_seconds)
        return reset, "Bluesky rate limit reached (429)"

    def _position_key(self, position: str) -> Any:
        return parse_time(position)

    def _read(self, feed: str, after: str | None) -> list[tuple[str, RawPost | None]]:
        """(indexedAt, post) pairs indexed after `after`, oldest first."""
        limit = max(1, min(self.options.page_size, 100))
        after_time = parse_time(after) if after else None
        found: list[tuple[datetime, str, RawPost | None]] = []
        page_cursor: str | None = None
        for _ in range(self.options.max_pages if after else 1):
            params: dict[str, Any] = {"limit": limit}
            if page_cursor:
                params["cursor"] = page_cursor
            if feed == "notifications":
                page = self.session.call(lambda client, p=params: client.app.bsky.notification.list_notifications(p))
                items = [(item.indexed_at, item) for item in page.notifications]
            else:
                page = self.session.call(lambda client, p=params: client.app.bsky.feed.get_timeline(p))
                items = [(item.post.indexed_at, item) for item in page.feed]
            reached_position = False
            for indexed_at, item in items:
                when = parse_time(indexed_at)
                if after_time is not None and when <= after_time:
                    reached_position = True
                    continue
                found.append((when, indexed_at, self._post(item, feed)))
            page_cursor = page.cursor
            if reached_position or not page_cursor or not items:
                break
        else:
            if after:
                log.warning(
                    "bluesky %s: more than %d pages of new posts; the oldest are skipped", feed, self.options.max_pages
                )
        found.sort(key=lambda entry: entry[0])
        return [(indexed_at, post) for _, indexed_at, post in found]

    def _post(self, item: Any, feed: str) -> RawPost | None:
        if feed == "notifications":
            if item.reason not in {"mention", "reply"}:
                return None
            uri, author, record, mentions_bot = item.uri, item.author, item.record, True
        else:
            if item.reason is not None:
                return None  # a repost re-shows someone's older post; it is not news
            uri, author, record = item.post.uri, item.post.author, item.post.record
            mentions_bot = self._mentions_me(record)
        if author.did == self.session.did or author.handle.lower() in self.bot_handles:
            return None
        return make_post(
            platform=Platform.bluesky,
            # The at:// URI names the post everywhere in atproto, and is what a reply needs.
            post_id=uri,
            author=author.handle,
            text=getattr(record, "text", None) or "",
            url=bluesky_post_url(author.handle, uri),
            created_at=getattr(record, "created_at", None),
            mentions_bot=mentions_bot,
        )

    def _mentions_me(self, record: Any) -> bool:
        for facet in getattr(record, "facets", None) or []:
            for feature in facet.features:
                if getattr(feature, "did", None) == self.session.did:
                    return True
        return False


def bluesky_facets(client: Any, text: str) -> list[Any]:
    """Rich text: links, #tags and @mentions (resolved to DIDs; an unknown handle stays plain text) as
    facets whose indexes are byte offsets into the UTF-8 text, so an emoji or an accent before them counts
    its bytes, not one character."""
    return list(client.detect_facets(text))


class BlueskyPublisher:
    platform = Platform.bluesky
    # createRecord has no idempotency key (a client-chosen rkey would be one; atproto's send_post picks it).
    idempotent = False

    def __init__(self, session: BlueskySession, options: PlatformOptions, clock: Clock = time.time) -> None:
        self.session = session
        self.options = options
        self.clock = clock

    @property
    def text_limit(self) -> int:
        # Bluesky counts graphemes, as text_length does for it.
        return PLATFORM_TEXT_LIMITS["bluesky"]

    def publish(self, text: str, reply_to: ReplyTarget | None, idempotency_key: str) -> PublishResult:
        from atproto_client.exceptions import RequestErrorBase

        try:
            # Logging in, looking up the reply target and resolving @handles post nothing, so every failure
            # here is a refusal.
            self.session.client()
            reply_ref = self._reply_ref(reply_id(self.platform, reply_to))
            facets = self.session.call(lambda client: bluesky_facets(client, text))
        except BlueskyLoginError as exc:
            raise PublishRefused(str(exc), permanent=True) from exc
        except RequestErrorBase as exc:
            if exc.response is None:
                raise PublishRefused(f"bluesky unreachable before posting: {exc!r}") from exc
            raise self._refusal(exc) from exc
        try:
            created = self.session.call(
                lambda client: client.send_post(
                    text,
                    profile_identify=self.session.did,
                    reply_to=reply_ref,
                    facets=facets or None,
                )
            )
        except RequestErrorBase as exc:
            if exc.response is None:
                raise  # timeout or lost connection during createRecord: it may have posted
            raise self._refusal(exc) from exc
        return PublishResult(post_id=created.uri, url=bluesky_post_url(self.session.handle, created.uri))

    def find_posted(self, text: str) -> PublishResult | None:
        """After a crash mid-call: is this text among the bot's latest posts?"""
        feed = self.session.call(lambda client: client.get_author_feed(actor=self.session.did, limit=30))
        for item in feed.feed:
            if same_post_text(getattr(item.post.record, "text", "") or "", text):
                return PublishResult(post_id=item.post.uri, url=bluesky_post_url(self.session.handle, item.post.uri))
        return None

    def read_metrics(self, post_id: str) -> PostMetrics:
        """like, repost, reply and quote counts of one of the bot's posts (app.bsky.feed.getPosts)."""
        from atproto_client.exceptions import RateLimitExceededError, RequestErrorBase

        try:
            posts = self.session.call(lambda client: client.get_posts([post_id])).posts
        except BlueskyLoginError as exc:
            raise ReadRefused(str(exc), LOGIN_RETRY_SECONDS) from exc
        except RateLimitExceededError as exc:
            reset = bluesky_rate_limit_reset(exc, self.clock, self.options.default_rate_limit_pause_seconds)
            raise ReadRefused("bluesky rate limit reached (429)", max(reset - self.clock(), 1.0)) from exc
        except RequestErrorBase as exc:
            raise ReadRefused(f"bluesky refused the read: {exc!r}") from exc
        if not posts:  # getPosts leaves out deleted posts
            raise ReadRefused(f"bluesky: post {post_id} is gone", gone=True)
        post = posts[0]
        return PostMetrics(
            likes=int(post.like_count or 0),
            reposts=int(post.repost_count or 0),
            replies=int(post.reply_count or 0),
            quotes=int(post.quote_count or 0),
        )

    def _reply_ref(self, uri: str | None) -> Any:
        """A reply names the post it answers (parent) and the top of its thread (root), each by uri + cid."""
        if uri is None:
            return None
        from atproto import models

        if not uri.startswith("at://"):
            raise PublishRefused(f"bluesky reply target {uri!r} is not an at:// URI", permanent=True)
        posts = self.session.call(lambda client: client.get_posts([uri])).posts
        if not posts:
            raise PublishRefused(f"bluesky reply target {uri} no longer exists", permanent=True)
        parent = models.create_strong_ref(posts[0])
        thread = getattr(posts[0].record, "reply", None)
        root = thread.root if thread is not None else parent
        return models.AppBskyFeedPost.ReplyRef(parent=parent, root=root)

    def _refusal(self, exc: Any) -> PublishRefused:
        from atproto_client.exceptions import RateLimitExceededError

        retry_after = None
        if isinstance(exc, RateLimitExceededError):
            retry_after = max(bluesky_rate_limit_reset(exc, self.clock, 60.0) - self.clock(), 1.0)
        return refusal_for_status("bluesky", exc.response.status_code, str(exc), retry_after)

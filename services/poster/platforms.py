"""Publishers for X, Mastodon and Bluesky behind the Publisher interface.

The one rule that matters: raise PublishRefused only when the platform answered and certainly did NOT
publish (an HTTP error status). A timeout, a dropped connection or a garbled success body leaves the
outcome unknown, so those errors go up unchanged and the poster never retries a non-idempotent platform.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from deephype.common.contracts import PLATFORM_TEXT_LIMITS, Platform, ReplyTarget
from deephype.listener.platforms import (
    BlueskyLoginError,
    BlueskySession,
    Clock,
    PlatformOptions,
    bluesky_post_url,
    bluesky_rate_limit_reset,
    mastodon_client,
    mastodon_status_code,
    x_client,
    x_me,
    x_status,
)
from deephype.poster.publishers import Publisher, PublishRefused, PublishResult

log = logging.getLogger("deephype.poster.platforms")


def refusal_for_status(platform: str, status: int, detail: str, retry_after: float | None) -> PublishRefused:
    """How an HTTP error status maps onto the poster's choices: wait and retry, or give up for good."""
    if status == 429:
        return PublishRefused(f"{platform} rate limit reached (429): {detail}", retry_after)
    if status >= 500:
        return PublishRefused(f"{platform} server error {status}: {detail}", retry_after)
    # 401/403 (credentials, permissions, duplicate text), 400/404/422 (the request itself): retrying the
    # same request cannot help, a human has to look.
    return PublishRefused(f"{platform} refused the post ({status}): {detail}", permanent=True)


def _reply_id(platform: Platform, reply_to: ReplyTarget | None) -> str | None:
    if reply_to is None:
        return None
    if reply_to.platform != platform:
        log.warning("reply target is on %s, not %s: posting top-level instead", reply_to.platform, platform)
        return None
    return reply_to.post_id


# ------------------------------------------------------------------------------------------------ X


def x_problem_detail(exc: Any) -> str:
    """X v2 errors are problem objects ({"title", "detail"}), which tweepy leaves out of its message."""
    try:
        body = exc.response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])
    return "; ".join(exc.api_messages) or str(exc)


class XPublisher:
    platform = Platform.x
    # X has no idempotency key: a call that timed out may have posted, so it is never retried.
    idempotent = False

    def __init__(self, client: Any, options: PlatformOptions, clock: Clock = time.time) -> None:
        self.client = client
        self.options = options
        self.clock = clock
        self._username: str | None = None

    @property
    def text_limit(self) -> int:
        return PLATFORM_TEXT_LIMITS["x"]

    def publish(self, text: str, reply_to: ReplyTarget | None, idempotency_key: str) -> PublishResult:
        import tweepy

        # Looked up before posting: once the tweet exists, nothing may fail between it and our record.
        username = self._own_username()
        reply_id = _reply_id(self.platform, reply_to)
        try:
            response = self.client.create_tweet(text=text, in_reply_to_tweet_id=reply_id, user_auth=True)
        except tweepy.HTTPException as exc:
            raise self._refusal(exc) from exc
        post_id = str(response.data["id"])
        return PublishResult(post_id=post_id, url=f"https://x.com/{username}/status/{post_id}")

    def _own_username(self) -> str:
        """The bot's username for post URLs. Nothing is posted yet, so any failure here is a refusal."""
        import tweepy

        if self._username is None:
            try:
                self._username = x_me(self.client).username
            except tweepy.HTTPException as exc:
                raise self._refusal(exc) from exc
            except Exception as exc:
                raise PublishRefused(f"x: could not look up the bot's account before posting: {exc!r}") from exc
        return self._username

    def _refusal(self, exc: Any) -> PublishRefused:
        status = x_status(exc) or 0
        detail = x_problem_detail(exc)
        if status == 402:
            return PublishRefused(
                f"x answered 402 Payment Required ({detail}): the account's API credits are used up, top them up",
                self.options.x_payment_pause_seconds,
            )
        reset = getattr(exc, "reset_time", None)
        retry_after = max(float(reset) - self.clock(), 1.0) if reset else None
        return refusal_for_status("x", status, detail, retry_after)


# ----------------------------------------------------------------------------------------- Mastodon


class MastodonPublisher:
    platform = Platform.mastodon
    # Mastodon keeps the Idempotency-Key for an hour: a repeat returns the first status, never a second.
    idempotent = True

    def __init__(self, api: Any, clock: Clock = time.time) -> None:
        self.api = api
        self.clock = clock

    @property
    def text_limit(self) -> int:
        return PLATFORM_TEXT_LIMITS["mastodon"]

    def publish(self, text: str, reply_to: ReplyTarget | None, idempotency_key: str) -> PublishResult:
        from mastodon import MastodonAPIError, MastodonRatelimitError

        try:
            status = self.api.status_post(
                text,
                in_reply_to_id=_reply_id(self.platform, reply_to),
                idempotency_key=idempotency_key,
            )
        except MastodonRatelimitError as exc:
            reset = self.api.ratelimit_reset
            retry_after = max(reset - self.clock(), 1.0) if reset else None
            raise PublishRefused(f"mastodon rate limit reached (429): {exc}", retry_after) from exc
        except MastodonAPIError as exc:
            status_code = mastodon_status_code(exc)
            if status_code is None:  # e.g. a garbled success body: it may well have posted
                raise
            detail = str(exc.args[3] if len(exc.args) > 3 and exc.args[3] else exc.args[2])
            raise refusal_for_status("mastodon", status_code, detail, None) from exc
        return PublishResult(post_id=str(status["id"]), url=status.get("url") or status.get("uri"))


# ------------------------------------------------------------------------------------------ Bluesky


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
        # Bluesky counts graphemes; the poster counts code points, which is never fewer, so this is safe.
        return PLATFORM_TEXT_LIMITS["bluesky"]

    def publish(self, text: str, reply_to: ReplyTarget | None, idempotency_key: str) -> PublishResult:
        from atproto_client.exceptions import RequestErrorBase
        from atproto_client.utils import facet_detection

        try:
            # Logging in and looking up the reply target post nothing, so every failure here is a refusal.
            self.session.client()
            reply_ref = self._reply_ref(_reply_id(self.platform, reply_to))
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
                    # Links and hashtags become clickable; found locally, without lookups.
                    facets=facet_detection.detect_facets(text) or None,
                )
            )
        except RequestErrorBase as exc:
            if exc.response is None:
                raise  # timeout or lost connection during createRecord: it may have posted
            raise self._refusal(exc) from exc
        return PublishResult(post_id=created.uri, url=bluesky_post_url(self.session.handle, created.uri))

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


# ------------------------------------------------------------------------------------------ factory


def build_platform_publisher(
    name: str, settings: Any, options: PlatformOptions | None = None, clock: Clock = time.time
) -> Publisher:
    options = options or PlatformOptions.from_settings(settings)
    if name == "x":
        return XPublisher(x_client(settings, options.timeout_seconds), options, clock)
    if name == "mastodon":
        return MastodonPublisher(mastodon_client(settings, options.timeout_seconds), clock)
    if name == "bluesky":
        return BlueskyPublisher(
            BlueskySession.from_settings(settings, "poster", options.timeout_seconds), options, clock
        )
    raise ValueError(f"unknown platform {name!r} (choose from x, mastodon, bluesky)")

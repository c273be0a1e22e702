"""X (api.x.com v2 through tweepy): client and OAuth 1.0a user context, errors and rate-limit headers,
reading mentions / home / search, posting (replies only to posts that mentioned the bot), post URLs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import requests

from deephype.common.contracts import PLATFORM_TEXT_LIMITS, Platform, ReplyTarget
from deephype.common.platforms.base import (
    X_TIMELINES,
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
    refusal_for_status,
    reply_id,
    require,
    same_post_text,
)

log = logging.getLogger("deephype.platforms")


def x_client(settings: Any, timeout: float) -> Any:
    """A tweepy.Client with OAuth 1.0a user context, talking to settings.x_base_url."""
    import tweepy

    consumer_key, consumer_secret, access_token, access_secret = require(
        settings, "x_consumer_key", "x_consumer_secret", "x_access_token", "x_access_token_secret"
    )
    bearer = settings.x_bearer_token.get_secret_value() or None
    client = tweepy.Client(
        bearer_token=bearer,
        consumer_key=consumer_key,
        consumer_secret=consumer_secret,
        access_token=access_token,
        access_token_secret=access_secret,
        wait_on_rate_limit=False,  # we pause the source instead of sleeping inside a call
    )
    client.session = XSession(settings.x_base_url, timeout)
    # tweepy and the OAuth libraries log request headers (the tokens) at DEBUG: keep them out of our logs.
    for name in ("tweepy.client", "requests_oauthlib", "oauthlib"):
        library_log = logging.getLogger(name)
        if library_log.getEffectiveLevel() < logging.INFO:
            library_log.setLevel(logging.INFO)
    return client


class XSession(requests.Session):
    """tweepy hard-codes https://api.twitter.com and sets no timeout; this session fixes both and keeps
    the rate-limit headers of the last response (tweepy does not hand them out)."""

    TWEEPY_HOST = "https://api.twitter.com"

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.rate_limit_remaining: int | None = None
        self.rate_limit_reset: float | None = None

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        url = url.decode() if isinstance(url, bytes) else str(url)
        if url.startswith(self.TWEEPY_HOST):
            url = self.base_url + url[len(self.TWEEPY_HOST) :]
        kwargs.setdefault("timeout", self.timeout)
        response = super().request(method, url, *args, **kwargs)
        self.rate_limit_remaining = _int_header(response.headers, "x-rate-limit-remaining")
        reset = _int_header(response.headers, "x-rate-limit-reset")
        self.rate_limit_reset = float(reset) if reset is not None else None
        return response


def _int_header(headers: Any, name: str) -> int | None:
    try:
        return int(headers[name])
    except (KeyError, TypeError, ValueError):
        return None


def x_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


@dataclass
class XAccount:
    id: str
    username: str


def x_me(client: Any) -> XAccount:
    me = client.get_me(user_auth=True).data
    if me is None:
        raise ValueError("X answered GET /2/users/me without a user")
    return XAccount(id=str(me.id), username=me.username)


class XSource(TimelineSource):
    """X API v2 timelines via tweepy. Each timeline keeps its own since_id."""

    TWEET_FIELDS = ("created_at", "author_id", "entities", "conversation_id")

    def __init__(
        self,
        client: Any,
        timelines: Iterable[str],
        bot_handles: Iterable[str],
        options: PlatformOptions,
        clock: Clock = time.time,
    ) -> None:
        super().__init__("x", check_timelines("x", timelines, X_TIMELINES), options, clock)
        if "search" in self.timelines and not options.x_search_query:
            raise ValueError("the x search timeline needs a query (setting x_search_query)")
        self.client = client
        self.bot_handles = {handle.lower().lstrip("@") for handle in bot_handles}
        self._me: XAccount | None = None

    def _prepare(self) -> None:
        if self._me is None:
            self._me = x_me(self.client)
            self._check_rate_limit()

    def _pause_for(self, exc: Exception) -> tuple[float, str] | None:
        import tweepy

        if isinstance(exc, tweepy.TooManyRequests):
            reset = exc.reset_time or self.clock() + self.options.default_rate_limit_pause_seconds
            return reset, "X rate limit reached (429)"
        if isinstance(exc, tweepy.HTTPException) and x_status(exc) == 402:
            return (
                self.clock() + self.options.x_payment_pause_seconds,
                "X answered 402 Payment Required: the account's API credits are used up, top them up",
            )
        return None

    def _read(self, feed: str, since_id: str | None) -> Iterator[tuple[str, RawPost | None]]:
        """Tweets newer than since_id, oldest first. X pages from the newest back, so all pages are read
        before the oldest can go first."""
        tweets: list[Any] = []
        authors: dict[str, str] = {}
        page_token: str | None = None
        # Without a position only the newest page is read: the bot starts now, not at the account's birth.
        for _ in range(self.options.max_pages if since_id else 1):
            response = self._call(feed, since_id, page_token)
            self._check_rate_limit()
            tweets.extend(response.data or [])
            for user in response.includes.get("users", []):
                authors[str(user.id)] = user.username
            page_token = response.meta.get("next_token")
            if not page_token or self.pause.active():
                break
        else:
            if since_id and page_token:
                log.warning(
                    "x %s: more than %d pages of new posts; the oldest are skipped", feed, self.options.max_pages
                )
        for tweet in sorted(tweets, key=lambda tweet: int(tweet.id)):
            yield str(tweet.id), self._post(tweet, authors, feed)

    def _call(self, feed: str, since_id: str | None, page_token: str | None) -> Any:
        assert self._me is not None
        common: dict[str, Any] = {
            "since_id": since_id,
            "max_results": max(5, min(self.options.page_size, 100)),
            "tweet_fields": list(self.TWEET_FIELDS),
            "expansions": ["author_id"],
            "user_fields": ["username"],
            "user_auth": True,
        }
        if feed == "mentions":
            return self.client.get_users_mentions(self._me.id, pagination_token=page_token, **common)
        if feed == "home":
            return self.client.get_home_timeline(pagination_token=page_token, **common)
        # Recent search pages with next_token and wants 10..100 results.
        common["max_results"] = max(10, common["max_results"])
        return self.client.search_recent_tweets(self.options.x_search_query, next_token=page_token, **common)

    def _check_rate_limit(self) -> None:
        session = self.client.session
        if session.rate_limit_remaining == 0 and session.rate_limit_reset:
            self.pause.start(session.rate_limit_reset, "X rate limit used up (x-rate-limit-remaining: 0)")

    def _post(self, tweet: Any, authors: dict[str, str], feed: str) -> RawPost | None:
        assert self._me is not None
        author_id = str(tweet.author_id) if tweet.author_id is not None else ""
        username = authors.get(author_id, author_id or "unknown")
        if author_id == self._me.id or username.lower() in self.bot_handles:
            return None
        mentioned = {str(mention.get("username", "")).lower() for mention in (tweet.entities or {}).get("mentions", [])}
        return make_post(
            platform=Platform.x,
            post_id=str(tweet.id),
            author=username,
            text=tweet.text,
            url=f"https://x.com/{username}/status/{tweet.id}",
            created_at=tweet.created_at,
            mentions_bot=feed == "mentions" or self._me.username.lower() in mentioned,
        )


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
        in_reply_to = reply_id(self.platform, reply_to)
        try:
            response = self.client.create_tweet(text=text, in_reply_to_tweet_id=in_reply_to, user_auth=True)
        except tweepy.HTTPException as exc:
            raise self._refusal(exc) from exc
        post_id = str(response.data["id"])
        return PublishResult(post_id=post_id, url=f"https://x.com/{username}/status/{post_id}")

    def find_posted(self, text: str) -> PublishResult | None:
        """After a crash mid-call: is this text among the bot's latest posts?"""
        me = x_me(self.client)
        response = self.client.get_users_tweets(me.id, max_results=20, user_auth=True)
        for tweet in response.data or []:
            if same_post_text(tweet.text, text):
                return PublishResult(post_id=str(tweet.id), url=f"https://x.com/{me.username}/status/{tweet.id}")
        return None

    def read_metrics(self, post_id: str) -> PostMetrics:
        """public_metrics of one of the bot's tweets (GET /2/tweets/:id). X bills every read: the poster
        reads X only when DEEPHYPE_ENGAGEMENT_READ_X is on."""
        import tweepy

        try:
            response = self.client.get_tweet(post_id, tweet_fields=["public_metrics"], user_auth=True)
        except tweepy.TooManyRequests as exc:
            reset = getattr(exc, "reset_time", None) or self.client.session.rate_limit_reset
            retry_after = max(float(reset) - self.clock(), 1.0) if reset else None
            raise ReadRefused("x rate limit reached (429)", retry_after) from exc
        except tweepy.HTTPException as exc:
            status = x_status(exc) or 0
            if status == 402:
                raise ReadRefused(
                    "x answered 402 Payment Required: the API credits are used up", self.options.x_payment_pause_seconds
                ) from exc
            raise ReadRefused(f"x refused the read ({status}): {x_problem_detail(exc)}", gone=status == 404) from exc
        if response.data is None:  # X answers 200 with an errors array for a deleted post
            raise ReadRefused(f"x: post {post_id} is gone", gone=True)
        metrics = response.data.public_metrics or {}
        return PostMetrics(
            likes=int(metrics.get("like_count", 0)),
            reposts=int(metrics.get("retweet_count", 0)),
            replies=int(metrics.get("reply_count", 0)),
            quotes=int(metrics.get("quote_count", 0)),
        )

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

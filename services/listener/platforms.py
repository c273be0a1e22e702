"""Post sources for X, Mastodon and Bluesky, each behind the PostSource interface.

One source per platform reads several timelines (X: mentions / home / search; Mastodon: notifications /
home / hashtags; Bluesky: notifications / timeline). Its cursor is a small JSON object with one position
per timeline, so the listener's single saved cursor resumes every timeline exactly where it stopped.

Rate limits and X's 402 (credits depleted) pause the source until the platform says it may go on: while
paused, fetch() returns nothing and sends nothing. Every other failure is raised, and the listener's
poller logs it and tries again next round.

The client builders (x_client, mastodon_client, BlueskySession) are shared with the poster.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import requests
from pydantic import SecretStr, ValidationError

from deephype.common.contracts import Platform
from deephype.listener.handlers import RawPost

log = logging.getLogger("deephype.listener.platforms")

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


# ------------------------------------------------------------------------------------------------ X


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


# ----------------------------------------------------------------------------------------- Mastodon


def mastodon_client(settings: Any, timeout: float) -> Any:
    from mastodon import Mastodon

    base_url, token = require(settings, "mastodon_base_url", "mastodon_access_token")
    return Mastodon(
        access_token=token,
        api_base_url=base_url,
        # Raise MastodonRatelimitError on 429 instead of sleeping inside the call; the caller pauses.
        ratelimit_method="throw",
        request_timeout=timeout,
        version_check_mode="none",
    )


def mastodon_status_code(exc: BaseException) -> int | None:
    """The HTTP status of a Mastodon.py error, when the server answered (args: message, status, reason, error)."""
    args = getattr(exc, "args", ())
    return args[1] if len(args) > 1 and isinstance(args[1], int) else None


class _TextFromHtml(HTMLParser):
    """Mastodon status HTML → plain text: paragraphs and <br> become line breaks, tags go, entities decode."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _TextFromHtml()
    parser.feed(html or "")
    parser.close()
    return "".join(parser.parts).strip()


class MastodonSource(TimelineSource):
    """Mastodon timelines via Mastodon.py. Each timeline keeps the id of the newest item it handled."""

    def __init__(
        self,
        api: Any,
        timelines: Iterable[str],
        hashtags: Iterable[str],
        bot_handles: Iterable[str],
        options: PlatformOptions,
        clock: Clock = time.time,
    ) -> None:
        super().__init__("mastodon", check_timelines("mastodon", timelines, MASTODON_TIMELINES), options, clock)
        self.api = api
        self.hashtags = tuple(tag.strip().lstrip("#") for tag in hashtags if tag.strip("# "))
        if "hashtags" in self.timelines and not self.hashtags:
            raise ValueError("the mastodon hashtags timeline needs tags (setting mastodon_hashtags)")
        self.bot_handles = {handle.lower().lstrip("@") for handle in bot_handles}
        self._me_id: str | None = None

    def _feeds(self) -> list[str]:
        feeds = []
        for timeline in self.timelines:
            if timeline == "hashtags":
                feeds.extend(f"tag:{tag}" for tag in self.hashtags)
            else:
                feeds.append(timeline)
        return feeds

    def _prepare(self) -> None:
        if self._me_id is None:
            self._me_id = str(self.api.account_verify_credentials()["id"])
            self._check_rate_limit()

    def _pause_for(self, exc: Exception) -> tuple[float, str] | None:
        from mastodon import MastodonRatelimitError

        if not isinstance(exc, MastodonRatelimitError):
            return None
        reset = self.api.ratelimit_reset
        if not reset or reset <= self.clock():
            reset = self.clock() + self.options.default_rate_limit_pause_seconds
        return reset, "Mastodon rate limit reached (429)"

    def _read(self, feed: str, min_id: str | None) -> Iterator[tuple[str, RawPost | None]]:
        """(id, post) pairs newer than min_id, oldest first. min_id (not since_id) pages forward from the
        position, so a burst larger than a page is read over several pages instead of skipped."""
        for _ in range(self.options.max_pages if min_id else 1):
            items = self._call(feed, min_id)
            self._check_rate_limit()
            if not items:
                return
            items = sorted(items, key=lambda item: int(item["id"]))
            for item in items:
                yield str(item["id"]), self._post(item, feed)
            min_id = str(items[-1]["id"])
            if self.pause.active():
                return

    def _call(self, feed: str, min_id: str | None) -> list[Any]:
        limit = max(1, min(self.options.page_size, 40))
        if feed == "notifications":
            return self.api.notifications(types=["mention"], min_id=min_id, limit=limit)
        if feed == "home":
            return self.api.timeline_home(min_id=min_id, limit=limit)
        return self.api.timeline_hashtag(feed.removeprefix("tag:"), min_id=min_id, limit=limit)

    def _check_rate_limit(self) -> None:
        reset = self.api.ratelimit_reset
        if self.api.ratelimit_remaining == 0 and reset and reset > self.clock():
            self.pause.start(reset, "Mastodon rate limit used up (X-RateLimit-Remaining: 0)")

    def _post(self, item: Any, feed: str) -> RawPost | None:
        status = item.get("status") if feed == "notifications" else item
        if status is None or status.get("reblog"):
            return None  # a boost re-shows someone's older post; it is not news
        account = status["account"]
        if str(account["id"]) == self._me_id or str(account["acct"]).lower() in self.bot_handles:
            return None
        text = html_to_text(status.get("content") or "")
        if status.get("spoiler_text"):
            text = f"{status['spoiler_text']}\n\n{text}"
        mentions_bot = feed == "notifications" or any(
            str(mention["id"]) == self._me_id for mention in status.get("mentions") or []
        )
        return make_post(
            platform=Platform.mastodon,
            post_id=str(status["id"]),
            author=str(account["acct"]),
            text=text,
            url=status.get("url") or status.get("uri"),
            created_at=_utc(status.get("created_at")),
            mentions_bot=mentions_bot,
        )


# ------------------------------------------------------------------------------------------ Bluesky

# How long a refused password login blocks the next attempt.
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


def _utc(value: datetime | None) -> datetime | None:
    # Mastodon.py hands out local-time datetimes; the rest of the bot works in UTC.
    return value.astimezone(UTC) if value is not None else None


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


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
        return _parse_time(position)

    def _read(self, feed: str, after: str | None) -> list[tuple[str, RawPost | None]]:
        """(indexedAt, post) pairs indexed after `after`, oldest first."""
        limit = max(1, min(self.options.page_size, 100))
        after_time = _parse_time(after) if after else None
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
                when = _parse_time(indexed_at)
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


# ------------------------------------------------------------------------------------------ factory


def build_platform_source(
    name: str, settings: Any, options: PlatformOptions | None = None, clock: Clock = time.time
) -> XSource | MastodonSource | BlueskySource:
    options = options or PlatformOptions.from_settings(settings)
    if name == "x":
        client = x_client(settings, options.timeout_seconds)
        return XSource(client, options.x_timelines, settings.bot_handles, options, clock)
    if name == "mastodon":
        api = mastodon_client(settings, options.timeout_seconds)
        return MastodonSource(
            api, options.mastodon_timelines, options.mastodon_hashtags, settings.bot_handles, options, clock
        )
    if name == "bluesky":
        session = BlueskySession.from_settings(settings, "listener", options.timeout_seconds)
        return BlueskySource(session, options.bluesky_timelines, settings.bot_handles, options, clock)
    raise ValueError(f"unknown platform source {name!r} (choose from x, mastodon, bluesky)")

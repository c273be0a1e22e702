"""Mastodon (Mastodon.py): client, errors, reading notifications / home / hashtags, posting with an
Idempotency-Key and the configured visibility (unlisted by default, as bot etiquette asks).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from typing import Any

from deephype.common.contracts import PLATFORM_TEXT_LIMITS, Platform, ReplyTarget
from deephype.common.platforms.base import (
    MASTODON_TIMELINES,
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
    utc,
)

log = logging.getLogger("deephype.platforms")


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
            created_at=utc(status.get("created_at")),
            mentions_bot=mentions_bot,
        )


class MastodonPublisher:
    platform = Platform.mastodon
    # Mastodon keeps the Idempotency-Key for an hour: a repeat returns the first status, never a second.
    idempotent = True

    def __init__(self, api: Any, clock: Clock = time.time, visibility: str = "unlisted") -> None:
        self.api = api
        self.clock = clock
        self.visibility = visibility  # bot etiquette: unlisted, so the bot does not fill the public timelines

    @property
    def text_limit(self) -> int:
        return PLATFORM_TEXT_LIMITS["mastodon"]

    def publish(self, text: str, reply_to: ReplyTarget | None, idempotency_key: str) -> PublishResult:
        from mastodon import MastodonAPIError, MastodonRatelimitError

        try:
            status = self.api.status_post(
                text,
                in_reply_to_id=reply_id(self.platform, reply_to),
                idempotency_key=idempotency_key,
                visibility=self.visibility,
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

    def read_metrics(self, post_id: str) -> PostMetrics:
        """favourites, reblogs and replies of one of the bot's statuses (GET /api/v1/statuses/:id)."""
        from mastodon import MastodonAPIError, MastodonNotFoundError, MastodonRatelimitError

        try:
            status = self.api.status(post_id)
        except MastodonRatelimitError as exc:
            reset = self.api.ratelimit_reset
            retry_after = max(reset - self.clock(), 1.0) if reset else None
            raise ReadRefused(f"mastodon rate limit reached (429): {exc}", retry_after) from exc
        except MastodonNotFoundError as exc:
            raise ReadRefused(f"mastodon: status {post_id} is gone", gone=True) from exc
        except MastodonAPIError as exc:
            raise ReadRefused(f"mastodon refused the read ({mastodon_status_code(exc)}): {exc}") from exc
        return PostMetrics(
            likes=int(status.get("favourites_count") or 0),
            reposts=int(status.get("reblogs_count") or 0),
            replies=int(status.get("replies_count") or 0),
        )

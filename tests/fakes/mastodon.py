"""A fake Mastodon server (docs.joinmastodon.org/methods), the endpoints the listener and poster use:

- GET  /api/v1/accounts/verify_credentials   → CredentialAccount
- GET  /api/v1/timelines/home                } ?max_id, since_id, min_id, limit (≤40) → [Status], newest first,
- GET  /api/v1/timelines/tag/{hashtag}       }  with a Link header (rel="next" older, rel="prev" newer)
- GET  /api/v1/notifications                 ?types[]=mention, same paging → [Notification]
- POST /api/v1/statuses                      form or JSON: status, in_reply_to_id, visibility; the
  Idempotency-Key header makes a repeat (within the hour) return the first status instead of a new one.

Every answer carries X-RateLimit-Limit / -Remaining / -Reset (an ISO 8601 time), errors are {"error": ...}.
Requests need `Authorization: Bearer <ACCESS_TOKEN>`. Statuses are HTML, as Mastodon stores them.
The people and posts are made up for the tests.
"""

from __future__ import annotations

import html
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.server import FakeAPI, FakeRequest, FakeResponse, FakeServer, Fault

ACCESS_TOKEN = "fake-mastodon-access-token"
DOMAIN = "tunes.example"
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def rate_limit_headers(remaining: int, reset: datetime, limit: int = 300) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": iso(reset)}


ERRORS = {
    401: "The access token is invalid",
    403: "This action is not allowed",
    404: "Record not found",
    422: "Validation failed: Text character limit of 500 exceeded",
    429: "Too many requests",
    500: "We're sorry, but something went wrong on our end.",
    503: "Service Unavailable",
}


def error(status: int, **kw: Any) -> Fault:
    return Fault(FakeResponse.json({"error": ERRORS.get(status, "Error")}, status), **kw)


def rate_limited(reset: datetime, **kw: Any) -> Fault:
    """What Mastodon sends when the window is used up: 429, remaining 0 and the reset time."""
    headers = rate_limit_headers(0, reset)
    return Fault(FakeResponse.json({"error": ERRORS[429]}, 429, headers), **kw)


@dataclass
class FakeAccount:
    id: str
    username: str
    domain: str = DOMAIN

    def acct(self) -> str:
        return self.username if self.domain == DOMAIN else f"{self.username}@{self.domain}"


@dataclass
class FakeStatus:
    id: int
    account: FakeAccount
    text: str
    created_at: datetime
    in_reply_to_id: str | None = None
    reblog_of: FakeStatus | None = None
    visibility: str = "public"
    # What the audience did; tests raise them.
    favourites_count: int = 0
    reblogs_count: int = 0
    replies_count: int = 0


@dataclass
class FakeNotification:
    id: int
    type: str
    account: FakeAccount
    status: FakeStatus | None
    created_at: datetime


@dataclass
class FakeMastodon(FakeAPI):
    accounts: dict[str, FakeAccount] = field(default_factory=dict)
    statuses: list[FakeStatus] = field(default_factory=list)
    notifications: list[FakeNotification] = field(default_factory=list)
    rate_limit_remaining: int = 299
    rate_limit_reset: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(minutes=5))

    def __post_init__(self) -> None:
        self.server = FakeServer(self.handle)
        self._ids = itertools.count(113_400_000_000_000_001)
        self._notification_ids = itertools.count(9001)
        self.idempotency_keys: dict[str, FakeStatus] = {}
        self.bot = self.account("deephype")

    # --- test data ---

    def account(self, username: str, domain: str = DOMAIN) -> FakeAccount:
        key = f"{username}@{domain}"
        if key not in self.accounts:
            self.accounts[key] = FakeAccount(str(110_000_000_000_000_000 + len(self.accounts)), username, domain)
        return self.accounts[key]

    def post(self, username: str, text: str, domain: str = DOMAIN, in_reply_to_id: str | None = None) -> FakeStatus:
        """A status; an @mention of the bot also makes a mention notification, as Mastodon does."""
        status = FakeStatus(
            id=next(self._ids),
            account=self.account(username, domain),
            text=text,
            created_at=START + timedelta(minutes=len(self.statuses)),
            in_reply_to_id=in_reply_to_id,
        )
        self.statuses.append(status)
        if f"@{self.bot.username}" in text and status.account is not self.bot:
            self.notifications.append(
                FakeNotification(next(self._notification_ids), "mention", status.account, status, status.created_at)
            )
        return status

    def boost(self, username: str, original: FakeStatus) -> FakeStatus:
        status = FakeStatus(next(self._ids), self.account(username), "", original.created_at, reblog_of=original)
        self.statuses.append(status)
        return status

    def follow_notification(self, username: str) -> FakeNotification:
        note = FakeNotification(next(self._notification_ids), "follow", self.account(username), None, START)
        self.notifications.append(note)
        return note

    def posted_by_bot(self) -> list[FakeStatus]:
        return [status for status in self.statuses if status.account is self.bot]

    # --- requests ---

    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
            return self._error(401)
        path, method = request.path, request.method
        if path == "/api/v1/accounts/verify_credentials" and method == "GET":
            return self._ok(self._account_object(self.bot))
        if path.rstrip("/") == "/api/v2/instance" and method == "GET":
            return self._ok(self._instance_object())
        if path == "/api/v1/timelines/home" and method == "GET":
            return self._page(request, [(s.id, s) for s in self.statuses], self._status_object)
        if path.startswith("/api/v1/timelines/tag/") and method == "GET":
            tag = path.rsplit("/", 1)[-1].lower()
            tagged = [(s.id, s) for s in self.statuses if f"#{tag}" in s.text.lower()]
            return self._page(request, tagged, self._status_object)
        if path == "/api/v1/notifications" and method == "GET":
            types = request.query.get("types[]") or request.query.get("types")
            notes = [(n.id, n) for n in self.notifications if not types or n.type in types]
            return self._page(request, notes, self._notification_object)
        if path == "/api/v1/statuses" and method == "POST":
            return self._create(request)
        match = re.fullmatch(r"/api/v1/statuses/(\d+)", path)
        if match and method == "GET":
            found = [s for s in self.statuses if str(s.id) == match.group(1)]
            if not found:
                return self._error(404)
            return self._ok(self._status_object(found[0]))
        return self._error(404)

    def _ok(self, body: Any, headers: dict[str, str] | None = None) -> FakeResponse:
        all_headers = rate_limit_headers(self.rate_limit_remaining, self.rate_limit_reset)
        all_headers.update(headers or {})
        return FakeResponse.json(body, 200, all_headers)

    def _error(self, status: int) -> FakeResponse:
        return FakeResponse.json({"error": ERRORS.get(status, "Error")}, status)

    def _page(self, request: FakeRequest, items: list[tuple[int, Any]], render: Any) -> FakeResponse:
        limit = min(int(request.arg("limit") or 20), 40)
        max_id, since_id, min_id = (int(request.arg(name) or 0) for name in ("max_id", "since_id", "min_id"))
        chosen = [(i, item) for i, item in items if (not max_id or i < max_id) and i > max(since_id, min_id)]
        chosen.sort(key=lambda pair: pair[0])
        # min_id pages forward (the oldest ones right after it); otherwise the newest ones come.
        chosen = chosen[:limit] if min_id else chosen[-limit:]
        chosen.reverse()
        headers = {}
        if chosen:
            base = f"{self.url}{request.path}"
            newest, oldest = chosen[0][0], chosen[-1][0]
            headers["Link"] = f'<{base}?max_id={oldest}>; rel="next", <{base}?min_id={newest}>; rel="prev"'
        return self._ok([render(item) for _, item in chosen], headers)

    def _instance_object(self) -> dict[str, Any]:
        """The parts of Instance (v2) clients read: Mastodon.py checks timelines_access before a tag timeline."""
        public = {"local": "public", "remote": "public"}
        return {
            "domain": DOMAIN,
            "title": "Tunes (fake)",
            "version": "4.5.0",
            "source_url": "https://github.com/mastodon/mastodon",
            "description": "A fake Mastodon server for tests.",
            "languages": ["en"],
            "configuration": {
                "statuses": {"max_characters": 500, "max_media_attachments": 4},
                "timelines_access": {"live_feeds": public, "hashtag_feeds": public, "trending_link_feeds": public},
            },
        }

    def _account_object(self, account: FakeAccount) -> dict[str, Any]:
        return {
            "id": account.id,
            "username": account.username,
            "acct": account.acct(),
            "display_name": account.username.title(),
            "locked": False,
            "bot": account is self.bot,
            "discoverable": True,
            "group": False,
            "created_at": "2026-01-05T00:00:00.000Z",
            "note": "",
            "url": f"https://{account.domain}/@{account.username}",
            "uri": f"https://{account.domain}/users/{account.username}",
            "avatar": f"https://{DOMAIN}/avatars/original/missing.png",
            "avatar_static": f"https://{DOMAIN}/avatars/original/missing.png",
            "header": f"https://{DOMAIN}/headers/original/missing.png",
            "header_static": f"https://{DOMAIN}/headers/original/missing.png",
            "followers_count": 12,
            "following_count": 34,
            "statuses_count": 56,
            "last_status_at": "2026-11-01",
            "emojis": [],
            "fields": [],
        }

    def _content(self, text: str) -> str:
        """Mastodon's HTML for a plain-text status: paragraphs, <br>, linked mentions and hashtags."""
        paragraphs = []
        for block in text.split("\n\n"):
            escaped = "<br>".join(html.escape(line, quote=False) for line in block.split("\n"))
            escaped = re.sub(
                r"@(\w+)",
                lambda m: (
                    f'<span class="h-card"><a href="https://{DOMAIN}/@{m.group(1)}" class="u-url mention">'
                    f"@<span>{m.group(1)}</span></a></span>"
                ),
                escaped,
            )
            escaped = re.sub(
                r"#(\w+)",
                lambda m: (
                    f'<a href="https://{DOMAIN}/tags/{m.group(1)}" class="mention hashtag" rel="tag">'
                    f"#<span>{m.group(1)}</span></a>"
                ),
                escaped,
            )
            paragraphs.append(f"<p>{escaped}</p>")
        return "".join(paragraphs)

    def _status_object(self, status: FakeStatus) -> dict[str, Any]:
        mentions = [
            {"id": a.id, "username": a.username, "url": f"https://{a.domain}/@{a.username}", "acct": a.acct()}
            for name in re.findall(r"@(\w+)", status.text)
            for a in [self.account(name)]
        ]
        url = f"https://{status.account.domain}/@{status.account.username}/{status.id}"
        return {
            "id": str(status.id),
            "created_at": iso(status.created_at),
            "in_reply_to_id": status.in_reply_to_id,
            "in_reply_to_account_id": None,
            "sensitive": False,
            "spoiler_text": "",
            "visibility": status.visibility,
            "language": "en",
            "uri": f"https://{status.account.domain}/users/{status.account.username}/statuses/{status.id}",
            "url": None if status.reblog_of else url,
            "replies_count": status.replies_count,
            "reblogs_count": status.reblogs_count,
            "favourites_count": status.favourites_count,
            "edited_at": None,
            "content": "" if status.reblog_of else self._content(status.text),
            "reblog": self._status_object(status.reblog_of) if status.reblog_of else None,
            "application": None,
            "account": self._account_object(status.account),
            "media_attachments": [],
            "mentions": mentions,
            "tags": [
                {"name": t.lower(), "url": f"https://{DOMAIN}/tags/{t.lower()}"}
                for t in re.findall(r"#(\w+)", status.text)
            ],
            "emojis": [],
            "card": None,
            "poll": None,
        }

    def _notification_object(self, note: FakeNotification) -> dict[str, Any]:
        value: dict[str, Any] = {
            "id": str(note.id),
            "type": note.type,
            "created_at": iso(note.created_at),
            "account": self._account_object(note.account),
        }
        if note.status is not None:
            value["status"] = self._status_object(note.status)
        return value

    def _create(self, request: FakeRequest) -> FakeResponse:
        if "json" in request.headers.get("content-type", ""):
            params = json.loads(request.body)
        else:
            params = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        key = request.headers.get("idempotency-key")
        if key and key in self.idempotency_keys:
            return self._ok(self._status_object(self.idempotency_keys[key]))
        text = params.get("status") or ""
        if not text:
            return FakeResponse.json({"error": "Validation failed: Text can't be blank"}, 422)
        if len(text) > 500:
            return self._error(422)
        reply_to = params.get("in_reply_to_id")
        if reply_to and not any(str(s.id) == str(reply_to) for s in self.statuses):
            return self._error(404)
        visibility = params.get("visibility") or "public"
        if visibility not in {"public", "unlisted", "private", "direct"}:
            return FakeResponse.json({"error": f"Validation failed: Visibility {visibility} is not valid"}, 422)
        status = self.post(self.bot.username, text, in_reply_to_id=str(reply_to) if reply_to else None)
        status.visibility = visibility
        if key:
            self.idempotency_keys[key] = status
        return self._ok(self._status_object(status))

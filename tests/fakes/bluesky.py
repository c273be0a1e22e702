"""A fake Bluesky PDS + AppView (XRPC, atproto.com/specs/xrpc), the methods the listener and poster use:

- POST /xrpc/com.atproto.server.createSession   {identifier, password} → {accessJwt, refreshJwt, handle, did, active}
- POST /xrpc/com.atproto.server.refreshSession  (Bearer refreshJwt) → same shape, fresh tokens
- GET  /xrpc/app.bsky.feed.getTimeline          ?limit, cursor → {feed: [{post, reason?}], cursor}
- GET  /xrpc/app.bsky.notification.listNotifications ?limit, cursor → {notifications: [...], cursor}
- GET  /xrpc/app.bsky.feed.getPosts             ?uris=…&uris=… → {posts: [PostView]}
- POST /xrpc/com.atproto.repo.createRecord      {repo, collection, record} → {uri, cid, commit, validationStatus}
- GET  /xrpc/com.atproto.identity.resolveHandle ?handle → {did}
- GET  /xrpc/app.bsky.feed.getAuthorFeed       ?actor, limit, cursor → {feed: [{post}], cursor}

Errors are {"error": Name, "message": ...}; answers carry ratelimit-limit / -remaining / -reset (epoch
seconds) / -policy. Tokens are JWTs (unsigned for our purposes, but with the real claims: scope, sub,
iat, exp), so the atproto client can read their expiry. The people and posts are made up for the tests.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import regex

from tests.fakes.server import FakeAPI, FakeRequest, FakeResponse, FakeServer, Fault

BOT_HANDLE = "deephype.bsky.example"
BOT_PASSWORD = "fake-app-password-abcd-efgh"
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"

ERROR_NAMES = {
    400: ("InvalidRequest", "Input/uri must be a valid at-uri"),
    401: ("AuthenticationRequired", "Invalid identifier or password"),
    403: ("Forbidden", "Forbidden"),
    429: ("RateLimitExceeded", "Rate Limit Exceeded"),
    500: ("InternalServerError", "Internal Server Error"),
    502: ("UpstreamFailure", "Upstream Failure"),
    503: ("NotEnoughResources", "Service Unavailable"),
}


def xrpc_error(status: int, name: str | None = None, message: str | None = None, **kw: Any) -> FakeResponse:
    default_name, default_message = ERROR_NAMES.get(status, ("InternalServerError", "Error"))
    return FakeResponse.json({"error": name or default_name, "message": message or default_message}, status, **kw)


def error(status: int, name: str | None = None, **kw: Any) -> Fault:
    return Fault(xrpc_error(status, name), **kw)


def rate_limit_headers(remaining: int, reset: int, limit: int = 3000) -> dict[str, str]:
    return {
        "ratelimit-limit": str(limit),
        "ratelimit-remaining": str(remaining),
        "ratelimit-reset": str(reset),
        "ratelimit-policy": f"{limit};w=300",
    }


def rate_limited(reset: int, **kw: Any) -> Fault:
    """What a PDS sends when the window is used up: 429 RateLimitExceeded with the ratelimit-* headers."""
    return Fault(xrpc_error(429, headers=rate_limit_headers(0, reset)), **kw)


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(did: str, scope: str, expires_in: float) -> str:
    now = int(time.time())
    header = {"typ": "at+jwt" if scope == "com.atproto.access" else "refresh+jwt", "alg": "ES256K"}
    payload = {"scope": scope, "sub": did, "iat": now, "exp": int(now + expires_in), "jti": secrets.token_hex(8)}
    return ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(payload).encode()), _b64(secrets.token_bytes(32))]
    )


def make_cid(content: str) -> str:
    """Shaped like a CIDv1 (dag-cbor, sha-256) in base32: 'bafyrei' + 52 characters."""
    digest = base64.b32encode(hashlib.sha256(content.encode()).digest()).decode().lower().rstrip("=")
    return "bafyrei" + digest[:52]


@dataclass
class FakeActor:
    did: str
    handle: str


@dataclass
class FakePost:
    uri: str
    cid: str
    author: FakeActor
    text: str
    created_at: datetime
    indexed_at: datetime
    facets: list[dict[str, Any]] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    # What the audience did; tests raise them.
    like_count: int = 0
    repost_count: int = 0
    reply_count: int = 0
    quote_count: int = 0


@dataclass
class FakeNotification:
    post: FakePost
    reason: str  # mention | reply | like | follow | repost | quote


@dataclass
class FakeBluesky(FakeAPI):
    actors: dict[str, FakeActor] = field(default_factory=dict)
    posts: list[FakePost] = field(default_factory=list)
    notifications: list[FakeNotification] = field(default_factory=list)
    # (reposter, post) pairs shown on the timeline as reposts.
    reposts: list[tuple[FakeActor, FakePost, datetime]] = field(default_factory=list)
    access_ttl_seconds: float = 7200.0
    rate_limit_remaining: int = 2999
    rate_limit_reset: int = field(default_factory=lambda: int(time.time()) + 300)

    def __post_init__(self) -> None:
        self.server = FakeServer(self.handle)
        self._tids = itertools.count(1)
        self.access_tokens: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self.bot = self.actor(BOT_HANDLE)

    def revoke_sessions(self) -> None:
        """Forget every token, as when the app password is revoked: old sessions get ExpiredToken."""
        self.access_tokens.clear()
        self.refresh_tokens.clear()

    # --- test data ---

    def actor(self, handle: str) -> FakeActor:
        if handle not in self.actors:
            suffix = base64.b32encode(hashlib.sha256(handle.encode()).digest()).decode().lower()[:24]
            self.actors[handle] = FakeActor(f"did:plc:{suffix}", handle)
        return self.actors[handle]

    def _tid(self) -> str:
        number = 1_700_000_000_000_000 + next(self._tids)
        chars = []
        for _ in range(13):
            chars.append(TID_ALPHABET[number % 32])
            number //= 32
        return "".join(reversed(chars))

    def post(self, handle: str, text: str, reply: dict[str, Any] | None = None) -> FakePost:
        """A post by `handle`. An @mention of the bot gets a mention facet and a notification, as on Bluesky."""
        author = self.actor(handle)
        rkey = self._tid()
        when = START + timedelta(minutes=len(self.posts))
        facets = []
        mention = f"@{self.bot.handle}"
        if mention in text:
            start = len(text[: text.index(mention)].encode())
            facets.append(
                {
                    "$type": "app.bsky.richtext.facet",
                    "index": {"byteStart": start, "byteEnd": start + len(mention.encode())},
                    "features": [{"$type": "app.bsky.richtext.facet#mention", "did": self.bot.did}],
                }
            )
        uri = f"at://{author.did}/app.bsky.feed.post/{rkey}"
        post = FakePost(uri, make_cid(uri + text), author, text, when, when, facets, reply)
        self.posts.append(post)
        if author is not self.bot:
            if facets:
                self.notifications.append(FakeNotification(post, "mention"))
            elif reply and any(p.uri == reply["parent"]["uri"] and p.author is self.bot for p in self.posts):
                self.notifications.append(FakeNotification(post, "reply"))
        return post

    def like_notification(self, handle: str, liked: FakePost) -> None:
        like = FakePost(
            f"at://{self.actor(handle).did}/app.bsky.feed.like/{self._tid()}",
            make_cid(handle + liked.uri),
            self.actor(handle),
            "",
            START,
            START + timedelta(minutes=len(self.posts) + 1),
        )
        self.notifications.append(FakeNotification(like, "like"))

    def repost(self, handle: str, post: FakePost) -> None:
        self.reposts.append((self.actor(handle), post, START + timedelta(minutes=len(self.posts) + len(self.reposts))))

    def posted_by_bot(self) -> list[FakePost]:
        return [post for post in self.posts if post.author is self.bot]

    # --- requests ---

    def handle(self, request: FakeRequest) -> FakeResponse:
        method = request.path.removeprefix("/xrpc/")
        if method == "com.atproto.server.createSession" and request.method == "POST":
            return self._create_session(request)
        if method == "com.atproto.server.refreshSession" and request.method == "POST":
            token = self._bearer(request)
            if token not in self.refresh_tokens:
                return xrpc_error(400, "ExpiredToken", "Token has been revoked")
            self.refresh_tokens.discard(token)
            return self._ok(self._session_object())
        if self._bearer(request) not in self.access_tokens:
            return xrpc_error(400, "ExpiredToken", "Token has expired")
        if method == "app.bsky.feed.getTimeline" and request.method == "GET":
            items = [(p.indexed_at, {"post": self._post_view(p)}) for p in self.posts]
            for actor, post, when in self.reposts:
                reason = {
                    "$type": "app.bsky.feed.defs#reasonRepost",
                    "by": self._profile(actor),
                    "indexedAt": iso(when),
                }
                items.append((when, {"post": self._post_view(post), "reason": reason}))
            return self._page(request, items, "feed")
        if method == "app.bsky.notification.listNotifications" and request.method == "GET":
            items = [(n.post.indexed_at, self._notification_view(n)) for n in self.notifications]
            return self._page(request, items, "notifications")
        if method == "app.bsky.feed.getPosts" and request.method == "GET":
            uris = request.query.get("uris", [])
            return self._ok({"posts": [self._post_view(p) for p in self.posts if p.uri in uris]})
        if method == "com.atproto.repo.createRecord" and request.method == "POST":
            return self._create_record(request)
        if method == "app.bsky.feed.getAuthorFeed" and request.method == "GET":
            actor = (request.query.get("actor") or [""])[0]
            own = [p for p in self.posts if actor in {p.author.did, p.author.handle}]
            return self._page(request, [(p.indexed_at, {"post": self._post_view(p)}) for p in own], "feed")
        if method == "com.atproto.identity.resolveHandle" and request.method == "GET":
            handle = (request.query.get("handle") or [""])[0]
            actor = self.actors.get(handle)
            if actor is None:
                return xrpc_error(400, "InvalidRequest", "Unable to resolve handle")
            return self._ok({"did": actor.did})
        return xrpc_error(501, "MethodNotImplemented", f"Method Not Implemented: {method}")

    def _bearer(self, request: FakeRequest) -> str:
        return request.headers.get("authorization", "").removeprefix("Bearer ")

    def _ok(self, body: dict[str, Any]) -> FakeResponse:
        return FakeResponse.json(body, 200, rate_limit_headers(self.rate_limit_remaining, self.rate_limit_reset))

    def _create_session(self, request: FakeRequest) -> FakeResponse:
        try:
            body = json.loads(request.body)
        except ValueError:
            return xrpc_error(400, "InvalidRequest", "Request body must be JSON")
        if body.get("identifier") not in {self.bot.handle, self.bot.did} or body.get("password") != BOT_PASSWORD:
            return xrpc_error(401)
        return self._ok(self._session_object())

    def _session_object(self) -> dict[str, Any]:
        access = make_jwt(self.bot.did, "com.atproto.access", self.access_ttl_seconds)
        refresh = make_jwt(self.bot.did, "com.atproto.refresh", 60 * 24 * 3600)
        self.access_tokens.add(access)
        self.refresh_tokens.add(refresh)
        return {
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": self.bot.handle,
            "did": self.bot.did,
            "email": "bot@example.com",
            "emailConfirmed": True,
            "active": True,
        }

    def _page(self, request: FakeRequest, items: list[tuple[datetime, dict[str, Any]]], key: str) -> FakeResponse:
        limit = int(request.arg("limit") or 50)
        if not 1 <= limit <= 100:
            return xrpc_error(400, "InvalidRequest", "Error: limit must be less than or equal to 100")
        items.sort(key=lambda pair: pair[0], reverse=True)
        offset = int(request.arg("cursor") or 0)
        page = items[offset : offset + limit]
        body: dict[str, Any] = {key: [value for _, value in page]}
        if offset + limit < len(items):
            body["cursor"] = str(offset + limit)
        return self._ok(body)

    def _profile(self, actor: FakeActor) -> dict[str, Any]:
        return {
            "did": actor.did,
            "handle": actor.handle,
            "displayName": actor.handle.split(".")[0].title(),
            "labels": [],
            "createdAt": "2026-01-05T00:00:00.000Z",
        }

    def _record(self, post: FakePost) -> dict[str, Any]:
        record: dict[str, Any] = {
            "$type": "app.bsky.feed.post",
            "text": post.text,
            "createdAt": iso(post.created_at),
            "langs": ["en"],
        }
        if post.facets:
            record["facets"] = post.facets
        if post.reply:
            record["reply"] = post.reply
        return record

    def _post_view(self, post: FakePost) -> dict[str, Any]:
        return {
            "uri": post.uri,
            "cid": post.cid,
            "author": self._profile(post.author),
            "record": self._record(post),
            "replyCount": post.reply_count,
            "repostCount": post.repost_count,
            "likeCount": post.like_count,
            "quoteCount": post.quote_count,
            "indexedAt": iso(post.indexed_at),
            "labels": [],
        }

    def _notification_view(self, note: FakeNotification) -> dict[str, Any]:
        if note.reason == "like":
            record = {"$type": "app.bsky.feed.like", "createdAt": iso(note.post.created_at)}
        else:
            record = self._record(note.post)
        return {
            "uri": note.post.uri,
            "cid": note.post.cid,
            "author": self._profile(note.post.author),
            "reason": note.reason,
            "record": record,
            "isRead": False,
            "indexedAt": iso(note.post.indexed_at),
            "labels": [],
        }

    def _create_record(self, request: FakeRequest) -> FakeResponse:
        try:
            body = json.loads(request.body)
            record = body["record"]
            text = record["text"]
        except (ValueError, KeyError, TypeError):
            return xrpc_error(400, "InvalidRequest", 'Input must have the property "record"')
        if body.get("repo") not in {self.bot.did, self.bot.handle}:
            return xrpc_error(401, "InvalidToken", "Token could not be used for this repo")
        if body.get("collection") != "app.bsky.feed.post":
            return xrpc_error(400, "InvalidRequest", "Only app.bsky.feed.post in this fake")
        if len(regex.findall(r"\X", text)) > 300:  # graphemes, as the lexicon's maxGraphemes
            return xrpc_error(
                400,
                "InvalidRequest",
                "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes",
            )
        reply = record.get("reply")
        if reply is not None:
            known = {(p.uri, p.cid) for p in self.posts}
            for part in ("root", "parent"):
                ref = reply.get(part) or {}
                if (ref.get("uri"), ref.get("cid")) not in known:
                    return xrpc_error(400, "InvalidRequest", f"Invalid reply {part}: unknown post")
        post = self.post(self.bot.handle, text, reply)
        post.facets = record.get("facets") or []  # the client's own rich text, as sent
        return self._ok(
            {
                "uri": post.uri,
                "cid": post.cid,
                "commit": {"cid": make_cid("commit" + post.uri), "rev": self._tid()},
                "validationStatus": "valid",
            }
        )

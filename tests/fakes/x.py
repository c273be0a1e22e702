"""A fake X API v2 (docs.x.com/x-api), the endpoints the listener and poster use, in X's wire format:

- GET  /2/users/me                                   → {"data": user}
- GET  /2/users/{id}/tweets                          } (the user's own posts)
- GET  /2/users/{id}/mentions                        } ?since_id, max_results (5..100), pagination_token,
- GET  /2/users/{id}/timelines/reverse_chronological }  tweet.fields, expansions=author_id, user.fields
- GET  /2/tweets/search/recent                       ?query, since_id, max_results (10..100), next_token
- POST /2/tweets {"text", "reply": {"in_reply_to_tweet_id"}} → 201 {"data": {"id", "text", "edit_history_tweet_ids"}}

Timelines answer {"data": [tweets, newest first], "includes": {"users": [...]}, "meta": {"result_count",
"newest_id", "oldest_id", "next_token"}}, or just {"meta": {"result_count": 0}} when empty. Every answer
carries x-rate-limit-limit / -remaining / -reset (epoch seconds); errors are RFC 7807 problem objects.
User endpoints need OAuth 1.0a user context for the one known app + user; search also takes the app's
bearer token. The people and posts are made up for the tests.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.server import FakeAPI, FakeRequest, FakeResponse, FakeServer, Fault

CONSUMER_KEY = "fake-consumer-key"
CONSUMER_SECRET = "fake-consumer-secret"
ACCESS_TOKEN = "1500000000000000001-fake-access-token"
ACCESS_TOKEN_SECRET = "fake-access-token-secret"
BEARER_TOKEN = "fake-app-bearer-token"

BOT = ("1500000000000000001", "deephype", "deephype")
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

PROBLEM_TITLES = {
    400: "Invalid Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found Error",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(status: int, detail: str | None = None, headers: dict[str, str] | None = None) -> FakeResponse:
    """An X API v2 error body (a problem object)."""
    title = PROBLEM_TITLES.get(status, "Error")
    body = {"title": title, "detail": detail or title, "type": "about:blank", "status": status}
    if status == 402:
        body["type"] = "https://api.x.com/2/problems/credits-depleted"
        body["detail"] = detail or "Your account does not have any credits left."
    return FakeResponse.json(body, status, headers)


def rate_limit_headers(remaining: int, reset: int, limit: int = 300) -> dict[str, str]:
    return {
        "x-rate-limit-limit": str(limit),
        "x-rate-limit-remaining": str(remaining),
        "x-rate-limit-reset": str(reset),
    }


def rate_limited(reset: int, **kw: Any) -> Fault:
    """What X sends when a window is used up: 429, remaining 0, the reset time; no Retry-After."""
    return Fault(problem(429, headers=rate_limit_headers(0, reset)), **kw)


def error(status: int, **kw: Any) -> Fault:
    return Fault(problem(status), **kw)


@dataclass
class FakeUser:
    id: str
    name: str
    username: str


@dataclass
class FakeTweet:
    id: int
    author_id: str
    text: str
    created_at: datetime
    in_reply_to: int | None = None
    # public_metrics as X counts them; tests raise them to stand for the audience.
    like_count: int = 0
    retweet_count: int = 0
    reply_count: int = 0
    quote_count: int = 0


@dataclass
class FakeX(FakeAPI):
    users: dict[str, FakeUser] = field(default_factory=dict)
    tweets: list[FakeTweet] = field(default_factory=list)
    # Rate-limit headers sent with successful answers; tests lower `remaining` to see a source pause early.
    rate_limit_remaining: int = 299
    rate_limit_reset: int = field(default_factory=lambda: int(time.time()) + 900)

    def __post_init__(self) -> None:
        self.server = FakeServer(self.handle)
        self._ids = itertools.count(1_860_000_000_000_000_001)
        self.add_user(*BOT)

    # --- test data ---

    def add_user(self, user_id: str, name: str, username: str) -> FakeUser:
        user = FakeUser(user_id, name, username)
        self.users[user_id] = user
        return user

    def user_named(self, username: str) -> FakeUser:
        for user in self.users.values():
            if user.username.lower() == username.lower():
                return user
        return self.add_user(str(1_600_000_000_000_000_000 + len(self.users)), username.title(), username)

    def post(self, username: str, text: str, in_reply_to: int | None = None) -> FakeTweet:
        tweet = FakeTweet(
            id=next(self._ids),
            author_id=self.user_named(username).id,
            text=text,
            created_at=START + timedelta(minutes=len(self.tweets)),
            in_reply_to=in_reply_to,
        )
        self.tweets.append(tweet)
        return tweet

    def posted_by_bot(self) -> list[FakeTweet]:
        return [tweet for tweet in self.tweets if tweet.author_id == BOT[0]]

    # --- requests ---

    def handle(self, request: FakeRequest) -> FakeResponse:
        path = request.path
        search = path == "/2/tweets/search/recent" and request.method == "GET"
        if not self._user_context(request) and not (search and self._bearer(request)):
            return problem(401)
        if path == "/2/users/me" and request.method == "GET":
            return self._ok({"data": self._user_object(self.users[BOT[0]])})
        match = re.fullmatch(r"/2/users/(\d+)/(mentions|timelines/reverse_chronological|tweets)", path)
        if match and request.method == "GET":
            user = self.users.get(match.group(1))
            if user is None:
                return problem(404, f"Could not find user with id: [{match.group(1)}].")
            if match.group(2) == "mentions":
                tweets = [t for t in self.tweets if f"@{user.username.lower()}" in t.text.lower()]
            elif match.group(2) == "tweets":  # the user's own posts
                tweets = [t for t in self.tweets if t.author_id == user.id]
            else:
                tweets = list(self.tweets)
            return self._timeline(request, tweets, "pagination_token", low=5)
        if search:
            query = (request.arg("query") or "").lower().split()
            tweets = [t for t in self.tweets if all(term in t.text.lower() for term in query)]
            return self._timeline(request, tweets, "next_token", low=10)
        if path == "/2/tweets" and request.method == "POST":
            return self._create(request)
        match = re.fullmatch(r"/2/tweets/(\d+)", path)
        if match and request.method == "GET":
            found = [t for t in self.tweets if str(t.id) == match.group(1)]
            if not found:
                # X answers 200 with an errors array for a deleted or unknown post.
                return self._ok(
                    {
                        "errors": [
                            {
                                "value": match.group(1),
                                "detail": f"Could not find tweet with id: [{match.group(1)}].",
                                "title": "Not Found Error",
                                "resource_type": "tweet",
                                "parameter": "id",
                                "resource_id": match.group(1),
                                "type": "https://api.twitter.com/2/problems/resource-not-found",
                            }
                        ]
                    }
                )
            fields = set((request.arg("tweet.fields") or "").split(","))
            return self._ok({"data": self._tweet_object(found[0], fields)})
        return problem(404, f"No route for {request.method} {path}")

    def _user_context(self, request: FakeRequest) -> bool:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("OAuth "):
            return False
        fields = dict(re.findall(r'(\w+)="([^"]*)"', auth))
        return (
            fields.get("oauth_consumer_key") == CONSUMER_KEY
            and fields.get("oauth_token") == ACCESS_TOKEN
            and "oauth_signature" in fields
        )

    def _bearer(self, request: FakeRequest) -> bool:
        return request.headers.get("authorization") == f"Bearer {BEARER_TOKEN}"

    def _ok(self, body: dict[str, Any], status: int = 200) -> FakeResponse:
        return FakeResponse.json(body, status, rate_limit_headers(self.rate_limit_remaining, self.rate_limit_reset))

    def _timeline(self, request: FakeRequest, tweets: list[FakeTweet], token_name: str, low: int) -> FakeResponse:
        max_results = int(request.arg("max_results") or 10)
        if not low <= max_results <= 100:
            return problem(400, f"The `max_results` query parameter value [{max_results}] is not between {low} and 100")
        since_id = int(request.arg("since_id") or 0)
        newest_first = sorted((t for t in tweets if t.id > since_id), key=lambda t: t.id, reverse=True)
        offset = int((request.arg(token_name) or "p0").removeprefix("p"))
        page = newest_first[offset : offset + max_results]
        if not page:
            return self._ok({"meta": {"result_count": 0}})
        meta: dict[str, Any] = {
            "newest_id": str(page[0].id),
            "oldest_id": str(page[-1].id),
            "result_count": len(page),
        }
        if offset + max_results < len(newest_first):
            meta["next_token"] = f"p{offset + max_results}"
        fields = set((request.arg("tweet.fields") or "").split(","))
        authors = {t.author_id for t in page}
        body: dict[str, Any] = {"data": [self._tweet_object(t, fields) for t in page], "meta": meta}
        if "author_id" in (request.arg("expansions") or ""):
            body["includes"] = {"users": [self._user_object(self.users[a]) for a in sorted(authors)]}
        return self._ok(body)

    def _tweet_object(self, tweet: FakeTweet, fields: set[str]) -> dict[str, Any]:
        value: dict[str, Any] = {
            "id": str(tweet.id),
            "text": tweet.text,
            "edit_history_tweet_ids": [str(tweet.id)],
        }
        if "author_id" in fields:
            value["author_id"] = tweet.author_id
        if "created_at" in fields:
            value["created_at"] = tweet.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        if "conversation_id" in fields:
            value["conversation_id"] = str(tweet.in_reply_to or tweet.id)
        if "public_metrics" in fields:
            value["public_metrics"] = {
                "retweet_count": tweet.retweet_count,
                "reply_count": tweet.reply_count,
                "like_count": tweet.like_count,
                "quote_count": tweet.quote_count,
                "bookmark_count": 0,
                "impression_count": 10 * (tweet.like_count + tweet.retweet_count + tweet.reply_count),
            }
        if "entities" in fields:
            mentions = []
            for match in re.finditer(r"@(\w{1,15})", tweet.text):
                user = self.user_named(match.group(1))
                mentions.append({"start": match.start(), "end": match.end(), "username": user.username, "id": user.id})
            if mentions:
                value["entities"] = {"mentions": mentions}
        return value

    def _user_object(self, user: FakeUser) -> dict[str, Any]:
        return {"id": user.id, "name": user.name, "username": user.username}

    def _create(self, request: FakeRequest) -> FakeResponse:
        try:
            body = json.loads(request.body)
            text = body["text"]
        except (ValueError, KeyError, TypeError):
            return problem(400, "Invalid JSON body: `text` is required")
        if len(text) > 280:
            return problem(400, "Your Tweet text is too long.")
        if any(t.text == text and t.author_id == BOT[0] for t in self.tweets):
            return problem(403, "You are not allowed to create a Tweet with duplicate content.")
        reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        if reply_to is not None and not any(str(t.id) == str(reply_to) for t in self.tweets):
            return problem(400, "The Tweet you are replying to has been deleted or is not visible to you.")
        tweet = self.post(BOT[1], text, in_reply_to=int(reply_to) if reply_to else None)
        data = {"id": str(tweet.id), "text": text, "edit_history_tweet_ids": [str(tweet.id)]}
        return self._ok({"data": data}, status=201)

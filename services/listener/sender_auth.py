"""Who may inject a post through POST /v1/mentions: a sender holding the shared bearer token, or one that
signs each request the Standard Webhooks way (https://www.standardwebhooks.com), so any of that spec's
libraries can send to us:

    webhook-id: <unique id>   webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256 over "<id>.<timestamp>.<body>">

A signature older (or newer) than the tolerance is refused, and so is the id of a request that was
already handled: a captured request cannot be replayed. (An id is spent only once its post was handled,
so a sender's retry after a failure, which keeps the id as the spec says, still gets through.) With
neither secret configured the endpoint is closed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time

from fastapi import HTTPException, Request

from deephype.common.db import Database
from deephype.common.settings import Settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_ids (webhook_id TEXT PRIMARY KEY, seen_at REAL NOT NULL);
"""


def _signing_key(secret: str) -> bytes:
    """The spec's secrets look like whsec_<base64>; any other string is used as it is."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            pass
    return secret.encode("utf-8")


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header value for this request (what a sender computes)."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(_signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


class SenderCheck:
    """A FastAPI dependency: 401/403 unless the request carries a valid token or signature; returns the
    webhook id of a signed request (None for the bearer token), for `spend` once the post is handled."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self._token = settings.listener_api_token.get_secret_value()
        self._secret = settings.listener_webhook_secret.get_secret_value()
        self._tolerance = settings.listener_webhook_tolerance_seconds
        self._db = db
        db.ensure_schema(SCHEMA)

    async def __call__(self, request: Request) -> str | None:
        if not self._token and not self._secret:
            raise HTTPException(
                403, "POST /v1/mentions is closed: set DEEPHYPE_LISTENER_API_TOKEN or DEEPHYPE_LISTENER_WEBHOOK_SECRET"
            )
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if self._token and scheme.lower() == "bearer" and secrets.compare_digest(token.encode(), self._token.encode()):
            return None
        if self._secret and "webhook-signature" in request.headers:
            return self._verify_signature(request, await request.body())
        raise HTTPException(
            401, "a bearer token or a webhook signature is required", headers={"WWW-Authenticate": "Bearer"}
        )

    def _verify_signature(self, request: Request, body: bytes) -> str:
        webhook_id = request.headers.get("webhook-id", "")
        stamp = request.headers.get("webhook-timestamp", "")
        if not webhook_id or len(webhook_id) > 256 or not stamp.isdigit():
            raise HTTPException(401, "a signed request needs webhook-id and webhook-timestamp (unix seconds)")
        if abs(time.time() - int(stamp)) > self._tolerance:
            raise HTTPException(401, f"webhook-timestamp is more than {self._tolerance} s away from now")
        expected = sign(self._secret, webhook_id, int(stamp), body).encode()
        offered = request.headers["webhook-signature"].split()
        if not any(secrets.compare_digest(expected, candidate.encode()) for candidate in offered):
            raise HTTPException(401, "the webhook signature does not match")
        if self._db.query("SELECT 1 FROM webhook_ids WHERE webhook_id=?", (webhook_id,)):
            raise HTTPException(401, f"webhook-id {webhook_id} was handled before: a replay")
        return webhook_id

    def spend(self, webhook_id: str | None) -> None:
        """The request was handled: its id may not be used again."""
        if webhook_id is None:
            return
        now = time.time()
        with self._db.transaction() as connection:
            # Ids older than the tolerance can go: their timestamps are refused anyway.
            connection.execute("DELETE FROM webhook_ids WHERE seen_at < ?", (now - 2 * self._tolerance,))
            connection.execute(
                "INSERT INTO webhook_ids (webhook_id, seen_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (webhook_id, now)
            )

"""Approvals are signed by the curator and checked by the poster, so only what a curator granted is posted.
A curator's later word on a held or failed post (PostDecision: requeue or drop) is signed the same way.

Anyone who can publish to the broker could otherwise put a well-formed Approval on `approval.granted` and
post as the bot. The curator signs each approval with HMAC-SHA256 over its canonical fields (every field but
the signature, as sorted, compact JSON); the poster recomputes it and dead-letters anything unsigned or
altered. The key is shared through DEEPHYPE_APPROVAL_KEYS, a comma-separated list: the first key signs,
every key in the list is accepted, so a key can be rotated without losing approvals in flight
(`deephype keys rotate`, see README). `deephype keys new` prints a fresh key.

With the in-memory bus (one process: `deephype demo`, the tests) curator and poster share a process, so an
unset key is replaced by a random key for that process; over RabbitMQ an unset key is an error.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

from deephype.common.contracts import Approval, PostDecision
from deephype.common.settings import Settings, get_settings

SIGNATURE_SCHEME = "hmac-sha256"
MIN_KEY_LENGTH = 32
SETTING = "DEEPHYPE_APPROVAL_KEYS"
# Each kind of signed message has its own domain: a signature made for one never verifies as another.
_DOMAINS: dict[str, bytes] = {"approval": b"deephype approval v1\n", "post_decision": b"deephype post decision v1\n"}
Signed = Approval | PostDecision
SignedT = TypeVar("SignedT", Approval, PostDecision)


class ApprovalKeyError(ValueError):
    """The approval keys are missing or unusable; the message says what to set."""


def new_key() -> str:
    """A fresh random key (256 bits, URL-safe: no commas, fits an env file)."""
    return secrets.token_urlsafe(32)


def key_id(key: str) -> str:
    """A short public name for a key, carried in signatures so the poster can say which key was used."""
    return hashlib.sha256(b"deephype approval key id\n" + key.encode()).hexdigest()[:12]


def canonical_bytes(message: Signed) -> bytes:
    """Every field but the signature, in one fixed form: what the signature covers."""
    fields = message.model_dump(mode="json", exclude={"signature"})
    return _DOMAINS[message.kind] + json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def parse_keys(value: str) -> list[str]:
    return [key.strip() for key in value.split(",") if key.strip()]


@cache
def _process_key() -> str:
    return new_key()


class ApprovalKeys:
    """The keys one service holds: the first signs, all verify."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ApprovalKeyError(
                f"{SETTING} is not set: the curator signs approvals and the poster checks them with it. "
                "Run `deephype keys new` and give the same value to the curator and the poster."
            )
        short = [key_id(k) for k in keys if len(k) < MIN_KEY_LENGTH]
        if short:
            raise ApprovalKeyError(
                f"{SETTING}: keys must be at least {MIN_KEY_LENGTH} characters (too short: key id "
                f"{', '.join(short)}); `deephype keys new` makes one"
            )
        self._keys = {key_id(k): k.encode() for k in keys}
        self.signing_key_id = key_id(keys[0])

    @classmethod
    def from_settings(cls, settings: Settings) -> ApprovalKeys:
        keys = parse_keys(settings.approval_keys.get_secret_value())
        if not keys and not settings.amqp_url:
            keys = [_process_key()]  # in-memory bus: curator and poster are this one process
        return cls(keys)

    def _mac(self, kid: str, message: Signed) -> str:
        return hmac.new(self._keys[kid], canonical_bytes(message), hashlib.sha256).hexdigest()

    def sign(self, message: SignedT) -> SignedT:
        """The message with a signature by the current (first) key, replacing any it had."""
        kid = self.signing_key_id
        signature = f"{SIGNATURE_SCHEME}:{kid}:{self._mac(kid, message)}"
        return message.model_copy(update={"signature": signature})

    def problem(self, message: Signed) -> str | None:
        """Why this approval (or post decision) is not one the curator signed with a key we accept; None
        when it is."""
        what = "approval" if isinstance(message, Approval) else "post decision"
        if not message.signature:
            return f"the {what} is not signed; only what the curator signed is acted on"
        scheme, _, rest = message.signature.partition(":")
        kid, _, mac = rest.partition(":")
        if scheme != SIGNATURE_SCHEME or not kid or not mac:
            return f"the {what}'s signature is malformed (expected {SIGNATURE_SCHEME}:<key id>:<hex>)"
        if kid not in self._keys:
            return f"the {what} is signed with key {kid[:12]!r}, which this poster does not accept ({SETTING})"
        if not hmac.compare_digest(mac.encode(), self._mac(kid, message).encode()):
            return f"the {what}'s signature does not match its content: it was altered or forged"
        return None


# --- `deephype keys` -------------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    keys = subparsers.add_parser("keys", help="make and rotate the approval signing keys (DEEPHYPE_APPROVAL_KEYS)")
    actions = keys.add_subparsers(dest="action", required=True)
    actions.add_parser("new", help="print a new random key").set_defaults(func=_new)
    rotate = actions.add_parser(
        "rotate", help="print DEEPHYPE_APPROVAL_KEYS with a new signing key first and the current keys after it"
    )
    rotate.add_argument("--keep", type=int, default=1, help="how many of the current keys stay accepted (default 1)")
    rotate.set_defaults(func=_rotate)


def _new(args: argparse.Namespace) -> int:
    print(new_key())
    return 0


def _rotate(args: argparse.Namespace) -> int:
    if args.keep < 0:
        raise ValueError("--keep must be 0 or more")
    current = parse_keys(get_settings().approval_keys.get_secret_value())
    print(f"{SETTING}={','.join([new_key(), *current[: args.keep]])}")
    return 0

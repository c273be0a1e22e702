"""The bus: what every service sees of messaging, whichever broker is behind it.

A handler is a plain function `message -> outputs`. The bus calls it, publishes the outputs with
publisher confirms, and only then acknowledges the input. A crash anywhere before the ack means the
input is delivered again, so handlers must be idempotent; to make that easy, output message ids are
derived from the input's id (`derive_id`), and consumers with state dedupe by message id (see inbox.py).

Failures: `PermanentError` (and any message that does not parse) goes straight to the dead-letter queue
with its reason; `RetryLater` waits the asked delay (e.g. Spotify's Retry-After); any other exception is
retried with growing delays, and after `max_attempts` dead-lettered with the error.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from prometheus_client import Counter, Histogram

from deephype.common.contracts import (
    Approval,
    Candidates,
    EnrichedSong,
    Envelope,
    InvalidMessage,
    PostDecision,
    PostStatus,
    PublishedPost,
    SongMention,
    decode,
)
from deephype.common.logs import trace

if TYPE_CHECKING:
    from deephype.common.settings import Settings

log = logging.getLogger("deephype.bus")

Handler = Callable[[Envelope], Sequence[Envelope]]

# Which service queue receives which message types. The exchange is a topic exchange; each message type's
# routing key is its ClassVar `routing_key`. Declared in full by every process, so nothing published
# before a consumer first starts is unroutable.
QUEUE_BINDINGS: dict[str, tuple[type[Envelope], ...]] = {
    "enricher": (SongMention,),
    "generator": (EnrichedSong,),
    "curator": (Candidates, PublishedPost, PostStatus),
    "poster": (Approval, PostDecision),
}
DEAD_LETTER_QUEUE = "dead-letter"

# Headers the bus sets on retried and dead-lettered messages.
ATTEMPT_HEADER = "x-deephype-attempt"
REASON_HEADER = "x-deephype-reason"
ORIGIN_QUEUE_HEADER = "x-deephype-origin-queue"
ROUTING_KEY_HEADER = "x-deephype-routing-key"
FAILED_AT_HEADER = "x-deephype-failed-at"

MESSAGES_IN = Counter("deephype_messages_in_total", "Messages delivered to a handler", ["queue"])
MESSAGES_OUT = Counter("deephype_messages_out_total", "Messages published", ["routing_key"])
MESSAGES_FAILED = Counter(
    "deephype_messages_failed_total", "Messages that failed, by what happened next", ["queue", "outcome"]
)
DUPLICATES = Counter("deephype_messages_duplicate_total", "Redelivered messages already handled", ["queue"])
HANDLER_SECONDS = Histogram(
    "deephype_handler_seconds",
    "Handler latency",
    ["queue"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


class RetryLater(Exception):
    """Try this message again after `delay_seconds` (e.g. a 429 with Retry-After)."""

    def __init__(self, reason: str, delay_seconds: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay_seconds = max(0.0, float(delay_seconds))


class PermanentError(Exception):
    """This message can never succeed: dead-letter it now, with this reason."""


def derive_id(parent_id: str, *parts: str | int) -> str:
    """A stable child message id: the same input always yields the same output ids (dedupe downstream)."""
    name = "/".join([parent_id, *map(str, parts)])
    return uuid.uuid5(uuid.NAMESPACE_URL, f"deephype:{name}").hex


def queue_name(exchange: str, service: str) -> str:
    return f"{exchange}.{service}"


def retry_queue_name(exchange: str, service: str, delay_seconds: float) -> str:
    return f"{exchange}.{service}.retry.{int(delay_seconds * 1000)}ms"


def pick_retry_delay(tiers: Sequence[float], wanted: float) -> float:
    """The smallest tier that waits at least `wanted`; the largest if none does."""
    for tier in sorted(tiers):
        if tier >= wanted:
            return tier
    return max(tiers)


def backoff_delay(tiers: Sequence[float], attempt: int) -> float:
    """Delay before attempt `attempt + 1` for an unexpected error: walk up the tiers."""
    ordered = sorted(tiers)
    return ordered[min(attempt - 1, len(ordered) - 1)]


# --- what to do with one delivery ---------------------------------------------------------------------


@dataclass(frozen=True)
class Ack:
    outputs: Sequence[Envelope] = ()


@dataclass(frozen=True)
class Retry:
    delay_seconds: float
    attempt: int  # the attempt number the retried message will carry
    reason: str


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    attempts: int


Outcome = Ack | Retry | DeadLetter


@dataclass(frozen=True)
class Subscription:
    """One service's queue and the handlers for the message types routed to it."""

    service: str
    handlers: Mapping[type[Envelope], Handler]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    retry_delays: Sequence[float] = (1.0, 5.0, 30.0, 300.0, 3600.0)
    max_message_bytes: int = 1_000_000

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(settings.max_attempts, tuple(settings.retry_delays), settings.max_message_bytes)


def process_delivery(subscription: Subscription, policy: RetryPolicy, body: bytes, attempt: int) -> Outcome:
    """Decode, dispatch and decide. Pure apart from the handler itself; both buses use it."""
    queue = subscription.service
    MESSAGES_IN.labels(queue).inc()
    try:
        message = decode(body, max_bytes=policy.max_message_bytes)
    except InvalidMessage as exc:
        MESSAGES_FAILED.labels(queue, "dead_letter").inc()
        return DeadLetter(f"invalid message: {exc}", attempt)
    except Exception as exc:  # decoding is pure: what fails once fails on every redelivery
        MESSAGES_FAILED.labels(queue, "dead_letter").inc()
        log.warning("dead-lettering a body that could not be decoded: %s: %s", type(exc).__name__, exc)
        return DeadLetter(f"invalid message: not decodable: {type(exc).__name__}: {exc}", attempt)
    handler = subscription.handlers.get(type(message))
    if handler is None:
        MESSAGES_FAILED.labels(queue, "dead_letter").inc()
        return DeadLetter(f"{queue} has no handler for {type(message).__name__}", attempt)
    with trace(message.trace_id):  # every line the handler logs carries the mention's trace id
        return _handle(queue, policy, handler, message, attempt)


def _handle(queue: str, policy: RetryPolicy, handler: Handler, message: Envelope, attempt: int) -> Outcome:
    started = time.perf_counter()
    try:
        outputs = list(handler(message))
    except PermanentError as exc:
        MESSAGES_FAILED.labels(queue, "dead_letter").inc()
        log.warning("dead-lettering %s %s: %s", type(message).__name__, message.message_id, exc)
        return DeadLetter(f"permanent error: {exc}", attempt)
    except RetryLater as exc:
        return _retry_or_give_up(queue, policy, attempt, exc.delay_seconds, exc.reason)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        log.error(
            "handler failed on %s %s (attempt %d): %s\n%s",
            type(message).__name__,
            message.message_id,
            attempt,
            reason,
            traceback.format_exc(limit=5),
        )
        delay = backoff_delay(policy.retry_delays, attempt)
        return _retry_or_give_up(queue, policy, attempt, delay, reason)
    finally:
        HANDLER_SECONDS.labels(queue).observe(time.perf_counter() - started)
    return Ack(outputs)


def _retry_or_give_up(queue: str, policy: RetryPolicy, attempt: int, delay: float, reason: str) -> Outcome:
    if attempt >= policy.max_attempts:
        MESSAGES_FAILED.labels(queue, "dead_letter").inc()
        return DeadLetter(f"gave up after {attempt} attempts: {reason}", attempt)
    MESSAGES_FAILED.labels(queue, "retry").inc()
    return Retry(pick_retry_delay(policy.retry_delays, delay), attempt + 1, reason)


# --- the interface ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetterRecord:
    """A message in the dead-letter queue, as an operator sees it."""

    body: bytes
    reason: str
    origin_queue: str
    routing_key: str
    attempts: int
    failed_at: float


class Bus(Protocol):
    def publish(self, message: Envelope) -> None:
        """Publish durably; returns once the broker has confirmed it."""

    def publish_many(self, messages: Sequence[Envelope]) -> None:
        """Publish all, in flight together; returns once the broker has confirmed every one."""

    def subscribe(self, subscription: Subscription) -> None:
        """Consume the service's queue with these handlers once started."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def is_connected(self) -> bool: ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetterRecord]:
        """Look at (without removing) the oldest dead-lettered messages."""

    def replay_dead_letters(self, limit: int = 100) -> int:
        """Move dead-lettered messages back to the queues they came from; returns how many."""

"""The bus in one process: same routing, retries and dead-lettering as RabbitMQ, no broker.

Used by `deephype demo` and by fast handler tests. Messages live in memory only.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from deephype.common.bus import (
    MESSAGES_OUT,
    QUEUE_BINDINGS,
    Ack,
    DeadLetterRecord,
    Retry,
    RetryPolicy,
    Subscription,
    process_delivery,
)
from deephype.common.contracts import Envelope, encode
from deephype.common.settings import Settings


@dataclass(frozen=True)
class _Delivery:
    body: bytes
    routing_key: str
    attempt: int = 1


class InMemoryBus:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.policy = RetryPolicy.from_settings(settings)
        self._queues: dict[str, queue.Queue[_Delivery]] = {name: queue.Queue() for name in QUEUE_BINDINGS}
        self._subscriptions: list[Subscription] = []
        self._threads: list[threading.Thread] = []
        self._dead: list[DeadLetterRecord] = []
        self._busy = 0  # deliveries being handled or waiting for a retry timer
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._timers: list[threading.Timer] = []

    def publish(self, message: Envelope) -> None:
        self.publish_body(encode(message), message.routing_key)
        MESSAGES_OUT.labels(message.routing_key).inc()

    def publish_many(self, messages: Sequence[Envelope]) -> None:
        for message in messages:
            self.publish(message)

    def publish_body(self, body: bytes, routing_key: str, service: str | None = None) -> None:
        """Route a raw body (tests use it to inject malformed messages)."""
        targets = (
            [service]
            if service
            else [name for name, types in QUEUE_BINDINGS.items() if any(t.routing_key == routing_key for t in types)]
        )
        if not targets:
            raise ValueError(f"no queue is bound to routing key {routing_key!r}")
        for name in targets:
            self._put(name, _Delivery(body, routing_key))

    def _put(self, service: str, delivery: _Delivery) -> None:
        with self._lock:
            self._busy += 1
        self._queues[service].put(delivery)

    def subscribe(self, subscription: Subscription) -> None:
        if subscription.service not in self._queues:
            raise ValueError(f"unknown service queue {subscription.service!r}")
        self._subscriptions.append(subscription)

    def start(self) -> None:
        self._stopping.clear()
        for subscription in self._subscriptions:
            for index in range(self.settings.handler_threads):
                thread = threading.Thread(
                    target=self._work,
                    args=(subscription,),
                    name=f"mem-{subscription.service}-{index}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        for timer in self._timers:
            timer.cancel()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def is_connected(self) -> bool:
        return not self._stopping.is_set()

    def _work(self, subscription: Subscription) -> None:
        inbox = self._queues[subscription.service]
        while not self._stopping.is_set():
            try:
                delivery = inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                outcome = process_delivery(subscription, self.policy, delivery.body, delivery.attempt)
                if isinstance(outcome, Ack):
                    for message in outcome.outputs:
                        self.publish(message)
                elif isinstance(outcome, Retry):
                    self._retry(subscription.service, delivery, outcome)
                else:
                    self._dead.append(
                        DeadLetterRecord(
                            delivery.body,
                            outcome.reason,
                            subscription.service,
                            delivery.routing_key,
                            outcome.attempts,
                            time.time(),
                        )
                    )
            finally:
                self._done()

    def _retry(self, service: str, delivery: _Delivery, outcome: Retry) -> None:
        again = _Delivery(delivery.body, delivery.routing_key, outcome.attempt)
        with self._lock:
            self._busy += 1  # the timer holds it until it is queued again

        def requeue() -> None:
            self._put(service, again)
            self._done()

        timer = threading.Timer(outcome.delay_seconds, requeue)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _done(self) -> None:
        with self._lock:
            self._busy -= 1
            self._lock.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until no message is queued, being handled or waiting to be retried."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def dead_letters(self, limit: int = 100) -> list[DeadLetterRecord]:
        return list(self._dead[:limit])

    def replay_dead_letters(self, limit: int = 100) -> int:
        replay, self._dead = self._dead[:limit], self._dead[limit:]
        for record in replay:
            self._put(record.origin_queue, _Delivery(record.body, record.routing_key))
        return len(replay)

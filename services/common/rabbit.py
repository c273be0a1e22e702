"""The bus on RabbitMQ (pika).

Topology, declared idempotently by every connection:
- one durable topic exchange (settings.exchange);
- per consuming service a durable queue `<exchange>.<service>` (quorum where the broker has them) bound to
  the routing keys of its message types;
- per service and retry delay a TTL queue `<exchange>.<service>.retry.<ms>ms` that dead-letters back
  into the service queue (through the default exchange, so only that queue gets it again);
- one dead-letter queue `<exchange>.dead-letter` where messages end with the reason in their headers.

Consumers run pika's I/O loop on their own thread (it keeps heartbeats going) and hand each delivery to a
worker pool, so a slow handler (a long generation) never starves heartbeats. A handler's outputs go to
the pipelined confirming publisher (rabbit_confirms.py: many in flight on one channel); the input is acked,
through `add_callback_threadsafe`, only once every output is confirmed, and nacked back to its queue when
one is refused, returned or not confirmed in time. The handler thread does not wait for the confirms.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from deephype.common.bus import (
    ATTEMPT_HEADER,
    DEAD_LETTER_QUEUE,
    FAILED_AT_HEADER,
    MESSAGES_OUT,
    ORIGIN_QUEUE_HEADER,
    QUEUE_BINDINGS,
    REASON_HEADER,
    ROUTING_KEY_HEADER,
    Ack,
    DeadLetter,
    DeadLetterRecord,
    Retry,
    RetryPolicy,
    Subscription,
    process_delivery,
    queue_name,
    retry_queue_name,
)
from deephype.common.contracts import Envelope, encode
from deephype.common.rabbit_confirms import ConfirmingPublisher, PublishNacked, TopologyError
from deephype.common.settings import Settings

log = logging.getLogger("deephype.rabbit")

# Errors after which a connection is thrown away and made again.
CONNECTION_ERRORS = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.StreamLostError,
    pika.exceptions.ConnectionWrongStateError,
    pika.exceptions.ChannelWrongStateError,
    pika.exceptions.NackError,
    ConnectionError,
    OSError,
)


def declare_topology(channel: BlockingChannel, settings: Settings) -> None:
    exchange = settings.exchange
    channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    main_args: dict[str, Any] = {"x-queue-type": "quorum"} if settings.quorum_queues else {}
    for service, message_types in QUEUE_BINDINGS.items():
        name = queue_name(exchange, service)
        channel.queue_declare(name, durable=True, arguments=main_args)
        for message_type in message_types:
            channel.queue_bind(name, exchange, routing_key=message_type.routing_key)
        for delay in settings.retry_delays:
            channel.queue_declare(
                retry_queue_name(exchange, service, delay),
                durable=True,
                arguments={
                    "x-message-ttl": int(delay * 1000),
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": name,
                },
            )
    channel.queue_declare(queue_name(exchange, DEAD_LETTER_QUEUE), durable=True, arguments=main_args)


def _properties(message_id: str | None, headers: dict[str, Any] | None = None) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type="application/json",
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=message_id,
        headers=headers or {},
    )


class _Settler:
    """Acks and nacks for one consumer connection, sent from its I/O thread in batches.

    Any thread may settle (a handler thread, or the publisher's thread when the outputs are confirmed);
    one wake-up of the I/O thread sends all that are waiting.
    """

    def __init__(self, connection: pika.BlockingConnection, channel: BlockingChannel) -> None:
        self._connection = connection
        self._channel = channel
        self._lock = threading.Lock()
        self._waiting: list[tuple[int, bool]] = []

    def settle(self, delivery_tag: int, ack: bool) -> None:
        with self._lock:
            self._waiting.append((delivery_tag, ack))
            if len(self._waiting) > 1:
                return  # a flush is already on its way
        # A dead connection: its deliveries come back from the broker anyway.
        with contextlib.suppress(CONNECTION_ERRORS):
            self._connection.add_callback_threadsafe(self._flush)

    def _flush(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, []
        if not self._channel.is_open:  # the deliveries died with their channel; the broker redelivers them
            return
        for delivery_tag, ack in waiting:
            if ack:
                self._channel.basic_ack(delivery_tag)
            else:
                self._channel.basic_nack(delivery_tag, requeue=True)


def when_all_done(futures: Sequence[Future[None]], then: Callable[[BaseException | None], None]) -> None:
    """Call `then(None)` once every future succeeded, or `then(first error)` once all are done."""
    if not futures:
        then(None)
        return
    lock = threading.Lock()
    left = [len(futures)]

    def one_done(_: Future[None]) -> None:
        with lock:
            left[0] -= 1
            if left[0]:
                return
        errors = [f.exception() for f in futures if f.exception() is not None]
        then(errors[0] if errors else None)

    for future in futures:
        future.add_done_callback(one_done)


class _Consumer(threading.Thread):
    """Consumes one service queue, reconnecting with backoff until stopped."""

    def __init__(self, bus: RabbitBus, subscription: Subscription, workers: ThreadPoolExecutor) -> None:
        super().__init__(name=f"consumer-{subscription.service}", daemon=True)
        self._bus = bus
        self._subscription = subscription
        self._workers = workers
        self._queue = queue_name(bus.settings.exchange, subscription.service)
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self.connected = threading.Event()

    def run(self) -> None:
        failures = 0
        while not self._bus.stopping.is_set():
            try:
                self._consume()
                failures = 0
            except CONNECTION_ERRORS as exc:
                self.connected.clear()
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                log.warning("%s: broker connection lost (%s); reconnecting in %.1fs", self.name, exc, delay)
                self._bus.stopping.wait(delay)
        self.connected.clear()

    def _consume(self) -> None:
        settings = self._bus.settings
        connection = pika.BlockingConnection(
            self._bus.parameters(heartbeat=settings.heartbeat_seconds, suffix=self._subscription.service)
        )
        try:
            channel = connection.channel()
            self._bus.declare(channel)
            channel.basic_qos(prefetch_count=settings.prefetch)
            on_message = functools.partial(self._on_message, _Settler(connection, channel))
            tag = channel.basic_consume(self._queue, on_message, auto_ack=False)
            self.connected.set()
            log.info("%s: consuming %s", self.name, self._queue)
            while not self._bus.stopping.is_set():
                connection.process_data_events(time_limit=0.2)
            # Stop taking new work, let the in-flight handlers finish and their acks go out.
            channel.basic_cancel(tag)
            deadline = time.monotonic() + settings.shutdown_grace_seconds
            while self._in_flight and time.monotonic() < deadline:
                connection.process_data_events(time_limit=0.1)
            connection.process_data_events(time_limit=0)
        finally:
            self.connected.clear()
            if connection.is_open:
                with contextlib.suppress(CONNECTION_ERRORS):
                    connection.close()

    def _on_message(
        self,
        settler: _Settler,
        _channel: BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        with self._in_flight_lock:
            self._in_flight += 1
        self._workers.submit(self._work, settler, method, properties, body)

    def _work(
        self, settler: _Settler, method: pika.spec.Basic.Deliver, properties: pika.BasicProperties, body: bytes
    ) -> None:
        delivery_tag = method.delivery_tag
        try:
            headers = properties.headers or {}
            attempt = int(headers.get(ATTEMPT_HEADER, 1))
            # Quorum queues count returns to the queue: a message that keeps killing its consumer before
            # the ack would otherwise loop forever.
            returned = int(headers.get("x-delivery-count", 0))
            if returned >= self._bus.settings.max_redeliveries:
                outcome: Ack | Retry | DeadLetter = DeadLetter(
                    f"redelivered {returned} times without an ack (the consumer crashed or hung on it)",
                    attempt,
                )
            else:
                outcome = process_delivery(self._subscription, self._bus.policy, body, attempt)
            confirms = self._settle(outcome, method.routing_key, body, properties)
        except Exception:
            # Could not even hand the outcome to the publisher: leave it unacked; it comes back.
            log.exception("%s: could not settle a delivery; it will be redelivered", self.name)
            self._finish(settler, delivery_tag, None, ack=False)
            return

        # The handler thread is free now; the input is acked once every output is confirmed.
        def settled(error: BaseException | None) -> None:
            self._finish(settler, delivery_tag, error, ack=error is None)

        when_all_done(confirms, settled)

    def _finish(self, settler: _Settler, delivery_tag: int, error: BaseException | None, *, ack: bool) -> None:
        if error is not None:
            log.warning(
                "%s: an output was not confirmed (%s: %s); the input will be redelivered",
                self.name,
                type(error).__name__,
                error,
            )
        settler.settle(delivery_tag, ack)
        with self._in_flight_lock:
            self._in_flight -= 1

    def _settle(
        self,
        outcome: Ack | Retry | DeadLetter,
        routing_key: str,
        body: bytes,
        properties: pika.BasicProperties,
    ) -> list[Future[None]]:
        """Publish what the outcome asks for, without waiting for the confirms."""
        bus, service = self._bus, self._subscription.service
        original_key = (properties.headers or {}).get(ROUTING_KEY_HEADER, routing_key)
        if isinstance(outcome, Ack):
            return [bus.publish_async(message) for message in outcome.outputs]
        if isinstance(outcome, Retry):
            retry_queue = retry_queue_name(bus.settings.exchange, service, outcome.delay_seconds)
            headers = {
                ATTEMPT_HEADER: outcome.attempt,
                REASON_HEADER: outcome.reason[:1000],
                ROUTING_KEY_HEADER: original_key,
            }
            return [bus.publish_raw_async("", retry_queue, body, _properties(properties.message_id, headers))]
        headers = {
            ATTEMPT_HEADER: outcome.attempts,
            REASON_HEADER: outcome.reason[:4000],
            ORIGIN_QUEUE_HEADER: service,
            ROUTING_KEY_HEADER: original_key,
            FAILED_AT_HEADER: int(time.time() * 1000),  # AMQP tables have no floats
        }
        dlq = queue_name(bus.settings.exchange, DEAD_LETTER_QUEUE)
        return [bus.publish_raw_async("", dlq, body, _properties(properties.message_id, headers))]


class RabbitBus:
    def __init__(self, settings: Settings, *, connection_name: str = "deephype") -> None:
        self.settings = settings
        self.policy = RetryPolicy.from_settings(settings)
        self.stopping = threading.Event()
        self._connection_name = connection_name
        self._subscriptions: list[Subscription] = []
        self._consumers: list[_Consumer] = []
        self._workers: ThreadPoolExecutor | None = None
        # The cluster's nodes, taken in turn from a random one (copies spread their connections).
        self._nodes = settings.amqp_urls() or [settings.amqp_url]
        self._next_node = random.randrange(len(self._nodes))
        self._nodes_lock = threading.Lock()
        self._publisher = self._new_publisher()

    # --- connections ---

    def parameters(self, *, heartbeat: int, suffix: str) -> pika.URLParameters:
        """Where the next connection goes: DEEPHYPE_AMQP_URL may list a cluster's nodes, and a connection
        lost (or refused) is made again, by the same reconnect loops, on the next node that answers."""
        parameters = pika.URLParameters(self._node())
        parameters.heartbeat = heartbeat
        parameters.blocked_connection_timeout = 60
        parameters.socket_timeout = 5
        parameters.connection_attempts = 1
        parameters.client_properties = {"connection_name": f"{self._connection_name}:{suffix}"}
        return parameters

    def _node(self) -> str:
        """The next node, in turn, that accepts a TCP connection (a node that is down is skipped); when none
        does, the next one anyway: its connection fails and is retried as with a single node."""
        with self._nodes_lock:
            start, count = self._next_node, len(self._nodes)
            self._next_node = (start + 1) % count
        if count == 1:
            return self._nodes[0]
        for step in range(count):
            url = self._nodes[(start + step) % count]
            if _answers(url):
                with self._nodes_lock:
                    self._next_node = (start + step + 1) % count
                return url
        return self._nodes[start]

    def declare(self, channel: BlockingChannel) -> None:
        try:
            declare_topology(channel, self.settings)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 406:  # PRECONDITION_FAILED: same name, other arguments
                raise TopologyError(f"the broker refused our queue layout: {exc.reply_text}") from exc
            raise

    def _new_publisher(self) -> ConfirmingPublisher:
        return ConfirmingPublisher(
            lambda: self.parameters(heartbeat=self.settings.heartbeat_seconds, suffix="publisher"),
            self._declare_on_new_connection,
            window=self.settings.publish_window,
            timeout_seconds=self.settings.publish_timeout_seconds,
            name=f"publisher-{self._connection_name}",
        )

    def _declare_on_new_connection(self) -> None:
        connection = pika.BlockingConnection(self.parameters(heartbeat=0, suffix="declare"))
        try:
            self.declare(connection.channel())
        finally:
            with contextlib.suppress(CONNECTION_ERRORS):
                connection.close()

    # --- the Bus interface ---

    def publish(self, message: Envelope) -> None:
        self._wait_confirmed(lambda: self.publish_async(message))

    def publish_many(self, messages: Sequence[Envelope]) -> None:
        """All in flight at once (up to the window); returns when every one is confirmed, raises if any was not."""
        futures = [self.publish_async(message) for message in messages]
        for future in futures:
            future.result()

    def publish_async(self, message: Envelope) -> Future[None]:
        """Publish without waiting: the future resolves when the broker confirms (see rabbit_confirms)."""
        future = self.publish_raw_async(
            self.settings.exchange,
            message.routing_key,
            encode(message),
            _properties(message.message_id, {"x-deephype-trace-id": message.trace_id}),
        )
        MESSAGES_OUT.labels(message.routing_key).inc()
        return future

    def publish_raw(self, exchange: str, routing_key: str, body: bytes, properties: pika.BasicProperties) -> None:
        self._wait_confirmed(lambda: self.publish_raw_async(exchange, routing_key, body, properties))

    def publish_raw_async(
        self, exchange: str, routing_key: str, body: bytes, properties: pika.BasicProperties
    ) -> Future[None]:
        return self._publisher.publish(exchange, routing_key, body, properties)

    def _wait_confirmed(self, publish: Callable[[], Future[None]]) -> None:
        """One message, confirmed; a nack is retried until the publish timeout (a lost connection already is)."""
        for attempt in Retrying(
            retry=retry_if_exception_type(PublishNacked),
            wait=wait_exponential_jitter(initial=0.1, max=3.0),
            stop=stop_after_delay(self.settings.publish_timeout_seconds),
            reraise=True,
        ):
            with attempt:
                publish().result()

    def subscribe(self, subscription: Subscription) -> None:
        if self._consumers:
            raise RuntimeError("subscribe before start()")
        self._subscriptions.append(subscription)

    def start(self) -> None:
        self.stopping.clear()
        if self._subscriptions:
            self._workers = ThreadPoolExecutor(self.settings.handler_threads, thread_name_prefix="handler")
        for subscription in self._subscriptions:
            assert self._workers is not None
            consumer = _Consumer(self, subscription, self._workers)
            consumer.start()
            self._consumers.append(consumer)

    def wait_connected(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        return all(c.connected.wait(max(0.0, deadline - time.monotonic())) for c in self._consumers)

    def stop(self) -> None:
        self.stopping.set()
        for consumer in self._consumers:
            consumer.join(timeout=self.settings.shutdown_grace_seconds + 5)
        if self._workers is not None:
            self._workers.shutdown(wait=True, cancel_futures=True)
        self._publisher.close(self.settings.shutdown_grace_seconds)
        self._publisher = self._new_publisher()
        self._consumers.clear()

    def is_connected(self) -> bool:
        # A service must both take its input and publish its outputs.
        if not all(c.connected.is_set() for c in self._consumers):
            return False
        return self._publisher.wait_connected(timeout=5.0)

    @property
    def publisher(self) -> ConfirmingPublisher:
        return self._publisher

    # --- dead letters ---

    def _admin_channel(self) -> tuple[pika.BlockingConnection, BlockingChannel]:
        connection = pika.BlockingConnection(self.parameters(heartbeat=0, suffix="admin"))
        channel = connection.channel()
        self.declare(channel)
        channel.confirm_delivery()
        return connection, channel

    def dead_letters(self, limit: int = 100) -> list[DeadLetterRecord]:
        connection, channel = self._admin_channel()
        records: list[DeadLetterRecord] = []
        try:
            dlq = queue_name(self.settings.exchange, DEAD_LETTER_QUEUE)
            for _ in range(limit):
                method, properties, body = channel.basic_get(dlq, auto_ack=False)
                if method is None:
                    break
                records.append(_record(properties, body))
        finally:
            connection.close()  # unacked messages go back to the queue untouched
        return records

    def replay_dead_letters(self, limit: int = 100) -> int:
        connection, channel = self._admin_channel()
        replayed = 0
        try:
            dlq = queue_name(self.settings.exchange, DEAD_LETTER_QUEUE)
            # Only what is there now: a replayed message that fails again must not be picked up again here.
            waiting = channel.queue_declare(dlq, passive=True).method.message_count
            for _ in range(min(limit, waiting)):
                method, properties, body = channel.basic_get(dlq, auto_ack=False)
                if method is None:
                    break
                record = _record(properties, body)
                target = queue_name(self.settings.exchange, record.origin_queue)
                headers = {ROUTING_KEY_HEADER: record.routing_key, "x-deephype-replayed": True}
                channel.basic_publish("", target, body, _properties(properties.message_id, headers), mandatory=True)
                channel.basic_ack(method.delivery_tag)
                replayed += 1
        finally:
            connection.close()
        return replayed

    def queue_depths(self) -> dict[str, int]:
        """Messages ready in each service queue and the dead-letter queue (for tests and operators)."""
        connection, channel = self._admin_channel()
        try:
            names: Sequence[str] = [*QUEUE_BINDINGS, DEAD_LETTER_QUEUE]
            return {
                name: channel.queue_declare(queue_name(self.settings.exchange, name), passive=True).method.message_count
                for name in names
            }
        finally:
            connection.close()


def _answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a broker node takes a TCP connection at all (a node that is down refuses or times out)."""
    parameters = pika.URLParameters(url)
    try:
        socket.create_connection((parameters.host, parameters.port), timeout=timeout).close()
    except OSError:
        return False
    return True


def _record(properties: pika.BasicProperties, body: bytes) -> DeadLetterRecord:
    headers = properties.headers or {}

    def text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    return DeadLetterRecord(
        body=body,
        reason=text(headers.get(REASON_HEADER, "unknown")),
        origin_queue=text(headers.get(ORIGIN_QUEUE_HEADER, "")),
        routing_key=text(headers.get(ROUTING_KEY_HEADER, "")),
        attempts=int(headers.get(ATTEMPT_HEADER, 0)),
        failed_at=int(headers.get(FAILED_AT_HEADER, 0)) / 1000,
    )

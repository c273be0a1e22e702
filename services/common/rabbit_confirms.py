"""Pipelined publisher confirms on RabbitMQ: many publishes in flight on one channel, each with a future.

One I/O thread owns a pika SelectConnection. Any thread calls `publish()` and gets a Future that resolves
once the broker has confirmed that message (basic.ack), and fails when the broker refuses it (basic.nack),
returns it as unroutable (mandatory publish), or it is not confirmed before its deadline. When the
connection is lost, the messages not yet confirmed are published again on the next connection: at least
once (a message may arrive twice, never not at all). A semaphore bounds the messages in flight
(settings.publish_window): `publish()` waits while the window is full.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass

import pika
import pika.channel
import pika.frame
import pika.spec

log = logging.getLogger("deephype.rabbit")

# Ties a returned (unroutable) message to its publish: returns carry the message, not its delivery tag.
PUBLISH_TAG_HEADER = "x-deephype-publish-tag"
# How often deadlines are checked.
EXPIRY_INTERVAL_SECONDS = 0.5


class TopologyError(RuntimeError):
    """The broker refused our queue layout (e.g. a queue exists with other arguments)."""


class PublishFailed(Exception):
    """The broker did not take the message; the caller must not treat it as sent."""


class PublishNacked(PublishFailed):
    """basic.nack: the broker could not store the message (e.g. a queue that rejects publishes when full)."""


class PublishReturned(PublishFailed):
    """basic.return: no queue is bound for this exchange and routing key."""


class PublishTimedOut(PublishFailed, ConnectionError):
    """Not confirmed before the publish timeout (the broker is unreachable or blocked)."""


@dataclass(eq=False)
class _Request:
    exchange: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties
    deadline: float
    future: Future[None]
    returned: str | None = None


def _fail(request: _Request, error: Exception) -> None:
    with contextlib.suppress(Exception):  # already resolved (a late confirm after its deadline)
        request.future.set_exception(error)


class ConfirmingPublisher:
    """Publishes from any thread; one background thread keeps the connection and matches the confirms."""

    def __init__(
        self,
        parameters: Callable[[], pika.URLParameters],
        declare: Callable[[], None],
        *,
        window: int,
        timeout_seconds: float,
        name: str = "publisher",
    ) -> None:
        self._parameters = parameters
        self._declare = declare
        self._timeout = timeout_seconds
        self._name = name
        self._window = threading.BoundedSemaphore(window)
        self._lock = threading.Lock()
        self._outbox: deque[_Request] = deque()
        self._wakeup_pending = False
        # Published, not yet confirmed, by delivery tag (changed by the I/O thread, under the lock).
        self._unconfirmed: OrderedDict[int, _Request] = OrderedDict()
        self._next_tag = 1
        self.peak_in_flight = 0  # most messages unconfirmed at once (tests and benches read it)
        self._opened = False  # this connection reached confirm mode
        self._channel: pika.channel.Channel | None = None
        self._connection: pika.SelectConnection | None = None  # read by publish() under the lock
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self.connected = threading.Event()

    # --- any thread ---

    def publish(self, exchange: str, routing_key: str, body: bytes, properties: pika.BasicProperties) -> Future[None]:
        if self._closing.is_set():
            raise PublishFailed("the publisher is closed")
        self._ensure_started()
        if not self._window.acquire(timeout=self._timeout):
            raise PublishTimedOut(f"no room in the publish window for {self._timeout:.0f}s")
        future: Future[None] = Future()
        future.add_done_callback(lambda _: self._window.release())
        request = _Request(exchange, routing_key, body, properties, time.monotonic() + self._timeout, future)
        with self._lock:
            self._outbox.append(request)
            connection = self._connection
            wake = connection is not None and not self._wakeup_pending
            if wake:
                self._wakeup_pending = True
        if wake:
            assert connection is not None
            # A closed loop just leaves the request in the outbox; the next connection publishes it.
            with contextlib.suppress(Exception):
                connection.ioloop.add_callback_threadsafe(self._drain)
        return future

    def wait_connected(self, timeout: float) -> bool:
        self._ensure_started()
        return self.connected.wait(timeout)

    def in_flight(self) -> int:
        """Messages handed to publish() and not yet confirmed, refused or failed."""
        with self._lock:
            return len(self._outbox) + len(self._unconfirmed)

    def idle(self) -> bool:
        return self.in_flight() == 0

    def close(self, grace_seconds: float) -> None:
        """Let what is in flight be confirmed (up to the grace), then close; what is left fails."""
        deadline = time.monotonic() + grace_seconds
        while not self.idle() and time.monotonic() < deadline and self.connected.is_set():
            time.sleep(0.01)
        self._closing.set()
        with self._lock:
            connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.ioloop.add_callback_threadsafe(self._close_connection)
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            left = [*self._outbox, *self._unconfirmed.values()]
            self._outbox.clear()
            self._unconfirmed.clear()
        for request in left:
            _fail(request, PublishFailed("the publisher closed before the broker confirmed it"))

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    # --- the I/O thread ---

    def _run(self) -> None:
        failures = 0
        while not self._closing.is_set():
            self._opened = False
            try:
                self._declare()
                connection = pika.SelectConnection(
                    self._parameters(),
                    on_open_callback=self._on_connection_open,
                    on_open_error_callback=self._on_connection_open_error,
                    on_close_callback=self._on_connection_closed,
                )
                with self._lock:
                    self._connection = connection
                connection.ioloop.start()
            except Exception as exc:
                if isinstance(exc, TopologyError):
                    self._fail_outbox(exc)
                log.warning("%s: could not connect: %s: %s", self._name, type(exc).__name__, exc)
            self._connection_lost()
            if self._closing.is_set():
                break
            failures = 0 if self._opened else failures + 1
            self._backoff(min(10.0, 0.1 * 2 ** min(failures, 7)))

    def _backoff(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._closing.is_set() and time.monotonic() < deadline:
            self._expire_overdue()
            self._closing.wait(min(EXPIRY_INTERVAL_SECONDS, max(0.0, deadline - time.monotonic())))

    def _on_connection_open(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_connection_open_error(self, connection: pika.SelectConnection, error: BaseException | str) -> None:
        log.warning("%s: broker connection failed: %s", self._name, error)
        connection.ioloop.stop()

    def _on_connection_closed(self, connection: pika.SelectConnection, reason: BaseException) -> None:
        self.connected.clear()
        if not self._closing.is_set():
            log.warning("%s: broker connection lost: %s", self._name, reason)
        connection.ioloop.stop()

    def _close_connection(self) -> None:
        with self._lock:
            connection = self._connection
        if connection is not None and not (connection.is_closing or connection.is_closed):
            connection.close()

    def _on_channel_open(self, channel: pika.channel.Channel) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(self._on_confirm, callback=self._on_confirm_mode)

    def _on_channel_closed(self, channel: pika.channel.Channel, reason: BaseException) -> None:
        # E.g. a publish to an exchange that does not exist: start over on a new connection, which
        # declares the topology again; the unconfirmed messages are published again there.
        self._channel = None
        if not self._closing.is_set():
            log.warning("%s: channel closed: %s", self._name, reason)
        self._close_connection()

    def _on_confirm_mode(self, _frame: pika.frame.Method) -> None:
        self._next_tag = 1
        self._opened = True
        self.connected.set()
        assert self._connection is not None
        self._connection.ioloop.call_later(EXPIRY_INTERVAL_SECONDS, self._expire_tick)
        self._drain()

    def _drain(self) -> None:
        with self._lock:
            self._wakeup_pending = False
            batch = list(self._outbox)
            self._outbox.clear()
        channel = self._channel
        for index, request in enumerate(batch):
            if request.future.done():
                continue
            if channel is None or not channel.is_open:
                self._requeue(batch[index:])
                return
            tag = self._next_tag
            properties = copy.copy(request.properties)
            properties.headers = {**(request.properties.headers or {}), PUBLISH_TAG_HEADER: tag}
            try:
                channel.basic_publish(request.exchange, request.routing_key, request.body, properties, mandatory=True)
            except Exception as exc:
                log.warning("%s: publish failed, will retry: %s: %s", self._name, type(exc).__name__, exc)
                self._requeue(batch[index:])
                return
            self._next_tag += 1
            request.returned = None
            with self._lock:
                self._unconfirmed[tag] = request
                self.peak_in_flight = max(self.peak_in_flight, len(self._unconfirmed))

    def _requeue(self, requests: Iterable[_Request]) -> None:
        with self._lock:
            self._outbox.extendleft(reversed(list(requests)))

    def _on_return(
        self,
        _channel: pika.channel.Channel,
        method: pika.spec.Basic.Return,
        properties: pika.BasicProperties,
        _body: bytes,
    ) -> None:
        tag = (properties.headers or {}).get(PUBLISH_TAG_HEADER)
        request = self._unconfirmed.get(tag) if isinstance(tag, int) else None
        if request is not None:  # its ack follows; the ack then fails it
            request.returned = (
                f"unroutable ({method.reply_code} {method.reply_text}): "
                f"exchange {method.exchange!r}, routing key {method.routing_key!r}"
            )

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        acked = isinstance(method, pika.spec.Basic.Ack)
        tag = method.delivery_tag
        settled: list[_Request] = []
        with self._lock:
            if method.multiple:
                while self._unconfirmed:
                    first = next(iter(self._unconfirmed))
                    if first > tag:
                        break
                    settled.append(self._unconfirmed.popitem(last=False)[1])
            elif (request := self._unconfirmed.pop(tag, None)) is not None:
                settled.append(request)
        for request in settled:
            if not acked:
                _fail(request, PublishNacked(f"the broker refused the message (nack) for {request.routing_key!r}"))
            elif request.returned is not None:
                _fail(request, PublishReturned(request.returned))
            else:
                with contextlib.suppress(Exception):
                    request.future.set_result(None)

    def _expire_tick(self) -> None:
        self._expire_overdue()
        if self._connection is not None and self.connected.is_set():
            self._connection.ioloop.call_later(EXPIRY_INTERVAL_SECONDS, self._expire_tick)

    def _expire_overdue(self) -> None:
        now = time.monotonic()
        with self._lock:
            overdue = [r for r in self._outbox if r.deadline < now]
            if overdue:
                self._outbox = deque(r for r in self._outbox if r.deadline >= now)
            for tag in [tag for tag, r in self._unconfirmed.items() if r.deadline < now]:
                overdue.append(self._unconfirmed.pop(tag))
        for request in overdue:
            _fail(request, PublishTimedOut(f"not confirmed within {self._timeout:.0f}s (is the broker up?)"))

    def _fail_outbox(self, error: Exception) -> None:
        with self._lock:
            failed = list(self._outbox)
            self._outbox.clear()
        for request in failed:
            _fail(request, error)

    def _connection_lost(self) -> None:
        self.connected.clear()
        self._channel = None
        with self._lock:
            connection, self._connection = self._connection, None
            # Not confirmed means not known to be stored: publish them again, first, in their order.
            self._outbox.extendleft(reversed(self._unconfirmed.values()))
            self._unconfirmed.clear()
            self._wakeup_pending = False
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.ioloop.close()

"""Pipelined publisher confirms on the real RabbitMQ: many in flight, inputs acked only after their outputs
are confirmed, nacked and returned outputs send the input back, a lost connection loses nothing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pika
import pytest

from deephype.common.bus import Subscription, queue_name
from deephype.common.contracts import EnrichedSong, Envelope, SongMention, decode
from deephype.common.rabbit import RabbitBus
from deephype.common.settings import Settings
from tests.conftest import wait_until
from tests.helpers.tcp_proxy import TcpProxy
from tests.test_bus import enrich, mention

pytestmark = pytest.mark.rabbitmq


@contextmanager
def channel_to(settings: Settings) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        yield connection.channel()
    finally:
        connection.close()


def drain_ids(settings: Settings, service: str) -> list[str]:
    """Every message id waiting in a service queue (taken off it)."""
    ids: list[str] = []
    with channel_to(settings) as channel:
        while True:
            method, _properties, body = channel.basic_get(queue_name(settings.exchange, service), auto_ack=True)
            if method is None:
                return ids
            ids.append(decode(body).message_id)


def depth(settings: Settings, service: str) -> int:
    """Messages ready in a service queue (looked at passively: bus.queue_depths would declare the bindings)."""
    with channel_to(settings) as channel:
        return channel.queue_declare(queue_name(settings.exchange, service), passive=True).method.message_count


class CountingEnricher:
    """The test enricher, counting how often each input reached it."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, message: Envelope) -> list[Envelope]:
        with self._lock:
            self.calls[message.message_id] = self.calls.get(message.message_id, 0) + 1
        return enrich(message)


def started_enricher(settings: Settings, handler: CountingEnricher) -> RabbitBus:
    bus = RabbitBus(settings, connection_name="confirms-test")
    bus.subscribe(Subscription("enricher", {SongMention: handler}))
    bus.start()
    assert bus.wait_connected() and bus.is_connected()  # consumer and publisher connected, topology declared
    return bus


def test_many_publishes_are_in_flight_at_once_and_all_are_confirmed(rabbit_settings: Settings) -> None:
    settings = rabbit_settings.model_copy(update={"publish_window": 50})
    bus = RabbitBus(settings, connection_name="confirms-test")
    sent = [mention(f"many-{i}") for i in range(600)]
    try:
        bus.publish_many(sent)
        # Pipelined: more than one unconfirmed at a time, never more than the window.
        assert 1 < bus.publisher.peak_in_flight <= 50
    finally:
        bus.stop()
    assert sorted(drain_ids(settings, "enricher")) == sorted(m.message_id for m in sent)


def test_an_input_whose_output_is_nacked_is_redelivered_until_the_output_is_taken(
    rabbit_settings: Settings,
) -> None:
    settings = rabbit_settings.model_copy(update={"max_redeliveries": 10_000})
    handler = CountingEnricher()
    bus = started_enricher(settings, handler)
    # A queue that refuses every publish, bound to the enriched songs: the broker nacks each output.
    full = f"{settings.exchange}.test-full-{uuid.uuid4().hex[:6]}"
    with channel_to(settings) as channel:
        channel.queue_declare(full, arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
        channel.queue_bind(full, settings.exchange, routing_key=EnrichedSong.routing_key)
    sent = mention("nacked-1")
    try:
        bus.publish(sent)
        assert wait_until(lambda: handler.calls.get(sent.message_id, 0) >= 3)
        with channel_to(settings) as channel:
            channel.queue_delete(full)
        # Once nothing refuses it, the output is confirmed and only then the input acked.
        assert wait_until(lambda: depth(settings, "generator") >= 1)
        assert wait_until(lambda: depth(settings, "enricher") == 0)
    finally:
        bus.stop()
    assert depth(settings, "enricher") == 0  # acked, not back in the queue
    assert bus.dead_letters() == []


def test_an_input_whose_output_is_returned_unroutable_is_redelivered_not_acked(rabbit_settings: Settings) -> None:
    settings = rabbit_settings.model_copy(update={"max_redeliveries": 10_000})
    handler = CountingEnricher()
    bus = started_enricher(settings, handler)
    generator_queue = queue_name(settings.exchange, "generator")
    with channel_to(settings) as channel:  # nothing takes the enriched songs now: each output is returned
        channel.queue_unbind(generator_queue, settings.exchange, routing_key=EnrichedSong.routing_key)
    sent = mention("returned-1")
    try:
        bus.publish(sent)
        assert wait_until(lambda: handler.calls.get(sent.message_id, 0) >= 3)
        assert depth(settings, "generator") == 0
        with channel_to(settings) as channel:
            channel.queue_bind(generator_queue, settings.exchange, routing_key=EnrichedSong.routing_key)
        assert wait_until(lambda: depth(settings, "generator") >= 1)
        assert wait_until(lambda: depth(settings, "enricher") == 0)
    finally:
        bus.stop()
    assert bus.dead_letters() == []
    assert set(drain_ids(settings, "generator")) == {enrich(sent)[0].message_id}


def test_a_lost_broker_connection_with_unconfirmed_messages_loses_nothing(rabbit_settings: Settings) -> None:
    host, port = "127.0.0.1", pika.URLParameters(rabbit_settings.amqp_url).port
    with TcpProxy(host, port) as proxy:
        proxied = rabbit_settings.amqp_url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")
        settings = rabbit_settings.model_copy(update={"amqp_url": proxied, "prefetch": 64})
        handler = CountingEnricher()
        bus = started_enricher(settings, handler)
        sent = [mention(f"lost-{i}") for i in range(1500)]
        publishing = threading.Thread(target=bus.publish_many, args=(sent,))
        try:
            publishing.start()
            # Cut every connection (consumer and publisher) while outputs and inputs are in flight.
            assert wait_until(lambda: len(handler.calls) >= 100 and bus.publisher.in_flight() > 0, interval=0.001)
            connections_before = proxy.accepted
            proxy.cut()
            publishing.join(timeout=120)
            assert not publishing.is_alive()  # publish_many returned: every mention confirmed after all
            assert wait_until(lambda: proxy.accepted > connections_before)  # it reconnected
            assert wait_until(lambda: set(handler.calls) == {m.message_id for m in sent}, timeout=120)
            assert wait_until(lambda: depth(settings, "enricher") == 0, timeout=60)
        finally:
            bus.stop()
    # Every input's output is there (at least once: a few may be there twice).
    expected = {enrich(m)[0].message_id for m in sent}
    assert set(drain_ids(rabbit_settings, "generator")) == expected

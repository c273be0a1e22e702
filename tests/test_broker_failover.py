"""DEEPHYPE_AMQP_URL as a cluster: two addresses (two proxies standing in for two nodes of one broker).
The node carrying the bus's connections goes down mid-stream; the bus reconnects to the other node and
every message is still handled, none lost."""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit, urlunsplit

import pytest

from deephype.common.bus import Subscription
from deephype.common.contracts import Envelope, SongMention
from deephype.common.rabbit import RabbitBus
from deephype.common.settings import Settings
from tests.conftest import wait_until
from tests.factories import mention
from tests.helpers.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.rabbitmq]


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.netloc.rsplit('@', 1)[0]}@127.0.0.1:{port}"))


def test_the_settings_name_each_node_of_a_cluster() -> None:
    # Two addresses where nothing listens (port 9, discard): neither answers.
    settings = Settings(_env_file=None, amqp_url=" amqp://127.0.0.1:9/%2F, amqp://127.0.0.2:9/%2F ,")  # type: ignore[call-arg]
    assert settings.amqp_urls() == ["amqp://127.0.0.1:9/%2F", "amqp://127.0.0.2:9/%2F"]
    bus = RabbitBus(settings)
    hosts = [bus.parameters(heartbeat=0, suffix="t").host for _ in range(4)]
    assert sorted(hosts[:2]) == ["127.0.0.1", "127.0.0.2"] and hosts[2:] == hosts[:2]  # in turn (neither answers here)


class Node(TcpProxy):
    """One node of the cluster, standing in front of the real broker; down() is the node going away."""

    def down(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() that waits: no new connection
        self.close()


def test_a_node_lost_mid_stream_the_bus_carries_on_through_the_other(rabbit_settings: Settings) -> None:
    broker = urlsplit(rabbit_settings.amqp_url)
    upstream = (broker.hostname or "127.0.0.1", broker.port or 5672)
    with Node(*upstream) as one, Node(*upstream) as two:
        urls = ",".join(through(rabbit_settings.amqp_url, node.port) for node in (one, two))
        settings = rabbit_settings.with_overrides(amqp_url=urls, heartbeat_seconds=5)
        handled: set[str] = set()
        lock = threading.Lock()

        def handle(message: Envelope) -> list[Envelope]:
            with lock:
                handled.add(message.message_id)
            return []

        bus = RabbitBus(settings, connection_name="failover-test")
        bus.subscribe(Subscription("enricher", {SongMention: handle}))
        bus.start()
        try:
            assert bus.wait_connected(timeout=30)
            first = [mention(f"a{i}") for i in range(50)]
            for message in first:
                bus.publish(message)
            assert wait_until(lambda: len(handled) == len(first), timeout=30)
            # The node that carried more of the bus's connections goes down.
            busy, other = sorted((one, two), key=lambda node: node.accepted, reverse=True)
            assert busy.accepted > 0
            before = other.accepted
            busy.down()
            second = [mention(f"b{i}") for i in range(50)]
            for message in second:
                bus.publish(message)  # reconnects, to the node still up
            expected = {m.message_id for m in first + second}
            assert wait_until(lambda: handled >= expected, timeout=60), len(expected - handled)
            assert other.accepted > before  # the lost connections were made again on the other node
        finally:
            bus.stop()

"""The bus contract, on both buses: routing, outputs published before the ack, retries, dead letters."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import pytest

from deephype.common.bus import Bus, PermanentError, RetryLater, Subscription, derive_id
from deephype.common.buses import build_bus
from deephype.common.contracts import (
    EnrichedSong,
    Envelope,
    Song,
    SongMention,
    encode,
)
from deephype.common.settings import Settings
from tests.conftest import wait_until


def mention(post_id: str = "1") -> SongMention:
    return SongMention(
        platform="http",
        post_id=post_id,
        author="ana",
        text="#np Low Tide - Glass Harbour",
        artist="Low Tide",
        title="Glass Harbour",
    )


def enrich(message: Envelope) -> list[Envelope]:
    assert isinstance(message, SongMention)
    song = Song(artist=message.artist, title=message.title, genres=["dream pop"])
    return [
        message.child(
            EnrichedSong,
            message_id=derive_id(message.message_id, "enriched"),
            mention=message,
            song=song,
            provider="test",
        )
    ]


class Collector:
    def __init__(self) -> None:
        self.seen: list[Envelope] = []
        self.event = threading.Condition()

    def __call__(self, message: Envelope) -> Sequence[Envelope]:
        with self.event:
            self.seen.append(message)
            self.event.notify_all()
        return []

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Envelope]:
        deadline = time.monotonic() + timeout
        with self.event:
            while len(self.seen) < count and time.monotonic() < deadline:
                self.event.wait(0.1)
        return list(self.seen)


@pytest.fixture(params=["memory", "rabbit"])
def bus_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "memory":
        return settings
    return request.getfixturevalue("rabbit_settings")


def started(settings: Settings, *subscriptions: Subscription) -> Bus:
    bus = build_bus(settings, connection_name="test")
    for subscription in subscriptions:
        bus.subscribe(subscription)
    bus.start()
    return bus


def test_outputs_flow_to_the_next_queue_with_the_trace_id(bus_settings: Settings) -> None:
    collected = Collector()
    bus = started(
        bus_settings,
        Subscription("enricher", {SongMention: enrich}),
        Subscription("generator", {EnrichedSong: collected}),
    )
    try:
        sent = mention()
        bus.publish(sent)
        [received] = collected.wait_for(1)
        assert isinstance(received, EnrichedSong)
        assert received.trace_id == sent.trace_id
        assert received.mention == sent
        assert received.message_id == derive_id(sent.message_id, "enriched")
    finally:
        bus.stop()


def test_malformed_messages_are_dead_lettered_with_a_reason_and_the_flow_goes_on(
    bus_settings: Settings,
) -> None:
    collected = Collector()
    bus = started(bus_settings, Subscription("enricher", {SongMention: collected}))
    try:
        inject = _injector(bus)
        inject(b"{not json")
        inject(b'{"schema_version": 99, "kind": "song_mention"}')
        inject(encode(mention()).replace(b'"author":"ana"', b'"author":""'))
        inject(b'{"schema_version": 1, "kind": "song_mention", "text": "' + b"x" * 2_000_000 + b'"}')
        good = mention("2")
        bus.publish(good)
        assert [m.message_id for m in collected.wait_for(1)] == [good.message_id]
        assert wait_until(lambda: len(bus.dead_letters()) == 4)
        reasons = sorted(record.reason for record in bus.dead_letters())
        assert any("not JSON" in r for r in reasons)
        assert any("schema_version 99" in r for r in reasons)
        assert any("author" in r for r in reasons)
        assert any("too large" in r for r in reasons)
        assert all(record.origin_queue == "enricher" for record in bus.dead_letters())
    finally:
        bus.stop()


def test_bodies_python_reads_but_json_does_not_are_dead_lettered_at_once_as_not_decodable(
    bus_settings: Settings,
) -> None:
    """200,000 `[` in under 1 MB made decode raise RecursionError: requeued 10 times, each with a traceback."""
    collected = Collector()
    bus = started(bus_settings, Subscription("enricher", {SongMention: collected}))
    try:
        inject = _injector(bus)
        inject(b"[" * 200_000)
        inject(b'{"schema_version": 1, "kind": "song_mention", "x": ' + b"[" * 5_000 + b"]" * 5_000 + b"}")
        inject(encode(mention("nan")).replace(b'"detection_confidence":1.0', b'"detection_confidence":NaN'))
        inject(encode(mention("surrogate")).replace(b'"author":"ana"', b'"author":"an\\ud800a"'))
        good = mention("good")
        bus.publish(good)
        assert wait_until(lambda: len(bus.dead_letters()) == 4)
        for record in bus.dead_letters():
            assert record.attempts == 1, record.reason
            assert "not decodable" in record.reason, record.reason
        assert any("too deeply" in record.reason for record in bus.dead_letters())
        assert [m.message_id for m in collected.wait_for(1)] == [good.message_id]
    finally:
        bus.stop()


def test_errors_are_retried_then_dead_lettered_and_can_be_replayed(bus_settings: Settings) -> None:
    attempts: list[int] = []
    healed = threading.Event()

    def flaky(message: Envelope) -> Sequence[Envelope]:
        attempts.append(1)
        if not healed.is_set():
            raise RuntimeError("provider down")
        return []

    bus = started(bus_settings, Subscription("enricher", {SongMention: flaky}))
    try:
        bus.publish(mention())
        assert wait_until(lambda: len(bus.dead_letters()) == 1)
        assert len(attempts) == bus_settings.max_attempts
        [record] = bus.dead_letters()
        assert "gave up after 3 attempts: RuntimeError: provider down" in record.reason
        healed.set()
        assert bus.replay_dead_letters() == 1
        assert wait_until(lambda: len(attempts) == bus_settings.max_attempts + 1)
        assert wait_until(lambda: bus.dead_letters() == [])
    finally:
        bus.stop()


def test_retry_later_waits_and_permanent_errors_skip_retries(bus_settings: Settings) -> None:
    times: list[float] = []

    def rate_limited_once(message: Envelope) -> Sequence[Envelope]:
        assert isinstance(message, SongMention)
        if message.post_id == "permanent":
            raise PermanentError("no such song")
        times.append(time.monotonic())
        if len(times) == 1:
            raise RetryLater("429 from provider", delay_seconds=0.4)
        return []

    bus = started(bus_settings, Subscription("enricher", {SongMention: rate_limited_once}))
    try:
        bus.publish(mention("permanent"))
        bus.publish(mention("limited"))
        assert wait_until(lambda: len(times) == 2)
        assert times[1] - times[0] >= 0.4  # it sat in the 0.5 s tier, not the 0.2 s one
        assert wait_until(lambda: len(bus.dead_letters()) == 1)
        assert bus.dead_letters()[0].reason == "permanent error: no such song"
        assert bus.dead_letters()[0].attempts == 1
    finally:
        bus.stop()


def _injector(bus: Bus) -> Callable[[bytes], None]:
    from deephype.common.memory_bus import InMemoryBus

    if isinstance(bus, InMemoryBus):
        return lambda body: bus.publish_body(body, SongMention.routing_key)
    from deephype.common.rabbit import RabbitBus, _properties

    assert isinstance(bus, RabbitBus)
    return lambda body: bus.publish_raw(bus.settings.exchange, SongMention.routing_key, body, _properties(None))

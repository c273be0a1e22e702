"""A curator and a poster, each on its own RabbitMQ connection as in production, in this process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi.testclient import TestClient

from deephype.common.rabbit import RabbitBus
from deephype.common.service import create_app
from deephype.common.settings import Settings
from deephype.curator import app as curator_app
from deephype.curator.store import CuratorStore
from deephype.poster import app as poster_app
from deephype.poster.publishers import Publisher


@dataclass
class Running:
    curator_bus: RabbitBus
    poster_bus: RabbitBus
    store: CuratorStore
    api: TestClient  # the curator's HTTP app (JSON API and review page)


@contextmanager
def curator_and_poster(settings: Settings, platform: Publisher) -> Iterator[Running]:
    curator_bus = RabbitBus(settings, connection_name="curator")
    poster_bus = RabbitBus(settings, connection_name="poster")
    curator_parts, store, _ = curator_app.build(settings, curator_bus)
    poster_parts, _ = poster_app.build(settings, poster_bus, platform)
    for bus, parts in ((curator_bus, curator_parts), (poster_bus, poster_parts)):
        for subscription in parts.subscriptions:
            bus.subscribe(subscription)
        bus.start()
        parts.start()
    try:
        assert curator_bus.wait_connected(20) and poster_bus.wait_connected(20)
        api = TestClient(create_app(curator_parts, curator_bus, manage_bus=False))
        yield Running(curator_bus, poster_bus, store, api)
    finally:
        for bus, parts in ((curator_bus, curator_parts), (poster_bus, poster_parts)):
            parts.stop()
            bus.stop()

"""Which bus a process uses: RabbitMQ when DEEPHYPE_AMQP_URL is set, else the in-memory bus.

The factory lives apart from bus.py (the interface and delivery rules) so that the interface never imports
the implementations built on it."""

from __future__ import annotations

from deephype.common.bus import Bus
from deephype.common.settings import Settings


def build_bus(settings: Settings, *, connection_name: str = "deephype") -> Bus:
    if settings.amqp_url:
        from deephype.common.rabbit import RabbitBus  # pika's connection code only where it is used

        return RabbitBus(settings, connection_name=connection_name)
    from deephype.common.memory_bus import InMemoryBus

    return InMemoryBus(settings)

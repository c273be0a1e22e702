"""All five services around one bus: what `deephype demo` runs, and what the end-to-end tests drive.

In production each service runs alone (`deephype serve NAME`); here they share a process, which is
handy offline and changes nothing about how they talk: only through the bus.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from deephype.common.bus import Bus
from deephype.common.music_lookup.providers import SongInfoProvider
from deephype.common.service import ServiceParts, create_app
from deephype.common.settings import Settings
from deephype.curator.auth import Auth
from deephype.curator.email import EmailSender
from deephype.curator.store import CuratorStore
from deephype.generator.source import CandidateSource
from deephype.listener.app import Poller
from deephype.listener.handlers import Detector, Listener
from deephype.listener.sources import PostSource
from deephype.poster.handlers import PostLedger
from deephype.poster.publishers import Publisher

SERVICES = ("listener", "enricher", "generator", "curator", "poster")


@dataclass
class Pipeline:
    settings: Settings
    bus: Bus
    parts: dict[str, ServiceParts]
    listener: Listener
    poller: Poller
    curator: CuratorStore
    curator_auth: Auth
    posts: PostLedger

    def start(self) -> None:
        for parts in self.parts.values():
            for subscription in parts.subscriptions:
                self.bus.subscribe(subscription)
        self.bus.start()
        for parts in self.parts.values():
            parts.start()

    def stop(self) -> None:
        for parts in self.parts.values():
            parts.stop()
        self.bus.stop()

    def apps(self) -> dict[str, FastAPI]:
        """One app per service, sharing this pipeline's bus (started and stopped by the pipeline)."""
        return {name: create_app(parts, self.bus, manage_bus=False) for name, parts in self.parts.items()}


def build_pipeline(
    settings: Settings,
    bus: Bus,
    *,
    detector: Detector | None = None,
    sources: list[PostSource] | None = None,
    candidate_source: CandidateSource | None = None,
    email_sender: EmailSender | None = None,
    publisher: Publisher | None = None,
    song_info_provider: SongInfoProvider | None = None,
) -> Pipeline:
    from deephype.curator import app as curator_app
    from deephype.enricher import app as enricher_app
    from deephype.generator import app as generator_app
    from deephype.listener import app as listener_app
    from deephype.poster import app as poster_app

    listener_parts, listener, poller = listener_app.build(settings, bus, detector)
    if sources is not None:
        poller.sources = sources
    curator_parts, store, auth = curator_app.build(settings, bus, email_sender)
    poster_parts, ledger = poster_app.build(settings, bus, publisher)
    parts = {
        "listener": listener_parts,
        "enricher": enricher_app.build(settings, song_info_provider),
        "generator": generator_app.build(settings, candidate_source),
        "curator": curator_parts,
        "poster": poster_parts,
    }
    return Pipeline(settings, bus, parts, listener, poller, store, auth, ledger)

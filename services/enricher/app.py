"""Enricher service: song mentions → songs with genres and audio features."""

from __future__ import annotations

from fastapi import FastAPI

from deephype.common.bus import Subscription
from deephype.common.buses import build_bus
from deephype.common.contracts import SongMention
from deephype.common.music_lookup.build import build_provider
from deephype.common.music_lookup.providers import SongInfoProvider
from deephype.common.service import ServiceParts, create_app
from deephype.common.settings import Settings, get_settings
from deephype.enricher.handlers import make_enrich_handler


def build(settings: Settings, provider: SongInfoProvider | None = None) -> ServiceParts:
    provider = provider or build_provider(settings)
    return ServiceParts(
        name="enricher",
        subscriptions=[Subscription("enricher", {SongMention: make_enrich_handler(provider)})],
    )


def create(settings: Settings | None = None) -> FastAPI:
    """uvicorn --factory deephype.enricher.app:create"""
    settings = settings or get_settings()
    bus = build_bus(settings, connection_name="enricher")
    return create_app(build(settings), bus)

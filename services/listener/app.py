"""Listener service: posts from feeds and POST /v1/mentions → song mentions on the bus."""

from __future__ import annotations

import logging
import threading

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Response

from deephype.common.bus import Bus
from deephype.common.buses import build_bus
from deephype.common.service import ServiceParts, create_app
from deephype.common.settings import Settings, get_settings
from deephype.common.store import open_database
from deephype.listener.handlers import (
    MIGRATIONS,
    Detector,
    IngestResult,
    IngestStatus,
    Listener,
    RawPost,
    default_detector,
)
from deephype.listener.sender_auth import SenderCheck
from deephype.listener.sources import FeedFileSource, PostSource

log = logging.getLogger("deephype.listener")


def build_sources(settings: Settings) -> list[PostSource]:
    sources: list[PostSource] = []
    for name in settings.listener_sources:
        if name == "feed":
            sources.append(FeedFileSource(settings.listener_feed_path))
        elif name in {"x", "mastodon", "bluesky"}:
            from deephype.common.platforms.build import build_platform_source  # needs the listener extra

            sources.append(build_platform_source(name, settings))
        else:
            raise ValueError(f"unknown listener source {name!r} (choose from feed, x, mastodon, bluesky)")
    return sources


class Poller:
    """Polls every source on a background thread; each post is handled before its cursor is saved."""

    def __init__(self, listener: Listener, sources: list[PostSource], interval: float) -> None:
        self.listener = listener
        self.sources = sources
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="listener-poller", daemon=True)

    def poll_once(self) -> int:
        handled = 0
        for source in self.sources:
            try:
                for post, cursor in source.fetch(self.listener.cursor(source.name)):
                    self.listener.ingest(post)
                    self.listener.save_cursor(source.name, cursor)
                    handled += 1
            except Exception:
                # A failing source (network, rate limit) waits for the next round; others go on.
                log.exception("source %s failed; trying again next round", source.name)
        return handled

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)


def build(settings: Settings, bus: Bus, detector: Detector | None = None) -> tuple[ServiceParts, Listener, Poller]:
    db = open_database(settings, "listener", MIGRATIONS)
    listener = Listener(db, bus, settings.bot_handles, detector or default_detector(settings))
    poller = Poller(listener, build_sources(settings), settings.listener_poll_seconds)

    router = APIRouter(prefix="/v1", tags=["listener"])
    sender_check = SenderCheck(settings, db)

    @router.post("/mentions", response_model=IngestResult)
    def post_mention(post: RawPost, response: Response, webhook_id: str | None = Depends(sender_check)) -> IngestResult:
        """Inject a post (also usable as a webhook); needs the bearer token or a webhook signature.
        202 (status on_bus) when a song mention was put on the bus.

        Only a platform source can confirm that a post mentions the bot, so a post injected here is
        never one the poster may reply to, whatever its `mentions_bot` says."""
        if post.mentions_bot:
            log.info("POST /v1/mentions %s %s: mentions_bot ignored (unconfirmed)", post.platform, post.post_id)
        result = listener.ingest(post.model_copy(update={"mentions_bot": False}))
        sender_check.spend(webhook_id)
        response.status_code = 202 if result.status == IngestStatus.on_bus else 200
        return result

    @router.get("/mentions/{platform}/{post_id}", response_model=IngestResult)
    def get_mention(platform: str, post_id: str) -> IngestResult:
        """What became of a post the listener has seen."""
        result = listener.status(platform, post_id)
        if result is None:
            raise HTTPException(404, f"post {platform}/{post_id} has not been seen")
        return result

    parts = ServiceParts(
        name="listener",
        ready_checks={"database": db.ping},
        routers=[router],
        on_start=[poller.start],
        on_stop=[poller.stop],
    )
    return parts, listener, poller


def create(settings: Settings | None = None) -> FastAPI:
    """uvicorn --factory deephype.listener.app:create"""
    settings = settings or get_settings()
    bus = build_bus(settings, connection_name="listener")
    parts, _, _ = build(settings, bus)
    return create_app(parts, bus)

"""Poster service: approved posts → a paced queue → each platform (dry-run by default), exactly once."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from deephype.common.bus import Bus, Subscription
from deephype.common.buses import build_bus
from deephype.common.compose import PostFormat
from deephype.common.contracts import Approval, PostDecision, utcnow
from deephype.common.service import ServiceParts, create_app
from deephype.common.settings import Settings, get_settings
from deephype.common.signing import ApprovalKeys
from deephype.common.store import open_database
from deephype.poster.engagement import EngagementReader, engagement_readers
from deephype.poster.handlers import SCHEMA, Dispatcher, PostQueue, make_approval_handler, make_decision_handler
from deephype.poster.publishers import Publisher, build_publisher
from deephype.poster.schedule import Clock, Pacing

_LINK = re.compile(r"(https?://[^\s<]+)")
_pages = Environment(loader=PackageLoader("deephype.poster", "templates"), autoescape=select_autoescape(["html"]))
_pages.filters["linkify"] = lambda text: Markup(
    _LINK.sub(lambda m: f'<a href="{m.group(1)}">{m.group(1)}</a>', str(escape(text)))
)


def build(
    settings: Settings,
    bus: Bus,
    publisher: Publisher | None = None,
    *,
    clock: Clock = utcnow,
) -> tuple[ServiceParts, PostQueue]:
    db = open_database(settings, "poster", SCHEMA)
    queue = PostQueue(db, Pacing.from_settings(settings), clock)
    keys = ApprovalKeys.from_settings(settings)
    if publisher is not None:
        publishers = {publisher.platform.value: publisher}
    else:
        publishers = {
            name: build_publisher(name, db, settings) for name in PostFormat.from_settings(settings).platforms
        }
    dispatcher = Dispatcher(
        queue,
        publishers,
        bus.publish,
        report=bus.publish,
        publish_many=bus.publish_many,
        retry_delays=settings.retry_delays,
        max_attempts=settings.max_attempts,
    )

    engagement = EngagementReader(
        db,
        engagement_readers(publishers, read_x=settings.engagement_read_x) if settings.engagement_read else {},
        checkpoints_hours=settings.engagement_checkpoints_hours,
        max_reads_per_round=settings.engagement_max_reads_per_round,
        poll_seconds=settings.engagement_poll_seconds,
    )

    router = APIRouter(prefix="/v1", tags=["poster"])

    @router.get("/posts")
    def posts(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        """What has been published, newest first."""
        return queue.published(limit)

    @router.get("/queue")
    def scheduled() -> list[dict[str, Any]]:
        """What will go out when, per platform, soonest first (and what is held or failed)."""
        return queue.schedule()

    @router.get("/engagement")
    def post_engagement(
        approval_id: Annotated[str | None, Query(max_length=256)] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[dict[str, Any]]:
        """Likes, reposts and replies of each published post at each checkpoint (1 h, 24 h, 7 d), newest first."""
        return engagement.engagement(approval_id, limit)

    pages = APIRouter(tags=["poster"])

    @pages.get("/", response_class=HTMLResponse)
    def timeline(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> HTMLResponse:
        """The posts as they look (or will), scheduled and published."""
        return HTMLResponse(_pages.get_template("timeline.html").render(posts=queue.timeline(limit)))

    handler = make_approval_handler(
        queue, publishers, keys, replies_skip_queue=settings.poster_replies_skip_queue, wake=dispatcher.wake
    )
    parts = ServiceParts(
        name="poster",
        subscriptions=[
            Subscription(
                "poster",
                {Approval: handler, PostDecision: make_decision_handler(queue, keys, wake=dispatcher.wake)},
            )
        ],
        ready_checks={"database": db.ping},
        routers=[router, pages],
        on_start=[dispatcher.start, engagement.start],
        on_stop=[dispatcher.stop, engagement.stop],
    )
    return parts, queue


def create(settings: Settings | None = None) -> FastAPI:
    """uvicorn --factory deephype.poster.app:create"""
    settings = settings or get_settings()
    bus = build_bus(settings, connection_name="poster")
    parts, _ = build(settings, bus)
    return create_app(parts, bus)

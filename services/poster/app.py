"""Poster service: approved text → the platform (dry-run by default), exactly once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query

from deephype.common.bus import Bus, Subscription, build_bus
from deephype.common.contracts import Approval
from deephype.common.db import Database
from deephype.common.service import ServiceParts, create_app
from deephype.common.settings import Settings, get_settings
from deephype.common.signing import ApprovalKeys
from deephype.poster.handlers import SCHEMA, PostLedger, make_approval_handler
from deephype.poster.publishers import Publisher, build_publisher


def build(settings: Settings, bus: Bus, publisher: Publisher | None = None) -> tuple[ServiceParts, PostLedger]:
    db = Database(settings.service_state_dir("poster") / "poster.sqlite3", SCHEMA)
    ledger = PostLedger(db)
    keys = ApprovalKeys.from_settings(settings)
    publisher = publisher or build_publisher(settings.poster_platform, db, settings)

    router = APIRouter(prefix="/v1", tags=["poster"])

    @router.get("/posts")
    def posts(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        """What has been published, newest first."""
        return ledger.published(limit)

    parts = ServiceParts(
        name="poster",
        subscriptions=[Subscription("poster", {Approval: make_approval_handler(ledger, publisher, keys)})],
        ready_checks={"database": db.ping},
        routers=[router],
    )
    return parts, ledger


def create(settings: Settings | None = None) -> FastAPI:
    """uvicorn --factory deephype.poster.app:create"""
    settings = settings or get_settings()
    bus = build_bus(settings, connection_name="poster")
    parts, _ = build(settings, bus)
    return create_app(parts, bus)

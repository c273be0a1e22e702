"""The FastAPI base every service shares: lifespan that starts the bus, /healthz, /readyz, /metrics.

A service describes itself as a `ServiceParts` (its subscriptions, readiness checks, routes and
background work); `create_app` wires that into an app. The one-process demo builds the parts of all five
services around one shared bus.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from deephype import __version__
from deephype.common.bus import Bus, Subscription

log = logging.getLogger("deephype.service")


@dataclass
class ServiceParts:
    name: str
    subscriptions: list[Subscription] = field(default_factory=list)
    # name -> check; /readyz is ready when the bus is connected and every check passes.
    ready_checks: dict[str, Callable[[], bool]] = field(default_factory=dict)
    routers: list[APIRouter] = field(default_factory=list)
    # Background work (feed polling, outbox flushing) started after the bus, stopped before it.
    on_start: list[Callable[[], None]] = field(default_factory=list)
    on_stop: list[Callable[[], None]] = field(default_factory=list)

    def start(self) -> None:
        for start in self.on_start:
            start()

    def stop(self) -> None:
        for stop in reversed(self.on_stop):
            try:
                stop()
            except Exception:
                log.exception("%s: error while stopping", self.name)


def create_app(parts: ServiceParts, bus: Bus, *, manage_bus: bool = True) -> FastAPI:
    """manage_bus=False when the caller (the demo) starts and stops a bus shared by several services."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_bus:
            for subscription in parts.subscriptions:
                bus.subscribe(subscription)
            bus.start()
            parts.start()
        try:
            yield
        finally:
            if manage_bus:
                parts.stop()
                bus.stop()

    app = FastAPI(title=f"deephype {parts.name}", version=__version__, lifespan=lifespan)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok", "service": parts.name}

    @app.get("/readyz", tags=["ops"])
    def readyz() -> JSONResponse:
        """Broker connected and this service's own dependencies ready."""
        checks = {"broker": _safe(bus.is_connected)}
        checks.update({name: _safe(check) for name, check in parts.ready_checks.items()})
        ready = all(checks.values())
        return JSONResponse(
            {"ready": ready, "service": parts.name, "checks": checks}, status_code=200 if ready else 503
        )

    @app.get("/metrics", tags=["ops"])
    def metrics() -> Response:
        """Prometheus metrics: messages in/out/failed, handler latency."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in parts.routers:
        app.include_router(router)
    return app


def _safe(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except Exception:
        log.exception("readiness check failed")
        return False

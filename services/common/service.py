"""The FastAPI base every service shares: lifespan that starts the bus, /healthz, /readyz, /metrics.

A service describes itself as a `ServiceParts` (its subscriptions, readiness checks, routes and
background work); `create_app` wires that into an app. The one-process demo builds the parts of all five
services around one shared bus.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import Message

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from deephype import __version__
from deephype.common import strict_json
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
    # Set when the API docs, the OpenAPI schema and /metrics are not for everyone (see guard_ops_endpoints).
    ops_guard: Callable[[Request], None] | None = None

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
    app.add_middleware(StrictJsonBodies)
    if parts.ops_guard is not None:
        guard_ops_endpoints(app, parts.ops_guard)
    return app


# --- who may read the docs, the schema and the metrics --------------------------------------------------

OPS_ENDPOINTS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/metrics"})


def guard_ops_endpoints(app: FastAPI, guard: Callable[[Request], None]) -> None:
    """Put `guard` in front of FastAPI's docs, the OpenAPI schema and /metrics. It raises HTTPException
    (401, 429, ...) to refuse a request; the other routes are left to the service's own checks."""

    @app.middleware("http")
    async def ops_guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path in OPS_ENDPOINTS:
            try:
                guard(request)
            except HTTPException as exc:
                return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return await call_next(request)


class StrictJsonBodies:
    """Refuses, with a 422 that says why, a JSON body that is not strict JSON (NaN, Infinity, a lone
    surrogate, nesting too deep to read) before any route sees it: such values crash far from the input,
    e.g. while FastAPI renders its own 422 with the offending input in it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _read_as_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body.strip():
            try:
                strict_json.loads(body)
            except strict_json.NotStrictJson as exc:
                error = {"type": "json_invalid", "loc": ["body", *exc.location], "msg": exc.reason}
                await JSONResponse({"detail": [error]}, status_code=422)(scope, receive, send)
                return

        replayed = False

        async def replay() -> AsgiMessage:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _read_as_json(scope: Scope) -> bool:
    """Whether FastAPI would parse this request's body as JSON: no content type, or a JSON one."""
    if scope["method"] in ("GET", "HEAD", "OPTIONS"):
        return False
    content_type = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"content-type"), "")
    if not content_type:
        return True
    parsed = Message()
    parsed["content-type"] = content_type
    subtype = parsed.get_content_subtype()
    return parsed.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def _safe(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except Exception:
        log.exception("readiness check failed")
        return False

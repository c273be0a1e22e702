"""Generator service: enriched songs → candidate commentary (bus), and POST /v1/samples (no bus)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException

from deephype.common.bus import Subscription
from deephype.common.buses import build_bus
from deephype.common.contracts import EnrichedSong, ModelInfo, ScoredText
from deephype.common.service import ServiceParts, create_app
from deephype.common.settings import Settings, get_settings
from deephype.generator.batching import BatchingSource, consumer_settings
from deephype.generator.handlers import make_candidates_handler
from deephype.generator.learning_hooks import start_learning
from deephype.generator.source import CandidateSource, SampleRequest, SampleResponse

log = logging.getLogger("deephype.generator")

# A message that arrives while the model loads waits this long for it (then fails and is retried).
LOAD_TIMEOUT_SECONDS = 600.0


def model_path(settings: Settings) -> Path:
    path = Path(settings.generator_model)
    return path if path.is_absolute() or path.exists() else settings.models_dir / settings.generator_model


def load_candidate_source(settings: Settings) -> CandidateSource:
    """The trained model in the models folder; without one the service stays not-ready, saying why."""
    if settings.generator_model == "null":  # benchmarks only: fixed candidates, no model load
        from deephype.generator.null_source import NullCandidateSource

        return NullCandidateSource()
    path = model_path(settings)
    if not (path / "model.pt").exists():
        raise FileNotFoundError(f"no model at {path} (set DEEPHYPE_GENERATOR_MODEL, or run `make model`)")
    from deephype.generator.learn import versioned_source  # needs torch

    return versioned_source(path, settings)


class LazySource:
    """Loads the model off the request path; /readyz stays false until it is loaded."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._source: CandidateSource | None = None
        self._error: str | None = None
        self._loaded = threading.Event()
        self._watchers: list[Any] = []  # version swaps and the generator's own learning (learn.py)

    def use(self, source: CandidateSource) -> None:
        self._source = source
        self._loaded.set()

    def load(self) -> None:
        try:
            self._source = load_candidate_source(self._settings)
            self._watchers = start_learning(self._settings, self._source, model_path(self._settings))
        except Exception as exc:
            self._error = f"{type(exc).__name__}: {exc}"
            log.exception("could not load the model")
        finally:
            self._loaded.set()

    def get(self, timeout: float | None = None) -> CandidateSource:
        if not self._loaded.wait(timeout):
            raise TimeoutError("the model is still loading")
        if self._source is None:
            raise RuntimeError(f"the model failed to load: {self._error}")
        return self._source

    def ready(self) -> bool:
        return self._source is not None and self._source.ready()

    # The CandidateSource interface, so the bus handler can be built once and wait for the model itself.
    @property
    def info(self) -> ModelInfo:
        return self.get(timeout=LOAD_TIMEOUT_SECONDS).info

    def generate(self, request: SampleRequest) -> list[ScoredText]:
        return self.get(timeout=LOAD_TIMEOUT_SECONDS).generate(request)


def build(settings: Settings, source: CandidateSource | None = None) -> ServiceParts:
    lazy = LazySource(settings)
    if source is not None:
        lazy.use(source)

    # Songs (bus and HTTP alike) join micro-batches decoded by one thread; batch size 1: each on its own thread.
    # Never closed before the process ends: handlers still in flight while the bus stops need it.
    serving: CandidateSource = lazy
    if settings.generator_batch_size > 1:
        serving = BatchingSource(
            lambda: lazy.get(timeout=LOAD_TIMEOUT_SECONDS),
            max_size=settings.generator_batch_size,
            max_wait=settings.generator_batch_wait_ms / 1000,
            info=lambda: lazy.info,
            workers=settings.generator_decode_threads,
        )
    handle = make_candidates_handler(serving, n=settings.generator_candidates, platform=settings.poster_platform)

    router = APIRouter(prefix="/v1", tags=["generator"])

    @router.post("/samples", response_model=SampleResponse)
    def samples(request: SampleRequest) -> SampleResponse:
        """Song in, candidates out, without the bus."""
        try:
            model = lazy.get(timeout=0)
        except (TimeoutError, RuntimeError) as exc:
            raise HTTPException(503, str(exc)) from exc
        return SampleResponse(candidates=serving.generate(request), model=model.info)

    return ServiceParts(
        name="generator",
        subscriptions=[Subscription("generator", {EnrichedSong: handle})],
        ready_checks={"model": lazy.ready},
        routers=[router],
        on_start=[] if source is not None else [lambda: threading.Thread(target=lazy.load, daemon=True).start()],
    )


def create(settings: Settings | None = None) -> FastAPI:
    """uvicorn --factory deephype.generator.app:create"""
    settings = settings or get_settings()
    bus = build_bus(consumer_settings(settings), connection_name="generator")
    return create_app(build(settings), bus)

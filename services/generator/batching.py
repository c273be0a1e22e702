"""Micro-batching across songs: many handler threads ask for candidates, decode threads decode them together.

The bus hands each enriched song to a handler thread, which publishes its outputs and acks its input itself
(the at-least-once rule stays the bus's). With batching on, the handler does not decode: it puts its request
in a queue and waits. A decode thread takes the first waiting request, gathers whatever else arrives within
`max_wait` seconds (up to `max_size` requests) and decodes all of their samples as one batch
(`generate_batch`). DEEPHYPE_GENERATOR_DECODE_THREADS such threads decode batches side by side (on a CPU, two
single-threaded decodes use two cores better than one decode with two torch threads). While a batch decodes,
new songs queue up, so under load the next batch is full at once; a lone song waits at most `max_wait`.

Each request's candidates depend on its seed only (candidates.py draws every random number per request), and
each gets its own result or its own exception: one bad song does not fail the others.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

from prometheus_client import Histogram

from deephype.common.contracts import ModelInfo, ScoredText
from deephype.common.settings import Settings
from deephype.generator.source import CandidateSource, SampleRequest

log = logging.getLogger("deephype.generator")

Item = TypeVar("Item")
Result = TypeVar("Result")

BATCH_SIZE = Histogram(
    "deephype_generator_batch_size",
    "Requests decoded together in one batch",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)


class MicroBatcher(Generic[Item, Result]):
    """Calls `run_batch(items)` on up to `max_size` items at a time, from `workers` threads (each gathers
    and runs its own batches); `submit` blocks until its item's result (or raises its item's exception)."""

    def __init__(
        self,
        run_batch: Callable[[list[Item]], Sequence[Result | Exception]],
        *,
        max_size: int,
        max_wait: float,
        workers: int = 1,
        name: str = "micro-batcher",
    ) -> None:
        if max_size < 1 or workers < 1:
            raise ValueError(f"max_size and workers must be >= 1, got {max_size} and {workers}")
        self._run_batch = run_batch
        self.max_size = max_size
        self.max_wait = max(0.0, max_wait)
        self._name = name
        self._waiting: queue.Queue[tuple[Item, Future[Result]] | None] = queue.Queue()
        self.workers = workers
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self._closed = False

    def submit(self, item: Item, timeout: float | None = None) -> Result:
        if self._closed:
            raise RuntimeError(f"{self._name} is closed")
        self._ensure_started()
        future: Future[Result] = Future()
        self._waiting.put((item, future))
        return future.result(timeout)

    def close(self) -> None:
        """Finish what is queued, then stop the decode thread."""
        self._closed = True
        for _ in self._threads:
            self._waiting.put(None)
        for thread in self._threads:
            thread.join(timeout=60)

    def _ensure_started(self) -> None:
        with self._start_lock:
            if not self._threads:
                for index in range(self.workers):
                    thread = threading.Thread(target=self._loop, name=f"{self._name}-{index}", daemon=True)
                    thread.start()
                    self._threads.append(thread)

    def _loop(self) -> None:
        while True:
            first = self._waiting.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.max_wait
            stop = False
            while len(batch) < self.max_size:
                try:
                    # Whatever is already waiting joins at once; then wait out the rest of max_wait.
                    entry = self._waiting.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if entry is None:
                    stop = True
                    break
                batch.append(entry)
            self._run(batch)
            if stop:
                return

    def _run(self, batch: list[tuple[Item, Future[Result]]]) -> None:
        BATCH_SIZE.observe(len(batch))
        try:
            results = list(self._run_batch([item for item, _ in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"batch of {len(batch)} returned {len(results)} results")
        except Exception as exc:  # the batch as a whole failed: every waiting caller hears why
            log.exception("%s: a batch of %d failed", self._name, len(batch))
            results = [exc] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


def generate_each(source: CandidateSource, requests: Sequence[SampleRequest]) -> list[list[ScoredText] | Exception]:
    """A batch for a source that cannot batch (the null generator): one request after another."""
    results: list[list[ScoredText] | Exception] = []
    for request in requests:
        try:
            results.append(source.generate(request))
        except Exception as exc:
            results.append(exc)
    return results


class BatchingSource:
    """A CandidateSource whose `generate` joins a micro-batch of the `inner` source's model.

    `inner` is resolved per batch (`resolve()`), so a source that loads lazily, or is swapped for a new
    model version, is asked for its current model each time."""

    def __init__(
        self,
        resolve: Callable[[], CandidateSource],
        *,
        max_size: int,
        max_wait: float,
        info: Callable[[], ModelInfo],
        workers: int = 1,
    ) -> None:
        self._resolve = resolve
        self._info = info
        self.batcher: MicroBatcher[SampleRequest, list[ScoredText]] = MicroBatcher(
            self._generate_batch, max_size=max_size, max_wait=max_wait, workers=workers, name="generator-batch"
        )

    @property
    def info(self) -> ModelInfo:
        return self._info()

    def ready(self) -> bool:
        return self._resolve().ready()

    def generate(self, request: SampleRequest) -> list[ScoredText]:
        return self.batcher.submit(request)

    def close(self) -> None:
        self.batcher.close()

    def _generate_batch(self, requests: list[SampleRequest]) -> Sequence[list[ScoredText] | Exception]:
        source = self._resolve()
        batch = getattr(source, "generate_batch", None)
        return batch(requests) if batch is not None else generate_each(source, requests)


def consumer_settings(settings: Settings) -> Settings:
    """The generator's bus settings: enough handler threads (and prefetched deliveries) for a batch per
    decode thread and one more, so the next batch is queued while they decode. A waiting handler thread
    only blocks on its result; the decoding is the decode threads'."""
    size = settings.generator_batch_size
    if size <= 1:
        return settings
    wanted = (settings.generator_decode_threads + 1) * size
    threads, prefetch = max(settings.handler_threads, wanted), max(settings.prefetch, wanted)
    return settings.model_copy(update={"handler_threads": threads, "prefetch": prefetch})

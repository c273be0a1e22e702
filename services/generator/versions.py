"""Model versions learned from the curator: a folder per version, a pointer to the promoted one, and the
generator's hot swap to a newly promoted version.

    <versions>/
        CURRENT                  the promoted version's id (empty or absent: the base model as shipped)
        v20261203T021500-1a2b/   one complete version: manifest.json, report.json, approval.json,
                                 lcgan-approval.pt (when the LC-GAN could learn)
        .tmp-*/                  a version being written; never read, removed by the next learn

A version is written whole into a .tmp- folder and renamed into place (one atomic rename), and CURRENT is
replaced by rename too: a crash at any moment leaves either the old version promoted or the new one,
never half of one. A version that did not beat the promoted one stays in the folder with its report.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deephype.common.contracts import ModelInfo, ScoredText
from deephype.generator.source import CandidateSource, SampleRequest

log = logging.getLogger("deephype.generator")

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
REPORT = "report.json"
TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class Version:
    id: str
    path: Path
    manifest: dict[str, Any]

    @property
    def report(self) -> dict[str, Any]:
        path = self.path / REPORT
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


class VersionStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def new_id(self) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        return f"v{stamp}-{os.urandom(3).hex()}"

    @contextmanager
    def writing(self, version_id: str) -> Iterator[Path]:
        """A temp folder to write the version into; renamed to its id only when the block completes."""
        self.root.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{version_id}-", dir=self.root))
        try:
            yield temp
            _fsync_tree(temp)
            os.rename(temp, self.root / version_id)
            _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise

    def clean_partial(self) -> list[str]:
        """Remove what a crash left mid-write (never a complete version)."""
        removed = []
        if self.root.is_dir():
            for path in self.root.iterdir():
                if path.name.startswith(TEMP_PREFIX) and path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path.name)
        return removed

    def get(self, version_id: str) -> Version:
        path = self.root / version_id
        manifest_path = path / MANIFEST
        if version_id.startswith(TEMP_PREFIX) or not manifest_path.is_file():
            raise FileNotFoundError(f"no complete model version {version_id!r} in {self.root}")
        return Version(version_id, path, json.loads(manifest_path.read_text(encoding="utf-8")))

    def versions(self) -> list[Version]:
        if not self.root.is_dir():
            return []
        found = []
        for path in sorted(self.root.iterdir()):
            if path.is_dir() and not path.name.startswith(TEMP_PREFIX) and (path / MANIFEST).is_file():
                found.append(self.get(path.name))
        return found

    def current_id(self) -> str | None:
        path = self.root / CURRENT
        if not path.is_file():
            return None
        return path.read_text(encoding="utf-8").strip() or None

    def current(self) -> Version | None:
        version_id = self.current_id()
        return self.get(version_id) if version_id else None

    def promote(self, version_id: str) -> None:
        self.get(version_id)  # only a complete version can be promoted
        descriptor, temp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{CURRENT}-", dir=self.root)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(version_id + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.root / CURRENT)
            _fsync_dir(self.root)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        log.info("model version %s promoted", version_id)


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class SwappableSource:
    """The generator's CandidateSource that moves to a newly promoted version without a restart.

    `check()` (from a watcher thread) loads the promoted version off the request path and then swaps one
    reference: a request already generating finishes on the version it started with, the next one uses the
    new version, and no message waits or is dropped. A version that fails to load is logged and skipped;
    the running one keeps serving."""

    def __init__(self, store: VersionStore, loader: Callable[[Version | None], CandidateSource]) -> None:
        self.store = store
        self.loader = loader
        self._lock = threading.Lock()
        self._version_id = store.current_id()
        self._source = loader(store.current())
        self._failed: str | None = None

    @property
    def version_id(self) -> str | None:
        return self._version_id

    @property
    def source(self) -> CandidateSource:
        return self._source

    def check(self) -> bool:
        """Swap to the promoted version if it changed; True when it did."""
        wanted = self.store.current_id()
        if wanted == self._version_id or wanted == self._failed:
            return False
        with self._lock:
            try:
                fresh = self.loader(self.store.get(wanted) if wanted else None)
            except Exception:
                log.exception("model version %s could not be loaded; still serving %s", wanted, self._version_id)
                self._failed = wanted
                return False
            self._source, self._version_id, self._failed = fresh, wanted, None
        log.info("now serving model version %s", wanted or "base")
        return True

    # --- CandidateSource ---

    @property
    def info(self) -> ModelInfo:
        return self._source.info

    def ready(self) -> bool:
        return self._source.ready()

    def generate(self, request: SampleRequest) -> list[ScoredText]:
        return self._source.generate(request)

    def generate_batch(self, requests: Sequence[SampleRequest]) -> list[list[ScoredText] | Exception]:
        """A micro-batch (batching.py) is decoded whole by the version it started on."""
        from deephype.generator.batching import generate_each

        source = self._source
        batch = getattr(source, "generate_batch", None)
        return list(batch(requests)) if batch is not None else generate_each(source, requests)


class Watcher:
    """A daemon thread calling `step` every `interval` seconds until stopped (version checks, learning)."""

    def __init__(self, name: str, step: Callable[[], Any], interval: float) -> None:
        self.name = name
        self.step = step
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            started = time.monotonic()
            try:
                self.step()
            except Exception:
                log.exception("%s failed; trying again in %.0f s", self.name, self.interval)
            log.debug("%s took %.1f s", self.name, time.monotonic() - started)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

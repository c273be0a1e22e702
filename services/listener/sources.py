"""Where posts come from. Each source yields (post, cursor) pairs after a cursor; the listener saves the
cursor once the post is handled, so a restart resumes exactly there."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from deephype.listener.handlers import RawPost

log = logging.getLogger("deephype.listener.sources")


class PostSource(Protocol):
    name: str

    def fetch(self, cursor: str | None) -> Iterator[tuple[RawPost, str]]:
        """Posts newer than `cursor`, oldest first, each with the cursor that marks it handled."""


class FeedFileSource:
    """A JSONL file of posts (one RawPost object per line); the cursor is the number of lines handled.

    A bad line is logged with its line number and skipped, never retried forever."""

    def __init__(self, path: Path, name: str = "feed") -> None:
        self.path = path
        self.name = f"{name}:{path.name}"

    def fetch(self, cursor: str | None) -> Iterator[tuple[RawPost, str]]:
        if not self.path.exists():
            log.warning("feed file %s does not exist (yet)", self.path)
            return
        done = int(cursor or 0)
        with self.path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, start=1):
                if number <= done or not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    record.setdefault("platform", "feed")
                    post = RawPost.model_validate(record)
                except (ValueError, ValidationError) as exc:
                    log.error("%s line %d skipped: %s", self.path, number, str(exc).splitlines()[0])
                    continue
                yield post, str(number)

"""Logging for a service process (`deephype serve`): one line per record on stderr, JSON by default (time,
level, service, trace id, logger, message) so a log collector can follow one mention through all five
services by its trace id; readable text with DEEPHYPE_LOG_FORMAT=text.

The trace id comes from the message being handled: the bus sets it around each handler (`trace`), and a
record may also carry its own (`extra={"trace_id": ...}`).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

from deephype.common.settings import Settings

_TRACE_ID: ContextVar[str | None] = ContextVar("deephype_trace_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(service)s [%(trace_id)s] %(name)s: %(message)s"
JSON_FIELDS = ("levelname", "service", "trace_id", "name", "message")


@contextmanager
def trace(trace_id: str | None) -> Iterator[None]:
    """Records logged inside carry this trace id."""
    token = _TRACE_ID.set(trace_id)
    try:
        yield
    finally:
        _TRACE_ID.reset(token)


class _ServiceContext(logging.Filter):
    """Adds the service name and the current trace id to every record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        if getattr(record, "trace_id", None) is None:
            record.trace_id = _TRACE_ID.get() or "-"
        record.__dict__.pop("color_message", None)  # uvicorn's copy of the message with terminal colours
        return True


def configure_logging(settings: Settings, service: str) -> None:
    """Route every logger (ours, uvicorn's, libraries') through one handler in the configured format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ServiceContext(service))
    if settings.log_format == "json":
        # "time": ISO 8601 in UTC with microseconds, from the record's creation time.
        formatter: logging.Formatter = JsonFormatter(
            list(JSON_FIELDS), rename_fields={"levelname": "level", "name": "logger"}, timestamp="time"
        )
    else:
        formatter = logging.Formatter(TEXT_FORMAT)
        formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # pika tells of every connection step at INFO: only its warnings are news.
    logging.getLogger("pika").setLevel(max(logging.WARNING, logging.getLevelName(settings.log_level)))

"""JSON as RFC 8259 defines it, for everything that comes in from outside (HTTP bodies, bus messages).

Python's json module accepts more than JSON: NaN, Infinity and -Infinity, numbers that overflow a float
to infinity, lone UTF-16 surrogates ("\\ud800") that are no character at all. Each of those later breaks
something far from the input (rendering a 422, encoding a message, writing a log line), so they are
refused here, where the reason is still clear. Nesting too deep for the parser is refused the same way.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

Location = tuple[str | int, ...]

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Strictly decoded UTF-8 holds no surrogates, so parsed from bytes a string can only get one from an escape in
# the range \uD800-\uDFFF: a body without such an escape is not walked (a str may hold raw ones: always is).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class NotStrictJson(ValueError):
    """The body is not (strict) JSON; `location` is the path to the offending value, when known."""

    def __init__(self, reason: str, location: Location = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.location = location


def _refuse_constant(name: str) -> Any:
    raise NotStrictJson(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotStrictJson(f"the number {text[:40]} is too large for a float")
    return value


def loads(body: bytes | str) -> Any:
    """Parse strict JSON, or raise NotStrictJson saying what is wrong and where."""
    may_hold_surrogates = True
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotStrictJson(f"the body is not UTF-8: {exc}") from exc
        may_hold_surrogates = _SURROGATE_ESCAPE.search(body) is not None
    try:
        value = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except NotStrictJson:
        raise
    except RecursionError as exc:
        raise NotStrictJson("the body nests arrays or objects too deeply to read") from exc
    except ValueError as exc:  # JSONDecodeError, or an integer with more digits than Python converts
        raise NotStrictJson(f"the body is not JSON: {exc}") from exc
    location = lone_surrogate_at(value) if may_hold_surrogates else None
    if location is not None:
        raise NotStrictJson("a string holds a lone surrogate (\\ud800-\\udfff), which is no character", location)
    return value


def lone_surrogate_at(value: Any) -> Location | None:
    """Where in a parsed JSON value a string (or key) holds a lone surrogate; None when none does.

    Iterative, so a value nested as deep as the parser allows cannot exhaust the stack here."""
    pending: list[tuple[Location, Any]] = [((), value)]
    while pending:
        location, item = pending.pop()
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                return location
        elif isinstance(item, dict):
            for key, child in item.items():
                if _LONE_SURROGATE.search(key):
                    return location
                pending.append(((*location, key), child))
        elif isinstance(item, list):
            pending.extend(((*location, index), child) for index, child in enumerate(item))
    return None

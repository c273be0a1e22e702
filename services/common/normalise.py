"""Text from outside, normalised once where it comes in (posts from every source and POST /v1/mentions,
POST /v1/samples, the curator's edits), so nothing later has to guess what a string may hold.

- NFC, so the same name is the same string however it was typed;
- control characters go (keeping tab and newline; CR and CRLF become a newline), and so do bidi
  embeddings, overrides and marks (U+202E can make a post read backwards) and noncharacters;
- zero-width and other invisible format characters go: `Radio\\u200bhead` is `Radiohead`. Zero-width
  joiners stay only between characters that need them (emoji sequences, Indic and Arabic scripts), never
  inside a Latin word; emoji tag characters stay only in a flag sequence;
- what cannot be cleaned is refused (UncleanableText, a ValueError, so pydantic turns it into a 422):
  a lone surrogate, which is no character, or a run of more combining marks on one character than
  Unicode's stream-safe format allows (30), which is noise, not a name.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from pydantic import BaseModel, model_validator

MAX_COMBINING_MARKS = 30  # UAX #15 stream-safe text format: at most 30 non-starters in a row
MAX_DEPTH = 32  # how deep normalise_strings follows nested lists and objects

_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_JOINERS = frozenset("\u200c\u200d")  # ZWNJ, ZWJ
_TAGS = range(0xE0020, 0xE0080)  # emoji tag sequences (subdivision flags), ended by U+E007F
_BLACK_FLAG = "\U0001f3f4"
_KEPT_CONTROLS = frozenset("\t\n")


class UncleanableText(ValueError):
    """Text that normalising cannot make safe; the message says why."""


def normalise_text(text: str) -> str:
    """The text, normalised as the module docstring says; raises UncleanableText."""
    for ch in text:
        if "\ud800" <= ch <= "\udfff":
            raise UncleanableText(f"the text holds a lone surrogate (U+{ord(ch):04X}), which is no character")
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    kept: list[str] = []
    marks = 0
    for index, ch in enumerate(text):
        if not _keep(text, index, ch):
            continue
        marks = marks + 1 if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me") else 0
        if marks > MAX_COMBINING_MARKS:
            raise UncleanableText(f"more than {MAX_COMBINING_MARKS} combining marks on one character")
        kept.append(ch)
    return "".join(kept)


def _keep(text: str, index: int, ch: str) -> bool:
    if ch in _KEPT_CONTROLS:
        return True
    code = ord(ch)
    if ch in _BIDI_CONTROLS or _is_noncharacter(code):
        return False
    category = unicodedata.category(ch)
    if category == "Cc":
        return False
    if category != "Cf":
        return True
    if ch in _JOINERS:
        before = text[index - 1] if index > 0 else ""
        after = text[index + 1] if index + 1 < len(text) else ""
        return _joins(before) and _joins(after)
    if code in _TAGS:
        # A tag is kept only as part of a flag sequence: the black flag, then tags.
        previous = text[index - 1] if index > 0 else ""
        return previous == _BLACK_FLAG or (previous != "" and ord(previous) in _TAGS)
    return False  # ZWSP, word joiner, BOM, soft hyphen, invisible operators, ...


def _joins(ch: str) -> bool:
    """Whether a zero-width (non-)joiner next to `ch` can mean something: not at an edge, not next to
    Latin, digits, spaces or punctuation."""
    if not ch or ord(ch) < 0x0370:  # Basic Latin to IPA and spacing modifiers
        return False
    return unicodedata.category(ch)[0] in ("L", "M", "S") or ch == "\ufe0f"


def _is_noncharacter(code: int) -> bool:
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def normalise_strings(value: Any, *, max_depth: int = MAX_DEPTH) -> Any:
    """Every string in a JSON-like value (dict keys too) normalised; other values as they are. Input
    nested deeper than `max_depth` is refused: no input of ours nests, and recursion must stay bounded."""
    if isinstance(value, str):
        return normalise_text(value)
    if not isinstance(value, dict | list | tuple):
        return value
    if max_depth <= 0:
        raise UncleanableText(f"the input nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        return {
            normalise_text(key) if isinstance(key, str) else key: normalise_strings(item, max_depth=max_depth - 1)
            for key, item in value.items()
        }
    return type(value)(normalise_strings(item, max_depth=max_depth - 1) for item in value)


class NormalisedInput(BaseModel):
    """Base of a model that takes text from outside: every string field is normalised before validation."""

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        return normalise_strings(data)

"""Strict JSON from bytes skips the lone-surrogate walk when no escape could make one: that shortcut must
refuse exactly what the walk refuses."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from deephype.common import strict_json

SURROGATE_TEXT = st.sampled_from(["\ud800", "\udfff", "a\udc00b", "\ud83d\ude00", "\\ud800", "\\\\udc00", "é"])
STRINGS = st.one_of(st.text(max_size=12), SURROGATE_TEXT)
VALUES = st.recursive(
    st.one_of(st.none(), st.integers(), STRINGS),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(STRINGS, children, max_size=3)),
    max_leaves=8,
)


def refused(body: bytes | str) -> tuple[str, strict_json.Location] | None:
    try:
        strict_json.loads(body)
    except strict_json.NotStrictJson as exc:
        return exc.reason, exc.location
    return None


@given(VALUES, st.booleans())
def test_bytes_are_refused_for_a_lone_surrogate_exactly_when_the_walk_finds_one(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    try:
        body = text.encode("utf-8")
    except UnicodeEncodeError:  # a raw lone surrogate: no UTF-8 sender can write it
        return
    walked = strict_json.lone_surrogate_at(json.loads(text))
    outcome = refused(body)
    assert (outcome is not None) == (walked is not None)
    if walked is not None:
        assert outcome == ("a string holds a lone surrogate (\\ud800-\\udfff), which is no character", walked)


def test_a_str_with_a_raw_lone_surrogate_is_still_walked_and_refused() -> None:
    assert refused('{"a": "x\ud800"}') is not None
    assert refused(b'{"a": "\\uDbff"}') is not None
    assert refused(b'{"a": "\\\\ud800"}') is None  # an escaped backslash, then plain letters

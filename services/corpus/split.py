"""Deterministic train/valid/test assignment by song, so sentences about one song never cross splits."""

from __future__ import annotations

import hashlib

from deephype.corpus.titles import song_key

SPLITS = ("train", "valid", "test")
DEFAULT_FRACTIONS = (0.90, 0.05, 0.05)


def split_for_key(key: str, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> str:
    """Map a key to a split with a stable hash (sha256, not Python's per-process salted hash())."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    if position < fractions[0]:
        return "train"
    if position < fractions[0] + fractions[1]:
        return "valid"
    return "test"


def split_for_song(
    artist: str | None, title: str | None, source: str, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
) -> str:
    """The split of a song; a post whose song is unknown is kept together by its source instead."""
    if artist and title:
        return split_for_key("song\x1f" + song_key(artist, title), fractions)
    return split_for_key("source\x1f" + source, fractions)

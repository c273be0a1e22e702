"""The split: deterministic, about 90/5/5, and a function of the song alone."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deephype.corpus.split import split_for_key, split_for_song


def test_same_song_same_split_whatever_the_spelling() -> None:
    first = split_for_song("Mt. Joy", "Silver Lining", "https://a.example/1")
    assert split_for_song("MT JOY", "silver lining!", "https://b.example/2") == first


def test_split_is_stable_across_processes() -> None:
    # Python's hash() is salted per process; the split must not be.
    code = "from deephype.corpus.split import split_for_key; print([split_for_key(str(i)) for i in range(50)])"
    runs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout for _ in "ab"
    }
    assert len(runs) == 1
    assert runs.pop().strip() == str([split_for_key(str(i)) for i in range(50)])


def test_fractions_are_roughly_ninety_five_five() -> None:
    counts = Counter(split_for_song(f"artist {i}", f"title {i}", "") for i in range(20_000))
    assert 0.88 < counts["train"] / 20_000 < 0.92
    assert 0.04 < counts["valid"] / 20_000 < 0.06
    assert 0.04 < counts["test"] / 20_000 < 0.06


def test_unknown_songs_are_kept_together_by_source() -> None:
    assert split_for_song(None, None, "post-7") == split_for_song("", None, "post-7")


def test_bad_fractions_are_rejected() -> None:
    with pytest.raises(ValueError, match="sum"):
        split_for_key("x", (0.5, 0.2, 0.2))


@given(st.text(min_size=1), st.text(min_size=1), st.text(), st.text())
def test_split_is_a_function_of_the_song_only(artist: str, title: str, source_a: str, source_b: str) -> None:
    if not artist.strip() or not title.strip():
        return
    assert split_for_song(artist, title, source_a) == split_for_song(artist, title, source_b)

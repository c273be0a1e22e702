"""The headline parser on the shapes blogs use; every headline here is made up for the test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deephype.corpus.titles import (
    name_key,
    normalise_dashes,
    normalise_headline,
    normalise_quotes,
    parse_song_title,
    song_key,
    strip_decorations,
)

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "blog_posts_sample.json"

POSITIVE = [
    ("Velvet Harbor - Paper Lanterns", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Velvet Harbor – Paper Lanterns", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Velvet Harbor — Paper Lanterns", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Velvet Harbor – ‘Paper Lanterns’", None, ("Velvet Harbor", "Paper Lanterns")),
    ('Velvet Harbor - "Paper Lanterns"', None, ("Velvet Harbor", "Paper Lanterns")),
    ("“Paper Lanterns” by Velvet Harbor", None, ("Velvet Harbor", "Paper Lanterns")),
    ("“Paper Lanterns” by Velvet Harbor – A Song Review", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Velvet Harbor: Paper Lanterns", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Velvet Harbor: “Paper Lanterns”", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Velvet Harbor - Paper Lanterns | Example Music Blog", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Velvet Harbor – Paper Lanterns – lanternblog", "www.lanternblog.com", ("Velvet Harbor", "Paper Lanterns")),
    ("Velvet Harbor shares new single “Paper Lanterns”", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Premiere: Velvet Harbor – Paper Lanterns", None, ("Velvet Harbor", "Paper Lanterns")),
    ("[Premiere] Velvet Harbor - Paper Lanterns", None, ("Velvet Harbor", "Paper Lanterns")),
    ("SONG OF THE DAY Velvet Harbor – Paper Lanterns", None, ("Velvet Harbor", "Paper Lanterns")),
    ("New Music: Velvet Harbor - Paper Lanterns (feat. Mira Sol)", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Velvet Harbor - Paper Lanterns ft. Mira Sol", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Velvet Harbor feat. Mira Sol – Paper Lanterns", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Velvet Harbor - Paper Lanterns [Official Video]", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Velvet Harbor - Paper Lanterns (Quiet Room Remix)", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Velvet Harbor - Paper Lanterns (2026)", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Velvet Harbor | Paper Lanterns", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Velvet Harbor // Paper Lanterns", None, ("Velvet Harbor", "Paper Lanterns")),
    ("velvet harbor, “paper lanterns”", None, ("velvet harbor", "paper lanterns")),
    ('song: "Paper Lanterns" - Velvet Harbor', None, ("Velvet Harbor", "Paper Lanterns")),
    ("Velvet Harbor's “Paper Lanterns” is a quiet triumph", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Seattle trio Velvet Harbor return with “Paper Lanterns”", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Stream: Velvet Harbor, 'Paper Lanterns' – lanterns.la", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Listen to “Paper Lanterns” by Velvet Harbor", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Mira Sol (SE) – “Golden Hour”", None, ("Mira Sol", "Golden Hour")),
    ("TRACK OF THE DAY: Mira Sol – ‘I’m Still Here’", None, ("Mira Sol", "I'm Still Here")),
    ("Velvet Harbor – Paper Lanterns #indie #dreampop", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Velvet\u00a0Harbor –\u00a0Paper\u00a0Lanterns", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Velvet Harbor - Paper Lanterns :", None, ("Velvet Harbor", "Paper Lanterns")),
    ("Lantern Keepers, Night Swim | Night Blog", None, ("Lantern Keepers", "Night Swim")),
]

NEGATIVE = [
    "",
    "   ",
    "Going Solo",
    "Paper Lanterns",
    "Interview with Velvet Harbor ahead of their tour",
    "Velvet Harbor to release new album next spring",
    "Our ten favourite songs of the year",
    "Premiere: Velvet Harbor",
    "Single Serving: Velvet Harbor",
    "ロンドンのバンドが新曲を公開",
]


@pytest.mark.parametrize(("headline", "site", "expected"), POSITIVE)
def test_parses_song_headlines(headline: str, site: str | None, expected: tuple[str, str]) -> None:
    assert parse_song_title(headline, site) == expected


@pytest.mark.parametrize("headline", NEGATIVE)
def test_headlines_without_a_song_give_none(headline: str) -> None:
    assert parse_song_title(headline) is None


def test_normalisation_helpers_are_pure_and_small() -> None:
    assert normalise_dashes("a – b — c ‐ d") == "a - b - c - d"
    assert normalise_quotes("“x” ‘y’ «z»") == '"x" \'y\' "z"'
    assert normalise_headline("  A\u00a0–\u00a0“B”  ") == 'A - "B"'
    assert strip_decorations("Song (feat. X) [Official Video]") == "Song"


def test_keys_fold_case_accents_and_punctuation() -> None:
    assert name_key("RÜFÜS") == name_key("Rufus") == "rufus"
    assert name_key("Tegan & Sara") == name_key("tegan and sara")
    assert song_key("Mt. Joy", "Silver  Lining!") == song_key("mt joy", "silver lining")


@pytest.mark.skipif(not SAMPLE.exists(), reason="shared blog sample not present")
def test_most_sample_headlines_name_a_song() -> None:
    posts = json.loads(SAMPLE.read_text(encoding="utf-8"))
    parsed = [parse_song_title(p["title"] or "", p.get("domain") or p.get("url")) for p in posts]
    assert sum(p is not None for p in parsed) / len(posts) > 0.8

"""A simulated curator for tests and bench/learning.py: a scripted reviewer with a hidden taste.

It approves the highest-ranked candidate that mentions an instrument and is positive (a warm word and no
gloomy one), fixing two typos on the way ("is is" → "is", "a" before a vowel → "an"); a set with no such
candidate is rejected. The learner never sees these rules, only the decisions they produce.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

INSTRUMENTS = frozenset(
    [
        "guitar",
        "guitars",
        "piano",
        "pianos",
        "drum",
        "drums",
        "bass",
        "synth",
        "synths",
        "violin",
        "violins",
        "strings",
        "horn",
        "horns",
        "saxophone",
        "sax",
        "organ",
        "keys",
        "cello",
        "banjo",
        "trumpet",
        "trumpets",
        "harp",
        "flute",
        "keyboard",
        "keyboards",
        "808",
        "808s",
        "percussion",
    ]
)
POSITIVE = frozenset(
    [
        "warm",
        "bright",
        "beautiful",
        "lovely",
        "gorgeous",
        "joyful",
        "sweet",
        "tender",
        "lush",
        "radiant",
        "glorious",
        "soaring",
        "uplifting",
        "buoyant",
        "playful",
        "gentle",
        "golden",
        "shimmering",
        "sunny",
        "glowing",
        "delicate",
        "rich",
        "vibrant",
        "triumphant",
        "euphoric",
        "catchy",
        "great",
        "brilliant",
        "elegant",
        "graceful",
        "hopeful",
        "lively",
        "bouncy",
        "breezy",
        "jubilant",
        "lilting",
        "luminous",
    ]
)
NEGATIVE = frozenset(
    [
        "dark",
        "bleak",
        "mournful",
        "haunting",
        "sad",
        "gloomy",
        "cold",
        "harsh",
        "grim",
        "sinister",
        "menacing",
        "bitter",
        "broken",
        "lonely",
        "melancholy",
        "desolate",
        "brooding",
        "ominous",
        "relentless",
        "anxious",
        "eerie",
        "grief",
        "aching",
    ]
)
_WORD = re.compile(r"[a-z0-9']+")
_A_VOWEL = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])")


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def likes(text: str) -> bool:
    found = words(text)
    return bool(found & INSTRUMENTS) and bool(found & POSITIVE) and not found & NEGATIVE


def edit(text: str) -> str:
    text = re.sub(r"\b(\w+) \1\b", r"\1", text)  # "is is" → "is"
    return _A_VOWEL.sub(lambda m: f"{m.group(1)}n ", text)


@dataclass(frozen=True)
class Verdict:
    candidate_index: int | None  # None: reject the set
    text: str | None = None  # the (maybe edited) text to approve


def decide(texts: Sequence[str]) -> Verdict:
    for index, text in enumerate(texts):
        if likes(text):
            return Verdict(index, edit(text))
    return Verdict(None)

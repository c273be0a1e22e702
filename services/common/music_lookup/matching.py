"""Matching a mention ("Artist", "Title") to a provider's search hits, and provider tags to our genres.

Shared by every provider so "which hit is the song" and "which tags are genres" mean the same everywhere.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path

from deephype.common.settings import DATA_DIR

GENRES_PATH = DATA_DIR / "genres.json"

# Hits below this score are "not found": a wrong song is worse than none.
MIN_MATCH_SCORE = 0.72

# Versions that are not the song itself unless the mention asks for them.
VERSION_MARKERS = re.compile(
    r"\b(?:remix|rmx|live|acoustic|demo|instrumental|karaoke|cover|tribute|edit|version|remaster(?:ed)?"
    r"|sped\s+up|slowed|reverb|nightcore|8d|mix)\b",
    re.I,
)
# "Title (feat. X)", "Title - 2011 Remaster", "Title [Live]": the part we compare is the bare title.
TITLE_DECORATION = re.compile(r"\s*(?:[(\[][^()\[\]]*[)\]]|\s[-–—]\s.*)$")
FEATURING = re.compile(r"\s+(?:feat\.?|ft\.?|featuring|with)\s.*$", re.I)


@lru_cache(maxsize=8192)  # the listener asks about the same names over and over
def normalize(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form: "Björk’s  Jóga!" → "bjorks joga"."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.casefold().replace("&", " and ")
    text = re.sub(r"['’`]", "", text)
    text = re.sub(r"[^\w]+", " ", text)
    return re.sub(r"^the\s+", "", text.strip())


def bare_title(title: str) -> str:
    previous = None
    while previous != title:
        previous = title
        title = TITLE_DECORATION.sub("", title).strip() or previous
    return FEATURING.sub("", title).strip() or title


def similarity(a: str, b: str) -> float:
    a, b = normalize(a), normalize(b)
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    return SequenceMatcher(None, a, b).ratio()


@dataclass(frozen=True)
class Hit:
    """One search result, reduced to what matching needs."""

    title: str
    artists: tuple[str, ...]
    popularity: float = 0.0  # 0..1, only a tie-breaker


def score_hit(artist: str, title: str, hit: Hit) -> float:
    """0..1: how surely this hit is the mentioned song.

    Title and artist similarity dominate; a remix/live/cover the mention did not ask for loses 0.25, so
    the studio version wins over a remix with the same name; popularity only breaks near-ties."""
    title_score = max(similarity(title, hit.title), similarity(bare_title(title), bare_title(hit.title)))
    artist_score = max((similarity(artist, name) for name in hit.artists), default=0.0)
    joined = " ".join(hit.artists)
    artist_score = max(artist_score, similarity(artist, joined))
    score = 0.55 * title_score + 0.45 * artist_score
    asked_for_version = bool(VERSION_MARKERS.search(title))
    if not asked_for_version and VERSION_MARKERS.search(hit.title) and bare_title(hit.title) != hit.title:
        score -= 0.25
    if title_score < 0.8 or artist_score < 0.6:
        score = min(score, MIN_MATCH_SCORE - 0.01)  # a right artist never rescues a wrong title, nor vice versa
    return max(0.0, min(1.0, score + 0.02 * hit.popularity))


def best_hit(artist: str, title: str, hits: Iterable[Hit]) -> tuple[int, float] | None:
    """Index and score of the best hit at or above MIN_MATCH_SCORE, or None."""
    scored = [(score_hit(artist, title, hit), -index) for index, hit in enumerate(hits)]
    if not scored:
        return None
    score, negative_index = max(scored)
    if score < MIN_MATCH_SCORE:
        return None
    return -negative_index, score


@lru_cache(maxsize=4)
def _fine_genres(path: Path) -> dict[str, str]:
    """Squashed form → fine genre, e.g. "hiphop" → "hip hop", "synthpop" → "synth-pop"."""
    vocabulary = json.loads(path.read_text(encoding="utf-8"))
    return {_squash(genre): genre for fine in vocabulary["families"].values() for genre in fine}


def _squash(tag: str) -> str:
    return re.sub(r"[\s\-_/.]+", "", normalize(tag))


def map_genres(tags: Iterable[str], path: Path = GENRES_PATH) -> list[str]:
    """Tags (MusicBrainz tags, Spotify artist genres) → our fine genres, in the tags' order, no repeats.

    An exact match (ignoring case, spaces, hyphens) wins; otherwise the longest fine genre the tag ends
    with ("modern indie rock" → "indie rock"). Tags that match nothing ("seen live", "british") are dropped.
    """
    fine = _fine_genres(path)
    found: list[str] = []
    for tag in tags:
        squashed = _squash(tag)
        genre = fine.get(squashed)
        if genre is None:
            words = normalize(tag).split()
            for start in range(1, len(words)):
                genre = fine.get("".join(words[start:]))
                if genre is not None:
                    break
        if genre is not None and genre not in found:
            found.append(genre)
    return found

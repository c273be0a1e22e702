"""Genre labels for artists: the fixed vocabulary (data/genres.json) and our artist catalog
(data/genre_catalog.json, artist key -> fine genres)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from deephype.corpus.titles import name_key

DATA_DIR = Path(__file__).resolve().parents[1].parent / "data"
GENRES_PATH = DATA_DIR / "genres.json"
CATALOG_PATH = DATA_DIR / "genre_catalog.json"

# Collaborations: 'Alina Baraz & Galimatias', 'Billie Eilish x Khalid', 'Tortusa / Breistein'.
_COLLAB_SPLIT = re.compile(r"\s+(?:and|x|with|vs|feat|ft|featuring)\s+|\s*[&,/+]\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Vocabulary:
    """The fixed genre vocabulary: fine genre -> family."""

    family_of: dict[str, str]

    @property
    def families(self) -> list[str]:
        return sorted(set(self.family_of.values()))

    def families_for(self, genres: list[str]) -> list[str]:
        """Coarse families of some fine genres, in first-seen order, without repeats."""
        seen: list[str] = []
        for genre in genres:
            family = self.family_of[genre]
            if family not in seen:
                seen.append(family)
        return seen

    def check_genres(self, genres: object, where: str) -> list[str]:
        if not isinstance(genres, list) or not all(isinstance(g, str) for g in genres):
            raise ValueError(f"{where}: 'genres' must be a list of strings")
        unknown = [g for g in genres if g not in self.family_of]
        if unknown:
            raise ValueError(f"{where}: unknown genre(s) {unknown} (not in data/genres.json)")
        return list(genres)


def load_vocabulary(path: Path = GENRES_PATH) -> Vocabulary:
    raw = json.loads(path.read_text(encoding="utf-8"))
    family_of: dict[str, str] = {}
    for family, genres in raw["families"].items():
        for genre in genres:
            family_of[genre] = family
    return Vocabulary(family_of)


@dataclass
class Catalog:
    """Artist key (see titles.name_key) -> fine genres."""

    genres_by_artist: dict[str, list[str]]
    version: int = 1
    description: str = ""
    aliases: dict[str, str] = field(default_factory=dict)
    misses: dict[str, int] = field(default_factory=dict)

    def lookup(self, artist: str | None) -> list[str]:
        """Fine genres of an artist; for a collaboration, those of every member the catalog knows."""
        if not artist:
            return []
        key = name_key(artist)
        key = self.aliases.get(key, key)
        if key in self.genres_by_artist:
            return list(self.genres_by_artist[key])
        found: list[str] = []
        without_parens = re.sub(r"\([^)]*\)", " ", artist)  # 'Buzzy Lee (Sasha Spielberg)'
        for part in [without_parens, *_COLLAB_SPLIT.split(without_parens)]:
            part_key = name_key(part)
            part_key = self.aliases.get(part_key, part_key)
            for genre in self.genres_by_artist.get(part_key, []):
                if genre not in found:
                    found.append(genre)
        if not found:
            self.misses[key] = self.misses.get(key, 0) + 1
        return found

    def learn(self, artist: str, genres: list[str]) -> None:
        """Add genres for an artist (from labelled data) without dropping what the catalog already says."""
        key = name_key(artist)
        known = self.genres_by_artist.setdefault(key, [])
        known.extend(g for g in genres if g not in known)


def load_catalog(path: Path = CATALOG_PATH, vocabulary: Vocabulary | None = None) -> Catalog:
    """Read and validate the catalog: every genre must be in the vocabulary, every key normalised."""
    vocabulary = vocabulary or load_vocabulary()
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or not isinstance(raw.get("artists"), dict):
        raise ValueError(f"{path}: expected an object with an 'artists' mapping")
    artists: dict[str, list[str]] = {}
    # "artists": real artists our inputs name; "own_artists": the fictional ones of data/corpus/own.
    for section in ("artists", "own_artists"):
        for artist, genres in (raw.get(section) or {}).items():
            vocabulary.check_genres(genres, f"{path}: {section} {artist!r}")
            known = artists.setdefault(name_key(artist), [])
            known.extend(g for g in genres if g not in known)
    aliases = {name_key(alias): name_key(target) for alias, target in (raw.get("aliases") or {}).items()}
    missing = sorted(alias for alias, target in aliases.items() if target not in artists)
    if missing:
        raise ValueError(f"{path}: aliases point to artists not in the catalog: {missing}")
    return Catalog(artists, int(raw.get("version", 1)), str(raw.get("description", "")), aliases)


@lru_cache(maxsize=1)
def default_vocabulary() -> Vocabulary:
    return load_vocabulary()


def write_own_artists(sentences: list[tuple[str, list[str]]], path: Path = CATALOG_PATH) -> int:
    """Record the (artist, genres) pairs of our labelled corpus in the catalog's "own_artists" section,
    replacing that section and keeping the rest; written atomically. Returns the number of artists."""
    import os
    import tempfile

    raw = json.loads(path.read_text(encoding="utf-8"))
    own: dict[str, list[str]] = {}
    for artist, genres in sentences:
        known = own.setdefault(name_key(artist), [])
        known.extend(g for g in genres if g not in known)
    raw["own_artists"] = dict(sorted(own.items()))
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".genre_catalog.", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(json.dumps(raw, ensure_ascii=False, indent=2) + "\n")
        load_catalog(Path(temp))  # never install a catalog that does not load
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return len(own)

"""The song condition `a` the decoder sees at every step.

Layout of the vector (its names are stored in every checkpoint, so a model keeps working if
data/genres.json later grows):

    [fine genre multi-hot | family multi-hot | unknown-genre flag | 9 audio values | 9 presence bits]

Audio values are danceability, energy, valence, acousticness, instrumentalness, liveness, speechiness
(already in [0, 1]), tempo/300 and (loudness+60)/60. A missing feature has value 0 AND presence 0, so
"unknown" is never confused with "zero".
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

GENRES_FILE = Path(__file__).resolve().parents[2] / "data" / "genres.json"

AUDIO_FEATURES = (
    "danceability",
    "energy",
    "valence",
    "acousticness",
    "instrumentalness",
    "liveness",
    "speechiness",
    "tempo",
    "loudness",
)
UNKNOWN_FLAG = "flag:unknown_genre"


def _normalize(name: str) -> str:
    return " ".join(name.strip().lower().replace("_", " ").split())


def _scale(name: str, value: float) -> float:
    if name == "tempo":
        value = value / 300.0
    elif name == "loudness":
        value = (value + 60.0) / 60.0
    return min(1.0, max(0.0, float(value)))


@dataclass(frozen=True)
class EncodedCondition:
    vector: torch.Tensor
    unknown_genres: list[str]


class ConditionEncoder:
    """Maps (genres, audio features) to the condition vector; built from the genre vocabulary."""

    def __init__(self, families: Mapping[str, Iterable[str]]) -> None:
        self.families: dict[str, list[str]] = {
            _normalize(family): [_normalize(g) for g in fine] for family, fine in families.items()
        }
        self.fine_genres: list[str] = [g for fine in self.families.values() for g in fine]
        self.family_of: dict[str, str] = {g: fam for fam, fine in self.families.items() for g in fine}
        self.names: list[str] = (
            [f"genre:{g}" for g in self.fine_genres]
            + [f"family:{f}" for f in self.families]
            + [UNKNOWN_FLAG]
            + [f"audio:{a}" for a in AUDIO_FEATURES]
            + [f"present:{a}" for a in AUDIO_FEATURES]
        )
        self.index = {name: i for i, name in enumerate(self.names)}
        # Longest first, so "modern alternative rock" matches "alternative rock" before "rock".
        self._by_length = sorted(self.fine_genres, key=len, reverse=True)

    @classmethod
    def from_file(cls, path: Path = GENRES_FILE) -> ConditionEncoder:
        return cls(json.loads(path.read_text(encoding="utf-8"))["families"])

    def to_dict(self) -> dict[str, Any]:
        return {"families": {family: list(fine) for family, fine in self.families.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConditionEncoder:
        if not isinstance(data, Mapping) or not isinstance(data.get("families"), Mapping):
            raise ValueError("condition vocabulary must be a dict with a 'families' mapping")
        return cls(data["families"])

    @property
    def dim(self) -> int:
        return len(self.names)

    def resolve(self, genre: str) -> tuple[str | None, str | None]:
        """(fine genre, family) a free-form genre name maps to; (None, None) when unknown."""
        name = _normalize(genre)
        if name in self.family_of:
            return name, self.family_of[name]
        if name in self.families:
            return None, name
        # Spotify-style qualified names ("modern indie rock") fall back to a fine genre they end with.
        for fine in self._by_length:
            if name.endswith(" " + fine):
                return fine, self.family_of[fine]
        return None, None

    def unknown(self, genres: Iterable[str]) -> list[str]:
        return [g for g in genres if self.resolve(g) == (None, None)]

    def close_matches(self, genre: str, n: int = 5) -> list[str]:
        choices = self.fine_genres + [f for f in self.families if f not in self.family_of]
        return difflib.get_close_matches(_normalize(genre), choices, n=n, cutoff=0.5)

    def encode(self, genres: Iterable[str], audio_features: Mapping[str, Any] | Any | None = None) -> EncodedCondition:
        """Condition vector for one song. Unknown genres set the unknown flag; they never raise."""
        vector = torch.zeros(self.dim)
        unknown: list[str] = []
        for genre in genres:
            fine, family = self.resolve(genre)
            if fine is None and family is None:
                unknown.append(genre)
                continue
            if fine is not None:
                vector[self.index[f"genre:{fine}"]] = 1.0
            vector[self.index[f"family:{family}"]] = 1.0
        if unknown:
            vector[self.index[UNKNOWN_FLAG]] = 1.0
        features = _as_mapping(audio_features)
        for name in AUDIO_FEATURES:
            value = features.get(name)
            if value is None:
                continue
            vector[self.index[f"audio:{name}"]] = _scale(name, value)
            vector[self.index[f"present:{name}"]] = 1.0
        return EncodedCondition(vector, unknown)


def _as_mapping(audio_features: Mapping[str, Any] | Any | None) -> Mapping[str, Any]:
    if audio_features is None:
        return {}
    if hasattr(audio_features, "model_dump"):  # deephype.common.contracts.AudioFeatures
        return audio_features.model_dump()
    if not isinstance(audio_features, Mapping):
        raise ValueError(f"audio features must be a mapping, got {type(audio_features).__name__}")
    # Other keys (Spotify's key, mode, duration_ms, uri, ...) are not part of the condition.
    for name in AUDIO_FEATURES:
        value = audio_features.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"audio feature {name!r} must be a number, got {value!r}")
    return audio_features

"""Where a service learns about a song: one small interface, several providers.

Shared by the enricher (genres and audio features for a mention) and the listener (is this candidate a
real song?), so both ask the same catalog, the same search and the same cache.

- OfflineCatalogProvider: data/catalog.json, no network (the demo and the default).
- SpotifyProvider (spotify.py): search, artist genres, audio features where the app still has access.
- MusicBrainzProvider (musicbrainz.py): recording search, artist tags mapped to our genre vocabulary.
- CachedProvider: wraps a network provider; remembers hits AND misses in SQLite for a TTL.

Errors: RateLimited carries the provider's Retry-After so the bus re-queues with that delay; any other
failure is a ProviderError whose `retryable` says whether trying again later can help.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deephype.common.contracts import AudioFeatures
from deephype.common.db import Database, Schema
from deephype.common.music_lookup.matching import bare_title, normalize

log = logging.getLogger("deephype.common.music_lookup.providers")


class SongInfo(BaseModel):
    """What a provider knows about one song."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    track_id: str | None = None
    artist: str
    title: str
    genres: list[str] = Field(default_factory=list)
    audio_features: AudioFeatures | None = None
    audio_features_missing_reason: str | None = None
    provider: str


class SongInfoProvider(Protocol):
    name: str

    def lookup(self, artist: str, title: str, track_id: str | None) -> SongInfo | None:
        """The song, or None when the provider does not know it. Raises ProviderError / RateLimited."""
        ...


class ProviderError(Exception):
    """A lookup failed. `retryable`: a later attempt may succeed (5xx, timeout, garbled body)."""

    def __init__(self, provider: str, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.retryable = retryable
        self.status = status  # the HTTP status, when there was one


class RateLimited(ProviderError):
    """The provider said 429 (or 503 with Retry-After): try again after `retry_after_seconds`."""

    def __init__(self, provider: str, retry_after_seconds: float) -> None:
        message = f"rate limited, retry after {retry_after_seconds:g}s"
        super().__init__(provider, message, retryable=True, status=429)
        self.retry_after_seconds = retry_after_seconds


def parse_retry_after(value: str | None, default: float = 5.0) -> float:
    """Retry-After in seconds (the HTTP-date form is rare for APIs; it falls back to the default)."""
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


def audio_features_from(raw: dict[str, object]) -> AudioFeatures | None:
    """Keep the known features; a value out of range or of the wrong type is dropped, not fatal."""
    values: dict[str, float] = {}
    for name in AudioFeatures.model_fields:
        value = raw.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                AudioFeatures(**{name: float(value)})
            except ValidationError:
                continue
            values[name] = float(value)
    return AudioFeatures(**values) if values else None


# --- offline catalog ---------------------------------------------------------------------------------


class CatalogTrack(BaseModel):
    model_config = ConfigDict(extra="ignore")

    artist: str = Field(min_length=1)
    title: str = Field(min_length=1)
    track_id: str | None = None
    genres: list[str] = Field(default_factory=list)
    audio_features: dict[str, object] | None = None


class Catalog(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: int
    tracks: list[CatalogTrack]


class OfflineCatalogProvider:
    """Songs from a JSON catalog; matching ignores case, accents and punctuation."""

    name = "offline"

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(f"song catalog {path} does not exist")
        try:
            catalog = Catalog.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            raise ValueError(f"song catalog {path} is not a valid catalog: {exc}") from exc
        if catalog.version != 1:
            raise ValueError(f"song catalog {path} has version {catalog.version}, this build reads 1")
        self.path = path
        self.tracks: tuple[CatalogTrack, ...] = tuple(catalog.tracks)
        self._by_name: dict[tuple[str, str], CatalogTrack] = {}
        self._by_id: dict[str, CatalogTrack] = {}
        for track in catalog.tracks:
            self._by_name.setdefault((normalize(track.artist), normalize(track.title)), track)
            if track.track_id:
                self._by_id.setdefault(track.track_id, track)

    def lookup(self, artist: str, title: str, track_id: str | None) -> SongInfo | None:
        track = (
            (self._by_id.get(track_id) if track_id else None)
            or self._by_name.get((normalize(artist), normalize(title)))
            # "Title (2011 Remaster)", "Title - Radio Edit": the catalog lists the song once
            or self._by_name.get((normalize(artist), normalize(bare_title(title))))
        )
        if track is None:
            return None
        features = audio_features_from(track.audio_features) if track.audio_features else None
        return SongInfo(
            track_id=track.track_id,
            artist=track.artist,
            title=track.title,
            genres=list(track.genres),
            audio_features=features,
            audio_features_missing_reason=None if features else "no audio features in the offline catalog",
            provider=self.name,
        )


# --- cache ---------------------------------------------------------------------------------------------

CACHE_SCHEMA = """
CREATE TABLE IF NOT EXISTS lookups (
    key TEXT PRIMARY KEY,           -- provider | artist | title | track id, normalised
    song_json TEXT,                 -- NULL: the provider did not know the song (a cached miss)
    stored_at REAL NOT NULL
);
"""
CACHE_MIGRATIONS = Schema("lookup_cache", (CACHE_SCHEMA,))


class CachedProvider:
    """Remembers another provider's answers, hits and misses, for `ttl_seconds` in a store (a SQLite file at
    `path`, or the Database given: PostgreSQL when the service's copies share one).

    Errors are never cached: a 429 or a 5xx must be asked again."""

    def __init__(
        self,
        inner: SongInfoProvider,
        path: Path | Database,
        ttl_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.db = path if isinstance(path, Database) else Database(path, CACHE_MIGRATIONS)

    def _key(self, artist: str, title: str, track_id: str | None) -> str:
        return "|".join((self.inner.name, normalize(artist), normalize(title), track_id or ""))

    def lookup(self, artist: str, title: str, track_id: str | None) -> SongInfo | None:
        key = self._key(artist, title, track_id)
        rows = self.db.query("SELECT song_json, stored_at FROM lookups WHERE key = ?", (key,))
        if rows and self.clock() - rows[0]["stored_at"] < self.ttl_seconds:
            cached = rows[0]["song_json"]
            try:
                return SongInfo.model_validate_json(cached) if cached is not None else None
            except ValidationError:
                log.warning("dropping an unreadable cache entry for %s", key)
        info = self.inner.lookup(artist, title, track_id)
        with self.db.transaction() as connection:
            connection.execute(
                "INSERT INTO lookups (key, song_json, stored_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET song_json=excluded.song_json, stored_at=excluded.stored_at",
                (key, info.model_dump_json() if info is not None else None, self.clock()),
            )
        return info


# --- choosing one ----------------------------------------------------------------------------------------

PROVIDERS = ("offline", "spotify", "musicbrainz")

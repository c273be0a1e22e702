"""Is a candidate (artist, title) a real song? One cached lookup, the offline catalog first.

The detector proposes spans; this module asks the song providers the enricher uses (shared through
deephype.common.music_lookup): the offline catalog always (in memory, no network), then optionally Spotify
or MusicBrainz search behind the SQLite TTL cache. A provider that is rate limited, times out or fails
answers "unavailable", never an exception: detection then falls back to its plausibility score, so a
provider outage loses no post.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from deephype.common.music_lookup.build import build_provider
from deephype.common.music_lookup.matching import normalize
from deephype.common.music_lookup.providers import (
    OfflineCatalogProvider,
    ProviderError,
    RateLimited,
    SongInfoProvider,
)
from deephype.common.settings import DATA_DIR, Settings

log = logging.getLogger("deephype.listener.confirm")

# Where one artist of a credit ends and the next begins: "A & B", "A, B & C", "A x B", "A and B", "A + B".
CREDIT_SPLIT = re.compile(r"\s*,\s*|\s+(?:&|and|x|X|\+|with)\s+")

LOOKUP_CHOICES = ("none", "offline", "spotify", "musicbrainz")


class Verdict(StrEnum):
    confirmed = "confirmed"  # a provider knows this song
    artist_known = "artist_known"  # the catalog knows the artist, not this title
    unknown = "unknown"  # every provider asked said it does not know the song
    unavailable = "unavailable"  # a provider failed (429, timeout, 5xx): nothing learned


@dataclass(frozen=True)
class Confirmation:
    verdict: Verdict
    provider: str | None = None
    track_id: str | None = None
    detail: str = ""


class SongLookup:
    """The offline catalog, then (optionally) one network provider, for candidate songs."""

    def __init__(self, catalog: OfflineCatalogProvider | None, network: SongInfoProvider | None = None) -> None:
        self.catalog = catalog
        self.network = network
        self._artists: frozenset[str] = frozenset(
            normalize(track.artist) for track in (catalog.tracks if catalog is not None else [])
        )

    @property
    def uses_network(self) -> bool:
        return self.network is not None

    def knows_artist(self, artist: str) -> bool:
        return normalize(artist) in self._artists

    def knows_credit(self, artist: str) -> bool:
        """The catalog knows the artist, or one named artist of a credit ("Khruangbin & Leon Bridges",
        "Skrillex, Fred again.. & Flowdan") whose other names are capitalised like names."""
        if self.knows_artist(artist):
            return True
        parts = [part.strip() for part in CREDIT_SPLIT.split(artist) if part.strip()]
        if len(parts) < 2 or len(parts) > 4:
            return False
        known = [part for part in parts if self.knows_artist(part)]
        names = all(part in known or part[:1].isupper() or part[:1].isdigit() for part in parts)
        return bool(known) and names

    def offline(self, artist: str, title: str, track_id: str | None) -> Confirmation | None:
        """The catalog's answer, or None when the catalog does not know the song."""
        if self.catalog is None:
            return None
        info = self.catalog.lookup(artist, title, track_id)
        if info is None:
            return None
        return Confirmation(Verdict.confirmed, self.catalog.name, info.track_id, f"{info.artist} - {info.title}")

    def confirm(self, artist: str, title: str, track_id: str | None, *, use_network: bool) -> Confirmation:
        found = self.offline(artist, title, track_id)
        if found is not None:
            return found
        if use_network and self.network is not None:
            try:
                info = self.network.lookup(artist, title, track_id)
            except RateLimited as exc:
                log.info("%s rate limited (%gs): using plausibility only", exc.provider, exc.retry_after_seconds)
                return Confirmation(Verdict.unavailable, self.network.name, detail=str(exc))
            except ProviderError as exc:
                log.info("%s failed (%s): using plausibility only", exc.provider, exc)
                return Confirmation(Verdict.unavailable, self.network.name, detail=str(exc))
            if info is not None:
                return Confirmation(
                    Verdict.confirmed, self.network.name, info.track_id, f"{info.artist} - {info.title}"
                )
        asked = ", ".join(name for name in (self._catalog_name, self._network_name(use_network)) if name)
        if self.knows_credit(artist):
            return Confirmation(Verdict.artist_known, self._catalog_name, detail=f"artist known, title not ({asked})")
        return Confirmation(Verdict.unknown, None, detail=f"not known to {asked or 'any provider'}")

    @property
    def _catalog_name(self) -> str | None:
        return self.catalog.name if self.catalog is not None else None

    def _network_name(self, use_network: bool) -> str | None:
        return self.network.name if use_network and self.network is not None else None


@lru_cache(maxsize=4)
def offline_lookup(path: Path = DATA_DIR / "catalog.json") -> SongLookup:
    """The bundled catalog alone (what `deephype detect` and the default listener use), loaded once."""
    return SongLookup(OfflineCatalogProvider(path))


def build_lookup(settings: Settings) -> SongLookup | None:
    """The lookup settings.listener_lookup names: none, offline, or offline + spotify / musicbrainz."""
    choice = settings.listener_lookup.strip().lower()
    if choice not in LOOKUP_CHOICES:
        raise ValueError(f"unknown listener lookup {settings.listener_lookup!r}; choose one of {LOOKUP_CHOICES}")
    if choice == "none":
        return None
    catalog = OfflineCatalogProvider(settings.enricher_catalog_path)
    if choice == "offline":
        return SongLookup(catalog)
    network = build_provider(
        settings, choice, service="listener", timeout_seconds=settings.listener_lookup_timeout_seconds
    )
    return SongLookup(catalog, network)

"""Song info providers by name: the one place that knows every implementation (providers.py holds the
interface, the offline catalog and the cache, and never imports spotify.py or musicbrainz.py)."""

from __future__ import annotations

from deephype.common.music_lookup.providers import (
    CACHE_MIGRATIONS,
    PROVIDERS,
    CachedProvider,
    OfflineCatalogProvider,
    SongInfoProvider,
)
from deephype.common.settings import Settings
from deephype.common.store import open_database


def build_provider(
    settings: Settings,
    choice: str | None = None,
    *,
    service: str = "enricher",
    timeout_seconds: float = 10.0,
) -> SongInfoProvider:
    """The provider `choice` names (default: settings.enricher_provider); network providers come wrapped in
    a cache kept in `service`'s state folder."""
    choice = (choice if choice is not None else settings.enricher_provider).strip().lower()
    if choice == "offline":
        return OfflineCatalogProvider(settings.enricher_catalog_path)
    inner: SongInfoProvider
    if choice == "spotify":
        from deephype.common.music_lookup.spotify import SpotifyProvider  # needs the enricher extra

        inner = SpotifyProvider.from_settings(settings, timeout_seconds)
    elif choice == "musicbrainz":
        from deephype.common.music_lookup.musicbrainz import MusicBrainzProvider

        inner = MusicBrainzProvider.from_settings(settings, timeout_seconds)
    else:
        raise ValueError(f"unknown song info provider {choice!r}; choose one of {PROVIDERS}")
    cache = open_database(settings, service, CACHE_MIGRATIONS, name=f"{choice}-cache")
    return CachedProvider(inner, cache, settings.enricher_cache_ttl_seconds)

"""Spotify Web API through spotipy: client-credentials auth, track search, artist genres, audio features.

No sleeping retries inside the client: the bus owns retries, so a 429 becomes RateLimited with the
Retry-After seconds and the mention waits in a retry queue instead of blocking a handler thread.
Audio features are closed to apps registered after 27 Nov 2024; the first 403 turns them off for the
provider's lifetime (logged once), and every later song says why its features are missing.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import requests
import spotipy
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOauthError

from deephype.common.contracts import AudioFeatures
from deephype.common.music_lookup.matching import Hit, best_hit, map_genres
from deephype.common.music_lookup.providers import (
    ProviderError,
    RateLimited,
    SongInfo,
    audio_features_from,
    parse_retry_after,
)
from deephype.common.settings import Settings

log = logging.getLogger("deephype.common.music_lookup.spotify")
# spotipy logs request headers at DEBUG: the Basic client credentials and the bearer token. Never let them
# reach a log, whatever level the service runs at.
for _name in ("spotipy", "spotipy.client", "spotipy.oauth2"):
    logging.getLogger(_name).setLevel(logging.INFO)

T = TypeVar("T")

SEARCH_LIMIT = 10  # enough to find the studio version among remixes; the API allows up to 50
AUDIO_FEATURES_OFF = "audio features unavailable to this app (403)"


class SpotifyProvider:
    name = "spotify"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        api_url: str = "https://api.spotify.com/v1/",
        auth_url: str = "https://accounts.spotify.com/api/token",
        timeout_seconds: float = 10.0,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("the spotify provider needs DEEPHYPE_SPOTIFY_CLIENT_ID and DEEPHYPE_SPOTIFY_CLIENT_SECRET")
        # A plain session has no urllib3 retry adapter: one request, one answer (429 keeps its headers).
        session = requests.Session()
        auth = SpotifyClientCredentials(
            client_id=client_id,
            client_secret=client_secret,
            requests_session=session,
            requests_timeout=timeout_seconds,
            cache_handler=MemoryCacheHandler(),  # never a .cache file next to the service
        )
        auth.OAUTH_TOKEN_URL = auth_url
        self.client = spotipy.Spotify(
            auth_manager=auth,
            requests_session=session,
            requests_timeout=timeout_seconds,
            retries=0,
            status_retries=0,
        )
        self.client.prefix = api_url if api_url.endswith("/") else api_url + "/"
        self._audio_features_available = True
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, timeout_seconds: float = 10.0) -> SpotifyProvider:
        return cls(
            settings.spotify_client_id.get_secret_value(),
            settings.spotify_client_secret.get_secret_value(),
            api_url=settings.spotify_api_url,
            auth_url=settings.spotify_auth_url,
            timeout_seconds=timeout_seconds,
        )

    @property
    def audio_features_available(self) -> bool:
        return self._audio_features_available

    def lookup(self, artist: str, title: str, track_id: str | None) -> SongInfo | None:
        track = self._track_by_id(track_id) if track_id else None
        if track is None:
            track = self._search(artist, title)
        if track is None:
            return None
        artist_ids = [a["id"] for a in track["artists"] if isinstance(a, dict) and a.get("id")]
        genres = self._genres(artist_ids)
        features, missing = self._audio_features(track["id"])
        return SongInfo(
            track_id=track["id"],
            artist=", ".join(a["name"] for a in track["artists"]) or artist,
            title=track["name"],
            genres=genres,
            audio_features=features,
            audio_features_missing_reason=missing,
            provider=self.name,
        )

    # --- the three calls -----------------------------------------------------------------------------

    def _track_by_id(self, track_id: str) -> dict[str, Any] | None:
        try:
            track = self._call(lambda: self.client.track(track_id))
        except ProviderError as exc:
            if not exc.retryable:  # a bad id from a post (400/404): fall back to search
                log.info("spotify track %s not usable (%s); searching instead", track_id, exc)
                return None
            raise
        return _valid_track(track)

    def _search(self, artist: str, title: str) -> dict[str, Any] | None:
        query = f'track:"{_quote(title)}" artist:"{_quote(artist)}"'
        body = self._call(lambda: self.client.search(q=query, type="track", limit=SEARCH_LIMIT))
        if not isinstance(body, dict) or not isinstance(body.get("tracks"), dict):
            raise ProviderError(self.name, "malformed search response (no tracks paging object)", retryable=True)
        items = body["tracks"].get("items")
        if not isinstance(items, list):
            raise ProviderError(self.name, "malformed search response (tracks.items is not a list)", retryable=True)
        tracks = [track for item in items if (track := _valid_track(item)) is not None]
        hits = [
            Hit(
                title=track["name"],
                artists=tuple(a["name"] for a in track["artists"]),
                popularity=float(track.get("popularity") or 0) / 100,
            )
            for track in tracks
        ]
        best = best_hit(artist, title, hits)
        if best is None:
            return None
        return tracks[best[0]]

    def _genres(self, artist_ids: list[str]) -> list[str]:
        if not artist_ids:
            return []
        body = self._call(lambda: self.client.artists(artist_ids[:50]))
        if not isinstance(body, dict) or not isinstance(body.get("artists"), list):
            raise ProviderError(self.name, "malformed artists response", retryable=True)
        tags = [
            genre
            for found in body["artists"]
            if isinstance(found, dict)
            for genre in found.get("genres") or []
            if isinstance(genre, str)
        ]
        return map_genres(tags)

    def _audio_features(self, track_id: str) -> tuple[AudioFeatures | None, str | None]:
        if not self._audio_features_available:
            return None, AUDIO_FEATURES_OFF
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # spotipy flags the endpoint as deprecated
                body = self._call(lambda: self.client.audio_features([track_id]))
        except ProviderError as exc:
            if exc.status != 403:
                raise
            with self._lock:
                if self._audio_features_available:
                    self._audio_features_available = False
                    log.warning("spotify audio features answered 403: turned off for this run (%s)", exc)
            return None, AUDIO_FEATURES_OFF
        if not isinstance(body, list):
            raise ProviderError(self.name, "malformed audio-features response", retryable=True)
        raw = body[0] if body else None
        features = audio_features_from(raw) if isinstance(raw, dict) else None
        return features, None if features else "spotify has no audio features for this track"

    # --- errors ----------------------------------------------------------------------------------------

    def _call(self, request: Callable[[], T]) -> T:
        """Run one spotipy call; every failure leaves as RateLimited or ProviderError."""
        try:
            return request()
        except spotipy.SpotifyException as exc:
            status = exc.http_status
            if status == 429:
                raise RateLimited(self.name, parse_retry_after((exc.headers or {}).get("Retry-After"))) from exc
            if status == 401:
                raise ProviderError(self.name, "credentials rejected (401)", retryable=False, status=401) from exc
            if status == 403:
                raise ProviderError(self.name, "forbidden for this app (403)", retryable=False, status=403) from exc
            if isinstance(status, int) and status >= 500:
                raise ProviderError(self.name, f"server error ({status})", retryable=True, status=status) from exc
            raise ProviderError(self.name, f"request refused ({status})", retryable=False, status=status) from exc
        except SpotifyOauthError as exc:
            raise ProviderError(self.name, f"token request refused: {exc.error or exc}", retryable=False) from exc
        except requests.HTTPError as exc:  # the token endpoint's own errors outside spotipy's handler
            status = exc.response.status_code if exc.response is not None else 0
            if status == 429:
                retry_after = exc.response.headers.get("Retry-After") if exc.response is not None else None
                raise RateLimited(self.name, parse_retry_after(retry_after)) from exc
            raise ProviderError(self.name, f"token request failed ({status})", retryable=status >= 500) from exc
        except requests.JSONDecodeError as exc:  # a garbled token response
            raise ProviderError(self.name, f"malformed token response: {exc}", retryable=True) from exc
        except requests.Timeout as exc:
            raise ProviderError(self.name, f"timed out: {exc}", retryable=True) from exc
        except requests.RequestException as exc:
            raise ProviderError(self.name, f"network error: {exc}", retryable=True) from exc
        except (ValueError, KeyError, TypeError) as exc:  # a garbled token response
            raise ProviderError(self.name, f"malformed response: {exc!r}", retryable=True) from exc


def _valid_track(item: object) -> dict[str, Any] | None:
    """A track object with what we use (id, name, artists[].name), else None."""
    if not isinstance(item, dict):
        return None
    if not isinstance(item.get("id"), str) or not isinstance(item.get("name"), str) or not item["name"]:
        return None
    artists = item.get("artists")
    if not isinstance(artists, list) or not artists:
        return None
    if not all(isinstance(a, dict) and isinstance(a.get("name"), str) for a in artists):
        return None
    return item


def _quote(value: str) -> str:
    """Spotify's field filters take a quoted phrase; a quote inside would end it early."""
    return value.replace('"', " ").strip()

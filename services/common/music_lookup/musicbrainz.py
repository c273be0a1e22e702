"""MusicBrainz through musicbrainzngs: recording search → the artist's tags → our fine genres.

MusicBrainz asks for at most one request per second and a User-Agent that names the app and a contact;
musicbrainzngs does both (set_rate_limit, set_useragent). Its configuration is process-wide, so every
MusicBrainzProvider in a process shares one host and one rate limit.

One change to musicbrainzngs: its transport retries a 5xx or a timeout up to 8 times with sleeps (about a
minute) and has no socket timeout at all. The bus already retries with backoff, so we install a transport
that makes one attempt with a timeout and says what went wrong (RateLimited / ProviderError).
"""

from __future__ import annotations

import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import musicbrainzngs
import musicbrainzngs.musicbrainz as mb_client

from deephype.common.music_lookup.matching import Hit, best_hit, map_genres
from deephype.common.music_lookup.providers import ProviderError, RateLimited, SongInfo, parse_retry_after
from deephype.common.settings import Settings

log = logging.getLogger("deephype.common.music_lookup.musicbrainz")

NAME = "musicbrainz"
SEARCH_LIMIT = 10
NO_AUDIO_FEATURES = "musicbrainz has no audio features"

_timeout_seconds = 10.0  # module-wide, like the rest of musicbrainzngs' configuration


def _read_once(
    opener: urllib.request.OpenerDirector,
    request: urllib.request.Request,
    body: bytes | None = None,
    max_retries: int = 1,
    retry_delay_delta: float = 0.0,
) -> bytes:
    """Stands in for musicbrainzngs' _safe_read (same signature): one attempt, with a timeout."""
    try:
        with opener.open(request, body, timeout=_timeout_seconds) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        retry_after = exc.headers.get("Retry-After") if exc.headers else None
        # MusicBrainz answers 503 when a client goes over the rate limit; 429 is the standard form.
        if exc.code == 429 or (exc.code == 503 and retry_after is not None):
            raise RateLimited(NAME, parse_retry_after(retry_after, default=1.0)) from exc
        if exc.code >= 500:
            raise ProviderError(NAME, f"server error ({exc.code})", retryable=True, status=exc.code) from exc
        raise ProviderError(NAME, f"request refused ({exc.code})", retryable=False, status=exc.code) from exc
    except TimeoutError as exc:
        raise ProviderError(NAME, f"timed out after {_timeout_seconds:g}s", retryable=True) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError | socket.timeout):
            raise ProviderError(NAME, f"timed out after {_timeout_seconds:g}s", retryable=True) from exc
        raise ProviderError(NAME, f"network error: {exc.reason}", retryable=True) from exc
    except OSError as exc:  # connection reset, refused, ...
        raise ProviderError(NAME, f"network error: {exc}", retryable=True) from exc


def configure(
    host: str, *, use_https: bool, contact: str, requests_per_second: float | None, timeout_seconds: float
) -> None:
    """Point musicbrainzngs at `host` with our User-Agent, rate limit, timeout and single-try transport."""
    global _timeout_seconds
    try:
        app_version = version("deephype")
    except PackageNotFoundError:
        app_version = "0"
    musicbrainzngs.set_useragent("deephype", app_version, contact)
    musicbrainzngs.set_hostname(host, use_https=use_https)
    if requests_per_second is None:
        musicbrainzngs.set_rate_limit(False)
    else:
        musicbrainzngs.set_rate_limit(1.0 / requests_per_second, 1)
    musicbrainzngs.set_format("xml")
    _timeout_seconds = timeout_seconds
    mb_client._safe_read = _read_once


def split_base_url(base_url: str) -> tuple[str, bool]:
    """ "musicbrainz.org" → ("musicbrainz.org", https); "http://127.0.0.1:5000" → ("127.0.0.1:5000", http)."""
    if base_url.startswith("http://"):
        return base_url.removeprefix("http://").rstrip("/"), False
    return base_url.removeprefix("https://").rstrip("/"), True


class MusicBrainzProvider:
    name = NAME

    def __init__(
        self,
        base_url: str = "musicbrainz.org",
        *,
        contact: str = "deephype (https://github.com/deephype/deephype)",
        requests_per_second: float | None = 1.0,
        timeout_seconds: float = 10.0,
    ) -> None:
        """requests_per_second=None turns rate limiting off: only for a local mirror or a test fake.

        Rates above 1/s are refused: musicbrainz.org allows 1, and musicbrainzngs 0.7.1 computes the
        wait wrongly above 1/s (it sleeps rate² × the deficit instead of deficit / rate)."""
        if not contact.strip():
            raise ValueError("MusicBrainz needs a contact in the User-Agent: set DEEPHYPE_MUSICBRAINZ_CONTACT")
        if requests_per_second is not None and not 0 < requests_per_second <= 1.0:
            raise ValueError(f"requests_per_second must be in (0, 1], got {requests_per_second}")
        if requests_per_second is None and base_url.rstrip("/").endswith("musicbrainz.org"):
            raise ValueError("musicbrainz.org needs rate limiting (at most 1 request per second)")
        host, use_https = split_base_url(base_url)
        configure(
            host,
            use_https=use_https,
            contact=contact,
            requests_per_second=requests_per_second,
            timeout_seconds=timeout_seconds,
        )

    @classmethod
    def from_settings(cls, settings: Settings, timeout_seconds: float = 10.0) -> MusicBrainzProvider:
        return cls(settings.musicbrainz_base_url, contact=settings.musicbrainz_contact, timeout_seconds=timeout_seconds)

    def lookup(self, artist: str, title: str, track_id: str | None) -> SongInfo | None:
        # track_id is a Spotify id when the post linked one; MusicBrainz cannot use it.
        body = self._call(lambda: musicbrainzngs.search_recordings(recording=title, artist=artist, limit=SEARCH_LIMIT))
        recordings = body.get("recording-list") if isinstance(body, dict) else None
        if not isinstance(recordings, list):
            raise ProviderError(self.name, "malformed search response (no recording-list)", retryable=True)
        usable = [r for r in recordings if _credited_artists(r) and r.get("title") and r.get("id")]
        hits = [Hit(title=r["title"], artists=tuple(a["name"] for a in _credited_artists(r))) for r in usable]
        best = best_hit(artist, title, hits)
        if best is None:
            return None
        recording = usable[best[0]]
        credited = _credited_artists(recording)
        return SongInfo(
            track_id=f"musicbrainz:recording:{recording['id']}",
            artist=recording.get("artist-credit-phrase") or ", ".join(a["name"] for a in credited),
            title=recording["title"],
            genres=self._genres(credited[0]["id"]),
            audio_features=None,
            audio_features_missing_reason=NO_AUDIO_FEATURES,
            provider=self.name,
        )

    def _genres(self, artist_id: str) -> list[str]:
        body = self._call(lambda: musicbrainzngs.get_artist_by_id(artist_id, includes=["tags"]))
        found = body.get("artist") if isinstance(body, dict) else None
        if not isinstance(found, dict):
            raise ProviderError(self.name, "malformed artist response (no artist)", retryable=True)
        tags = [t for t in found.get("tag-list", []) if isinstance(t, dict) and t.get("name")]
        tags.sort(key=lambda t: -_int(t.get("count")))  # the most-voted tags first
        return map_genres(t["name"] for t in tags)

    def _call(self, request: Callable[[], Any]) -> Any:
        try:
            return request()
        except ProviderError:
            raise
        except musicbrainzngs.ResponseError as exc:  # unparsable XML, or a 400/404 from the library's own checks
            raise ProviderError(self.name, f"malformed or refused response: {exc}", retryable=True) from exc
        except musicbrainzngs.MusicBrainzError as exc:
            raise ProviderError(self.name, str(exc), retryable=True) from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # XML without the MusicBrainz namespace
            raise ProviderError(self.name, f"malformed response: {exc!r}", retryable=True) from exc


def _credited_artists(recording: dict[str, Any]) -> list[dict[str, str]]:
    """The artists of a recording's artist-credit (the list also holds join phrases like " & ")."""
    credit = recording.get("artist-credit")
    if not isinstance(credit, list):
        return []
    artists = []
    for part in credit:
        if isinstance(part, dict) and isinstance(part.get("artist"), dict):
            artist = part["artist"]
            if artist.get("id") and artist.get("name"):
                artists.append({"id": artist["id"], "name": part.get("name") or artist["name"]})
    return artists


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0

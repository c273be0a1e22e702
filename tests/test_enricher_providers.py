"""Enricher providers against local fakes that speak the real wire formats: the offline catalog, Spotify
(spotipy), MusicBrainz (musicbrainzngs), the SQLite cache and build_provider."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import musicbrainzngs.musicbrainz as mb_client
import pytest

from deephype.common.music_lookup.build import build_provider
from deephype.common.music_lookup.matching import Hit, best_hit, map_genres, normalize
from deephype.common.music_lookup.musicbrainz import MusicBrainzProvider
from deephype.common.music_lookup.providers import (
    CachedProvider,
    OfflineCatalogProvider,
    ProviderError,
    RateLimited,
    SongInfo,
)
from deephype.common.music_lookup.spotify import AUDIO_FEATURES_OFF, SpotifyProvider
from deephype.common.settings import DATA_DIR
from tests.conftest import make_settings
from tests.fakes.musicbrainz import FakeMusicBrainz
from tests.fakes.server import Fault
from tests.fakes.spotify import CLIENT_ID, CLIENT_SECRET, FakeSpotify

STUDIO_ID = "1PaperBoats0Studio0003"
REMIX_ID = "1PaperBoats0RemixKilo1"
SHORT_TIMEOUT = 0.5


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture
def spotify_fake() -> Iterator[FakeSpotify]:
    with FakeSpotify() as fake:
        yield fake


@pytest.fixture
def spotify(spotify_fake: FakeSpotify) -> SpotifyProvider:
    return SpotifyProvider(
        CLIENT_ID,
        CLIENT_SECRET,
        api_url=spotify_fake.api_url,
        auth_url=spotify_fake.auth_url,
        timeout_seconds=SHORT_TIMEOUT,
    )


@pytest.fixture
def mb_fake() -> Iterator[FakeMusicBrainz]:
    with FakeMusicBrainz() as fake:
        yield fake


@pytest.fixture
def musicbrainz(mb_fake: FakeMusicBrainz) -> Iterator[MusicBrainzProvider]:
    # Rate limiting off against the local fake; the default (1/s) is checked in its own test.
    yield MusicBrainzProvider(
        mb_fake.base_url, contact="tests@example.invalid", requests_per_second=None, timeout_seconds=SHORT_TIMEOUT
    )
    mb_client.set_rate_limit(1.0, 1)  # musicbrainzngs' settings are process-wide: leave the safe default


def spotify_error(status: int, message: str, headers: dict[str, str] | None = None) -> Fault:
    body = json.dumps({"error": {"status": status, "message": message}}).encode()
    return Fault.status(status, body, headers)


# --- matching ------------------------------------------------------------------------------------------


def test_normalize_ignores_case_accents_and_punctuation() -> None:
    assert normalize("Björk’s  JÓGA!") == normalize("bjorks joga")
    assert normalize("The National") == normalize("national")
    assert normalize("Simon & Garfunkel") == normalize("simon and garfunkel")


def test_map_genres_keeps_only_our_vocabulary() -> None:
    tags = ["Dream-Pop", "seen live", "Singer/Songwriter", "modern indie rock", "british", "HIP-HOP", "dream pop"]
    assert map_genres(tags) == ["dream pop", "singer-songwriter", "indie rock", "hip hop"]
    assert map_genres([]) == []


def test_best_hit_prefers_the_studio_version_over_a_more_popular_remix() -> None:
    hits = [
        Hit("Paper Boats - Kilo Marsh Remix", ("Lantern Hollow", "Kilo Marsh"), popularity=0.9),
        Hit("Paper Boats (Live at the Old Mill)", ("Lantern Hollow",), popularity=0.8),
        Hit("Paper Boats", ("The Karaoke Crew",), popularity=0.3),
        Hit("Paper Boats", ("Lantern Hollow",), popularity=0.5),
    ]
    best = best_hit("Lantern Hollow", "Paper Boats", hits)
    assert best is not None and best[0] == 3
    asked_for_remix = best_hit("Lantern Hollow", "Paper Boats (Kilo Marsh Remix)", hits)
    assert asked_for_remix is not None and asked_for_remix[0] == 0


def test_best_hit_returns_none_below_the_threshold() -> None:
    hits = [Hit("Paper Boats", ("The Karaoke Crew",)), Hit("Paper Planes", ("Lantern Hollow",))]
    assert best_hit("Lantern Hollow", "Paper Boats", hits) is None
    assert best_hit("Lantern Hollow", "Paper Boats", []) is None


# --- offline catalog -----------------------------------------------------------------------------------


def write_catalog(path: Path, tracks: list[dict[str, object]], version: int = 1) -> Path:
    path.write_text(json.dumps({"version": version, "tracks": tracks}), encoding="utf-8")
    return path


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    return write_catalog(
        tmp_path / "catalog.json",
        [
            {
                "artist": "Lantern Hollow",
                "title": "Paper Boats",
                "track_id": "offline:lantern-paper-boats",
                "genres": ["indie folk"],
                "audio_features": {"energy": 0.6, "tempo": 118, "valence": 7.5},  # valence out of range
            },
            {"artist": "Vela North", "title": "Glass Orchard", "track_id": None, "genres": [], "audio_features": None},
        ],
    )


def test_offline_matches_ignoring_case_and_punctuation(catalog_path: Path) -> None:
    provider = OfflineCatalogProvider(catalog_path)
    info = provider.lookup("lantern hollow", "PAPER BOATS!", None)
    assert info is not None
    assert (info.artist, info.title, info.track_id) == ("Lantern Hollow", "Paper Boats", "offline:lantern-paper-boats")
    assert info.genres == ["indie folk"] and info.provider == "offline"
    assert info.audio_features is not None
    assert (info.audio_features.energy, info.audio_features.tempo, info.audio_features.valence) == (0.6, 118, None)


def test_offline_by_track_id_and_misses(catalog_path: Path) -> None:
    provider = OfflineCatalogProvider(catalog_path)
    by_id = provider.lookup("whoever", "whatever", "offline:lantern-paper-boats")
    assert by_id is not None and by_id.title == "Paper Boats"
    no_features = provider.lookup("Vela North", "Glass Orchard", None)
    assert no_features is not None and no_features.audio_features is None
    assert no_features.audio_features_missing_reason == "no audio features in the offline catalog"
    assert provider.lookup("Lantern Hollow", "Paper Planes", None) is None
    edit = provider.lookup("Lantern Hollow", "Paper Boats - Radio Edit", None)
    assert edit is not None and edit.track_id == "offline:lantern-paper-boats"


def test_offline_rejects_a_bad_catalog(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        OfflineCatalogProvider(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="not a valid catalog"):
        OfflineCatalogProvider(write_catalog(tmp_path / "bad.json", [{"artist": "x"}]))
    with pytest.raises(ValueError, match="version 2"):
        OfflineCatalogProvider(write_catalog(tmp_path / "v2.json", [], version=2))


def test_shipped_catalog_finds_every_song_it_lists() -> None:
    path = DATA_DIR / "catalog.json"
    if not path.exists():
        pytest.skip("data/catalog.json has not landed yet")
    provider = OfflineCatalogProvider(path)
    tracks = json.loads(path.read_text(encoding="utf-8"))["tracks"]
    for track in tracks:
        info = provider.lookup(track["artist"].upper(), track["title"] + "!", None)
        assert info is not None and info.title == track["title"]


# --- Spotify -------------------------------------------------------------------------------------------


def test_spotify_finds_the_song_with_genres_and_features(spotify: SpotifyProvider, spotify_fake: FakeSpotify) -> None:
    info = spotify.lookup("Lantern Hollow", "Paper Boats", None)
    assert info is not None
    assert (info.track_id, info.artist, info.title, info.provider) == (
        STUDIO_ID,
        "Lantern Hollow",
        "Paper Boats",
        "spotify",
    )
    assert info.genres == ["indie folk", "chamber pop"]  # "stomp and holler" is not in our vocabulary
    assert info.audio_features is not None and info.audio_features.tempo == 118.2
    assert info.audio_features_missing_reason is None
    search = next(r for r in spotify_fake.server.requests if r.path == "/v1/search")
    assert search.arg("q") == 'track:"Paper Boats" artist:"Lantern Hollow"'
    assert search.arg("type") == "track" and int(search.arg("limit") or 0) <= 10


def test_spotify_asks_for_a_token_once(spotify: SpotifyProvider, spotify_fake: FakeSpotify) -> None:
    spotify.lookup("Lantern Hollow", "Paper Boats", None)
    spotify.lookup("Vela North", "Glass Orchard", None)
    assert spotify_fake.server.count("/api/token", "POST") == 1


def test_spotify_picks_the_best_match_not_the_first_hit(spotify: SpotifyProvider) -> None:
    # The fake returns the popular remix first, then a live take, then the studio version and a cover.
    info = spotify.lookup("Lantern Hollow", "Paper Boats", None)
    assert info is not None and info.track_id == STUDIO_ID
    remix = spotify.lookup("Lantern Hollow", "Paper Boats (Kilo Marsh Remix)", None)
    assert remix is not None and remix.track_id == REMIX_ID


def test_spotify_returns_none_for_an_unknown_song(spotify: SpotifyProvider) -> None:
    assert spotify.lookup("Nobody Known", "Nothing Here", None) is None


def test_spotify_uses_the_linked_track_id(spotify: SpotifyProvider, spotify_fake: FakeSpotify) -> None:
    info = spotify.lookup("anything", "at all", STUDIO_ID)
    assert info is not None and info.track_id == STUDIO_ID
    assert spotify_fake.server.count("/v1/search") == 0
    # An id Spotify does not know falls back to search.
    fallback = spotify.lookup("Lantern Hollow", "Paper Boats", "0000000000000000000000")
    assert fallback is not None and fallback.track_id == STUDIO_ID


def test_spotify_403_turns_audio_features_off_once_and_genres_still_come(
    spotify: SpotifyProvider, spotify_fake: FakeSpotify, caplog: pytest.LogCaptureFixture
) -> None:
    spotify_fake.server.fail("/v1/audio-features", spotify_error(403, "Forbidden"))
    with caplog.at_level(logging.WARNING, logger="deephype.common.music_lookup.spotify"):
        first = spotify.lookup("Lantern Hollow", "Paper Boats", None)
        second = spotify.lookup("Vela North", "Glass Orchard", None)
    assert first is not None and second is not None
    assert first.genres == ["indie folk", "chamber pop"] and second.genres == ["dream pop", "shoegaze"]
    assert first.audio_features is None and second.audio_features is None
    assert first.audio_features_missing_reason == second.audio_features_missing_reason == AUDIO_FEATURES_OFF
    assert spotify_fake.server.count("/v1/audio-features") == 1  # never asked again
    assert len([r for r in caplog.records if r.name == "deephype.common.music_lookup.spotify"]) == 1
    assert not spotify.audio_features_available


def test_spotify_429_raises_rate_limited_with_retry_after(spotify: SpotifyProvider, spotify_fake: FakeSpotify) -> None:
    spotify_fake.server.fail("/v1/search", spotify_error(429, "API rate limit exceeded", {"Retry-After": "7"}))
    with pytest.raises(RateLimited) as caught:
        spotify.lookup("Lantern Hollow", "Paper Boats", None)
    assert caught.value.retry_after_seconds == 7.0 and caught.value.retryable
    assert spotify_fake.server.count("/v1/search") == 1  # no retries inside the client


def test_spotify_401_is_a_permanent_error(spotify: SpotifyProvider, spotify_fake: FakeSpotify) -> None:
    spotify_fake.server.fail("/v1/search", spotify_error(401, "Invalid access token"))
    with pytest.raises(ProviderError, match=r"401") as caught:
        spotify.lookup("Lantern Hollow", "Paper Boats", None)
    assert not caught.value.retryable


def test_spotify_bad_credentials_are_a_permanent_error(spotify_fake: FakeSpotify) -> None:
    provider = SpotifyProvider("wrong", "secret", api_url=spotify_fake.api_url, auth_url=spotify_fake.auth_url)
    with pytest.raises(ProviderError, match="invalid_client") as caught:
        provider.lookup("Lantern Hollow", "Paper Boats", None)
    assert not caught.value.retryable


@pytest.mark.parametrize("status", [500, 502, 503])
def test_spotify_5xx_is_a_retryable_error(spotify: SpotifyProvider, spotify_fake: FakeSpotify, status: int) -> None:
    spotify_fake.server.fail("/v1/search", spotify_error(status, "upstream trouble"))
    with pytest.raises(ProviderError, match=f"server error \\({status}\\)") as caught:
        spotify.lookup("Lantern Hollow", "Paper Boats", None)
    assert caught.value.retryable and caught.value.status == status
    assert spotify_fake.server.count("/v1/search") == 1


def test_spotify_timeout_is_a_retryable_error(spotify: SpotifyProvider, spotify_fake: FakeSpotify) -> None:
    spotify_fake.server.fail("/v1/artists", Fault.hanging())
    with pytest.raises(ProviderError, match="timed out") as caught:
        spotify.lookup("Lantern Hollow", "Paper Boats", None)
    assert caught.value.retryable


@pytest.mark.parametrize("path", ["/v1/search", "/v1/artists", "/v1/audio-features", "/api/token"])
def test_spotify_malformed_body_is_a_provider_error(
    spotify: SpotifyProvider, spotify_fake: FakeSpotify, path: str
) -> None:
    spotify_fake.server.fail(path, Fault.malformed())
    with pytest.raises(ProviderError, match="malformed"):
        spotify.lookup("Lantern Hollow", "Paper Boats", None)


def test_spotify_wrong_shape_is_a_provider_error(spotify: SpotifyProvider, spotify_fake: FakeSpotify) -> None:
    spotify_fake.server.fail("/v1/search", Fault.malformed(b'{"tracks": {"items": "not a list"}}'))
    with pytest.raises(ProviderError, match="malformed search response"):
        spotify.lookup("Lantern Hollow", "Paper Boats", None)


def test_spotify_secrets_never_reach_a_log(
    spotify_fake: FakeSpotify, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        tmp_path,
        spotify_client_id=CLIENT_ID,
        spotify_client_secret=CLIENT_SECRET,
        spotify_api_url=spotify_fake.api_url,
        spotify_auth_url=spotify_fake.auth_url,
    )
    provider = SpotifyProvider.from_settings(settings)
    spotify_fake.server.fail("/v1/audio-features", spotify_error(403, "Forbidden"))
    with caplog.at_level(logging.DEBUG):
        provider.lookup("Lantern Hollow", "Paper Boats", None)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    for secret in [*settings.secret_values(), basic, *spotify_fake.tokens]:
        assert secret not in logged


def test_spotify_needs_credentials(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="DEEPHYPE_SPOTIFY_CLIENT_ID"):
        SpotifyProvider.from_settings(make_settings(tmp_path))


# --- MusicBrainz ---------------------------------------------------------------------------------------


def test_musicbrainz_finds_the_song_and_maps_tags_to_genres(
    musicbrainz: MusicBrainzProvider, mb_fake: FakeMusicBrainz
) -> None:
    info = musicbrainz.lookup("Lantern Hollow", "Paper Boats", None)
    assert info is not None
    # Not the live take the search engine scores highest, nor the tribute band's cover.
    assert info.track_id == "musicbrainz:recording:9b000000-0000-4000-8000-000000000003"
    assert (info.artist, info.title, info.provider) == ("Lantern Hollow", "Paper Boats", "musicbrainz")
    # Tags by votes; "seen live" and "british" are not genres.
    assert info.genres == ["indie folk", "chamber pop", "singer-songwriter"]
    assert info.audio_features is None and info.audio_features_missing_reason
    search = mb_fake.server.requests[0]
    assert search.path.rstrip("/") == "/ws/2/recording" and search.arg("fmt") is None  # XML, as musicbrainzngs asks
    assert search.arg("query") == "recording:(paper boats) artist:(lantern hollow)"
    assert "tests@example.invalid" in search.headers["user-agent"]
    assert mb_fake.server.requests[1].arg("inc") == "tags"


def test_musicbrainz_unknown_song_is_none(musicbrainz: MusicBrainzProvider, mb_fake: FakeMusicBrainz) -> None:
    assert musicbrainz.lookup("Nobody Known", "Nothing Here", None) is None
    assert mb_fake.server.count("/ws/2/artist") == 0


def test_musicbrainz_default_is_one_request_per_second(mb_fake: FakeMusicBrainz) -> None:
    MusicBrainzProvider(mb_fake.base_url, contact="tests@example.invalid")
    assert mb_client.do_rate_limit and mb_client.limit_interval == 1.0 and mb_client.limit_requests == 1
    with pytest.raises(ValueError, match="at most 1 request per second"):
        MusicBrainzProvider("musicbrainz.org", contact="x", requests_per_second=None)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        MusicBrainzProvider(mb_fake.base_url, contact="x", requests_per_second=5)
    with pytest.raises(ValueError, match="contact"):
        MusicBrainzProvider(mb_fake.base_url, contact=" ")


@pytest.mark.parametrize(
    ("status", "headers"), [(429, {"Retry-After": "3"}), (503, {"Retry-After": "2"})], ids=["429", "503"]
)
def test_musicbrainz_rate_limit_raises_rate_limited(
    musicbrainz: MusicBrainzProvider, mb_fake: FakeMusicBrainz, status: int, headers: dict[str, str]
) -> None:
    mb_fake.server.fail("/ws/2/recording", Fault.status(status, headers=headers))
    with pytest.raises(RateLimited) as caught:
        musicbrainz.lookup("Lantern Hollow", "Paper Boats", None)
    assert caught.value.retry_after_seconds == float(headers["Retry-After"])
    assert mb_fake.server.count("/ws/2/recording") == 1  # musicbrainzngs' own retry loop is not used


@pytest.mark.parametrize("status", [401, 403])
def test_musicbrainz_refusal_is_a_permanent_error(
    musicbrainz: MusicBrainzProvider, mb_fake: FakeMusicBrainz, status: int
) -> None:
    mb_fake.server.fail("/ws/2/artist", Fault.status(status))
    with pytest.raises(ProviderError, match=f"\\({status}\\)") as caught:
        musicbrainz.lookup("Lantern Hollow", "Paper Boats", None)
    assert not caught.value.retryable


def test_musicbrainz_5xx_is_retryable_without_inner_retries(
    musicbrainz: MusicBrainzProvider, mb_fake: FakeMusicBrainz
) -> None:
    mb_fake.server.fail("/ws/2/recording", Fault.status(500))
    with pytest.raises(ProviderError, match=r"server error \(500\)") as caught:
        musicbrainz.lookup("Lantern Hollow", "Paper Boats", None)
    assert caught.value.retryable
    assert mb_fake.server.count("/ws/2/recording") == 1


def test_musicbrainz_timeout_is_a_retryable_error(musicbrainz: MusicBrainzProvider, mb_fake: FakeMusicBrainz) -> None:
    mb_fake.server.fail("/ws/2/recording", Fault.hanging())
    with pytest.raises(ProviderError, match="timed out") as caught:
        musicbrainz.lookup("Lantern Hollow", "Paper Boats", None)
    assert caught.value.retryable


@pytest.mark.parametrize(
    "body",
    [b"<metadata><recording-list", b"<html>maintenance</html>", b"not xml at all"],
    ids=["truncated", "html", "text"],
)
def test_musicbrainz_malformed_body_is_a_provider_error(
    musicbrainz: MusicBrainzProvider, mb_fake: FakeMusicBrainz, body: bytes
) -> None:
    mb_fake.server.fail("/ws/2/recording", Fault.malformed(body, "application/xml"))
    with pytest.raises(ProviderError, match="malformed"):
        musicbrainz.lookup("Lantern Hollow", "Paper Boats", None)


# --- cache ---------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_cache_hit_avoids_a_second_http_call(
    spotify: SpotifyProvider, spotify_fake: FakeSpotify, tmp_path: Path
) -> None:
    cached = CachedProvider(spotify, tmp_path / "cache.sqlite3", ttl_seconds=60)
    first = cached.lookup("Lantern Hollow", "Paper Boats", None)
    requests_after_first = len(spotify_fake.server.requests)
    second = cached.lookup("lantern hollow", "Paper Boats!", None)  # same song, written differently
    assert first == second and isinstance(second, SongInfo)
    assert len(spotify_fake.server.requests) == requests_after_first
    assert spotify_fake.server.count("/v1/search") == 1


def test_cache_remembers_misses_and_survives_a_restart(
    spotify: SpotifyProvider, spotify_fake: FakeSpotify, tmp_path: Path
) -> None:
    path = tmp_path / "cache.sqlite3"
    assert CachedProvider(spotify, path, ttl_seconds=60).lookup("Nobody Known", "Nothing Here", None) is None
    assert CachedProvider(spotify, path, ttl_seconds=60).lookup("Nobody Known", "Nothing Here", None) is None
    assert spotify_fake.server.count("/v1/search") == 1


def test_cache_entries_expire_after_the_ttl(
    spotify: SpotifyProvider, spotify_fake: FakeSpotify, tmp_path: Path
) -> None:
    clock = Clock()
    cached = CachedProvider(spotify, tmp_path / "cache.sqlite3", ttl_seconds=60, clock=clock)
    cached.lookup("Lantern Hollow", "Paper Boats", None)
    clock.now += 59
    cached.lookup("Lantern Hollow", "Paper Boats", None)
    assert spotify_fake.server.count("/v1/search") == 1
    clock.now += 2
    cached.lookup("Lantern Hollow", "Paper Boats", None)
    assert spotify_fake.server.count("/v1/search") == 2


def test_cache_does_not_keep_errors(spotify: SpotifyProvider, spotify_fake: FakeSpotify, tmp_path: Path) -> None:
    cached = CachedProvider(spotify, tmp_path / "cache.sqlite3", ttl_seconds=60)
    spotify_fake.server.fail("/v1/search", spotify_error(429, "slow down", {"Retry-After": "1"}))
    with pytest.raises(RateLimited):
        cached.lookup("Lantern Hollow", "Paper Boats", None)
    spotify_fake.server.clear_faults()
    info = cached.lookup("Lantern Hollow", "Paper Boats", None)
    assert info is not None and info.track_id == STUDIO_ID


# --- build_provider ------------------------------------------------------------------------------------


def test_build_provider_offline(tmp_path: Path, catalog_path: Path) -> None:
    provider = build_provider(make_settings(tmp_path, enricher_catalog_path=catalog_path))
    assert isinstance(provider, OfflineCatalogProvider)


def test_build_provider_spotify_is_cached_and_uses_the_settings_urls(tmp_path: Path, spotify_fake: FakeSpotify) -> None:
    settings = make_settings(
        tmp_path,
        enricher_provider="spotify",
        spotify_client_id=CLIENT_ID,
        spotify_client_secret=CLIENT_SECRET,
        spotify_api_url=spotify_fake.api_url,
        spotify_auth_url=spotify_fake.auth_url,
    )
    provider = build_provider(settings)
    assert isinstance(provider, CachedProvider) and isinstance(provider.inner, SpotifyProvider)
    assert provider.name == "spotify"
    info = provider.lookup("Lantern Hollow", "Paper Boats", None)
    assert info is not None and info.track_id == STUDIO_ID
    assert (settings.state_dir / "enricher" / "spotify-cache.sqlite3").exists()


def test_build_provider_musicbrainz_uses_the_settings_host(tmp_path: Path, mb_fake: FakeMusicBrainz) -> None:
    settings = make_settings(tmp_path, enricher_provider="musicbrainz", musicbrainz_base_url=mb_fake.base_url)
    provider = build_provider(settings)
    assert isinstance(provider, CachedProvider) and isinstance(provider.inner, MusicBrainzProvider)
    assert mb_client.hostname == mb_fake.base_url.removeprefix("http://") and not mb_client.https


def test_build_provider_rejects_an_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown song info provider 'lastfm'"):
        build_provider(make_settings(tmp_path, enricher_provider="lastfm"))

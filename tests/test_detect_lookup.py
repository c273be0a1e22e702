"""Detection confirmed by the song providers, against the fake Spotify and MusicBrainz servers (real wire
formats): a provider that knows the song lifts a candidate the post alone would not carry; one lookup per
candidate, cached; a provider that answers 429 or times out leaves the plausibility score to decide, and
no post is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import musicbrainzngs.musicbrainz as mb_client
import pytest

from deephype.common.memory_bus import InMemoryBus
from deephype.common.music_lookup.musicbrainz import MusicBrainzProvider
from deephype.common.music_lookup.providers import CachedProvider, OfflineCatalogProvider
from deephype.common.music_lookup.spotify import SpotifyProvider
from deephype.common.settings import DATA_DIR
from deephype.listener import app as listener_app
from deephype.listener.confirm import SongLookup, Verdict, build_lookup
from deephype.listener.detect import SongDetector
from deephype.listener.handlers import RawPost
from tests.conftest import make_settings
from tests.fakes.musicbrainz import FakeMusicBrainz
from tests.fakes.server import Fault
from tests.fakes.spotify import CLIENT_ID, CLIENT_SECRET, FakeSpotify

SHORT_TIMEOUT = 0.5
# Songs only the fakes know. The first post is shaped like a song but its title is not capitalised like
# one, so the post alone scores below the bar; the second is plausible on its own (#np).
DOUBTFUL = "Vela North - Glass orchard"
PLAUSIBLE = "#np Vela North - Glass Orchard"
CATALOG = OfflineCatalogProvider(DATA_DIR / "catalog.json")


@pytest.fixture
def spotify_fake() -> Iterator[FakeSpotify]:
    with FakeSpotify() as fake:
        yield fake


@pytest.fixture
def mb_fake() -> Iterator[FakeMusicBrainz]:
    with FakeMusicBrainz() as fake:
        yield fake


def spotify_lookup(fake: FakeSpotify, tmp_path: Path) -> SongLookup:
    spotify = SpotifyProvider(
        CLIENT_ID, CLIENT_SECRET, api_url=fake.api_url, auth_url=fake.auth_url, timeout_seconds=SHORT_TIMEOUT
    )
    return SongLookup(CATALOG, CachedProvider(spotify, tmp_path / "spotify-cache.sqlite3", ttl_seconds=3600))


@pytest.fixture
def musicbrainz(mb_fake: FakeMusicBrainz) -> Iterator[MusicBrainzProvider]:
    yield MusicBrainzProvider(
        mb_fake.base_url, contact="tests@example.invalid", requests_per_second=None, timeout_seconds=SHORT_TIMEOUT
    )
    mb_client.set_rate_limit(1.0, 1)  # musicbrainzngs' settings are process-wide: leave the safe default


def test_the_post_alone_does_not_carry_the_doubtful_one() -> None:
    assert SongDetector(SongLookup(CATALOG))(DOUBTFUL).artist is None


def test_spotify_confirms_a_song_the_post_alone_would_not_carry(spotify_fake: FakeSpotify, tmp_path: Path) -> None:
    detector = SongDetector(spotify_lookup(spotify_fake, tmp_path))
    explanation = detector.explain(DOUBTFUL)
    assert (explanation.detection.artist, explanation.detection.title) == ("Vela North", "Glass orchard")
    [candidate] = explanation.candidates
    assert candidate.confirmation is not None
    assert candidate.confirmation.verdict == Verdict.confirmed
    assert candidate.confirmation.provider == "spotify"
    assert candidate.confirmation.track_id == "2GlassOrchard000000001"
    assert explanation.detection.confidence >= 0.9 > candidate.plausibility


def test_musicbrainz_confirms_it_too(musicbrainz: MusicBrainzProvider, mb_fake: FakeMusicBrainz) -> None:
    detection = SongDetector(SongLookup(CATALOG, musicbrainz))(DOUBTFUL)
    assert (detection.artist, detection.title) == ("Vela North", "Glass orchard")
    assert mb_fake.server.count("/ws/2/recording") == 1


def test_the_catalog_answers_first_and_the_network_is_not_asked(spotify_fake: FakeSpotify, tmp_path: Path) -> None:
    detection = SongDetector(spotify_lookup(spotify_fake, tmp_path))("#np Coldplay - Yellow")
    assert detection.artist == "Coldplay"
    assert spotify_fake.server.count("/v1/search") == 0


def test_one_cached_lookup_per_candidate(spotify_fake: FakeSpotify, tmp_path: Path) -> None:
    detector = SongDetector(spotify_lookup(spotify_fake, tmp_path))
    for _ in range(3):
        assert detector(DOUBTFUL).artist == "Vela North"
        assert detector("#np Vela North - Some Song Nobody Has").artist == "Vela North"  # a cached miss
    assert spotify_fake.server.count("/v1/search") == 2


def test_spotify_429_falls_back_to_the_plausibility_score(spotify_fake: FakeSpotify, tmp_path: Path) -> None:
    spotify_fake.server.fail("/v1/search", Fault.status(429, headers={"Retry-After": "30"}))
    detector = SongDetector(spotify_lookup(spotify_fake, tmp_path))
    plausible = detector.explain(PLAUSIBLE)
    assert (plausible.detection.artist, plausible.detection.title) == ("Vela North", "Glass Orchard")
    assert plausible.candidates[0].confirmation is not None
    assert plausible.candidates[0].confirmation.verdict == Verdict.unavailable
    assert plausible.detection.confidence == plausible.candidates[0].plausibility
    assert detector(DOUBTFUL).artist is None  # no provider to vouch for it: the post decides
    # Errors are not cached: once the provider is back, the same post is confirmed.
    spotify_fake.server.clear_faults()
    assert detector(DOUBTFUL).artist == "Vela North"


def test_spotify_timeout_falls_back_to_the_plausibility_score(spotify_fake: FakeSpotify, tmp_path: Path) -> None:
    spotify_fake.server.fail("/v1/search", Fault.hanging())
    detection = SongDetector(spotify_lookup(spotify_fake, tmp_path))(PLAUSIBLE)
    assert (detection.artist, detection.title) == ("Vela North", "Glass Orchard")


def test_musicbrainz_429_and_timeout_fall_back(musicbrainz: MusicBrainzProvider, mb_fake: FakeMusicBrainz) -> None:
    detector = SongDetector(SongLookup(CATALOG, musicbrainz))
    mb_fake.server.fail("/ws/2/recording", Fault.status(429, headers={"Retry-After": "2"}))
    assert detector(PLAUSIBLE).artist == "Vela North"
    mb_fake.server.clear_faults()
    mb_fake.server.fail("/ws/2/recording", Fault.hanging())
    assert detector("#np Vela North - Glass Orchard (Live)").title == "Glass Orchard"


def test_the_listener_publishes_through_a_provider_outage(spotify_fake: FakeSpotify, tmp_path: Path) -> None:
    """Settings choose the lookup; with Spotify answering 429 every post is still handled."""
    settings = make_settings(
        tmp_path,
        listener_lookup="spotify",
        listener_lookup_timeout_seconds=SHORT_TIMEOUT,
        spotify_client_id=CLIENT_ID,
        spotify_client_secret=CLIENT_SECRET,
        spotify_api_url=spotify_fake.api_url,
        spotify_auth_url=spotify_fake.auth_url,
        listener_sources=[],
    )
    lookup = build_lookup(settings)
    assert lookup is not None and lookup.uses_network
    spotify_fake.server.fail("/v1/search", Fault.status(429, headers={"Retry-After": "30"}))
    _, listener, _ = listener_app.build(settings, InMemoryBus(settings))
    published = listener.ingest(RawPost(platform="feed", post_id="1", author="ana", text=PLAUSIBLE))
    doubtful = listener.ingest(RawPost(platform="feed", post_id="2", author="ana", text=DOUBTFUL))
    assert (published.status, published.artist, published.title) == ("on_bus", "Vela North", "Glass Orchard")
    assert doubtful.status == "no_song"
    spotify_fake.server.clear_faults()
    confirmed = listener.ingest(RawPost(platform="feed", post_id="3", author="ana", text=DOUBTFUL))
    assert (confirmed.status, confirmed.artist) == ("on_bus", "Vela North")
    assert (settings.service_state_dir("listener") / "spotify-cache.sqlite3").exists()


def test_build_lookup_none_and_offline(tmp_path: Path) -> None:
    assert build_lookup(make_settings(tmp_path, listener_lookup="none")) is None
    offline = build_lookup(make_settings(tmp_path))
    assert offline is not None and not offline.uses_network
    with pytest.raises(ValueError, match="unknown listener lookup 'lastfm'"):
        build_lookup(make_settings(tmp_path, listener_lookup="lastfm"))


def test_a_post_to_the_bot_is_a_request_even_without_the_flag(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, listener_sources=[])
    _, listener, _ = listener_app.build(settings, InMemoryBus(settings))
    text = "@deephype thoughts on Glass Orchard by Vela North?"
    result = listener.ingest(RawPost(platform="feed", post_id="9", author="ana", text=text))
    assert (result.status, result.artist, result.title) == ("on_bus", "Vela North", "Glass Orchard")

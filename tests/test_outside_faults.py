"""Outside faults through the whole pipeline: the fake Spotify, SendGrid and Mastodon answer 429s, 5xx,
garbage and hang; work is retried with backoff, bounded, and nothing is lost or posted twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from deephype.common.memory_bus import InMemoryBus
from deephype.common.music_lookup.spotify import SpotifyProvider
from deephype.common.platforms.base import PlatformOptions
from deephype.common.platforms.build import build_platform_publisher
from deephype.curator.email import SendGridSender
from deephype.listener.handlers import RawPost
from deephype.pipeline import build_pipeline
from tests.conftest import bundled_model, make_settings, wait_until
from tests.fakes import mastodon as fm
from tests.fakes import spotify as fs
from tests.fakes.sendgrid import API_KEY, FakeSendGrid
from tests.fakes.server import FakeResponse, Fault

SONGS = [("Lantern Hollow", "Paper Boats"), ("Vela North", "Glass Orchard")]


def test_faulty_outside_services_delay_work_but_lose_and_double_nothing(tmp_path: Path) -> None:
    with fs.FakeSpotify() as spotify, FakeSendGrid() as sendgrid, fm.FakeMastodon() as mastodon:
        settings = make_settings(
            tmp_path,
            retry_delays=[0.2, 0.5, 1.0, 2.0],
            max_attempts=10,
            listener_sources=[],
            curator_auto_approve=True,
            poster_platform="mastodon",
            curator_email_backend="sendgrid",
            sendgrid_base_url=sendgrid.url,
            sendgrid_api_key=API_KEY,
            mastodon_base_url=mastodon.url,
            mastodon_access_token=fm.ACCESS_TOKEN,
            spotify_client_id=fs.CLIENT_ID,
            spotify_client_secret=fs.CLIENT_SECRET,
            spotify_api_url=spotify.api_url,
            spotify_auth_url=spotify.auth_url,
        )
        spotify.server.fail(
            "/v1/search", Fault.status(429, b'{"error": {"status": 429}}', {"Retry-After": "1"}, times=2)
        )
        spotify.server.fail("/v1/search", Fault.status(502, times=2))
        spotify.server.fail("/v1/search", Fault(FakeResponse(200, b'{"truncated": [1, 2', {}), times=1))
        spotify.server.fail("/v1/search", Fault(hang=True, times=1))
        sendgrid.server.fail("/v3/mail/send", Fault.status(500, times=2))
        sendgrid.server.fail("/v3/mail/send", Fault(hang=True, times=1))
        mastodon.server.fail("/api/v1/statuses", Fault.status(503, times=2))
        mastodon.server.fail("/api/v1/statuses", fm.rate_limited(datetime.now(UTC) + timedelta(seconds=1), times=1))
        mastodon.server.fail("/api/v1/statuses", Fault(hang=True, times=1))  # outcome unknown: key makes it safe

        pipeline = build_pipeline(
            settings,
            InMemoryBus(settings),
            candidate_source=bundled_model(),
            email_sender=SendGridSender(settings, timeout=2),
            publisher=build_platform_publisher("mastodon", settings, PlatformOptions(timeout_seconds=2)),
            song_info_provider=SpotifyProvider.from_settings(settings, timeout_seconds=2),
        )
        pipeline.start()
        try:
            mentions = 6
            for index in range(mentions):
                artist, title = SONGS[index % 2]
                post = RawPost(post_id=f"o{index}", author="fan", text=f"#NowPlaying {artist} - {title} 🎧 day {index}")
                assert pipeline.listener.ingest(post).status == "on_bus"
            assert wait_until(lambda: len(mastodon.posted_by_bot()) >= mentions, timeout=90)
            assert pipeline.bus.wait_idle(60)  # type: ignore[attr-defined]
            assert len(mastodon.posted_by_bot()) == mentions  # none lost, none twice
            # Email is at-least-once: a send that timed out may have gone through, and is sent again.
            assert len(sendgrid.sent) >= mentions
            assert {mail["subject"].rsplit(" - ", 1)[1] for mail in sendgrid.sent} == {title for _, title in SONGS}
            assert pipeline.bus.dead_letters() == []  # type: ignore[attr-defined]
            songs = pipeline.curator.songs()
            assert {s.status for s in songs} == {"published"} and len(songs) == mentions
            assert not any(pipeline.curator.needs_email(s.set_id) for s in songs)  # every song was emailed
            assert any("indie folk" in s.genres for s in songs)  # enriched through the faults, not skipped
            # Every fault was really met.
            assert spotify.server.count("/v1/search") >= mentions + 6
            assert mastodon.server.count("/api/v1/statuses", "POST") >= mentions + 4
            assert sendgrid.server.count("/v3/mail/send") >= mentions + 3
        finally:
            pipeline.stop()

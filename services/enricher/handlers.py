"""The enricher's handler: a song mention in, the song with genres and audio features out.

A song the provider does not know still goes on, with no genres: the generator writes about it from the
post alone rather than dropping the mention. A rate limit re-queues the mention with the provider's delay.
"""

from __future__ import annotations

from deephype.common.bus import Handler, PermanentError, RetryLater, derive_id
from deephype.common.contracts import EnrichedSong, Envelope, Song, SongMention
from deephype.common.music_lookup.providers import ProviderError, RateLimited, SongInfoProvider


def make_enrich_handler(provider: SongInfoProvider) -> Handler:
    def handle(message: Envelope) -> list[Envelope]:
        assert isinstance(message, SongMention)
        try:
            info = provider.lookup(message.artist, message.title, message.spotify_track_id)
        except RateLimited as exc:
            raise RetryLater(f"{provider.name} rate limit", exc.retry_after_seconds) from exc
        except ProviderError as exc:
            if not exc.retryable:  # bad credentials or a refused request: retrying cannot help
                raise PermanentError(str(exc)) from exc
            raise
        if info is None:
            song = Song(artist=message.artist, title=message.title, track_id=message.spotify_track_id)
            provider_name, missing = f"{provider.name} (not found)", f"not found by {provider.name}"
        else:
            song = Song(
                artist=info.artist or message.artist,
                title=info.title or message.title,
                track_id=info.track_id,
                genres=info.genres,
                audio_features=info.audio_features,
            )
            provider_name, missing = info.provider, info.audio_features_missing_reason
        return [
            message.child(
                EnrichedSong,
                message_id=derive_id(message.message_id, "enriched"),
                mention=message,
                song=song,
                provider=provider_name,
                audio_features_missing_reason=None if song.audio_features else missing,
            )
        ]

    return handle

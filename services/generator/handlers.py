"""The generator's bus handler: an enriched song in, one Candidates message out."""

from __future__ import annotations

from deephype.common.bus import Handler, PermanentError, derive_id
from deephype.common.contracts import Candidates, EnrichedSong, Envelope, ScoredText
from deephype.generator.source import CandidateSource, SampleRequest


def make_candidates_handler(source: CandidateSource, *, n: int, platform: str) -> Handler:
    def handle(message: Envelope) -> list[Envelope]:
        assert isinstance(message, EnrichedSong)
        # Seeded by the message id: a redelivered song gets the same candidates.
        seed = int(message.message_id[:12], 16)
        request = SampleRequest(song=message.song, n=n, platform=platform, seed=seed)
        texts = source.generate(request)
        if not texts:
            raise PermanentError(f"no acceptable candidate for {message.song.artist} - {message.song.title}")
        candidates = [
            ScoredText(
                candidate_id=derive_id(message.message_id, "candidate", rank),
                text=c.text,
                score=c.score,
                scores=c.scores,
                # Set by the source that wrote it: a version swap mid-request cannot mislabel it.
                model_version=c.model_version or source.info.version,
            )
            for rank, c in enumerate(texts)
        ]
        return [
            message.child(
                Candidates,
                message_id=derive_id(message.message_id, "candidates"),
                enriched=message,
                candidates=candidates,
                model=source.info,
            )
        ]

    return handle

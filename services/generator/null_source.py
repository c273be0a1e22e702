"""The null generator, for benchmarks only: fixed candidates at once, no model, no torch.

DEEPHYPE_GENERATOR_MODEL=null picks it, so bench/pipeline.py measures the bus and the other four services
without the model's cost. Never use it for real posts: every song gets the same few sentences.
"""

from __future__ import annotations

from deephype.common.contracts import ModelInfo, ScoredText
from deephype.generator.source import SampleRequest

NULL_MODEL_NAME = "null"

SHORTEST_TEXT_LIMIT = 280  # x's; a very long band name is cut rather than go over any platform's limit

TEMPLATES = (
    "{artist} - {title} is on repeat here today.",
    "New favourite: {title} by {artist}.",
    "{title} by {artist}, worth a listen.",
    "Can't stop playing {artist}'s {title}.",
    "{artist} again: {title}.",
)


class NullCandidateSource:
    """Same candidates for every request (names filled in), best first; ready from the start."""

    info = ModelInfo(name=NULL_MODEL_NAME, version="0")

    def generate(self, request: SampleRequest) -> list[ScoredText]:
        song = request.song
        texts = [t.format(artist=song.artist, title=song.title)[:SHORTEST_TEXT_LIMIT] for t in TEMPLATES[: request.n]]
        return [ScoredText(text=text, score=1.0 - rank / 10) for rank, text in enumerate(texts)]

    def ready(self) -> bool:
        return True

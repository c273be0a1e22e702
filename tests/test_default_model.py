"""The shipped default model (the pretrained-decoder VAE in data/models/default) as the generator serves it:
SmolLM2 from its pip package, our trained prefix, adapters and encoder, ranked by the bundled LSTM VAE."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("transformers")

from deephype.common.contracts import Song
from deephype.common.settings import Settings
from deephype.generator.candidates import ModelCandidateSource
from deephype.generator.source import SampleRequest

MODELS = Path(__file__).resolve().parents[1] / "data" / "models"


@pytest.mark.slow
def test_the_default_model_writes_ranked_candidates_that_name_the_song() -> None:
    settings = Settings(_env_file=None, models_dir=MODELS, generator_device="cpu", generator_samples=16)  # type: ignore[call-arg]
    source = ModelCandidateSource.load(MODELS / "default", settings)
    assert source.loaded.arch == "pretrained" and source.ranker is not None and source.ranker.fluency is not None
    song = Song(artist="Low Tide", title="Glass Harbour", genres=["dream pop"])
    request = SampleRequest(song=song, n=5, seed=7, platform="mastodon")
    first = source.generate(request)
    assert 1 <= len(first) <= 5
    for candidate in first:
        assert "<" not in candidate.text and ">" not in candidate.text
        assert {"fluency", "genre_fit", "critic"} <= set(candidate.scores)
    assert [c.score for c in first] == sorted((c.score for c in first), reverse=True)
    # Deterministic for a seed: a redelivered song gets the same candidates.
    assert [c.text for c in source.generate(request)] == [c.text for c in first]

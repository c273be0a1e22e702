"""DEEPHYPE_GENERATOR_MODEL=null: the benchmark generator answers at once, without a model folder."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from deephype.common.memory_bus import InMemoryBus
from deephype.common.service import create_app
from deephype.generator.app import build, load_candidate_source
from deephype.generator.null_source import NullCandidateSource
from tests.conftest import make_settings, wait_until

SONG = {"artist": "Paper Lanterns", "title": "Night Owls", "genres": ["indie rock"]}


def test_null_setting_needs_no_model_folder(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, models_dir=tmp_path / "no-models-here", generator_model="null")
    assert isinstance(load_candidate_source(settings), NullCandidateSource)


def test_null_generator_serves_fixed_candidates_with_the_song_names(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, models_dir=tmp_path / "no-models-here", generator_model="null")
    with TestClient(create_app(build(settings), InMemoryBus(settings))) as client:
        assert wait_until(lambda: client.get("/readyz").status_code == 200)
        body = client.post("/v1/samples", json={"song": SONG, "n": 3}).json()
    assert body["model"]["name"] == "null"
    texts = [c["text"] for c in body["candidates"]]
    assert len(texts) == 3 and all("Night Owls" in t for t in texts)
    scores = [c["score"] for c in body["candidates"]]
    assert scores == sorted(scores, reverse=True)

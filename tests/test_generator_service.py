"""The generator service with the real ModelCandidateSource (tiny VAE + LC-GANs) behind FastAPI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from deephype.common.memory_bus import InMemoryBus
from deephype.common.service import create_app
from deephype.generator.app import build, load_candidate_source
from deephype.generator.candidates import ModelCandidateSource
from tests.conftest import make_settings, wait_until
from tests.test_lcgan import tiny_lcgan, tiny_model_dir

SONG = {"artist": "Paper Lanterns", "title": "Night Owls", "genres": ["indie rock"]}


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = tiny_model_dir(tmp_path_factory)
    tiny_lcgan(model_dir, "realism")
    tiny_lcgan(model_dir, "genre")
    return model_dir.parent


@pytest.fixture
def client(models_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    # The service finds the model the way it does in production: settings.models_dir / generator_model.
    settings = make_settings(
        tmp_path, models_dir=models_dir, generator_model="tiny-vae", generator_device="cpu", generator_samples=24
    )
    source = load_candidate_source(settings)
    # Served through the version swapper (versions.py): the base model while no learned version is promoted.
    assert isinstance(source.source, ModelCandidateSource)
    app = create_app(build(settings, source), InMemoryBus(settings))
    with TestClient(app) as client:
        yield client


def test_post_samples_returns_candidates_and_model_info(client: TestClient) -> None:
    response = client.post("/v1/samples", json={"song": SONG, "n": 3, "seed": 5, "platform": "bluesky"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["name"] == "vae:tiny-vae+lcgan-genre"
    assert 1 <= len(body["candidates"]) <= 3
    for candidate in body["candidates"]:
        assert len(candidate["text"]) <= 300 and "<artist>" not in candidate["text"]
        assert {"critic", "loglik_per_token"} <= set(candidate["scores"])
    again = client.post("/v1/samples", json={"song": SONG, "n": 3, "seed": 5, "platform": "bluesky"}).json()
    assert [c["text"] for c in again["candidates"]] == [c["text"] for c in body["candidates"]]


def test_post_samples_with_odd_genres_and_no_lcgan(client: TestClient) -> None:
    song = {**SONG, "genres": ["nonexistent-genre"]}
    response = client.post("/v1/samples", json={"song": song, "n": 2, "use_lcgan": False, "temperature": 0.7})
    assert response.status_code == 200, response.text
    assert all(c["scores"]["latent_move"] == 0 for c in response.json()["candidates"])


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"song": {"artist": "", "title": "x"}},
        {"song": SONG, "n": 0},
        {"song": SONG, "n": 65},
        {"song": SONG, "temperature": 0},
        {"song": SONG, "temperature": 5e-324},
        {"song": SONG, "platform": "myspace"},
        {"song": SONG, "seed": -1},
        {"song": SONG, "surprise": True},
        {"song": {**SONG, "genres": "indie rock"}},
    ],
)
def test_bad_bodies_get_422(client: TestClient, body: dict[str, object]) -> None:
    assert client.post("/v1/samples", json=body).status_code == 422


def test_ready_once_the_model_is_loaded(client: TestClient) -> None:
    assert client.get("/readyz").status_code == 200


def test_without_a_model_the_service_says_so_and_is_not_ready(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, models_dir=tmp_path / "none", generator_model="default")
    with pytest.raises(FileNotFoundError, match="no model at"):
        load_candidate_source(settings)
    parts = build(settings)
    app = create_app(parts, InMemoryBus(settings))
    with TestClient(app) as client:
        assert wait_until(lambda: client.get("/readyz").json()["checks"]["model"] is False)
        response = client.post("/v1/samples", json={"song": {"artist": "A", "title": "T"}})
        assert response.status_code == 503 and "no model at" in response.json()["detail"]


def test_bus_handler_turns_an_enriched_song_into_candidates(models_dir: Path, tmp_path: Path) -> None:
    from deephype.common.bus import derive_id
    from deephype.common.contracts import Candidates, EnrichedSong, Song
    from deephype.generator.handlers import make_candidates_handler
    from tests.factories import mention

    settings = make_settings(tmp_path, generator_device="cpu", generator_samples=16)
    source = ModelCandidateSource.load(models_dir / "tiny-vae", settings)
    m = mention("42")
    enriched = m.child(
        EnrichedSong,
        message_id=derive_id(m.message_id, "enriched"),
        mention=m,
        song=Song(artist=m.artist, title=m.title, genres=["dream pop"]),
        provider="test",
    )
    handle = make_candidates_handler(source, n=3, platform="x")
    (out,) = handle(enriched)
    assert isinstance(out, Candidates) and out.model == source.info
    assert 1 <= len(out.candidates) <= 3 and all(len(c.text) <= 280 for c in out.candidates)
    # A redelivered song gets the same candidates (seeded by the message id).
    (again,) = handle(enriched)
    assert [c.text for c in again.candidates] == [c.text for c in out.candidates]

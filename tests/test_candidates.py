"""ModelCandidateSource on a tiny VAE + LC-GANs trained from the fixture corpus (see test_lcgan.py)."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
import torch

from deephype.common.contracts import Song
from deephype.common.settings import Settings
from deephype.generator.candidates import (
    ModelCandidateSource,
    fill_placeholders,
    has_repeated_bigram,
    jaccard,
    rejection,
)
from deephype.generator.device import cpu_threads_per_decode
from deephype.generator.source import SampleRequest
from deephype.generator.vocab import tokenize
from tests.conftest import make_settings
from tests.test_lcgan import tiny_lcgan, tiny_model_dir

SONG = Song(artist="Paper Lanterns", title="Night Owls", genres=["indie rock"])


@pytest.fixture(scope="session")
def model_with_lcgans(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = tiny_model_dir(tmp_path_factory)
    tiny_lcgan(model_dir, "realism")
    tiny_lcgan(model_dir, "genre")
    return model_dir


@pytest.fixture
def service_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, generator_device="cpu", generator_samples=32)


@pytest.fixture
def source(model_with_lcgans: Path, service_settings: Settings) -> ModelCandidateSource:
    return ModelCandidateSource.load(model_with_lcgans, service_settings)


def request(song: Song = SONG, **kw: object) -> SampleRequest:
    return SampleRequest(song=song, **{"n": 4, "seed": 7, **kw})  # type: ignore[arg-type]


def test_loads_the_genre_lcgan_with_realism_as_fallback(source: ModelCandidateSource) -> None:
    assert source.lcgan is not None and source.lcgan.value == "genre"
    assert source.fallback is not None and source.fallback.value == "realism"
    assert source.info.name.endswith("+lcgan-genre") and len(source.info.version) == 12
    assert source.ready()


def test_returns_n_scored_candidates_best_first_with_names_filled_in(source: ModelCandidateSource) -> None:
    texts = source.generate(request())
    assert len(texts) == 4
    assert [t.score for t in texts] == sorted((t.score for t in texts), reverse=True)
    for text in texts:
        assert "<artist>" not in text.text and "<title>" not in text.text and "<unk>" not in text.text
        assert {"loglik_per_token", "critic", "length", "latent_move"} <= set(text.scores)
        assert text.scores["length"] == len(text.text)
    # The fixture corpus names the song in most sentences; some candidate should too.
    assert any("Paper Lanterns" in t.text or "Night Owls" in t.text for t in texts)


def test_every_candidate_passed_the_filters(source: ModelCandidateSource) -> None:
    samples = source.sample(request(n=8))
    passed = {c.text: c for c in samples if c.rejected is None}
    for text in source.generate(request(n=8)):
        tokens = passed[text.text].tokens
        assert not has_repeated_bigram(tokens)
        assert all(a != b for a, b in itertools.pairwise(tokens))


def test_candidates_are_not_near_duplicates(source: ModelCandidateSource) -> None:
    texts = [tokenize(t.text) for t in source.generate(request(n=8))]
    for i, a in enumerate(texts):
        for b in texts[i + 1 :]:
            assert jaccard(a, b) <= 0.7


def test_length_limit_applies_after_the_names_are_filled_in(source: ModelCandidateSource) -> None:
    long_names = Song(artist="A" * 120, title="B" * 120, genres=["house"])
    all_samples = source.sample(request(long_names, n=8))
    too_long = [c for c in all_samples if c.rejected == "too long"]
    assert too_long, "with 240 characters of names some samples must exceed 280 characters"
    for text in source.generate(request(long_names, n=8)):
        assert len(text.text) <= 280


def test_deterministic_for_a_seed(source: ModelCandidateSource) -> None:
    first = [t.text for t in source.generate(request(seed=11))]
    assert first == [t.text for t in source.generate(request(seed=11))]
    assert first != [t.text for t in source.generate(request(seed=12))]


@pytest.mark.parametrize("genres", [[], ["not a genre at all"], ["dream pop", "zzz"]])
def test_unknown_or_missing_genres_do_not_crash(source: ModelCandidateSource, genres: list[str]) -> None:
    texts = source.generate(request(Song(artist="Zed", title="Blue", genres=genres)))
    assert texts and all(t.text for t in texts)


def test_lcgan_moves_the_codes_only_when_asked(source: ModelCandidateSource) -> None:
    moved = source.generate(request(use_lcgan=True))
    still = source.generate(request(use_lcgan=False))
    assert all(t.scores["latent_move"] > 0 for t in moved)
    assert all(t.scores["latent_move"] == 0 for t in still)


def test_without_lcgan_files_the_plain_vae_serves(model_with_lcgans: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copy(model_with_lcgans / "model.pt", plain / "model.pt")
    source = ModelCandidateSource.load(plain, make_settings(tmp_path, generator_device="cpu"))
    assert source.lcgan is None and "+lcgan" not in source.info.name
    texts = source.generate(request())
    assert texts and all(t.scores["critic"] == 0 and t.scores["latent_move"] == 0 for t in texts)


def test_a_corrupted_lcgan_file_is_a_clear_error(model_with_lcgans: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(model_with_lcgans / "model.pt", broken / "model.pt")
    (broken / "lcgan-genre.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"lcgan-genre\.pt is not a readable LC-GAN checkpoint"):
        ModelCandidateSource.load(broken, make_settings(tmp_path, generator_device="cpu"))


def test_an_lcgan_of_another_vae_is_not_used(
    model_with_lcgans: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from deephype.generator.lcgan import load_lcgan, save_lcgan

    stale = tmp_path / "stale"
    stale.mkdir()
    shutil.copy(model_with_lcgans / "model.pt", stale / "model.pt")
    genre = load_lcgan(model_with_lcgans / "lcgan-genre.pt")
    genre.vae = "0123456789abcdef"  # as if model.pt had been retrained since
    save_lcgan(stale / "lcgan-genre.pt", genre)
    source = ModelCandidateSource.load(stale, make_settings(tmp_path, generator_device="cpu"))
    assert source.lcgan is None and "+lcgan" not in source.info.name
    assert "trained on another VAE" in caplog.text


def test_fewer_survivors_than_asked_returns_what_survived(source: ModelCandidateSource) -> None:
    # With 300-character names nothing fits on X: an empty list, which the service dead-letters.
    huge = Song(artist="A" * 300, title="B" * 300, genres=["house"])
    texts = source.generate(request(huge, n=4))
    assert all("<artist>" not in t.text and "<title>" not in t.text for t in texts)
    assert all(len(t.text) <= 280 for t in texts)


@pytest.mark.parametrize(
    ("asked", "handlers", "cores", "threads"), [(0, 4, 2, 1), (0, 1, 8, 8), (0, 2, 8, 4), (0, 16, 2, 1), (3, 4, 2, 3)]
)
def test_cpu_threads_share_the_cores_among_handler_threads(asked: int, handlers: int, cores: int, threads: int) -> None:
    assert cpu_threads_per_decode(asked, handlers, cores) == threads


def test_loading_on_the_cpu_sets_the_torch_threads(model_with_lcgans: Path, tmp_path: Path) -> None:
    before = torch.get_num_threads()
    try:
        settings = make_settings(tmp_path, generator_device="cpu", generator_torch_threads=3)
        ModelCandidateSource.load(model_with_lcgans, settings)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_filters() -> None:
    assert rejection(["a", "<unk>", "song"], "a song", "x") == "unk"
    assert rejection(["so", "good", "so", "good"], "so good so good", "x") == "repeated bigram"
    assert rejection(["what", "a", "shit", "song"], "What a shit song", "x") == "profanity"
    # A rude band name is the band's, not the bot's words.
    assert rejection(["<artist>", "rule"], "Shit Robot rule", "x") is None
    assert rejection(["<title>", "rules"], "x" * 281, "x") == "too long"
    assert rejection([], "", "x") == "empty"
    assert rejection(["<artist>", "<artist>", "rule"], "Zed Zed rule", "x") == "repeated word"
    assert rejection(["<", "titl", "rules"], "<titl rules", "x") == "broken placeholder"
    assert rejection(["<artist>", "rule"], "<3 Machine rule", "x") is None  # the band's name, not the model
    assert fill_placeholders("<artist> play <title>.", "Zed", "Blue") == "Zed play Blue."
    assert jaccard(["a", "b"], ["a", "b"]) == 1.0 and jaccard(["a"], ["b"]) == 0.0

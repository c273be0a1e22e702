"""evaluate-samples: the text metrics on hand-made inputs, and the whole report on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deephype.cli import main
from deephype.generator.checkpoint import load_model
from deephype.generator.sample_eval import (
    GenreClassifier,
    available_lcgans,
    distinct_n,
    evaluate_samples,
    self_bleu,
    strip_placeholders,
)
from deephype.generator.values import read_sentences
from tests.test_lcgan import FIXTURE_CORPUS, tiny_lcgan, tiny_model_dir


def test_distinct_n_counts_unique_ngrams_over_all_samples() -> None:
    samples = [["a", "b", "a"], ["a", "b"]]
    assert distinct_n(samples, 1) == pytest.approx(2 / 5)
    assert distinct_n(samples, 2) == pytest.approx(2 / 3)  # (a b), (b a), (a b)
    assert distinct_n([], 2) == 0.0


def test_self_bleu_of_copies_is_one_and_of_strangers_near_zero() -> None:
    assert self_bleu([["a", "b", "c", "d"]] * 3) == pytest.approx(1.0)
    strangers = [["a", "b", "c", "d"], ["e", "f", "g", "h"], ["i", "j", "k", "l"]]
    # No match at any order: every precision is epsilon / count (0.1/4, 0.1/3, 0.1/2, 0.1/1).
    assert self_bleu(strangers) == pytest.approx(0.1 * 24**-0.25)


def test_self_bleu_matches_a_hand_computed_bleu4() -> None:
    # Each against the other: 1-gram 4/5, 2-gram 3/4, 3-gram 2/3, 4-gram 1/2, same length (no penalty).
    expected = (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25
    assert self_bleu([["a", "b", "c", "d", "e"], ["a", "b", "c", "d", "f"]]) == pytest.approx(expected)


def test_self_bleu_never_uses_a_sample_as_its_own_reference() -> None:
    # x y x y against x y z w: 1-grams x, y clipped to 1 each -> 2/4; 2-gram (x y) clipped to 1 -> 1/3;
    # no 3- or 4-gram match -> epsilon. Were a sample its own reference, the first would score 1.
    # x y z w against x y x y: 2/4, 1/3 and epsilon again.
    each = (2 / 4 * 1 / 3 * 0.1 / 2 * 0.1 / 1) ** 0.25
    assert self_bleu([["x", "y", "x", "y"], ["x", "y", "z", "w"]]) == pytest.approx(each)


def test_genre_classifier_learns_words_of_a_family() -> None:
    texts = [f"<artist> bring the heavy riff and the blast beat {i}" for i in range(6)]
    texts += [f"<title> is a soft lullaby for a quiet piano {i}" for i in range(6)]
    families = ["metal"] * 6 + ["classical & ambient"] * 6
    classifier = GenreClassifier(texts, families)
    assert classifier.predict(["a heavy riff", "a quiet piano lullaby"]) == ["metal", "classical & ambient"]
    assert classifier.accuracy(["heavy blast beat", "soft piano"], ["metal", "metal"]) == 0.5
    with pytest.raises(ValueError, match="at least 2 families"):
        GenreClassifier(texts[:6], families[:6])
    assert strip_placeholders("<artist> rule <title> .") == "rule ."


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = tiny_model_dir(tmp_path_factory)
    tiny_lcgan(model_dir, "realism")
    tiny_lcgan(model_dir, "genre")
    return model_dir


def test_report_compares_prior_and_each_lcgan_on_the_same_codes(model_dir: Path) -> None:
    loaded = load_model(model_dir, "cpu")
    lcgans = available_lcgans(model_dir, loaded)
    assert {lc.value for lc in lcgans} >= {"realism", "genre"}
    train = read_sentences(FIXTURE_CORPUS / "train.jsonl")
    held_out = read_sentences(FIXTURE_CORPUS / "valid.jsonl") + read_sentences(FIXTURE_CORPUS / "test.jsonl")
    report = evaluate_samples(loaded, lcgans, train, held_out, per_condition=12, seed=3)
    # Families with at least 5 held-out fixture sentences: indie, dance, folk & americana.
    assert set(report["conditions"]) == {"indie", "dance", "folk & americana"}
    assert set(report["modes"]) >= {"prior", "lcgan-realism", "lcgan-genre"}
    prior = report["modes"]["prior"]["overall"]
    genre = report["modes"]["lcgan-genre"]["overall"]
    assert prior["latent_move"] == 0 and genre["latent_move"] > 0
    for figures in (prior, genre):
        assert figures["unk_rate"] == 0  # the sampler never writes <unk>
        for key in ("repeated_bigram_rate", "distinct_1", "distinct_2", "self_bleu", "genre_accuracy", "sentiment"):
            assert 0 <= figures[key] <= 1
    assert "critic" in genre and "critic" not in prior
    assert 0 <= report["classifier"]["held_out_accuracy"] <= 1
    again = evaluate_samples(loaded, lcgans, train, held_out, per_condition=12, seed=3)
    assert again["modes"]["prior"]["overall"] == prior


def test_cli_writes_the_json_report(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    args = ["evaluate-samples", "--model", str(model_dir), "--corpus", str(FIXTURE_CORPUS), "--json"]
    assert main([*args, "--per-condition", "6", "--device", "cpu", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert main(["evaluate-samples", "--model", str(model_dir), "--corpus", str(tmp_path)]) == 2
    assert "not a built corpus folder" in capsys.readouterr().err

"""The LC-GAN on a tiny VAE trained here from the hand-written fixture corpus: training, metrics,
checkpoints, value functions, and the command line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import torch

from deephype.cli import main
from deephype.generator.checkpoint import LoadedModel, load_model
from deephype.generator.lcgan import (
    LCGAN,
    LCGANConfig,
    StaleLCGAN,
    find_lcgan,
    lcgan_path,
    load_lcgan,
    save_lcgan,
    vae_fingerprint,
)
from deephype.generator.lcgan_train import auc, encode_codes, train_lcgan
from deephype.generator.values import (
    MIN_DECISIONS,
    Approval,
    Decision,
    Genre,
    Realism,
    Sentence,
    Sentiment,
    Topic,
    load_decisions,
    make_value,
    percentile_ranks,
    read_sentences,
)

FIXTURE_CORPUS = Path(__file__).parent / "fixtures" / "model"
TINY_LCGAN = {"hidden_dim": 32, "layers": 2, "steps": 150, "critic_steps": 3, "batch_size": 64, "seed": 0}


def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny VAE on the fixture corpus, trained once per test session (a few seconds) and shared."""
    from deephype.generator.train import TrainConfig, train

    out = tmp_path_factory.getbasetemp() / "tiny-vae"
    if (out / "model.pt").is_file():
        return out
    config = TrainConfig(
        epochs=8,
        batch_size=8,
        lr=0.01,
        embed_dim=32,
        hidden_dim=48,
        latent_dim=8,
        cond_embed_dim=8,
        min_count=1,
        kl_anneal_steps=50,
        eval_k=2,
        device="cpu",
    )
    train(FIXTURE_CORPUS, out, config, progress=False)
    return out


def tiny_lcgan(model_dir: Path, value: str = "realism") -> Path:
    """lcgan-<value>.pt for the tiny VAE, trained once per session."""
    path = lcgan_path(model_dir, value)
    if not path.is_file():
        loaded = load_model(model_dir, "cpu")
        sentences = read_sentences(FIXTURE_CORPUS / "train.jsonl")
        train_lcgan(
            loaded,
            make_value(value, condition=loaded.condition, corpus=sentences),
            sentences,
            LCGANConfig(**TINY_LCGAN),
            out_dir=model_dir,
            progress=False,
            log=lambda _: None,
        )
    return path


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory)


@pytest.fixture(scope="session")
def loaded(model_dir: Path) -> LoadedModel:
    return load_model(model_dir, "cpu")


@pytest.fixture(scope="session")
def realism(model_dir: Path) -> LCGAN:
    return load_lcgan(tiny_lcgan(model_dir, "realism"), latent_dim=8)


@pytest.fixture(scope="session")
def genre(model_dir: Path) -> LCGAN:
    return load_lcgan(tiny_lcgan(model_dir, "genre"), latent_dim=8)


# --- training -------------------------------------------------------------------------------------


def test_realism_training_moves_the_losses_and_raises_the_critic_value(realism: LCGAN) -> None:
    history = realism.metrics["history"]
    first, last = history[0], history[-1]
    assert first["critic_loss"] != pytest.approx(last["critic_loss"], abs=1e-3)
    # The critic learned something: held-out real codes rank above prior samples.
    assert realism.metrics["critic_auc_real_vs_prior"] > 0.6
    for codes in ("prior", "held_out"):  # fresh prior samples, and codes of sentences it never saw
        stats = realism.metrics[codes]
        assert stats["value_after"] > stats["value_before"]
        # The judge never saw the actor's codes: its verdict is not one the actor was trained against.
        assert stats["judge_after"] > stats["judge_before"]
        # The distance penalty keeps the move well short of the code's own length.
        assert 0 < stats["mean_distance"] < stats["mean_norm_before"] / 2


def test_genre_actor_raises_the_value_for_the_requested_family(genre: LCGAN) -> None:
    assert len(genre.attribute_names) == 16 and "indie" in genre.attribute_names
    prior = genre.metrics["prior"]
    assert prior["value_after"] > prior["value_before"]
    assert prior["judge_after"] > prior["judge_before"]
    assert 0 < prior["mean_distance"] < prior["mean_norm_before"] / 2
    # Real codes with their own family rank above the same codes paired with a wrong family.
    assert genre.metrics["critic_auc_label"] > 0.5


def test_training_writes_metrics_and_a_loss_plot_next_to_the_model(model_dir: Path, realism: LCGAN) -> None:
    metrics = json.loads((model_dir / "lcgan-realism.metrics.json").read_text())
    assert metrics["config"]["latent_dim"] == 8
    assert {"critic_loss", "actor_loss", "distance"} <= set(metrics["history"][0])
    png = (model_dir / "lcgan-realism.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_training_is_deterministic_for_a_seed(loaded: LoadedModel) -> None:
    sentences = read_sentences(FIXTURE_CORPUS / "train.jsonl")
    config = {**TINY_LCGAN, "steps": 5}
    runs = [
        train_lcgan(loaded, Realism(), sentences, LCGANConfig(**config), progress=False, log=lambda _: None)
        for _ in range(2)
    ]
    z = torch.randn(4, 8)
    a = torch.zeros(4, 0)
    assert torch.equal(runs[0].actor(z, a), runs[1].actor(z, a))


# --- checkpoints ----------------------------------------------------------------------------------


def test_checkpoint_round_trip_gives_the_same_actor_and_critic(realism: LCGAN, tmp_path: Path) -> None:
    path = tmp_path / "lcgan-realism.pt"
    save_lcgan(path, realism)
    torch.load(path, weights_only=True)  # only plain types inside
    again = load_lcgan(path, latent_dim=8)
    z, a = torch.randn(5, 8), torch.zeros(5, 0)
    with torch.no_grad():
        assert torch.equal(realism.actor(z, a), again.actor(z, a))
        assert torch.equal(realism.critic(z, a), again.critic(z, a))
    assert again.value == "realism" and again.metrics["prior"] == realism.metrics["prior"]


def test_lcgan_knows_the_vae_it_was_trained_on(realism: LCGAN, loaded: LoadedModel, tmp_path: Path) -> None:
    assert realism.vae == vae_fingerprint(loaded.model)
    path = tmp_path / "lcgan-realism.pt"
    save_lcgan(path, realism)
    assert load_lcgan(path, vae=realism.vae).vae == realism.vae
    with pytest.raises(StaleLCGAN, match="trained on another VAE"):
        load_lcgan(path, vae="another")


def test_corrupted_checkpoint_is_a_clear_error(realism: LCGAN, tmp_path: Path) -> None:
    path = tmp_path / "lcgan-realism.pt"
    save_lcgan(path, realism)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a readable LC-GAN checkpoint"):
        load_lcgan(path)


def test_checkpoint_of_another_format_or_latent_size_is_refused(realism: LCGAN, tmp_path: Path) -> None:
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(ValueError, match="not a deephype LC-GAN"):
        load_lcgan(other)
    path = tmp_path / "lcgan-realism.pt"
    save_lcgan(path, realism)
    with pytest.raises(ValueError, match="8-dim latent space, but the VAE has 32"):
        load_lcgan(path, latent_dim=32)
    with pytest.raises(FileNotFoundError):
        load_lcgan(tmp_path / "missing.pt")


def test_preferred_lcgan_is_approval_then_genre_then_realism(tmp_path: Path) -> None:
    assert find_lcgan(tmp_path) is None
    for value in ("realism", "genre", "approval"):
        lcgan_path(tmp_path, value).write_bytes(b"x")
        assert find_lcgan(tmp_path) == lcgan_path(tmp_path, value)


# --- value functions ------------------------------------------------------------------------------


def test_genre_value_pairs_each_sentence_with_its_family_and_a_wrong_one(loaded: LoadedModel) -> None:
    value = Genre(loaded.condition, seed=1)
    labeled = value.label([Sentence("<title> is a fine song .", ["indie rock"]), Sentence("no genre here", [])])
    assert labeled.targets.tolist() == [1.0, 0.0]
    assert labeled.groups == [0, 0]
    indie = value.attribute_names.index("indie")
    assert labeled.attributes[0, indie] == 1 and labeled.attributes[0].sum() == 1
    assert labeled.attributes[1, indie] == 0 and labeled.attributes[1].sum() == 1
    assert value.attributes_for(["dream pop", "not a genre"]) == ["indie"]
    assert value.attributes_for(["not a genre"]) is None


def test_sentiment_value_ranks_happy_above_bleak() -> None:
    texts = ["A wonderful, joyful, beautiful song.", "A dull, awful mess.", "A song.", "Another song."]
    labeled = Sentiment().label([Sentence(t) for t in texts])
    assert labeled.targets.tolist() == [1.0, 0.0, 0.5, 0.5]  # neutral ones tie in the middle
    assert labeled.attributes.shape == (4, 0)
    happy, bleak = Sentiment().score_texts(texts[:2])
    assert happy > 0.75 and bleak < 0.25


def test_percentile_ranks() -> None:
    assert percentile_ranks([0.3, 0.1, 0.2]) == [1.0, 0.0, 0.5]
    assert percentile_ranks([0.7]) == [0.5]
    assert percentile_ranks([]) == []


def test_topic_value_finds_the_descriptive_topic() -> None:
    descriptive = [
        f"the {w} guitar tone and warm bass drums sound {w}"
        for w in ["bright", "dark", "thick", "thin", "loud", "soft"]
    ]
    other = [
        f"the band played a show in {c} last night with friends"
        for c in ["paris", "lyon", "leeds", "york", "oslo", "rome"]
    ]
    value = Topic([Sentence(t) for t in (descriptive + other) * 2], topics=2, seed=0)
    scores = value.score_texts(["warm guitar tone and heavy drums", "a show with friends in paris"])
    assert scores[0] > scores[1]
    assert {"guitar", "drums"} & set(value.top_words)


def decision_rows(approved: int, rejected: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [
        {"decision": "approved", "text": f"take {i}", "final_text": f"Zed Band sound great on Blue Hour {i}"}
        for i in range(approved)
    ]
    rows += [{"decision": "rejected", "text": f"Blue Hour is noise {i}", "final_text": None} for i in range(rejected)]
    return rows


def test_approval_refuses_with_too_few_decisions() -> None:
    decisions = [Decision("fine", True)] * 3 + [Decision("bad", False)] * 30
    with pytest.raises(ValueError, match=r"too few curator decisions.*3 approved and 30 rejected"):
        Approval(decisions)
    with pytest.raises(ValueError, match="too few"):
        Approval([Decision("fine", True)] * (MIN_DECISIONS - 1))


def test_approval_reads_the_curator_json_export(tmp_path: Path) -> None:
    path = tmp_path / "decisions.json"
    path.write_text(json.dumps(decision_rows(12, 10)))
    decisions = load_decisions(path)
    assert len(decisions) == 22
    # An approval is learned from what the curator approved (the final text).
    assert decisions[0].approved and decisions[0].text.startswith("Zed Band sound great")
    labeled = Approval(decisions).label()
    assert labeled.targets.sum().item() == 12


def test_approval_reads_the_curator_sqlite_and_restores_placeholders(tmp_path: Path) -> None:
    from deephype.curator.store import SCHEMA

    path = tmp_path / "curator.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.executescript(SCHEMA)
        connection.execute(
            "INSERT INTO songs (set_id, trace_id, artist, title, genres, message, model, status, created_at) "
            "VALUES ('s1', 't', 'Zed Band', 'Blue Hour', '[\"dream pop\"]', '{}', 'm', 'approved', 'now')"
        )
        for row in decision_rows(12, 10):
            connection.execute(
                "INSERT INTO decisions (set_id, decision, text, final_text, decided_by, decided_at) "
                "VALUES ('s1', ?, ?, ?, 'curator', 'now')",
                (row["decision"], row["text"], row["final_text"]),
            )
    decisions = load_decisions(path)
    assert decisions[0].text == "<artist> sound great on <title> 0"
    assert decisions[-1].text == "<title> is noise 9" and not decisions[-1].approved
    assert decisions[0].genres == ["dream pop"]


def test_decisions_file_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}')
    with pytest.raises(ValueError, match="JSON list"):
        load_decisions(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps([{"decision": "maybe", "text": "x"}]))
    with pytest.raises(ValueError, match="'maybe'"):
        load_decisions(wrong)
    other_db = tmp_path / "other.sqlite3"
    with sqlite3.connect(other_db) as connection:
        connection.execute("CREATE TABLE songs (set_id TEXT)")
    with pytest.raises(ValueError, match="no 'decisions' table"):
        load_decisions(other_db)
    garbage = tmp_path / "curator.sqlite3"
    garbage.write_bytes(b"\x00\xff not a database")
    with pytest.raises(ValueError, match="neither an SQLite database nor JSON"):
        load_decisions(garbage)
    with pytest.raises(FileNotFoundError):
        load_decisions(tmp_path / "missing.json")


def test_unknown_value_name_is_an_error(loaded: LoadedModel) -> None:
    with pytest.raises(ValueError, match="unknown value 'vibes'"):
        make_value("vibes", condition=loaded.condition)


def test_encode_codes_gives_one_code_per_text(loaded: LoadedModel) -> None:
    mu, logvar = encode_codes(loaded, ["<title> rules .", "a never seen zzyzx word"], [["house"], []])
    assert mu.shape == logvar.shape == (2, 8)


def test_auc_is_one_for_separated_scores_and_half_for_equal_ones() -> None:
    assert auc(torch.tensor([0.9, 0.8]), torch.tensor([0.1, 0.2])) == 1.0
    assert auc(torch.tensor([0.1]), torch.tensor([0.9])) == 0.0


# --- command line ---------------------------------------------------------------------------------


def test_cli_trains_an_lcgan_and_refuses_bad_input(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "model.pt").write_bytes((model_dir / "model.pt").read_bytes())
    corpus = FIXTURE_CORPUS
    code = main(
        [
            "train-lcgan",
            "--model",
            str(target),
            "--value",
            "sentiment",
            "--corpus",
            str(corpus),
            "--steps",
            "3",
            "--quiet",
        ]
    )
    assert code == 0
    assert load_lcgan(target / "lcgan-sentiment.pt", latent_dim=8).value == "sentiment"
    decisions = tmp_path / "few.json"
    decisions.write_text(json.dumps(decision_rows(2, 2)))
    code = main(["train-lcgan", "--model", str(target), "--value", "approval", "--decisions", str(decisions)])
    assert code == 2
    assert "too few curator decisions" in capsys.readouterr().err
    assert not (target / "lcgan-approval.pt").exists()
    decisions.write_text(json.dumps(decision_rows(12, 10)))
    args = ["train-lcgan", "--model", str(target), "--value", "approval", "--decisions", str(decisions)]
    assert main([*args, "--steps", "3", "--quiet"]) == 0
    approval = load_lcgan(target / "lcgan-approval.pt", latent_dim=8)
    assert approval.value == "approval" and find_lcgan(target) == target / "lcgan-approval.pt"
    assert main(["train-lcgan", "--model", str(tmp_path / "nowhere"), "--value", "realism"]) == 2

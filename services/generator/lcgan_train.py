"""Training an LC-GAN (lcgan.py) on the codes of a trained sentence VAE.

1. label real sentences with a value function (values.py) and encode them: mu, logvar of q(z | x, a)
2. hold out a share of the sentences (all rows of a sentence stay together)
3. per actor step, `critic_steps` critic steps:
       critic:  BCE(D(z_real, a), target) + BCE(D(z_prior, a), 0) + BCE(D(G(z_prior, a), a), 0)
                + gp * E ||grad D(z_mix, a)||^2   (zero-centred, on real/fake mixes)
       actor:   BCE(D(G(z, a), a), 1) + lambda * mean_units (G(z, a) - z)^2,   z ~ N(0, I)
4. metrics on held-out data: the value of prior codes before and after the actor, of held-out real codes
   before and after, the mean move ||z' - z||, and how well the critic tells held-out real codes from
   prior samples. The value is given twice: by the critic, and by a JUDGE, a second critic trained the
   same way but never shown the actor's outputs. The critic has learnt to spot the actor's codes, so it
   understates the gain; the judge has not, so "judge after > judge before" is the fairer test.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from deephype.generator.checkpoint import LoadedModel, write_json
from deephype.generator.lcgan import LCGAN, Actor, Critic, LCGANConfig, lcgan_path, save_lcgan, vae_fingerprint
from deephype.generator.values import Sentence, Value

EVAL_PRIOR_SAMPLES = 2000


@torch.inference_mode()
def encode_codes(
    loaded: LoadedModel, texts: Sequence[str], genres: Sequence[Sequence[str]], batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) [N, Z] of q(z | text, condition), each text under its own song's genres."""
    if not loaded.model.is_vae:
        raise ValueError("this model is a plain language model (no latent space): an LC-GAN needs a VAE")
    mus, logvars = [], []
    for start in range(0, len(texts), batch_size):
        mu, logvar = loaded.encode_rows(texts[start : start + batch_size], genres[start : start + batch_size])
        mus.append(mu.float())
        logvars.append(logvar.float())
    return torch.cat(mus), torch.cat(logvars)


def split_rows(groups: Sequence[int], holdout: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices (train, held-out); whole sentences go to one side."""
    unique = sorted(set(groups))
    if len(unique) < 4:
        raise ValueError(f"only {len(unique)} labelled sentences: an LC-GAN needs at least 4")
    random.Random(seed).shuffle(unique)
    held = set(unique[: max(1, round(holdout * len(unique)))])
    train = [i for i, g in enumerate(groups) if g not in held]
    test = [i for i, g in enumerate(groups) if g in held]
    return torch.tensor(train), torch.tensor(test)


def train_lcgan(
    loaded: LoadedModel,
    value: Value,
    sentences: Sequence[Sentence],
    config: LCGANConfig,
    out_dir: Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> LCGAN:
    """Train the actor and critic for `value`; with out_dir, write lcgan-<value>.pt, .json and .png there."""
    labeled = value.label(sentences)
    config = replace(config, latent_dim=loaded.config.latent_dim, attribute_dim=labeled.attributes.size(1))
    torch.manual_seed(config.seed)
    device = loaded.device
    # Clone: tensors made under inference_mode cannot take part in autograd.
    mu, logvar = (t.clone() for t in encode_codes(loaded, labeled.texts, labeled.genres))
    attributes = labeled.attributes.to(device)
    targets = labeled.targets.to(device)
    train_rows, test_rows = split_rows(labeled.groups, config.holdout, config.seed)
    train_rows, test_rows = train_rows.to(device), test_rows.to(device)
    # Attributes the actor is asked for: those of real sentences that have them (target 1).
    requests = attributes[train_rows][targets[train_rows] > 0.5]
    if requests.size(0) == 0:
        raise ValueError(f"no {value.name} sentence has a positive label: nothing for the actor to aim at")
    log(
        f"LC-GAN '{value.name}': {len(set(labeled.groups))} sentences, {len(train_rows)} train / "
        f"{len(test_rows)} held-out rows, attribute dim {config.attribute_dim}, latent dim {config.latent_dim}"
    )

    actor, critic = Actor(config).to(device), Critic(config).to(device)
    actor_opt = torch.optim.Adam(actor.parameters(), lr=config.lr, betas=(0.5, 0.9))
    critic_opt = torch.optim.Adam(critic.parameters(), lr=config.lr, betas=(0.5, 0.9))
    generator = torch.Generator(device=device).manual_seed(config.seed)

    def draw(rows: torch.Tensor, n: int) -> torch.Tensor:
        return rows[torch.randint(len(rows), (n,), generator=generator, device=device)]

    def real_codes(rows: torch.Tensor) -> torch.Tensor:
        if not config.real_samples:
            return mu[rows]
        noise = torch.randn(len(rows), config.latent_dim, generator=generator, device=device)
        return mu[rows] + noise * (0.5 * logvar[rows]).exp()

    def prior(n: int) -> torch.Tensor:
        return torch.randn(n, config.latent_dim, generator=generator, device=device)

    judge = Critic(config).to(device)
    judge_opt = torch.optim.Adam(judge.parameters(), lr=config.lr, betas=(0.5, 0.9))

    def critic_step(
        critic: Critic = critic, critic_opt: torch.optim.Optimizer = critic_opt, with_actor: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = config.batch_size
        rows = draw(train_rows, b)
        z_real, a_real = real_codes(rows), attributes[rows]
        a_fake = draw_requests(requests, b, generator)
        z_prior = prior(b)
        fake_z, fake_a = z_prior, a_fake
        if with_actor:
            with torch.no_grad():
                z_moved = actor(z_prior, a_fake)
            fake_z, fake_a = torch.cat([z_prior, z_moved]), torch.cat([a_fake, a_fake])
        logit_real, logit_fake = critic(z_real, a_real), critic(fake_z, fake_a)
        loss_real = F.binary_cross_entropy_with_logits(logit_real, targets[rows])
        loss_fake = F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake))
        penalty = gradient_penalty(critic, z_real, z_prior, a_real, generator)
        loss = loss_real + loss_fake + config.gradient_penalty * penalty
        critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        critic_opt.step()
        return loss.detach(), torch.sigmoid(logit_real).mean().detach(), torch.sigmoid(logit_fake).mean().detach()

    history: list[dict[str, float]] = []
    sums = {"critic_loss": 0.0, "actor_loss": 0.0, "distance": 0.0, "critic_real": 0.0, "critic_fake": 0.0}
    every = max(1, config.steps // 100)
    bar = tqdm(range(1, config.steps + 1), desc=f"lcgan {value.name}", disable=not progress, leave=False)
    actor.train()
    critic.train()
    judge.train()
    for _ in range(config.warmup):
        critic_step()
        critic_step(judge, judge_opt, with_actor=False)
    for step in bar:
        b = config.batch_size
        critic_step(judge, judge_opt, with_actor=False)
        for _ in range(config.critic_steps):
            critic_loss, critic_real, critic_fake = critic_step()

        z = prior(b)
        a = draw_requests(requests, b, generator)
        moved = actor(z, a)
        logit = critic(moved, a)
        distance = (moved - z).pow(2).mean(dim=1).mean()
        actor_loss = (
            F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit)) + config.distance_weight * distance
        )
        actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        actor_opt.step()

        sums["critic_loss"] += critic_loss.item()
        sums["actor_loss"] += actor_loss.item()
        sums["distance"] += (moved - z).norm(dim=1).mean().item()
        sums["critic_real"] += critic_real.item()
        sums["critic_fake"] += critic_fake.item()
        if step % every == 0 or step == config.steps:
            count = every if step % every == 0 else step % every
            record = {"step": float(step), **{k: v / count for k, v in sums.items()}}
            history.append(record)
            sums = dict.fromkeys(sums, 0.0)
            bar.set_postfix(critic=f"{record['critic_loss']:.3f}", actor=f"{record['actor_loss']:.3f}")

    lcgan = LCGAN(
        value.name, config, actor.eval(), critic.eval(), list(value.attribute_names), {}, vae_fingerprint(loaded.model)
    )
    lcgan.metrics = evaluate_lcgan(lcgan, judge.eval(), mu, attributes, targets, test_rows, requests, config.seed)
    lcgan.metrics["history"] = history
    lcgan.metrics["train_rows"] = len(train_rows)
    lcgan.metrics["held_out_rows"] = len(test_rows)
    extra = getattr(value, "top_words", None)
    if extra:
        lcgan.metrics["topic_words"] = extra
    summary = lcgan.metrics["prior"]
    log(
        f"held-out prior codes: critic value {summary['value_before']:.3f} -> {summary['value_after']:.3f}, "
        f"judge {summary['judge_before']:.3f} -> {summary['judge_after']:.3f}, "
        f"mean ||z'-z|| {summary['mean_distance']:.3f}"
    )
    if out_dir is not None:
        path = lcgan_path(out_dir, value.name)
        save_lcgan(path, lcgan)
        write_json(path.with_suffix(".metrics.json"), {"config": asdict(config), **lcgan.metrics})
        plot_history(history, path.with_suffix(".png"), value.name)
        log(f"saved {path}")
    return lcgan


def draw_requests(requests: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    index = torch.randint(requests.size(0), (n,), generator=generator, device=requests.device)
    return requests[index]


def gradient_penalty(
    critic: Critic, z_real: torch.Tensor, z_fake: torch.Tensor, a: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """E ||d D / d z||^2 at random mixes of real and fake codes (zero-centred: keeps the critic smooth)."""
    t = torch.rand(z_real.size(0), 1, generator=generator, device=z_real.device)
    mix = (t * z_real + (1 - t) * z_fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mix, a).sum(), mix, create_graph=True)
    return grad.pow(2).sum(dim=1).mean()


@torch.no_grad()
def evaluate_lcgan(
    lcgan: LCGAN,
    judge: Critic,
    mu: torch.Tensor,
    attributes: torch.Tensor,
    targets: torch.Tensor,
    test_rows: torch.Tensor,
    requests: torch.Tensor,
    seed: int,
) -> dict[str, Any]:
    """Critic value before/after the actor on fresh prior codes and on held-out real codes."""
    device = mu.device
    generator = torch.Generator(device=device).manual_seed(seed + 1)
    z = torch.randn(EVAL_PRIOR_SAMPLES, lcgan.config.latent_dim, generator=generator, device=device)
    a = draw_requests(requests, EVAL_PRIOR_SAMPLES, generator)
    metrics: dict[str, Any] = {"prior": move_stats(lcgan, judge, z, a)}
    positive = test_rows[targets[test_rows] > 0.5]
    if len(positive):
        metrics["held_out"] = move_stats(lcgan, judge, mu[positive], attributes[positive])
    # How well the critic ranks held-out real codes (with their labels) above prior samples: AUC-like share.
    real_value = lcgan.critic.value(mu[test_rows], attributes[test_rows])
    fake_value = lcgan.critic.value(z, a)
    metrics["judge_auc_real_vs_prior"] = auc(
        judge.value(mu[test_rows], attributes[test_rows])[targets[test_rows] > 0.5], judge.value(z, a)
    )
    metrics["critic_real_held_out"] = float(real_value.mean())
    metrics["critic_prior"] = float(fake_value.mean())
    metrics["critic_auc_real_vs_prior"] = auc(real_value[targets[test_rows] > 0.5], fake_value)
    if bool((targets[test_rows] < 0.5).any()) and bool((targets[test_rows] > 0.5).any()):
        metrics["critic_auc_label"] = auc(real_value[targets[test_rows] > 0.5], real_value[targets[test_rows] < 0.5])
    return metrics


@torch.no_grad()
def move_stats(lcgan: LCGAN, judge: Critic, z: torch.Tensor, a: torch.Tensor) -> dict[str, float]:
    moved = lcgan.actor(z, a)
    return {
        "value_before": float(lcgan.critic.value(z, a).mean()),
        "value_after": float(lcgan.critic.value(moved, a).mean()),
        "judge_before": float(judge.value(z, a).mean()),
        "judge_after": float(judge.value(moved, a).mean()),
        "mean_distance": float((moved - z).norm(dim=1).mean()),
        "mean_norm_before": float(z.norm(dim=1).mean()),
        "count": float(z.size(0)),
    }


def auc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """P(a random positive scores above a random negative), ties half (Mann-Whitney U)."""
    if len(positive) == 0 or len(negative) == 0:
        return math.nan
    scores = torch.cat([positive, negative])
    ranks = scores.argsort().argsort().float() + 1
    # Average ranks of ties are not worth the code here: continuous critic values rarely tie.
    u = ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2
    return float(u / (len(positive) * len(negative)))


def plot_history(history: list[dict[str, float]], path: Path, name: str) -> None:
    """Critic loss, actor loss and the mean move ||z' - z|| over training, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for axis, (title, keys) in zip(
        axes,
        [
            ("critic", ["critic_loss", "critic_real", "critic_fake"]),
            ("actor loss", ["actor_loss"]),
            ("mean ||z' - z||", ["distance"]),
        ],
        strict=True,
    ):
        for key in keys:
            axis.plot(steps, [h[key] for h in history], label=key)
        axis.set_title(f"{name}: {title}")
        axis.set_xlabel("actor step")
        if len(keys) > 1:
            axis.legend(fontsize=8)
    figure.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(tmp, dpi=80)
    plt.close(figure)
    tmp.replace(path)

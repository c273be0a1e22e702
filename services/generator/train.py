"""Training the sentence VAE (or, with `baseline="lm"`, the plain LSTM language model it is compared to).

    loss = -log p(x | z, a) + beta_t * KL(q(z | x, a) || N(0, I))

beta_t rises linearly from 0 to 1 over `kl_anneal_steps` (Bowman et al.), decoder inputs are replaced by
<unk> with probability `word_dropout`, and the model's BN-VAE layer (or `free_bits` nats per latent unit)
keeps the KL from collapsing to zero. Every epoch logs loss, reconstruction, KL, mutual information,
active units and the validation NLL; the checkpoint with the best validation NLL is kept, and the final
figures use importance-weighted NLL with `eval_k` samples.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from deephype.generator.checkpoint import CHECKPOINT_NAME, load_model, save_checkpoint, write_json
from deephype.generator.condition import ConditionEncoder
from deephype.generator.data import Example, encode_examples, iterate_batches, read_corpus
from deephype.generator.device import resolve_device
from deephype.generator.evaluate import evaluate
from deephype.generator.model import ModelConfig, SentenceVAE
from deephype.generator.vocab import Vocab


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    lr_decay: float = 0.5  # multiply the learning rate when validation NLL stops improving
    grad_clip: float = 5.0
    kl_anneal_steps: int = 2000
    word_dropout: float = 0.3
    free_bits: float = 0.0  # nats per latent unit; 0 = off (BN-VAE does the job)
    min_count: int = 2
    max_vocab: int = 20_000
    max_tokens: int = 40  # longer sentences are cut
    seed: int = 0
    device: str = "auto"
    valid_k: int = 1  # importance samples for the per-epoch validation NLL (1 = ELBO, cheap)
    eval_k: int = 50  # importance samples for the final figures
    max_minutes: float = 0.0  # stop training after this long (0 = no limit); used by benchmarks
    baseline: str = ""  # "lm" = plain LSTM language model, same decoder and budget
    threads: int = 0  # torch CPU threads; 0 = torch's default. 1 is bitwise reproducible and, on a busy
    # shared machine, often faster than 2
    # model size
    embed_dim: int = 256
    hidden_dim: int = 256
    latent_dim: int = 32
    cond_embed_dim: int = 32
    dropout: float = 0.3
    bn_gamma: float = 0.6

    def __post_init__(self) -> None:
        if self.baseline not in ("", "lm"):
            raise ValueError(f"unknown baseline {self.baseline!r}; the only baseline is 'lm'")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 2:
            raise ValueError(f"batch size must be >= 2 (batch norm on mu), got {self.batch_size}")

    def model_config(self, vocab_size: int, cond_dim: int) -> ModelConfig:
        return ModelConfig(
            vocab_size=vocab_size,
            cond_dim=cond_dim,
            embed_dim=self.embed_dim,
            hidden_dim=self.hidden_dim,
            latent_dim=0 if self.baseline == "lm" else self.latent_dim,
            cond_embed_dim=self.cond_embed_dim,
            dropout=self.dropout,
            bn_gamma=self.bn_gamma,
            max_len=self.max_tokens + 1,
        )


def train(corpus_dir: Path, out_dir: Path, config: TrainConfig, progress: bool = True) -> dict[str, Any]:
    """Train on a corpus folder (train/valid/test.jsonl) and write the model folder `out_dir`."""
    return train_on_examples(read_corpus(corpus_dir, config.max_tokens), out_dir, config, progress)


def train_on_examples(
    splits: dict[str, list[Example]],
    out_dir: Path,
    config: TrainConfig,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train on tokenized splits; returns the final metrics (also in out_dir/metrics.json)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    device = resolve_device(config.device)

    vocab = Vocab.build((e.tokens for e in splits["train"]), config.min_count, config.max_vocab)
    condition = ConditionEncoder.from_file()
    sets = {name: encode_examples(examples, vocab, condition) for name, examples in splits.items() if examples}
    model = SentenceVAE(config.model_config(len(vocab), condition.dim)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    kind = "lstm-lm" if config.baseline == "lm" else "vae"
    log(
        f"training {kind}: {len(sets['train'])} train / {len(sets['valid'])} valid sentences, "
        f"vocab {len(vocab)}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {device}"
    )

    started = time.monotonic()
    deadline = started + config.max_minutes * 60 if config.max_minutes > 0 else math.inf
    history: list[dict[str, Any]] = []
    best_nll = math.inf
    step = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0}
        seen = 0
        batches = iterate_batches(sets["train"], vocab, config.batch_size, shuffle=True, rng=rng)
        total = math.ceil(len(sets["train"]) / config.batch_size)
        bar = tqdm(batches, total=total, desc=f"epoch {epoch}", disable=not progress, leave=False)
        for batch in bar:
            batch = batch.to(device)
            out = model(batch.inputs, batch.targets, batch.lengths, batch.cond, config.word_dropout)
            beta = min(1.0, step / config.kl_anneal_steps) if config.kl_anneal_steps > 0 else 1.0
            kl_per_unit = out.kl.mean(dim=0)
            if config.free_bits > 0:
                kl_per_unit = kl_per_unit.clamp(min=config.free_bits)
            recon = out.recon.mean()
            kl = out.kl.sum(dim=1).mean()
            loss = recon + beta * kl_per_unit.sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            n = batch.inputs.size(0)
            seen += n
            sums["loss"] += (recon + kl).item() * n
            sums["recon"] += recon.item() * n
            sums["kl"] += kl.item() * n
            if step % 20 == 0:
                bar.set_postfix(loss=f"{sums['loss'] / seen:.1f}", kl=f"{sums['kl'] / seen:.2f}", beta=f"{beta:.2f}")
            if time.monotonic() > deadline:
                break
        valid = evaluate(model, sets["valid"], vocab, k=config.valid_k, seed=config.seed)
        record = {
            "epoch": epoch,
            "step": step,
            "minutes": (time.monotonic() - started) / 60,
            "beta": beta,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": sums["loss"] / max(seen, 1),
            "train_recon": sums["recon"] / max(seen, 1),
            "train_kl": sums["kl"] / max(seen, 1),
            "valid_nll": valid["nll"],
            "valid_ppl": valid["ppl"],
            "valid_kl": valid["kl"],
            "valid_mi": valid["mi"],
            "valid_active_units": valid["active_units"],
        }
        history.append(record)
        log(
            f"epoch {epoch}: loss {record['train_loss']:.2f} recon {record['train_recon']:.2f} "
            f"kl {record['train_kl']:.2f} | valid nll {valid['nll']:.2f} ppl {valid['ppl']:.1f} "
            f"kl {valid['kl']:.2f} mi {valid['mi']:.2f} au {valid['active_units']}/{model.config.latent_dim} "
            f"| {record['minutes']:.1f} min"
        )
        # Before the KL weight is fully on the ELBO is not yet the real objective: keep the latest model
        # then, and the best by validation NLL afterwards (halving the learning rate when it gets worse).
        annealed = beta >= 1.0 or not model.is_vae
        if not annealed or valid["nll"] < best_nll:
            if annealed:
                best_nll = valid["nll"]
            save_checkpoint(out_dir / CHECKPOINT_NAME, model, vocab, condition, asdict(config), {"valid": valid})
        else:
            for group in optimizer.param_groups:
                group["lr"] *= config.lr_decay
        write_json(out_dir / "history.json", history)
        plot_history(history, out_dir / "training_curves.png")
        if time.monotonic() > deadline:
            log(f"time budget of {config.max_minutes} min reached after epoch {epoch}")
            break

    loaded = load_model(out_dir, device=str(device))
    metrics: dict[str, Any] = {"model": kind, "epochs": len(history), "steps": step}
    metrics["train_minutes"] = history[-1]["minutes"]
    # The service only feeds audio features to a model that has seen some (else those weights are untrained).
    metrics["audio_feature_rows"] = sum(1 for example in splits["train"] if example.audio_features)
    for split in ("valid", "test"):
        if split in sets:
            metrics[split] = evaluate(loaded.model, sets[split], vocab, k=config.eval_k, seed=config.seed)
    save_checkpoint(out_dir / CHECKPOINT_NAME, loaded.model, vocab, condition, asdict(config), metrics)
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def plot_history(history: list[dict[str, Any]], path: Path) -> None:
    """Training curves (loss, recon, KL, MI, active units, valid NLL) as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    panels = [
        ("loss (nats/sentence)", ["train_loss"]),
        ("reconstruction", ["train_recon"]),
        ("KL", ["train_kl", "valid_kl"]),
        ("mutual information", ["valid_mi"]),
        ("active units", ["valid_active_units"]),
        ("valid NLL", ["valid_nll"]),
    ]
    figure, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    for axis, (title, keys) in zip(axes.flat, panels, strict=True):
        for key in keys:
            axis.plot(epochs, [h[key] for h in history], marker="o", label=key)
        axis.set_title(title)
        axis.set_xlabel("epoch")
        if len(keys) > 1:
            axis.legend()
    figure.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(tmp, dpi=80)
    plt.close(figure)
    tmp.replace(path)

"""Training the pretrained-decoder VAE (pretrained.py) on a built corpus.

    loss = -log p(x | z, a) + beta_t * sum_u max(lambda, KL_u)

beta_t rises linearly from 0 to 1 over `kl_anneal_steps`; the KL of each latent unit, averaged over the
batch, counts at least `free_bits` nats (Kingma et al. 2016; Li et al. 2020 use the same "KL thresholding"
for Optimus), so no unit can pay off its KL by carrying nothing. Each sentence's encoder feature (the
frozen LM's mean hidden state) is computed once up front. Every epoch logs loss, reconstruction, KL,
mutual information and active units on the validation split; the best validation ELBO after the KL weight
reached 1 is kept. On CUDA the decoder runs in bf16 autocast.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from deephype.generator.condition import ConditionEncoder
from deephype.generator.data import SPLITS, corpus_rows
from deephype.generator.device import resolve_device
from deephype.generator.evaluate import ACTIVE_UNIT_THRESHOLD, mutual_information
from deephype.generator.model import log_normal
from deephype.generator.pretrained import (
    PrefixForwardOutput,
    PrefixVAE,
    PrefixVAEConfig,
    load_pretrained_lm,
    prompt_text,
)


@dataclass
class PretrainedTrainConfig:
    epochs: int = 8
    batch_size: int = 16
    lr: float = 1e-3  # prefix, added embedding and encoder
    lora_lr: float = 3e-4
    grad_clip: float = 1.0
    kl_anneal_steps: int = 400
    free_bits: float = 0.25  # nats per latent unit
    max_tokens: int = 48
    seed: int = 0
    device: str = "auto"
    eval_k: int = 5  # importance samples for the final test NLL
    max_minutes: float = 0.0  # stop after this long (0 = no limit)
    max_steps: int = 0  # stop after this many steps (0 = no limit); unlike minutes, reproducible
    threads: int = 0
    latent_dim: int = 32
    prefix_len: int = 8
    lora_rank: int = 8

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 2:
            raise ValueError(f"batch size must be >= 2, got {self.batch_size}")


@dataclass
class Rows:
    """One split, ready for the model: decoder token ids, prompt ids, encoder features and conditions."""

    texts: list[str]
    sentences: list[list[int]]
    prompts: list[list[int]]
    features: torch.Tensor  # [N, H]
    cond: torch.Tensor  # [N, cond_dim]

    def __len__(self) -> int:
        return len(self.texts)


def prepare_rows(
    model: PrefixVAE,
    condition: ConditionEncoder,
    rows: Sequence[tuple[str, list[str]]],
    max_tokens: int,
    progress: bool = True,
    desc: str = "features",
) -> Rows:
    tokenizer = model.tokenizer
    texts = [text for text, _ in rows]
    sentences = [tokenizer(t, add_special_tokens=False).input_ids[:max_tokens] for t in texts]
    prompt_cache: dict[tuple[str, ...], list[int]] = {}
    cond_cache: dict[tuple[str, ...], torch.Tensor] = {}
    prompts, conds = [], []
    for _, genres in rows:
        key = tuple(dict.fromkeys(genres))
        if key not in prompt_cache:
            prompt_cache[key] = tokenizer(prompt_text(key), add_special_tokens=False).input_ids
            cond_cache[key] = condition.encode(key).vector
        prompts.append(prompt_cache[key])
        conds.append(cond_cache[key])
    features = []
    for start in tqdm(range(0, len(texts), 32), desc=desc, disable=not progress, leave=False):
        features.append(model.sentence_features(texts[start : start + 32]).cpu())
    return Rows(texts, sentences, prompts, torch.cat(features), torch.stack(conds))


def read_split(corpus_dir: Path, split: str) -> list[tuple[str, list[str]]]:
    path = Path(corpus_dir) / f"{split}.jsonl"
    if split == "test" and not path.is_file():
        return []
    return [(text, genres) for text, genres, _ in corpus_rows(path)]


def batches(data: Rows, batch_size: int, shuffle: bool, rng: random.Random) -> list[list[int]]:
    """Index lists of similar sentence length; order shuffled when training."""
    order = sorted(range(len(data)), key=lambda i: (len(data.sentences[i]) // 4, rng.random() if shuffle else i))
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle:
        rng.shuffle(chunks)
    return chunks


def run_batch(model: PrefixVAE, data: Rows, index: list[int], device: torch.device) -> PrefixForwardOutput:
    return model(
        data.features[index].to(device),
        data.cond[index].to(device),
        [data.prompts[i] for i in index],
        [data.sentences[i] for i in index],
    )


@torch.no_grad()
def evaluate_rows(model: PrefixVAE, data: Rows, device: torch.device, k: int = 1, seed: int = 0) -> dict[str, Any]:
    """NLL (importance-weighted with k samples; k = 1 is the ELBO), KL, MI and active units over a split,
    in nats per sentence; PPL per decoder token (<|im_end|> counted)."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    total_nll = total_kl = total_mi = 0.0
    tokens = 0
    mus = []
    for index in batches(data, 32, shuffle=False, rng=random.Random(seed)):
        features, cond = data.features[index].to(device), data.cond[index].to(device)
        prompts = [data.prompts[i] for i in index]
        sentences = [data.sentences[i] for i in index]
        mu, logvar = model.encode_features(features, cond)
        log_weights = []
        for _ in range(k):
            noise = torch.randn(mu.shape, generator=generator).to(device)
            z = mu + noise * (0.5 * logvar).exp() if k > 1 else mu
            recon = model.reconstruction(z, cond, prompts, sentences).float()
            if k > 1:
                zeros = torch.zeros_like(z)
                log_weights.append(-recon + log_normal(z, zeros, zeros) - log_normal(z, mu, logvar))
            else:
                log_weights.append(-recon)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
        nll = -(torch.logsumexp(torch.stack(log_weights), dim=0) - math.log(k)) if k > 1 else -log_weights[0] + kl
        total_nll += float(nll.sum())
        total_kl += float(kl.sum())
        total_mi += mutual_information(mu.float(), logvar.float()) * len(index)
        tokens += sum(len(s) + 1 for s in sentences)
        mus.append(mu.float().cpu())
    model.train(was_training)
    n = len(data)
    return {
        "nll": total_nll / n,
        "ppl": math.exp(total_nll / tokens),
        "kl": total_kl / n,
        "mi": total_mi / n,
        "active_units": int((torch.cat(mus).var(dim=0) > ACTIVE_UNIT_THRESHOLD).sum()),
        "latent_dim": model.config.latent_dim,
        "sentences": n,
        "tokens": tokens,
        "k": k,
    }


def out_of_budget(step: int, deadline: float, config: PretrainedTrainConfig) -> bool:
    return time.monotonic() > deadline or 0 < config.max_steps <= step


def train_pretrained(
    corpus_dir: Path,
    out_dir: Path,
    config: PretrainedTrainConfig,
    progress: bool = True,
    log: Callable[[str], None] = print,
    lm_and_tokenizer: tuple[Any, Any] | None = None,
) -> dict[str, Any]:
    """Train on a corpus folder and write the model folder `out_dir`; returns the final metrics.
    `lm_and_tokenizer` replaces the pretrained LM (tests pass a tiny random one)."""
    from deephype.generator.checkpoint import save_pretrained_checkpoint, write_json
    from deephype.generator.train import plot_history

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    device = resolve_device(config.device)
    lm, tokenizer = lm_and_tokenizer or load_pretrained_lm()
    condition = ConditionEncoder.from_file()
    model_config = PrefixVAEConfig(
        cond_dim=condition.dim,
        hidden_size=lm.config.hidden_size,
        vocab_size=lm.config.vocab_size,
        latent_dim=config.latent_dim,
        prefix_len=config.prefix_len,
        lora_rank=config.lora_rank,
        max_len=config.max_tokens,
    )
    model = PrefixVAE(model_config, lm, tokenizer).to(device)
    splits = {split: read_split(corpus_dir, split) for split in SPLITS}
    for split in ("train", "valid"):
        if not splits[split]:
            raise ValueError(f"{Path(corpus_dir) / (split + '.jsonl')} has no sentences")
    sets = {
        split: prepare_rows(model, condition, rows, config.max_tokens, progress, f"features ({split})")
        for split, rows in splits.items()
        if rows
    }
    lora = [p for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]
    heads = [p for n, p in model.named_parameters() if p.requires_grad and "lora_" not in n]
    optimizer = torch.optim.AdamW(
        [{"params": heads, "lr": config.lr}, {"params": lora, "lr": config.lora_lr}], weight_decay=0.0
    )
    trainable = sum(p.numel() for p in lora + heads)
    log(
        f"training pretrained-decoder VAE: {len(sets['train'])} train / {len(sets['valid'])} valid sentences, "
        f"{trainable / 1e6:.2f}M trainable parameters on a frozen {lm.config.num_hidden_layers}-layer LM, {device}"
    )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    started = time.monotonic()
    deadline = started + config.max_minutes * 60 if config.max_minutes > 0 else math.inf
    history: list[dict[str, Any]] = []
    best = math.inf
    best_state = model.trainable_state_dict()
    step = 0
    beta = 0.0
    for epoch in range(1, config.epochs + 1):
        model.train()
        sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0}
        seen = 0
        chunks = batches(sets["train"], config.batch_size, shuffle=True, rng=rng)
        bar = tqdm(chunks, desc=f"epoch {epoch}", disable=not progress, leave=False)
        for index in bar:
            with autocast:
                out = run_batch(model, sets["train"], index, device)
            beta = min(1.0, step / config.kl_anneal_steps) if config.kl_anneal_steps > 0 else 1.0
            kl_per_unit = out.kl.float().mean(dim=0)
            recon = out.recon.float().mean()
            kl = kl_per_unit.sum()
            loss = recon + beta * kl_per_unit.clamp(min=config.free_bits).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(lora + heads, config.grad_clip)
            optimizer.step()
            step += 1
            n = len(index)
            seen += n
            sums["loss"] += (recon + kl).item() * n
            sums["recon"] += recon.item() * n
            sums["kl"] += kl.item() * n
            bar.set_postfix(recon=f"{sums['recon'] / seen:.1f}", kl=f"{sums['kl'] / seen:.2f}", beta=f"{beta:.2f}")
            if out_of_budget(step, deadline, config):
                break
        with autocast:
            valid = evaluate_rows(model, sets["valid"], device, seed=config.seed)
        record = {
            "epoch": epoch,
            "step": step,
            "minutes": (time.monotonic() - started) / 60,
            "beta": beta,
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
            f"kl {record['train_kl']:.2f} | valid elbo {valid['nll']:.2f} kl {valid['kl']:.2f} "
            f"mi {valid['mi']:.2f} au {valid['active_units']}/{config.latent_dim} | {record['minutes']:.1f} min"
        )
        annealed = beta >= 1.0
        if not annealed or valid["nll"] < best:
            if annealed:
                best = valid["nll"]
            best_state = model.trainable_state_dict()
            save_pretrained_checkpoint(out_dir, model, condition, asdict(config), {"valid": valid})
        write_json(out_dir / "history.json", history)
        plot_history(history, out_dir / "training_curves.png")
        if out_of_budget(step, deadline, config):
            log(f"budget reached after epoch {epoch} (step {step})")
            break

    model.load_state_dict(best_state, strict=False)
    metrics: dict[str, Any] = {"model": "pretrained-vae", "epochs": len(history), "steps": step}
    metrics["train_minutes"] = history[-1]["minutes"]
    metrics["audio_feature_rows"] = 0  # the condition's audio part is masked: our corpus has none
    with autocast:
        metrics["valid"] = evaluate_rows(model, sets["valid"], device, seed=config.seed)
        if "test" in sets:
            metrics["test"] = evaluate_rows(model, sets["test"], device, k=config.eval_k, seed=config.seed)
    save_pretrained_checkpoint(out_dir, model, condition, asdict(config), metrics)
    write_json(out_dir / "metrics.json", metrics)
    return metrics

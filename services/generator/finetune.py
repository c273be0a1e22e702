"""Fine-tuning the LSTM VAE's decoder on what the curator approved and on the sentences the curator
improved by editing (human-written, so the best writing the bot has about its own songs).

Only the decoder side trains (decoder LSTM, initial state, output layer): the encoder and so the latent
space stay as they were. A few small steps from the shipped weights, so the model keeps its corpus's
voice; learn.py keeps the result only if approved held-out sentences become more likely under it.
The pretrained-decoder VAE's LoRA is not fine-tuned here (its decoder is frozen SmolLM2 + LoRA; see the
README): learn.py skips this step for it and says so in the version's report.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from deephype.generator.checkpoint import CHECKPOINT_NAME, LoadedModel, save_checkpoint
from deephype.generator.data import make_batch
from deephype.generator.vocab import tokenize

DECODER_PARTS = ("decoder.", "init_state.", "out_proj.", "out_bias")


@dataclass
class FinetuneConfig:
    steps: int = 60
    batch_size: int = 16
    lr: float = 3e-4
    seed: int = 0


def _batch(loaded: LoadedModel, texts: Sequence[str], genres: Sequence[Sequence[str]]) -> object:
    max_tokens = loaded.config.max_len - 1
    ids = [loaded.vocab.encode(tokenize(text))[:max_tokens] or [loaded.vocab.unk_id] for text in texts]
    cond = torch.stack([loaded.condition.encode(g).vector for g in genres])
    return make_batch(ids, cond, loaded.vocab).to(loaded.device)


@torch.inference_mode()
def decoder_nll(loaded: LoadedModel, texts: Sequence[str], genres: Sequence[Sequence[str]]) -> float:
    """Mean -log p(word | z = mean of q(z|x), earlier words) per token: how likely the decoder finds them."""
    if not texts:
        return float("nan")
    model = loaded.model.eval()
    batch = _batch(loaded, texts, genres)
    mu, _ = model.encode(batch.targets, batch.lengths, batch.cond)  # type: ignore[attr-defined]
    nll = model.reconstruction(batch.inputs, batch.targets, mu, batch.cond)  # type: ignore[attr-defined]
    return float(nll.sum() / batch.lengths.sum())  # type: ignore[attr-defined]


def finetune_decoder(
    loaded: LoadedModel, texts: Sequence[str], genres: Sequence[Sequence[str]], config: FinetuneConfig
) -> LoadedModel:
    """A copy of `loaded` whose decoder took `config.steps` small steps on these sentences."""
    if not texts:
        raise ValueError("no approved or edited sentence to fine-tune the decoder on")
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    model = copy.deepcopy(loaded.model)
    trainable = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith(DECODER_PARTS))
        if parameter.requires_grad:
            trainable.append(parameter)
    optimizer = torch.optim.Adam(trainable, lr=config.lr)
    model.train()
    rows = list(range(len(texts)))
    for _ in range(config.steps):
        chosen = [rng.choice(rows) for _ in range(min(config.batch_size, len(rows)))]
        batch = _batch(loaded, [texts[i] for i in chosen], [genres[i] for i in chosen])
        out = model(batch.inputs, batch.targets, batch.lengths, batch.cond)  # type: ignore[attr-defined]
        loss = out.recon.sum() / batch.lengths.sum()  # type: ignore[attr-defined]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    return replace(loaded, model=model.eval())


def save_finetuned(loaded: LoadedModel, folder: Path, note: dict[str, object]) -> None:
    save_checkpoint(
        folder / CHECKPOINT_NAME,
        loaded.model,
        loaded.vocab,
        loaded.condition,
        loaded.train_config,
        {**loaded.metrics, "finetuned_on_curator": note},
    )

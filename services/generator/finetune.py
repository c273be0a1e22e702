"""Fine-tuning the LSTM VAE's decoder on what the curator approved and on the sentences the curator
improved by editing (human-written, so the best writing the bot has about its own songs).

Only the decoder side trains (decoder LSTM, initial state, output layer): the encoder and so the latent
space stay as they were. A few small steps from the shipped weights, so the model keeps its corpus's
voice; learn.py keeps the result only if approved held-out sentences become more likely under it.
The pretrained-decoder VAE fine-tunes the same way: its decoder side is the LoRA adapters and the
prefix / added-embedding heads (SmolLM2's own weights stay frozen and in their pip package), and the
encoder stays as it was.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from deephype.generator.checkpoint import (
    CHECKPOINT_NAME,
    LoadedModel,
    LoadedPretrained,
    save_checkpoint,
    save_pretrained_checkpoint,
)
from deephype.generator.data import make_batch
from deephype.generator.train_pretrained import Rows, prepare_rows
from deephype.generator.vocab import tokenize

DECODER_PARTS = ("decoder.", "init_state.", "out_proj.", "out_bias")
# The pretrained VAE's decoder side: the adapters inside the frozen LM and the heads that feed it [z; c].
PRETRAINED_DECODER_PARTS = ("lm.", "to_prefix.", "to_added.")
Loaded = LoadedModel | LoadedPretrained


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


def _rows(loaded: LoadedPretrained, texts: Sequence[str], genres: Sequence[Sequence[str]]) -> Rows:
    rows = [(text, list(g)) for text, g in zip(texts, genres, strict=True)]
    return prepare_rows(loaded.model, loaded.condition, rows, loaded.config.max_len, progress=False)


def _pretrained_nll(model: torch.nn.Module, data: Rows, index: Sequence[int], device: torch.device) -> torch.Tensor:
    """Summed -log p(sentence, end token | z = mean of q(z|x), prompt) over these rows."""
    mu, _ = model.encode_features(data.features[list(index)].to(device), data.cond[list(index)].to(device))
    recon = model.reconstruction(
        mu.detach(),
        data.cond[list(index)].to(device),
        [data.prompts[i] for i in index],
        [data.sentences[i] for i in index],
    )
    return recon.sum()


@torch.inference_mode()
def decoder_nll(loaded: Loaded, texts: Sequence[str], genres: Sequence[Sequence[str]]) -> float:
    """Mean -log p(word | z = mean of q(z|x), earlier words) per token: how likely the decoder finds them."""
    if not texts:
        return float("nan")
    if isinstance(loaded, LoadedPretrained):
        data = _rows(loaded, texts, genres)
        tokens = sum(len(s) + 1 for s in data.sentences)
        return float(_pretrained_nll(loaded.model.eval(), data, range(len(texts)), loaded.device)) / tokens
    model = loaded.model.eval()
    batch = _batch(loaded, texts, genres)
    mu, _ = model.encode(batch.targets, batch.lengths, batch.cond)  # type: ignore[attr-defined]
    nll = model.reconstruction(batch.inputs, batch.targets, mu, batch.cond)  # type: ignore[attr-defined]
    return float(nll.sum() / batch.lengths.sum())  # type: ignore[attr-defined]


def finetune_decoder(
    loaded: Loaded, texts: Sequence[str], genres: Sequence[Sequence[str]], config: FinetuneConfig
) -> Loaded:
    """A copy of `loaded` whose decoder took `config.steps` small steps on these sentences."""
    if not texts:
        raise ValueError("no approved or edited sentence to fine-tune the decoder on")
    torch.manual_seed(config.seed)
    model = copy.deepcopy(loaded.model)
    if isinstance(loaded, LoadedPretrained):
        data = _rows(loaded, texts, genres)  # encoder features come from the frozen LM: computed once

        def pretrained_loss(chosen: list[int]) -> torch.Tensor:
            tokens = sum(len(data.sentences[i]) + 1 for i in chosen)
            return _pretrained_nll(model, data, chosen, loaded.device) / tokens

        _small_steps(model, PRETRAINED_DECODER_PARTS, len(texts), config, pretrained_loss)
    else:

        def lstm_loss(chosen: list[int]) -> torch.Tensor:
            batch = _batch(loaded, [texts[i] for i in chosen], [genres[i] for i in chosen])
            out = model(batch.inputs, batch.targets, batch.lengths, batch.cond)  # type: ignore[attr-defined]
            return out.recon.sum() / batch.lengths.sum()  # type: ignore[attr-defined]

        _small_steps(model, DECODER_PARTS, len(texts), config, lstm_loss)
    return replace(loaded, model=model.eval())  # type: ignore[arg-type]


def _small_steps(
    model: torch.nn.Module,
    parts: tuple[str, ...],
    count: int,
    config: FinetuneConfig,
    loss_of: Callable[[list[int]], torch.Tensor],
) -> None:
    """`config.steps` Adam steps on random batches of the `count` sentences, training only the parameters
    named by `parts` among those that were trainable; afterwards the same ones are trainable as before
    (the pretrained checkpoint saves exactly its trainable parameters)."""
    rng = random.Random(config.seed)
    was_trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    trainable = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name in was_trainable and name.startswith(parts))
        if parameter.requires_grad:
            trainable.append(parameter)
    optimizer = torch.optim.Adam(trainable, lr=config.lr)
    model.train()
    rows = list(range(count))
    for _ in range(config.steps):
        loss = loss_of([rng.choice(rows) for _ in range(min(config.batch_size, count))])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name in was_trainable)


def save_finetuned(loaded: Loaded, folder: Path, note: dict[str, object]) -> None:
    if isinstance(loaded, LoadedPretrained):
        metrics = {**loaded.metrics, "finetuned_on_curator": note}
        save_pretrained_checkpoint(folder, loaded.model, loaded.condition, loaded.train_config, metrics)
        return
    save_checkpoint(
        folder / CHECKPOINT_NAME,
        loaded.model,
        loaded.vocab,
        loaded.condition,
        loaded.train_config,
        {**loaded.metrics, "finetuned_on_curator": note},
    )

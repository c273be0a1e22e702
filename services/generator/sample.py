"""Batched sampling from the sentence VAE.

`decode(model, z, cond, vocab=...)` writes one sentence per row of z [N, latent_dim] / cond [N, cond_dim],
all N in ONE batch: every step is one LSTM step + one output matmul for the whole batch, into
preallocated tensors, with no per-sentence Python work until the final detokenization. It returns the
token ids, each sentence's log-likelihood under the model (sum of log p(w_t | w_<t, z, a), <eos>
included, before temperature/top-k/top-p) and the detokenized text.

A repetition guard blocks a token a third time in a row and any repeated n-gram (default 3-gram).

`sample(loaded, n, genres, ...)` draws z from the prior; `interpolate(loaded, a, b, steps)` decodes
greedily along the line between the posterior means of two sentences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from deephype.generator.checkpoint import LoadedModel, LoadedPretrained
from deephype.generator.model import SentenceVAE
from deephype.generator.vocab import Vocab, detokenize

# One temperature for every row, or one per row ([N, 1]): a batch may hold several songs' requests.
Temperature = float | torch.Tensor


@dataclass
class DecodeResult:
    token_ids: torch.Tensor  # [N, max_len], <eos> then <pad> after the sentence
    lengths: torch.Tensor  # [N] words before <eos> (max_len when the sentence was cut off)
    log_likelihood: torch.Tensor  # [N] nats
    texts: list[str]


@torch.inference_mode()
def decode(
    model: SentenceVAE,
    z: torch.Tensor,
    cond: torch.Tensor,
    *,
    vocab: Vocab,
    max_len: int | None = None,
    temperature: Temperature = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    greedy: bool = False,
    no_repeat_ngram: int = 3,
    min_len: int = 3,
    generator: torch.Generator | None = None,
    uniforms: torch.Tensor | None = None,
) -> DecodeResult:
    """Decode N sentences at once from latent codes z [N, Z] under conditions cond [N, D].

    `temperature` may be one per row ([N, 1]). `uniforms` [N, max_len], when given, are the sampler's
    random numbers (row i, step t), drawn by the caller: a row's sentence then depends on its own numbers
    only, not on which other rows share the batch (the generator batches several songs)."""
    check_sampling(temperature, top_k, top_p)
    if z.size(0) != cond.size(0):
        raise ValueError(f"z has {z.size(0)} rows but cond has {cond.size(0)}")
    model.eval()
    max_len = max_len or model.config.max_len
    check_uniforms(uniforms, z.size(0), max_len)
    n, device = z.size(0), z.device
    out = torch.full((n, max_len), vocab.pad_id, dtype=torch.long, device=device)
    log_likelihood = torch.zeros(n, device=device)
    lengths = torch.full((n,), max_len, dtype=torch.long, device=device)
    tokens = torch.full((n,), vocab.bos_id, dtype=torch.long, device=device)
    never = torch.tensor([vocab.pad_id, vocab.bos_id, vocab.unk_id], device=device)
    const, state = model.start(z, cond)
    # A sentence that has ended leaves the batch: the rest no longer pay for it. Each row keeps its own
    # uniforms and temperature, so what it writes does not depend on who else is still writing.
    alive = torch.arange(n, device=device)
    for t in range(max_len):
        logits, state = model.step(tokens, const, state)
        # Model log-probabilities; the bans below only ever hit tokens that are then not chosen, so
        # filling them in place keeps the chosen token's log p(w_t | ...) intact for the likelihood.
        log_probs = torch.log_softmax(logits, dim=-1)
        log_probs[:, never] = float("-inf")
        if t < min_len:
            log_probs[:, vocab.eos_id] = float("-inf")
        _block_repeats(log_probs, out[alive], t, no_repeat_ngram, vocab.pad_id)
        u = None if uniforms is None else uniforms[alive, t]
        row_temperature = temperature[alive] if isinstance(temperature, torch.Tensor) else temperature
        tokens = log_probs.argmax(dim=-1) if greedy else _sample(log_probs, row_temperature, top_k, top_p, generator, u)
        log_likelihood[alive] += log_probs.gather(1, tokens.unsqueeze(1)).squeeze(1)
        out[alive, t] = tokens
        ended = tokens == vocab.eos_id
        lengths[alive[ended]] = t
        if bool(ended.all()):
            break
        if bool(ended.any()):
            keep = (~ended).nonzero().squeeze(1)
            alive, tokens, const = alive[keep], tokens[keep], const[keep]
            state = (state[0][keep], state[1][keep])
    texts = [detokenize(vocab.decode(row)) for row in out.tolist()]
    return DecodeResult(out, lengths, log_likelihood, texts)


def check_sampling(temperature: Temperature, top_k: int, top_p: float) -> None:
    lowest = float(temperature.min()) if isinstance(temperature, torch.Tensor) else temperature
    if not lowest > 0:
        raise ValueError(f"temperature must be > 0, got {lowest}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")


def _block_repeats(scores: torch.Tensor, out: torch.Tensor, t: int, ngram: int, harmless: int) -> None:
    """Forbid a token a 3rd time in a row and any n-gram already written, in place, for the whole batch.

    Only O(N x t) index work: banned ids are scattered as -inf; rows with nothing to ban scatter into
    `harmless`, a token that is banned anyway (<pad>)."""
    if t >= 2:
        same = out[:, t - 1] == out[:, t - 2]
        scores.scatter_(1, torch.where(same, out[:, t - 1], harmless).unsqueeze(1), float("-inf"))
    k = ngram - 1  # length of the prefix we match
    starts = t - k  # earlier positions j whose k tokens could equal the last k
    if ngram < 2 or starts <= 0:
        return
    match = torch.ones(out.size(0), starts, dtype=torch.bool, device=out.device)
    for offset in range(k):
        match &= out[:, offset : offset + starts] == out[:, t - k + offset : t - k + offset + 1]
    followers = torch.where(match, out[:, k : k + starts], harmless)  # token after each earlier match
    scores.scatter_(1, followers, float("-inf"))


def check_uniforms(uniforms: torch.Tensor | None, rows: int, max_len: int) -> None:
    if uniforms is not None and (uniforms.dim() != 2 or uniforms.size(0) != rows or uniforms.size(1) < max_len):
        raise ValueError(f"uniforms must be [{rows}, >= {max_len}], got {list(uniforms.shape)}")


def _sample(
    log_probs: torch.Tensor,
    temperature: Temperature,
    top_k: int,
    top_p: float,
    generator: torch.Generator | None,
    uniforms: torch.Tensor | None = None,
) -> torch.Tensor:
    """One token per row. Inverse-CDF sampling: one uniform number per row, not one per vocabulary entry
    (`uniforms` [N] in [0, 1) when the caller drew them; else drawn here from `generator`)."""
    indices = None
    scores = log_probs
    if top_k > 0:
        scores, indices = log_probs.topk(min(top_k, log_probs.size(-1)), dim=-1)
    # Log-probabilities are <= 0, so exp() cannot overflow: no max subtraction needed. `weights` is a new
    # tensor (never log_probs itself, which the caller still needs), so the passes below work in place.
    unit = not isinstance(temperature, torch.Tensor) and temperature == 1.0
    weights = scores.exp() if unit else scores.div(temperature).exp_()
    if top_p < 1:
        # The nucleus: the smallest set of best tokens whose mass reaches top_p (the best always stays).
        weights.masked_fill_(weights < _nucleus_floor(weights, top_p), 0.0)
    cdf = weights.cumsum_(dim=-1)
    # 1 - U is in (0, 1]: u > 0 always lands on a token with positive weight.
    if uniforms is None:
        uniforms = torch.rand(cdf.size(0), device=cdf.device, generator=generator)
    u = (1 - uniforms.unsqueeze(1)) * cdf[:, -1:]
    choice = torch.searchsorted(cdf, u).clamp_(max=cdf.size(-1) - 1)
    return choice.squeeze(1) if indices is None else indices.gather(1, choice).squeeze(1)


def _nucleus_floor(weights: torch.Tensor, top_p: float) -> torch.Tensor:
    """[N, 1]: the smallest weight inside each row's top_p nucleus.

    Only sorted values are needed, not a permutation: on the CPU numpy sorts values ~10x faster than
    torch.sort with its indices, which was two thirds of all decode time. In ascending order, a token is
    in the nucleus when the mass of itself and all smaller ones exceeds (1 - top_p) of the total."""
    if weights.device.type == "cpu":
        ascending = torch.from_numpy(np.sort(weights.numpy(), axis=-1))
    else:
        ascending = weights.sort(dim=-1).values
    mass = ascending.cumsum(dim=-1)
    first_inside = torch.searchsorted(mass, (1 - top_p) * mass[:, -1:], right=True)
    return ascending.gather(1, first_inside.clamp_(max=ascending.size(-1) - 1))


def sample(
    loaded: LoadedModel | LoadedPretrained,
    n: int,
    genres: Sequence[str] = (),
    audio_features: Mapping[str, Any] | Any | None = None,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
    z: torch.Tensor | None = None,
) -> DecodeResult:
    """N sentences for one song condition, z drawn from the prior N(0, I) (or given)."""
    if n < 1:
        raise ValueError(f"number of samples must be >= 1, got {n}")
    generator = torch.Generator(device=loaded.device)
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()
    if z is None:
        z = torch.randn(n, loaded.config.latent_dim, generator=generator, device=loaded.device)
    cond = loaded.encode_condition(genres, audio_features).expand(n, -1)
    return loaded.decode(
        z,
        cond,
        [list(genres)] * n,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        generator=generator,
    )


def interpolate(
    loaded: LoadedModel | LoadedPretrained, start: str, end: str, steps: int, genres: Sequence[str] = ()
) -> tuple[torch.Tensor, DecodeResult]:
    """Greedy decodes along z = (1-t) mu(start) + t mu(end), t = 0 .. 1 in `steps` points."""
    if steps < 2:
        raise ValueError(f"interpolation needs at least 2 steps, got {steps}")
    if not loaded.model.is_vae:
        raise ValueError("this model is a plain language model (no latent space) and cannot interpolate")
    mu, _ = loaded.encode_texts([start, end], genres)
    t = torch.linspace(0, 1, steps, device=loaded.device).unsqueeze(1)
    z = (1 - t) * mu[0] + t * mu[1]
    cond = loaded.encode_condition(genres).expand(steps, -1)
    return t.squeeze(1), loaded.decode(z, cond, [list(genres)] * steps, greedy=True)

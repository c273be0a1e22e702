"""Batched sampling from the pretrained-decoder VAE, with a KV cache.

`decode_pretrained(model, z, cond, genres)` writes one sentence per row of z [N, latent_dim], all N in one
batch: one forward over the prefix and prompt fills the cache, then each step feeds only the N newest
tokens. Rows may carry different genres (different prompt lengths): prompts are left-padded, so several
songs decode in one batch. Sampling, the nucleus and the repetition guard are sample.py's, unchanged; the
result is the same `DecodeResult` (token ids are decoder tokens, texts are plain text).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from deephype.generator.pretrained import PrefixVAE, prompt_text
from deephype.generator.sample import (
    DecodeResult,
    Temperature,
    _block_repeats,
    _sample,
    check_sampling,
    check_uniforms,
)

# Decoder tokens are word pieces: blocking a repeated 4-gram of pieces is about a repeated word pair.
NO_REPEAT_PIECES = 4


def end_token_ids(tokenizer: Any, end_id: int) -> list[int]:
    return sorted({end_id, tokenizer.eos_token_id if tokenizer.eos_token_id is not None else end_id})


def banned_token_ids(tokenizer: Any, ends: list[int]) -> list[int]:
    """Special tokens a sentence never contains. SmolLM2's pad token IS its end token: banning every
    special id blindly would ban the end, and no sample would ever stop."""
    special = {tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.unk_token_id} - {None}
    return sorted(special - set(ends))


@torch.inference_mode()
def decode_pretrained(
    model: PrefixVAE,
    z: torch.Tensor,
    cond: torch.Tensor,
    genres: Sequence[Sequence[str]],
    *,
    max_len: int | None = None,
    temperature: Temperature = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    greedy: bool = False,
    no_repeat_ngram: int = NO_REPEAT_PIECES,
    min_len: int = 3,
    generator: torch.Generator | None = None,
    uniforms: torch.Tensor | None = None,
) -> DecodeResult:
    """Decode N sentences from codes z [N, Z] under conditions cond [N, D] and each row's genre names.
    `temperature` and `uniforms` as in sample.decode (per-row numbers keep a row independent of its batch)."""
    check_sampling(temperature, top_k, top_p)
    if not z.size(0) == cond.size(0) == len(genres):
        raise ValueError(f"z has {z.size(0)} rows, cond {cond.size(0)}, genres {len(genres)}")
    model.eval()
    tokenizer = model.tokenizer
    max_len = max_len or model.config.max_len
    check_uniforms(uniforms, z.size(0), max_len)
    device = z.device
    prompt_cache: dict[tuple[str, ...], list[int]] = {}
    prompts = []
    for row in genres:
        key = tuple(row)
        if key not in prompt_cache:
            prompt_cache[key] = tokenizer(prompt_text(key), add_special_tokens=False).input_ids
        prompts.append(prompt_cache[key])
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
        return _decode(
            model,
            z,
            cond,
            prompts,
            max_len,
            temperature,
            top_k,
            top_p,
            greedy,
            no_repeat_ngram,
            min_len,
            generator,
            uniforms,
        )


def _decode(
    model: PrefixVAE,
    z: torch.Tensor,
    cond: torch.Tensor,
    prompts: list[list[int]],
    max_len: int,
    temperature: Temperature,
    top_k: int,
    top_p: float,
    greedy: bool,
    no_repeat_ngram: int,
    min_len: int,
    generator: torch.Generator | None,
    uniforms: torch.Tensor | None,
) -> DecodeResult:
    tokenizer = model.tokenizer
    n, device = z.size(0), z.device
    embeds, mask, positions, _ = model.decoder_inputs(z, cond, prompts, [[] for _ in range(n)])
    added = model.to_added(torch.cat([z, model.condition(cond)], dim=-1)).unsqueeze(1)
    # Only the last column's logits: all of them would be [N, T, vocabulary] floats (GBs for a big batch).
    output = model.lm(
        inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1
    )
    cache, logits = output.past_key_values, output.logits[:, -1].float()
    next_position = positions[:, -1:] + 1

    ends = end_token_ids(tokenizer, model.end_id)
    end_ids = torch.tensor(ends, device=device)
    never = torch.tensor(banned_token_ids(tokenizer, ends), device=device, dtype=torch.long)
    pad = int(model.end_id)
    out = torch.full((n, max_len), pad, dtype=torch.long, device=device)
    log_likelihood = torch.zeros(n, device=device)
    lengths = torch.full((n,), max_len, dtype=torch.long, device=device)
    # A row that has ended leaves the batch and the KV cache: the rest no longer pay for it. Each row keeps
    # its own uniforms and temperature, so what it writes does not depend on who else is still writing.
    alive = torch.arange(n, device=device)
    for t in range(max_len):
        log_probs = torch.log_softmax(logits, dim=-1)
        if never.numel():
            log_probs[:, never] = float("-inf")
        if t < min_len:
            log_probs[:, end_ids] = float("-inf")
        _block_repeats(log_probs, out[alive], t, no_repeat_ngram, int(never[0]) if never.numel() else pad)
        u = None if uniforms is None else uniforms[alive, t]
        row_temperature = temperature[alive] if isinstance(temperature, torch.Tensor) else temperature
        next_tokens = (
            log_probs.argmax(dim=-1) if greedy else _sample(log_probs, row_temperature, top_k, top_p, generator, u)
        )
        log_likelihood[alive] += log_probs.gather(1, next_tokens.unsqueeze(1)).squeeze(1)
        out[alive, t] = next_tokens
        ended = torch.isin(next_tokens, end_ids)
        lengths[alive[ended]] = t
        if bool(ended.all()):
            break
        if bool(ended.any()):
            keep = (~ended).nonzero().squeeze(1)
            alive, next_tokens, added = alive[keep], next_tokens[keep], added[keep]
            mask, next_position = mask[keep], next_position[keep]
            cache.batch_select_indices(keep)
        mask = torch.cat([mask, torch.ones(alive.numel(), 1, dtype=mask.dtype, device=device)], dim=1)
        step_embeds = model.embed_tokens(next_tokens.unsqueeze(1)) + added
        output = model.lm(
            inputs_embeds=step_embeds,
            attention_mask=mask,
            position_ids=next_position,
            cache=cache,
            use_cache=True,
        )
        cache, logits = output.past_key_values, output.logits[:, -1].float()
        next_position = next_position + 1
    texts = [
        " ".join(tokenizer.decode(row[: int(length)], skip_special_tokens=True).split())
        for row, length in zip(out.tolist(), lengths.tolist(), strict=True)
    ]
    return DecodeResult(out, lengths, log_likelihood, texts)

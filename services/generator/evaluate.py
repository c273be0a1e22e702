"""Held-out evaluation: importance-weighted NLL, perplexity, KL, mutual information, active units.

    log p(x | a) ≈ logsumexp_k [log p(x | z_k, a) + log p(z_k) - log q(z_k | x, a)] - log k,  z_k ~ q

(Burda et al. 2016), nats per sentence; PPL = exp(total NLL / total tokens), <eos> counted as a token
(as in Bowman et al. 2016). MI(x; z) under q is estimated per batch as in He et al. 2019; a latent unit is
active when Cov_x(E_q[z_u]) > 0.01 (Burda et al.). For the plain LM (latent_dim = 0) the NLL is exact.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from deephype.generator.data import EncodedSet, iterate_batches
from deephype.generator.model import SentenceVAE, log_normal
from deephype.generator.vocab import Vocab

ACTIVE_UNIT_THRESHOLD = 0.01
# Rows of teacher-forced logits computed at once: rows * T * V floats must stay a few hundred MB.
_LOGIT_BUDGET = 60_000_000


@torch.inference_mode()
def evaluate(
    model: SentenceVAE,
    data: EncodedSet,
    vocab: Vocab,
    *,
    k: int = 50,
    batch_size: int = 64,
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics over a whole split (see the module docstring)."""
    if len(data) == 0:
        raise ValueError("cannot evaluate on an empty set of sentences")
    if k < 1:
        raise ValueError(f"k (importance samples) must be >= 1, got {k}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    total_nll = total_recon = total_kl = total_mi = 0.0
    sentences = tokens = 0
    mus: list[torch.Tensor] = []
    for batch in iterate_batches(data, vocab, batch_size, shuffle=False):
        batch = batch.to(device)
        n = batch.inputs.size(0)
        mu, logvar = model.encode(batch.targets, batch.lengths, batch.cond)
        if model.is_vae:
            nll, recon = _importance_weighted_nll(model, batch.inputs, batch.targets, batch.cond, mu, logvar, k)
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
            total_kl += float(kl.sum())
            total_mi += mutual_information(mu, logvar) * n
            mus.append(mu.float().cpu())
        else:
            nll = recon = model.reconstruction(batch.inputs, batch.targets, mu, batch.cond)
        total_nll += float(nll.sum())
        total_recon += float(recon.sum())
        sentences += n
        tokens += int(batch.lengths.sum())
    active = 0
    if mus:
        active = int((torch.cat(mus).var(dim=0) > ACTIVE_UNIT_THRESHOLD).sum())
    model.train(was_training)
    kl_mean = total_kl / sentences
    return {
        "nll": total_nll / sentences,
        "ppl": math.exp(total_nll / tokens),
        "elbo": (total_recon + total_kl) / sentences,
        "recon": total_recon / sentences,
        "kl": kl_mean,
        "mi": total_mi / sentences,
        "active_units": active,
        "latent_dim": model.config.latent_dim,
        "tokens": tokens,
        "sentences": sentences,
        "k": k if model.is_vae else 1,
    }


def _importance_weighted_nll(
    model: SentenceVAE,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    cond: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(IW NLL, mean single-sample reconstruction) per sentence, samples processed in chunks."""
    n, width = inputs.shape
    per_chunk = max(1, _LOGIT_BUDGET // (width * model.config.vocab_size * n))
    log_weights, recons = [], []
    for start in range(0, k, per_chunk):
        m = min(per_chunk, k - start)
        z = mu + torch.randn(m, *mu.shape, device=mu.device) * (0.5 * logvar).exp()  # [m, n, Z]
        recon = model.reconstruction(
            inputs.repeat(m, 1), targets.repeat(m, 1), z.reshape(m * n, -1), cond.repeat(m, 1)
        ).view(m, n)
        log_prior = log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
        log_posterior = log_normal(z, mu, logvar)
        log_weights.append(-recon + log_prior - log_posterior)
        recons.append(recon)
    log_w = torch.cat(log_weights)
    nll = -(torch.logsumexp(log_w, dim=0) - math.log(k))
    return nll, torch.cat(recons).mean(dim=0)


def mutual_information(mu: torch.Tensor, logvar: torch.Tensor) -> float:
    """I(x; z) = E_x E_q[log q(z|x)] - E_q(z)[log q(z)], q(z) approximated by the batch's mixture."""
    n, latent = mu.shape
    if n < 2:
        return 0.0
    neg_entropy = (-0.5 * latent * math.log(2 * math.pi) - 0.5 * (1 + logvar).sum(dim=-1)).mean()
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    # log q(z_i | x_j) for every pair: [n, n]
    log_density = log_normal(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))
    log_qz = torch.logsumexp(log_density, dim=1) - math.log(n)
    return float(neg_entropy - log_qz.mean())

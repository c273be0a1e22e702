"""A conditional sentence VAE (Bowman et al. 2016, "Generating Sentences from a Continuous Space").

    x ──embed──► BiLSTM ──► [h_fwd; h_bwd; c] ──► mu, logvar ──► z ~ q(z | x, a)
    a (song condition) ──► c = tanh(W a)
    decoder LSTM: input at step t = [embed(w_{t-1}); z; c], initial state = tanh(W [z; c])
    logits = embed^T h_t                      (output layer tied to the input embedding)

Posterior collapse is fought three ways: KL annealing and word dropout (in train.py) and BN-VAE
(Zhu et al. 2020): mu goes through batch norm with a fixed scale gamma, which keeps every latent unit's
mean varying across sentences and bounds the expected KL from below (>= latent_dim * gamma^2 / 2).
Free bits (Kingma et al. 2016) is available as an alternative (`free_bits` > 0, applied in train.py).

`latent_dim = 0` gives the plain LSTM language model used as the baseline: same decoder, no encoder.

Public API: `ModelConfig`, `SentenceVAE.encode(tokens, lengths, cond) -> (mu, logvar)`,
`SentenceVAE.forward(...)` for training, and the one-step decoder (`start` / `step`) used by sample.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModelConfig:
    vocab_size: int
    cond_dim: int
    embed_dim: int = 256
    hidden_dim: int = 256
    latent_dim: int = 32  # 0 = plain LSTM language model (the baseline)
    cond_embed_dim: int = 32
    dropout: float = 0.3
    bn_gamma: float = 0.6  # BN-VAE scale on mu; 0 disables it
    max_len: int = 48  # longest sentence the sampler writes, in tokens

    def __post_init__(self) -> None:
        for name in ("vocab_size", "cond_dim", "embed_dim", "hidden_dim", "cond_embed_dim", "max_len"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"model config: {name} must be positive, got {getattr(self, name)}")
        if self.latent_dim < 0:
            raise ValueError(f"model config: latent_dim must be >= 0, got {self.latent_dim}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"model config: dropout must be in [0, 1), got {self.dropout}")


@dataclass
class ForwardOutput:
    recon: torch.Tensor  # [B] -log p(x | z, a), summed over tokens
    kl: torch.Tensor  # [B, Z] KL(q(z|x,a) || N(0, I)) per latent unit
    mu: torch.Tensor  # [B, Z]
    logvar: torch.Tensor  # [B, Z]


class SentenceVAE(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        V, E, H, Z, C = (
            config.vocab_size,
            config.embed_dim,
            config.hidden_dim,
            config.latent_dim,
            config.cond_embed_dim,
        )
        self.embed = nn.Embedding(V, E, padding_idx=0)
        self.cond_proj = nn.Linear(config.cond_dim, C)
        if Z > 0:
            self.encoder = nn.LSTM(E, H, batch_first=True, bidirectional=True)
            self.to_mu = nn.Linear(2 * H + C, Z)
            self.to_logvar = nn.Linear(2 * H + C, Z)
            if config.bn_gamma > 0:
                self.mu_bn = nn.BatchNorm1d(Z, affine=False)
                self.mu_bn_shift = nn.Parameter(torch.zeros(Z))
        self.init_state = nn.Linear(Z + C, 2 * H)
        self.decoder = nn.LSTM(E + Z + C, H, batch_first=True)
        self.drop = nn.Dropout(config.dropout)
        # Tie the output layer to the embedding (through a projection when the sizes differ).
        self.out_proj = nn.Linear(H, E) if H != E else nn.Identity()
        self.out_bias = nn.Parameter(torch.zeros(V))
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)

    @property
    def is_vae(self) -> bool:
        return self.config.latent_dim > 0

    def condition(self, cond: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.cond_proj(cond))

    def encode(
        self, tokens: torch.Tensor, lengths: torch.Tensor, cond: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x, a) for a padded batch `tokens` [B, T] (words then <eos>), `lengths` [B], `cond` [B, D]."""
        if not self.is_vae:
            empty = tokens.new_zeros((tokens.size(0), 0), dtype=torch.float)
            return empty, empty
        packed = nn.utils.rnn.pack_padded_sequence(
            self.drop(self.embed(tokens)), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, (h_n, _) = self.encoder(packed)
        summary = torch.cat([h_n[0], h_n[1], self.condition(cond)], dim=-1)
        mu = self.to_mu(summary)
        if self.config.bn_gamma > 0:
            mu = self.config.bn_gamma * self.mu_bn(mu) + self.mu_bn_shift
        return mu, self.to_logvar(summary)

    def latent_context(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """[z; c], the part of the decoder input that is the same at every step."""
        return torch.cat([z, self.condition(cond)], dim=-1)

    def initial_state(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h0, c0 = torch.tanh(self.init_state(context)).chunk(2, dim=-1)
        return h0.contiguous(), c0.contiguous()

    def output_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(self.out_proj(hidden), self.embed.weight, self.out_bias)

    def decode_logits(self, inputs: torch.Tensor, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Teacher-forced decoder: logits [B, T, V] for `inputs` [B, T] (<bos> w1 .. wn)."""
        context = self.latent_context(z, cond)
        h0, c0 = self.initial_state(context)
        steps = context.unsqueeze(1).expand(-1, inputs.size(1), -1)
        x = torch.cat([self.drop(self.embed(inputs)), steps], dim=-1)
        out, _ = self.decoder(x, (h0.unsqueeze(0), c0.unsqueeze(0)))
        return self.output_logits(self.drop(out))

    def reconstruction(
        self, inputs: torch.Tensor, targets: torch.Tensor, z: torch.Tensor, cond: torch.Tensor
    ) -> torch.Tensor:
        """-log p(x | z, a) per sentence [B] (padding ignored)."""
        logits = self.decode_logits(inputs, z, cond)
        nll = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=0, reduction="none")
        return nll.sum(dim=1)

    def forward(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        lengths: torch.Tensor,
        cond: torch.Tensor,
        word_dropout: float = 0.0,
    ) -> ForwardOutput:
        mu, logvar = self.encode(targets, lengths, cond)
        z = reparameterize(mu, logvar) if self.training else mu
        if self.training and word_dropout > 0:
            # Replace context words by <unk> (id 3) so the decoder must lean on z (Bowman et al.).
            drop = (torch.rand_like(inputs, dtype=torch.float) < word_dropout) & (inputs > 3)
            inputs = inputs.masked_fill(drop, 3)
        recon = self.reconstruction(inputs, targets, z, cond)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)
        return ForwardOutput(recon, kl, mu, logvar)

    # --- one step at a time, for sampling (sample.py) ---

    def start(self, z: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Per-sentence constant gate input W_ih[z; c] + biases, and the initial (h, c)."""
        context = self.latent_context(z, cond)
        E = self.config.embed_dim
        w_ih = self.decoder.weight_ih_l0
        const = F.linear(context, w_ih[:, E:], self.decoder.bias_ih_l0 + self.decoder.bias_hh_l0)
        return const, self.initial_state(context)

    def step(
        self, tokens: torch.Tensor, const: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One decoder step for the whole batch: logits [B, V] and the new state."""
        h, c = state
        E = self.config.embed_dim
        gates = torch.addmm(const, self.embed(tokens), self.decoder.weight_ih_l0[:, :E].t())
        gates.addmm_(h, self.decoder.weight_hh_l0.t())
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return self.output_logits(h), (h, c)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension."""
    return -0.5 * (((z - mu) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(dim=-1)

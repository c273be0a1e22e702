"""How the generator ranks its samples before a curator sees them.

    score = fluency + GENRE_WEIGHT * genre_fit + critic

    fluency    log-likelihood per token of the text under a language model that is NOT the decoder: the
               pretrained-decoder VAE is scored by our LSTM VAE (its decoder at z = the text's posterior
               mean), the LSTM VAE by SmolLM2. A decoder likes its own samples; another model does not.
    genre_fit  log P(requested family | text) from a naive Bayes classifier over our corpus's training
               sentences with genre and family names masked (so naming the genre earns nothing); 0 when
               the song has no known family.
    critic     the LC-GAN critic's value of the code (0 without an LC-GAN).

A sample that shares COPY_WORDS (8) or more words in a row with a corpus sentence is dropped: strong
decoders memorise, and a copied sentence is not new writing. The quality instruments in quality.py (the
trigram judge, MAUVE, the logistic-regression genre judge) are deliberately not used here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from deephype.generator.quality import COPY_WORDS, NgramIndex, genre_pattern, mask_genres, readable
from deephype.generator.vocab import tokenize

if TYPE_CHECKING:
    from deephype.generator.checkpoint import LoadedModel

GENRE_WEIGHT = 0.5
# Texts per fluency pass: a pretrained scorer's logits are [chunk, tokens, 49k vocabulary] floats.
FLUENCY_CHUNK = 32
OWN_CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus" / "own"

FluencyScorer = Callable[[Sequence[str], Sequence[Sequence[str]]], list[float]]


def corpus_sentences(corpus_dir: Path = OWN_CORPUS) -> list[tuple[str, str, str]]:
    """(text, family, split) of every sentence of our own corpus (split by song, as `corpus build` does)."""
    from deephype.corpus.split import split_for_song

    rows = []
    for path in sorted(Path(corpus_dir).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                family = (row.get("families") or [path.stem])[0]
                split = split_for_song(row.get("artist"), row.get("title"), str(path.name))
                rows.append((row["text"], family, split))
    return rows


class GenreFit:
    """log P(family | text), multinomial naive Bayes on masked word counts of training sentences."""

    def __init__(self, texts: Sequence[str], families: Sequence[str]) -> None:
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.naive_bayes import MultinomialNB
        from sklearn.pipeline import make_pipeline

        self.pattern = genre_pattern()
        self.model = make_pipeline(CountVectorizer(ngram_range=(1, 2), min_df=2), MultinomialNB(alpha=0.5))
        self.model.fit([mask_genres(t, self.pattern) for t in texts], list(families))
        self.families = [str(c) for c in self.model.classes_]

    def log_prob(self, texts: Sequence[str], family: str | None) -> list[float]:
        if family not in self.families:
            return [0.0] * len(texts)
        column = self.families.index(family)
        return self.model.predict_log_proba([mask_genres(t, self.pattern) for t in texts])[:, column].tolist()


class Ranker:
    def __init__(self, fluency: FluencyScorer | None, corpus: list[tuple[str, str, str]] | None = None) -> None:
        corpus = corpus if corpus is not None else corpus_sentences()
        train = [(t, f) for t, f, split in corpus if split == "train"]
        self.fluency = fluency
        self.genre = GenreFit([t for t, _ in train], [f for _, f in train])
        self.copies = NgramIndex((t for t, _, _ in corpus), COPY_WORDS)

    def scores(self, texts: Sequence[str], genres: Sequence[str], family: str | None) -> dict[str, list[float]]:
        """Per text: fluency, genre_fit and whether it copies the corpus (1.0) or not (0.0)."""
        return self.scores_rows(texts, [genres] * len(texts), [family] * len(texts))

    def scores_rows(
        self, texts: Sequence[str], genres: Sequence[Sequence[str]], families: Sequence[str | None]
    ) -> dict[str, list[float]]:
        """`scores` for texts of several songs at once (each row its own genres and family): the fluency
        LM runs over FLUENCY_CHUNK texts per pass, whichever songs they belong to."""
        fluency: list[float] = []
        if self.fluency is None:
            fluency = [0.0] * len(texts)
        else:
            for start in range(0, len(texts), FLUENCY_CHUNK):
                end = start + FLUENCY_CHUNK
                fluency += self.fluency(texts[start:end], genres[start:end])
        genre_fit = [0.0] * len(texts)
        for family in set(families):
            rows = [i for i, f in enumerate(families) if f == family]
            for row, value in zip(rows, self.genre.log_prob([texts[i] for i in rows], family), strict=True):
                genre_fit[row] = value
        return {"fluency": fluency, "genre_fit": genre_fit, "copy": [float(self.copies.copies(t)) for t in texts]}


def lstm_fluency(loaded: LoadedModel) -> FluencyScorer:
    """Our LSTM VAE as a scorer: log p(text | z = posterior mean) per token (<eos> counted)."""
    from deephype.generator.data import make_batch

    def score(texts: Sequence[str], genres: Sequence[Sequence[str]]) -> list[float]:
        vocab, model = loaded.vocab, loaded.model
        max_tokens = loaded.config.max_len - 1
        ids = [vocab.encode(tokenize(t))[:max_tokens] or [vocab.unk_id] for t in texts]
        cond = torch.stack([loaded.condition.encode(g).vector for g in genres])
        batch = make_batch(ids, cond, vocab).to(loaded.device)
        with torch.inference_mode():
            mu, _ = model.encode(batch.targets, batch.lengths, batch.cond)
            nll = model.reconstruction(batch.inputs, batch.targets, mu, batch.cond)
        return (-nll / batch.lengths.float()).tolist()

    return score


def causal_lm_fluency(lm: torch.nn.Module, tokenizer: Any) -> FluencyScorer:
    """A pretrained causal LM (SmolLM2) as a scorer: log p(text) per token after an assistant-turn start."""
    start = tokenizer("<|im_start|>assistant\n", add_special_tokens=False).input_ids

    def score(texts: Sequence[str], genres: Sequence[Sequence[str]]) -> list[float]:
        rows = [start + tokenizer(readable(t), add_special_tokens=False).input_ids for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        device = next(lm.parameters()).device
        ids, mask = ids.to(device), mask.to(device)
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = lm(input_ids=ids, attention_mask=mask).logits.float()
        # log p(next token) = its logit - logsumexp over the vocabulary: no [rows, tokens, 49k] log_softmax copy.
        predicting = logits[:, :-1]
        chosen = predicting.gather(2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        log_probs = chosen - torch.logsumexp(predicting, dim=-1)
        keep = mask[:, 1:].clone()
        keep[:, : len(start) - 1] = 0  # the scaffold is not the text
        return ((log_probs * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1)).cpu().tolist()

    return score


def combined(fluency: float, genre_fit: float, critic: float) -> float:
    value = fluency + GENRE_WEIGHT * genre_fit + critic
    return value if math.isfinite(value) else -math.inf

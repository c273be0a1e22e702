"""Value functions for the LC-GAN: what the critic learns to reward.

Each value labels real sentences: it returns, for every sentence it can judge, the attribute vector `a`
the critic sees next to the sentence's code and a target in [0, 1]. The critic learns
D(z_real, a) -> target and D(z_fake, a) -> 0 (lcgan_train.py), so a high value always means "looks like
a real code" AND "has the attribute".

    realism    every real sentence 1 (a is empty)
    genre      a = the sentence's family multi-hot -> 1, a = a family it is not -> 0
    topic      the weight of the "descriptive writing" topic of an LDA fitted on the corpus
    sentiment  percentile rank of the VADER compound score among the corpus sentences
    approval   the curator's decisions: approved 1, rejected 0 (needs enough of both)

Values that can also judge a decoded text (`score_texts`) let evaluate-samples check the actor on text,
not only on the critic that trained it.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from deephype.generator.condition import ConditionEncoder
from deephype.generator.data import corpus_rows

MIN_DECISIONS = 20
MIN_PER_DECISION = 5
# Words of "descriptive writing" about sound; the LDA topic that puts most weight on them is the target.
DESCRIPTIVE_WORDS = [
    "sound",
    "guitar",
    "guitars",
    "drums",
    "drum",
    "bass",
    "vocals",
    "voice",
    "synth",
    "synths",
    "piano",
    "strings",
    "production",
    "tone",
    "texture",
    "riff",
    "riffs",
    "melody",
    "chorus",
    "rhythm",
    "beat",
    "beats",
    "mix",
    "warm",
    "bright",
    "hum",
    "reverb",
    "tempo",
    "groove",
    "horns",
    "percussion",
]


@dataclass
class Sentence:
    """A corpus sentence with the genres of its song (fine genres and families, as written)."""

    text: str
    genres: list[str] = field(default_factory=list)


@dataclass
class Labeled:
    """Rows for the critic: a code for `texts[i]` (encoded under `genres[i]`), paired with `attributes[i]`."""

    texts: list[str]
    genres: list[list[str]]
    attributes: torch.Tensor  # [N, A]
    targets: torch.Tensor  # [N] in [0, 1]
    groups: list[int]  # sentence index of each row: held-out splits keep a sentence's rows together

    def __post_init__(self) -> None:
        n = len(self.texts)
        if not (len(self.genres) == self.attributes.size(0) == self.targets.size(0) == len(self.groups) == n):
            raise ValueError("labelled rows disagree in length")


class Value:
    """Base class: a name, the attribute names of `a`, and the labelling of real sentences."""

    name: str = ""
    attribute_names: list[str] = []  # noqa: RUF012 - overridden per instance where not empty

    def label(self, sentences: Sequence[Sentence]) -> Labeled:
        raise NotImplementedError

    def attributes_for(self, genres: Sequence[str]) -> list[str] | None:
        """Attribute names to steer towards for a song; None when this value cannot steer it."""
        return []

    def score_texts(self, texts: Sequence[str]) -> list[float] | None:
        """The value of decoded texts, judged on the text itself; None when the value cannot."""
        return None

    def _scalar(self, sentences: Sequence[Sentence], targets: list[float]) -> Labeled:
        return Labeled(
            texts=[s.text for s in sentences],
            genres=[list(s.genres) for s in sentences],
            attributes=torch.zeros(len(sentences), 0),
            targets=torch.tensor(targets, dtype=torch.float),
            groups=list(range(len(sentences))),
        )


class Realism(Value):
    name = "realism"

    def label(self, sentences: Sequence[Sentence]) -> Labeled:
        return self._scalar(sentences, [1.0] * len(sentences))


class Genre(Value):
    """Genre families from the VAE's condition vocabulary (data/genres.json)."""

    name = "genre"

    def __init__(self, condition: ConditionEncoder, seed: int = 0) -> None:
        self.condition = condition
        self.attribute_names = list(condition.families)
        self.seed = seed

    def families(self, genres: Sequence[str]) -> list[str]:
        found = {self.condition.resolve(g)[1] for g in genres}
        return [f for f in self.attribute_names if f in found]

    def attributes_for(self, genres: Sequence[str]) -> list[str] | None:
        return self.families(genres) or None

    def label(self, sentences: Sequence[Sentence]) -> Labeled:
        rng = random.Random(self.seed)
        texts, genres, attributes, targets, groups = [], [], [], [], []
        for index, sentence in enumerate(sentences):
            true = self.families(sentence.genres)
            if not true:
                continue
            others = [f for f in self.attribute_names if f not in true]
            # One row with the sentence's own families (1) and one with a family it is not (0).
            for names, target in ((true, 1.0), ([rng.choice(others)], 0.0)):
                texts.append(sentence.text)
                genres.append(list(sentence.genres))
                attributes.append([1.0 if f in names else 0.0 for f in self.attribute_names])
                targets.append(target)
                groups.append(index)
        if not texts:
            raise ValueError("no sentence has a genre family from data/genres.json: cannot train the genre value")
        return Labeled(texts, genres, torch.tensor(attributes), torch.tensor(targets), groups)


class Sentiment(Value):
    name = "sentiment"

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.analyzer = SentimentIntensityAnalyzer()

    def score_texts(self, texts: Sequence[str]) -> list[float]:
        return [(self.analyzer.polarity_scores(t)["compound"] + 1) / 2 for t in texts]

    def label(self, sentences: Sequence[Sentence]) -> Labeled:
        # Percentile ranks, not raw scores: music writing is mostly positive, and raw targets crowded
        # near 0.8 left the critic little to tell apart (on the dev model the actor then moved nothing).
        return self._scalar(sentences, percentile_ranks(self.score_texts([s.text for s in sentences])))


class Fluency(Value):
    """How fluent the text a code decodes to is: the percentile rank of its log-likelihood per token under a
    language model that is NOT the VAE's decoder (ranking.py picks it). The critic learns it on corpus
    sentences AND on the model's own prior samples (their posterior codes), so it sees codes that decode
    badly too, and the actor moves prior codes towards the fluent ones."""

    name = "fluency"

    def __init__(self, scorer: Callable[[Sequence[str], Sequence[Sequence[str]]], list[float]]) -> None:
        self.scorer = scorer

    def score_texts(self, texts: Sequence[str]) -> list[float]:
        scores: list[float] = []
        for start in range(0, len(texts), 64):
            chunk = texts[start : start + 64]
            scores += self.scorer(chunk, [[] for _ in chunk])
        return scores

    def label(self, sentences: Sequence[Sentence]) -> Labeled:
        return self._scalar(sentences, percentile_ranks(self.score_texts([s.text for s in sentences])))


def percentile_ranks(scores: Sequence[float]) -> list[float]:
    """Each score's rank in [0, 1] (ties share their mean rank)."""
    if len(scores) < 2:
        return [0.5] * len(scores)
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 / (len(scores) - 1)
        start = end + 1
    return ranks


class Topic(Value):
    """LDA (scikit-learn) fitted on the corpus; the value is the weight of the descriptive-writing topic."""

    name = "topic"

    def __init__(self, corpus: Sequence[Sentence], topics: int = 8, seed: int = 0) -> None:
        from sklearn.decomposition import LatentDirichletAllocation
        from sklearn.feature_extraction.text import CountVectorizer

        if len(corpus) < 2 * topics:
            raise ValueError(f"the topic value needs at least {2 * topics} corpus sentences, got {len(corpus)}")
        # Placeholders and one-letter tokens are no topic words.
        self.vectorizer = CountVectorizer(stop_words="english", min_df=2, token_pattern=r"(?<![<\w])[a-z][a-z'-]+\b")
        counts = self.vectorizer.fit_transform([s.text.lower() for s in corpus])
        self.lda = LatentDirichletAllocation(n_components=topics, random_state=seed, learning_method="batch")
        self.lda.fit(counts)
        words = self.vectorizer.get_feature_names_out()
        weights = self.lda.components_ / self.lda.components_.sum(axis=1, keepdims=True)
        seeds = [i for i, w in enumerate(words) if w in DESCRIPTIVE_WORDS]
        if not seeds:
            raise ValueError("the corpus has none of the descriptive words the topic value looks for")
        self.topic = int(weights[:, seeds].sum(axis=1).argmax())
        self.top_words = [str(words[i]) for i in weights[self.topic].argsort()[::-1][:15]]

    def score_texts(self, texts: Sequence[str]) -> list[float]:
        mix = self.lda.transform(self.vectorizer.transform([t.lower() for t in texts]))
        return [float(row[self.topic]) for row in mix]

    def label(self, sentences: Sequence[Sentence]) -> Labeled:
        return self._scalar(sentences, self.score_texts([s.text for s in sentences]))


@dataclass
class Decision:
    text: str
    approved: bool
    genres: list[str] = field(default_factory=list)


class Approval(Value):
    """The curator's decisions. The corpus is not used: the decisions are the labelled sentences."""

    name = "approval"

    def __init__(self, decisions: Sequence[Decision]) -> None:
        approved = sum(d.approved for d in decisions)
        rejected = len(decisions) - approved
        if len(decisions) < MIN_DECISIONS or min(approved, rejected) < MIN_PER_DECISION:
            raise ValueError(
                f"too few curator decisions to train the approval value: {approved} approved and {rejected} "
                f"rejected; need at least {MIN_DECISIONS} in all with at least {MIN_PER_DECISION} of each"
            )
        self.decisions = list(decisions)

    def label(self, sentences: Sequence[Sentence] = ()) -> Labeled:
        rows = [Sentence(d.text, d.genres) for d in self.decisions]
        return self._scalar(rows, [1.0 if d.approved else 0.0 for d in self.decisions])


def load_decisions(path: Path) -> list[Decision]:
    """Decisions from the curator's SQLite file (<state_dir>/curator/curator.sqlite3) or from the JSON list
    its GET /v1/decisions returns. Song names are turned back into <artist>/<title> where known, so the
    texts read like the corpus the VAE was trained on."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"decisions file not found: {path}")
    with path.open("rb") as handle:
        is_sqlite = handle.read(16) == b"SQLite format 3\x00"
    if not is_sqlite:
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(f"{path} is neither an SQLite database nor JSON: {exc}") from exc
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError(f"{path} must hold a JSON list of decision objects (as GET /v1/decisions returns)")
    else:
        rows = _sqlite_decisions(path)
    decisions = []
    for number, row in enumerate(rows, start=1):
        verdict = row.get("decision")
        if verdict not in ("approved", "rejected"):
            raise ValueError(f"{path}: decision {number} is {verdict!r}, expected 'approved' or 'rejected'")
        # What the curator approved is the final (maybe edited) text; a rejection has only the generated one.
        text = (row.get("final_text") if verdict == "approved" else None) or row.get("text")
        if not isinstance(text, str) or not text.strip():
            continue
        decisions.append(
            Decision(_unfill(text, row.get("artist"), row.get("title")), verdict == "approved", _genres(row))
        )
    return decisions


def _sqlite_decisions(path: Path) -> list[dict[str, Any]]:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ValueError(f"cannot open {path} as SQLite: {exc}") from exc
    connection.row_factory = sqlite3.Row
    try:
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "decisions" not in tables:
            raise ValueError(f"{path} has no 'decisions' table (is it the curator's curator.sqlite3?)")
        if "songs" in tables:
            query = (
                "SELECT d.decision, d.text, d.final_text, s.artist, s.title, s.genres "
                "FROM decisions d LEFT JOIN songs s ON s.set_id = d.set_id ORDER BY d.id"
            )
        else:
            query = "SELECT decision, text, final_text FROM decisions ORDER BY id"
        return [dict(row) for row in connection.execute(query)]
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"cannot read decisions from {path}: {exc}") from exc
    finally:
        connection.close()


def _unfill(text: str, artist: Any, title: Any) -> str:
    # Longer name first, so a title that contains the artist's name is replaced whole.
    names = [(n, tag) for n, tag in ((artist, "<artist>"), (title, "<title>")) if isinstance(n, str) and n.strip()]
    for name, tag in sorted(names, key=lambda pair: -len(pair[0])):
        text = text.replace(name, tag)
    return text


def _genres(row: dict[str, Any]) -> list[str]:
    genres = row.get("genres")
    if isinstance(genres, str):
        try:
            genres = json.loads(genres)
        except ValueError:
            return []
    return [g for g in genres if isinstance(g, str)] if isinstance(genres, list) else []


def read_sentences(path: Path) -> list[Sentence]:
    """Corpus sentences from a .jsonl file, a built corpus folder (its train.jsonl) or a folder of
    labelled .jsonl files (such as data/corpus/own)."""
    path = Path(path)
    if path.is_dir():
        files = [path / "train.jsonl"] if (path / "train.jsonl").is_file() else sorted(path.glob("*.jsonl"))
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"corpus not found: {path}")
    if not files:
        raise ValueError(f"{path} holds no .jsonl corpus files")
    sentences = []
    for file in files:
        sentences.extend(Sentence(text, genres) for text, genres, _ in corpus_rows(file) if text.strip())
    if not sentences:
        raise ValueError(f"{path} has no sentences")
    return sentences


def make_value(
    name: str,
    *,
    condition: ConditionEncoder,
    corpus: Sequence[Sentence] = (),
    decisions: Path | None = None,
    seed: int = 0,
    fluency_scorer: Callable[[Sequence[str], Sequence[Sequence[str]]], list[float]] | None = None,
) -> Value:
    """The value function called `name`; ValueError when its inputs are missing or too few."""
    if name == "realism":
        return Realism()
    if name == "genre":
        return Genre(condition, seed)
    if name == "sentiment":
        return Sentiment()
    if name == "topic":
        return Topic(corpus, seed=seed)
    if name == "fluency":
        if fluency_scorer is None:
            raise ValueError("the fluency value needs a language model that is not the decoder (ranking.py)")
        return Fluency(fluency_scorer)
    if name == "approval":
        if decisions is None:
            raise ValueError("the approval value needs --decisions (curator.sqlite3 or a JSON export)")
        return Approval(load_decisions(decisions))
    raise ValueError(f"unknown value {name!r}; choose one of realism, genre, topic, sentiment, fluency, approval")

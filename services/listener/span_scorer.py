"""The learned last step of song detection: which candidate (artist, title) span a post names, or none.

The rules in detect.py propose candidate spans (and, for the scorer, shorter readings of them: a title cut
after each word, an artist without its first words) and describe each one: its form, quotes, vetoes,
plausibility, what the catalog said, the post's cues. Gradient-boosted trees, trained on the dev split of
data/detection only (bench/train_span_scorer.py), turn those features into the probability that the
candidate is the song the post names; the most probable candidate wins when it clears the model's
threshold, else the post names no song.

The model is a small JSON file we produce (span_scorer.json, next to this module): the feature names,
the trees and the threshold. Scoring is plain Python (the trees compiled to one function at load), so the
listener needs neither scikit-learn nor numpy at run time. A missing or corrupt file raises SpanScorerError naming the
file and what is wrong: the detector never guesses silently (SongDetector(..., rules_only=True) is the
documented way to run the hand-tuned rules alone).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from deephype.listener.detect import Candidate, _Cues, _titlecase

SHIPPED_MODEL = Path(__file__).resolve().parent / "span_scorer.json"
FORMAT_VERSION = 2

FORMS = (
    "dash", "quote_dash", "quoted_by", "possessive", "cue_by", "new_from", "announce", "artist_song",
    "comma", "colon", "bracket", "juxtaposed", "bare_possessive", "joined", "loose_quote",
)  # fmt: skip
# Vetoes that say the shape itself is no credit (a score, a list, dates), as against softer ones.
HARD_VETO = re.compile(r"list|number|score|days|places|album|counter|empty|pointer|question|opener", re.I)
REASON_FLAGS = {
    "reason_not_name_like": "not capitalised like a name",
    "reason_credit": "reads like a credit",
    "reason_title_case": "title not title case",
    "reason_artist_case": "artist not title case",
    "reason_chatter_cut": "chatter cut after the title",
    "reason_lowercase_known": "artist known",
    "reason_off_topic": "sport, schedule",
    "reason_common_word_artist": "a common word in the artist",
}
# Words a post puts before a name: "Hear Kali Uchis' new single", "obsessed with Magdalena Bay - X".
LEAD_WORDS = frozenset(
    [
        "hear",
        "listen",
        "listening",
        "watch",
        "stream",
        "streaming",
        "obsessed",
        "with",
        "the",
        "way",
        "this",
        "that",
        "my",
        "our",
        "new",
        "feat",
        "feat.",
        "ft",
        "ft.",
        "by",
        "from",
        "and",
        "also",
        "via",
        "thinking",
        "about",
        "loving",
        "love",
        "playing",
        "play",
    ]
)
CHATTER_WORDS = frozenset(
    [
        "is",
        "was",
        "are",
        "has",
        "have",
        "had",
        "so",
        "the",
        "a",
        "my",
        "this",
        "that",
        "i",
        "me",
        "and",
        "but",
        "on",
        "in",
        "at",
        "for",
        "to",
        "of",
        "with",
        "it",
        "its",
        "it's",
        "just",
        "still",
        "really",
        "makes",
        "made",
        "gets",
        "got",
        "never",
        "always",
        "forever",
        "rn",
        "tbh",
        "lol",
        "obviously",
        "again",
        "today",
        "tonight",
    ]
)

FORM_FEATURES = tuple(f"form_{form}" for form in FORMS)
FEATURES: tuple[str, ...] = (
    *(f"form_{form}" for form in FORMS),
    "variant",
    "title_words_cut",
    "artist_words_cut",
    "cut_before_chatter_word",
    "cut_before_lowercase",
    "quoted",
    "bare",
    "comma_tail",
    "first_clause",
    "vetoed",
    "hard_veto",
    "plausibility",
    "rule_score",
    "rule_winner",
    "rule_winner_exists",
    "confirmed",
    "artist_known",
    "strong_cue",
    "music_cue",
    "music_link",
    "off_topic",
    "album_post",
    "not_a_song",
    "lowercase_post",
    "song_word",
    "on_demand",
    "artist_words",
    "title_words",
    "artist_titlecase",
    "title_titlecase",
    "title_lowercase",
    "artist_lowercase",
    "title_has_digit",
    "artist_has_digit",
    "title_ends_chatter_word",
    "artist_starts_chatter_word",
    "live_readings",
    "live_clauses",
    "title_lowercase_tail",
    "titlecase_head_lowercase_tail",
    "title_chatter_words",
    "cut_titlecase_before_lowercase",
    "artist_lead_word",
    "artist_lowercase_head",
    "form_penalty",
    "news_words",
    *REASON_FLAGS,
)


@dataclass(frozen=True)
class PostContext:
    """What the whole post says, the same for each of its candidates."""

    rule_winner: tuple[str, str] | None
    live_readings: int  # distinct live (artist, title) readings the rules proposed
    live_clauses: int  # clauses those came from


def candidate_features(candidate: Candidate, cues: _Cues, context: PostContext) -> list[float]:
    """The candidate as numbers, in FEATURES order."""
    artist, title = candidate.artist, candidate.title
    title_words = title.split()
    artist_words = artist.split()
    verdict = candidate.confirmation.verdict.value if candidate.confirmation is not None else ""
    reasons = " | ".join(candidate.reasons)
    values: dict[str, float] = dict.fromkeys(FORM_FEATURES, 0.0)
    values[f"form_{candidate.form}"] = 1.0
    next_word = candidate.next_word
    values.update(
        variant=float(candidate.variant),
        title_words_cut=float(min(candidate.title_words_cut, 6)),
        artist_words_cut=float(min(candidate.artist_words_cut, 4)),
        cut_before_chatter_word=float(next_word.lower() in CHATTER_WORDS) if next_word else 0.0,
        cut_before_lowercase=float(next_word[:1].islower()) if next_word else 0.0,
        quoted=float(candidate.quoted),
        bare=float(candidate.bare),
        comma_tail=float(candidate.comma_tail),
        first_clause=float(candidate.clause == 0),
        vetoed=float(candidate.veto is not None),
        hard_veto=float(candidate.veto is not None and HARD_VETO.search(candidate.veto) is not None),
        plausibility=candidate.plausibility,
        rule_score=candidate.score,
        rule_winner=float(context.rule_winner is not None and candidate.key == context.rule_winner),
        rule_winner_exists=float(context.rule_winner is not None),
        confirmed=float(verdict == "confirmed"),
        artist_known=float(verdict in ("confirmed", "artist_known") or cues.known_credit(artist)),
        strong_cue=float(cues.strong),
        music_cue=float(cues.music),
        music_link=float(cues.link),
        off_topic=float(cues.off_topic or cues.off_topic_emoji),
        album_post=float(cues.album_post),
        not_a_song=float(cues.not_a_song is not None),
        lowercase_post=float(cues.lowercase_post),
        song_word=float(cues.song_word),
        on_demand=float(cues.on_demand),
        artist_words=float(min(len(artist_words), 8)),
        title_words=float(min(len(title_words), 12)),
        artist_titlecase=float(_titlecase(artist)),
        title_titlecase=float(_titlecase(title)),
        title_lowercase=float(title == title.lower() and any(ch.isalpha() for ch in title)),
        artist_lowercase=float(artist == artist.lower() and any(ch.isalpha() for ch in artist)),
        title_has_digit=float(any(ch.isdigit() for ch in title)),
        artist_has_digit=float(any(ch.isdigit() for ch in artist)),
        title_ends_chatter_word=float(bool(title_words) and title_words[-1].lower() in CHATTER_WORDS),
        artist_starts_chatter_word=float(bool(artist_words) and artist_words[0].lower() in CHATTER_WORDS),
        live_readings=float(min(context.live_readings, 5)),
        live_clauses=float(min(context.live_clauses, 4)),
    )
    lowercase_tail = _lowercase_tail(title_words)
    titlecase_head = bool(title_words) and title_words[0][:1].isupper()
    values.update(
        title_lowercase_tail=float(min(lowercase_tail, 4)),
        titlecase_head_lowercase_tail=float(titlecase_head and 0 < lowercase_tail < len(title_words)),
        title_chatter_words=float(min(sum(1 for w in title_words if w.lower() in CHATTER_WORDS), 4)),
        cut_titlecase_before_lowercase=float(
            bool(next_word) and next_word[:1].islower() and _titlecase(title) and title[:1].isupper()
        ),
        artist_lead_word=float(bool(artist_words) and artist_words[0].lower() in LEAD_WORDS),
        form_penalty=candidate.plausibility_penalty,
        news_words=float(cues.news_words),
        artist_lowercase_head=float(
            len(artist_words) > 1 and artist_words[0][:1].islower() and artist_words[-1][:1].isupper()
        ),
    )
    values.update({flag: float(text in reasons) for flag, text in REASON_FLAGS.items()})
    return [values[name] for name in FEATURES]


def _lowercase_tail(words: list[str]) -> int:
    """How many lowercase words end the title ("Wonderwall is overrated": 2); the small title words count."""
    tail = 0
    for word in reversed(words):
        if not word[:1].islower():
            break
        tail += 1
    return tail


class SpanScorerError(RuntimeError):
    """The span scorer's model file is missing, unreadable or does not fit this code."""


@dataclass(frozen=True)
class Node:
    """One node of a regression tree: a split (feature, threshold, left, right) or a leaf (feature -1, value)."""

    feature: int
    threshold: float
    left: int
    right: int
    value: float


@dataclass
class SpanScorer:
    """Gradient-boosted regression trees over FEATURES: probability = sigmoid(baseline + rate * Σ leaf values).

    The trees become one compiled Python function at load (a few hundred comparisons per reading), since
    walking them node by node would cost more than the rules themselves."""

    trees: list[list[Node]]
    baseline: float
    learning_rate: float
    threshold: float
    trained_on: str = ""
    _raw: Callable[[list[float]], float] | None = field(default=None, repr=False, compare=False)

    def probability(self, features: list[float]) -> float:
        if self._raw is None:
            self._raw = _compile(self)
        return 1.0 / (1.0 + math.exp(-max(min(self._raw(features), 40.0), -40.0)))

    def raw_by_walking(self, features: list[float]) -> float:
        """The same sum, node by node: the reference the compiled function is checked against."""
        total = 0.0
        for tree in self.trees:
            node = tree[0]
            while node.feature >= 0:
                node = tree[node.left if features[node.feature] <= node.threshold else node.right]
            total += node.value
        return self.baseline + self.learning_rate * total

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT_VERSION,
                "model": "gradient_boosted_trees",
                "trained_on": self.trained_on,
                "threshold": self.threshold,
                "baseline": self.baseline,
                "learning_rate": self.learning_rate,
                "features": list(FEATURES),
                "trees": [[[n.feature, n.threshold, n.left, n.right, n.value] for n in tree] for tree in self.trees],
            },
            separators=(",", ":"),
        )


def _compile(scorer: SpanScorer) -> Callable[[list[float]], float]:
    """One function summing every tree. Only validated ints and floats (repr) go into its source."""

    def branch(tree: list[Node], index: int) -> str:
        node = tree[index]
        if node.feature < 0:
            return repr(scorer.learning_rate * node.value)
        left, right = branch(tree, node.left), branch(tree, node.right)
        return f"({left} if x[{node.feature}] <= {node.threshold!r} else {right})"

    lines = ["def raw(x):", f"    s = {scorer.baseline!r}"]
    lines += [f"    s += {branch(tree, 0)}" for tree in scorer.trees]
    lines.append("    return s")
    namespace: dict[str, Callable[[list[float]], float]] = {}
    exec(compile("\n".join(lines), "<span scorer trees>", "exec"), {"__builtins__": {}}, namespace)
    return namespace["raw"]


def _number(value: object, kind: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    if kind is int and not float(value).is_integer():
        raise ValueError(f"{value!r} is not an integer")
    return kind(value)


def _tree(raw_nodes: object) -> list[Node]:
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise ValueError("a tree is not a non-empty list of nodes")
    nodes = []
    for raw in raw_nodes:
        if not isinstance(raw, list) or len(raw) != 5:
            raise ValueError(f"node {raw!r} is not [feature, threshold, left, right, value]")
        feature, left, right = (int(_number(raw[i], int)) for i in (0, 2, 3))
        nodes.append(Node(feature, _number(raw[1], float), left, right, _number(raw[4], float)))
    for index, node in enumerate(nodes):
        if node.feature >= len(FEATURES) or (
            node.feature >= 0 and not (index < node.left < len(nodes) and index < node.right < len(nodes))
        ):
            raise ValueError(f"node {index} points outside its tree or at a feature this code lacks")
    return nodes


def parse_span_scorer(text: str, source: str) -> SpanScorer:
    """A SpanScorer from the JSON the trainer writes; SpanScorerError says what does not fit."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpanScorerError(f"span scorer model {source} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
        raise SpanScorerError(f"span scorer model {source}: expected a JSON object of format {FORMAT_VERSION}")
    if data.get("features") != list(FEATURES):
        raise SpanScorerError(
            f"span scorer model {source} was trained on other features than this code computes: "
            "retrain it with bench/train_span_scorer.py"
        )
    try:
        trees = [_tree(raw) for raw in data["trees"]]
        scorer = SpanScorer(
            trees,
            baseline=_number(data["baseline"], float),
            learning_rate=_number(data["learning_rate"], float),
            threshold=_number(data["threshold"], float),
            trained_on=str(data.get("trained_on", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SpanScorerError(f"span scorer model {source} lacks or garbles a field ({exc})") from exc
    if not trees or not 0.0 < scorer.threshold < 1.0:
        raise SpanScorerError(f"span scorer model {source}: no trees, or a threshold outside (0, 1)")
    scorer._raw = _compile(scorer)
    return scorer


@lru_cache(maxsize=4)
def load_span_scorer(path: Path = SHIPPED_MODEL) -> SpanScorer:
    """The model file (the shipped one by default), read and compiled once."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpanScorerError(
            f"span scorer model {path} cannot be read ({exc.strerror or exc}); "
            "rebuild it with bench/train_span_scorer.py"
        ) from exc
    return parse_span_scorer(text, str(path))

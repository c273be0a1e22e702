"""Train the span scorer (services/listener/span_scorer.py) on the dev split of data/detection, batches 1-5.

The rules propose candidate (artist, title) readings of each dev post; a reading is a positive when artist
and title both match the label (case and punctuation aside). A logistic regression learns which reading is
the song; the threshold below which a post names no song is chosen on out-of-fold predictions (posts split
into folds, each fold scored by a model that never saw it). Batch 6 and the test split are never read here:
they are the held-out figures (data/detection/README.md). Training is deterministic (lbfgs, fixed folds).

    .venv/bin/python bench/train_span_scorer.py            # cross-validated figures, then write the model
    .venv/bin/python bench/train_span_scorer.py --dry-run  # figures only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier

from deephype.common.music_lookup.matching import normalize
from deephype.listener.confirm import offline_lookup
from deephype.listener.detect import SongDetector
from deephype.listener.span_scorer import SHIPPED_MODEL, Node, SpanScorer

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "data" / "detection" / "dev.jsonl"
TRAIN_BATCHES = (1, 2, 3, 4, 5)  # batch 6 is held out whole (data/detection/README.md)
FOLDS = 5
# Gradient boosting beat logistic regression (C 0.1-1) on the cross-validated figures and on batch 5 with
# a model trained on batches 1-4 (trees see that "chatter cut" matters only for a lowercase next word ...).
TREES, DEPTH, LEARNING_RATE = 150, 3, 0.1
MIN_PRECISION = 0.985  # the threshold keeps out-of-fold precision at least this: precision matters more
ADDRESSES_BOT = re.compile(r"(?<![\w@])@deephype\b", re.I)
SYNTHETIC_WEIGHT = 0.5  # a made-up post counts half a written one

# Augmentation: the rules were tuned on batches 1-4, so their readings of those posts are nearly always right
# and a model trained on them learns only to agree with the rules. Posts made from each dev song with our
# own templates (chatter after the title, a lead-in before the name, a quoted title, all lowercase) and dev
# artists with non-song phrases give it the shapes where the rules' cut is wrong. Deterministic: the
# template is picked by a hash of the song.
CHATTER_TAILS = (
    "is overrated", "still gives me chills", "rn", "obviously", "on a loop all week", "made my commute bearable",
    "forever and always", "hits so hard tonight", "no skips", "at full volume", "every single morning",
    "will never get old", "in the car was a moment", "and i'm not ok", "sounds better on vinyl",
)  # fmt: skip
LEAD_INS = (
    "obsessed with", "the way", "hot take:", "currently stuck on", "ok but", "can't stop playing",
    "thinking about", "nothing beats", "still not over", "my neighbour keeps blasting",
)  # fmt: skip
CAPITALISED_LEADS = (
    "Hear {artist}'s new single \"{title}\"", "Listen to {artist}'s gorgeous '{title}'",
    "Stream {artist}'s \u201c{title}\u201d now", "Watch {artist} play '{title}' live",
)  # fmt: skip
DASH = re.compile(r"\s[-–—]\s")
MUSIC_EMOJI = ("🎶", "🎵", "🎧")
EMOJI = ("", "🌙", "🔥", "🍂", "💿", "✨")
# ... and a name before a quote is news as often as a song: 'Drake "not worried" about the lawsuit'.
NEWS_QUOTES = (
    "{artist} 'not worried' about the rumours", "{artist} \"grateful\" after the awards night",
    "{artist} 'taking a break' from touring, says a source", "{artist} \u201cheartbroken\u201d over cancelled dates",
    "{artist} 'Live at the Roundhouse' reissue announced", "{artist} \"The Final Tour\" adds a second night",
)  # fmt: skip
NOT_SONG_TAILS = (
    "tour dates just dropped", "sold out both nights", "tickets are so expensive", "new album out friday",
    "interview in the paper today", "merch store is open", "live at the arena last night", "announces a hiatus",
)  # fmt: skip


@dataclass
class Post:
    text: str
    batch: int  # 0: a synthetic post
    gold: tuple[str, str] | None
    rows: list[list[float]]
    labels: list[int]
    source: str  # the written post it was made from (itself for a written post)


def dev_posts() -> list[dict[str, object]]:
    posts = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [post for post in posts if post.get("batch", 1) in TRAIN_BATCHES]


def readings(detector: SongDetector, raw: list[dict[str, object]]) -> list[Post]:
    found = []
    for post in raw:
        text = str(post["text"])
        gold = (normalize(str(post["artist"])), normalize(str(post["title"]))) if post["artist"] else None
        seen = detector.readings(text, on_demand=ADDRESSES_BOT.search(text) is not None)
        # A post the rules call no song (a book, a film, a match) stays so: its readings teach nothing.
        candidates, rows = ([], []) if seen.not_a_song else (seen.eligible, seen.features)
        labels = [int(gold is not None and (normalize(c.artist), normalize(c.title)) == gold) for c in candidates]
        found.append(Post(text, int(post.get("batch", 1)), gold, rows, labels, str(post.get("source", text))))
    return found


def _pick(options: tuple[str, ...], *seed: str) -> str:
    digest = hashlib.sha256("\x1f".join(seed).encode("utf-8")).hexdigest()
    return options[int(digest, 16) % len(options)]


def synthetic(raw: list[dict[str, object]]) -> list[dict[str, object]]:
    """Made-up posts from the dev songs and artists (see CHATTER_TAILS); each keeps its source's text as
    `source` so cross-validation keeps it in its source's fold."""
    made: list[dict[str, object]] = []
    for post in raw:
        if not post["artist"]:
            # A music emoji does not make a note a song: "Monday - Friday: gym 🎶" names none either.
            if DASH.search(str(post["text"])):
                text = f"{post['text']} {_pick(MUSIC_EMOJI, str(post['text']))}"
                made.append({"text": text, "artist": None, "title": None, "batch": 0, "source": str(post["text"])})
            continue
        artist, title, source = str(post["artist"]), str(post["title"]), str(post["text"])
        tail, lead = _pick(CHATTER_TAILS, artist, title), _pick(LEAD_INS, title, artist)
        texts = [
            f"{artist} - {title} {tail}",
            f"{lead} {artist} - {title}",
            f"{artist} '{title}' {_pick(CHATTER_TAILS, title)}",
            f"{lead} {artist} - {title} {_pick(CHATTER_TAILS, artist)}".lower(),
            f"{artist} - {title} {_pick(EMOJI, title)}".lower(),
            _pick(CAPITALISED_LEADS, source).format(artist=artist, title=title),
        ]
        made += [{"text": text, "artist": artist, "title": title, "batch": 0, "source": source} for text in texts]
        for text in (f"{artist} - {_pick(NOT_SONG_TAILS, artist)}", _pick(NEWS_QUOTES, artist).format(artist=artist)):
            made.append({"text": text, "artist": None, "title": None, "batch": 0, "source": source})
    return made


def fold_of(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % FOLDS


def fit(posts: list[Post]) -> GradientBoostingClassifier:
    features = np.array([row for post in posts for row in post.rows], dtype=float)
    labels = np.array([label for post in posts for label in post.labels])
    weights = np.array([SYNTHETIC_WEIGHT if post.batch == 0 else 1.0 for post in posts for _ in post.rows])
    model = GradientBoostingClassifier(n_estimators=TREES, max_depth=DEPTH, learning_rate=LEARNING_RATE, random_state=0)
    return model.fit(features, labels, sample_weight=weights)


def post_choices(posts: list[Post], model: GradientBoostingClassifier) -> list[tuple[float, bool]]:
    """For each post: the best reading's probability and whether that reading is the labelled song."""
    choices = []
    for post in posts:
        if not post.rows:
            choices.append((0.0, False))
            continue
        probabilities = model.predict_proba(np.array(post.rows, dtype=float))[:, 1]
        best = int(np.argmax(probabilities))
        choices.append((float(probabilities[best]), bool(post.labels[best])))
    return choices


def figures(posts: list[Post], choices: list[tuple[float, bool]], threshold: float) -> dict[str, float | int]:
    kept = [(post, right) for post, (p, right) in zip(posts, choices, strict=True) if p >= threshold]
    right = sum(1 for _, r in kept if r)
    positives = sum(1 for post in posts if post.gold is not None)
    return {
        "posts": len(posts),
        "songs": positives,
        "right": right,
        "found": len(kept),
        "precision": round(right / len(kept), 3) if kept else 1.0,
        "recall": round(right / positives, 3) if positives else 1.0,
    }


def choose_threshold(posts: list[Post], choices: list[tuple[float, bool]]) -> float:
    """The lowest threshold, in steps of 0.05, whose out-of-fold precision is at least MIN_PRECISION (the
    most recall for it): a wrong song costs a generation and a curator's time, a miss only a missed post."""
    steps = [step / 20 for step in range(2, 19)]
    return next((t for t in steps if figures(posts, choices, t)["precision"] >= MIN_PRECISION), steps[-1])


def exported(model: GradientBoostingClassifier, threshold: float, trained_on: str) -> SpanScorer:
    """The trees as the listener reads them; checked to give sklearn's own scores on random rows."""
    trees = []
    for (estimator,) in model.estimators_:
        tree = estimator.tree_
        trees.append(
            [
                Node(int(tree.feature[i]) if tree.children_left[i] >= 0 else -1, float(tree.threshold[i]),
                     int(tree.children_left[i]), int(tree.children_right[i]), float(tree.value[i][0][0]))
                for i in range(tree.node_count)
            ]
        )  # fmt: skip
    rows = np.random.default_rng(0).integers(0, 3, size=(200, model.n_features_in_)).astype(float)
    zero_trees = SpanScorer(trees, baseline=0.0, learning_rate=float(model.learning_rate), threshold=threshold)
    baseline = float(model.decision_function(rows[:1])[0]) - zero_trees.raw_by_walking(list(rows[0]))
    scorer = SpanScorer(trees, baseline, float(model.learning_rate), round(threshold, 3), trained_on)
    ours = np.array([scorer.raw_by_walking(list(row)) for row in rows])
    assert np.allclose(ours, model.decision_function(rows), atol=1e-9), "exported trees disagree with sklearn"
    return scorer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="print the cross-validated figures only")
    parser.add_argument("--output", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--no-synthetic", action="store_true", help="train on the written dev posts alone")
    args = parser.parse_args()

    detector = SongDetector(offline_lookup(), rules_only=True)
    written = dev_posts()
    made = synthetic(written) if not args.no_synthetic else []
    everything = readings(detector, written + made)
    posts = [post for post in everything if post.batch != 0]
    readings_total = sum(len(post.rows) for post in posts)
    reachable = sum(1 for post in posts if any(post.labels))
    songs = sum(1 for post in posts if post.gold is not None)
    print(
        f"dev batches {TRAIN_BATCHES}: {len(posts)} posts, {songs} songs, {readings_total} readings; "
        f"the labelled song is among the readings for {reachable} of {songs}"
    )

    out_of_fold: list[tuple[float, bool]] = [(0.0, False)] * len(posts)
    for fold in range(FOLDS):
        train = [post for post in everything if fold_of(post.source) != fold]
        held = [i for i, post in enumerate(posts) if fold_of(post.text) == fold]
        model = fit(train)
        for i, choice in zip(held, post_choices([posts[i] for i in held], model), strict=True):
            out_of_fold[i] = choice
    threshold = choose_threshold(posts, out_of_fold)
    print(f"threshold {threshold:.2f} (the lowest with out-of-fold precision >= {MIN_PRECISION})")
    print(f"  out of fold, all dev: {figures(posts, out_of_fold, threshold)}")
    for batch in TRAIN_BATCHES:
        chosen = [(post, c) for post, c in zip(posts, out_of_fold, strict=True) if post.batch == batch]
        print(f"  out of fold, batch {batch}: {figures([p for p, _ in chosen], [c for _, c in chosen], threshold)}")
    # Batch 5 was written after the rules' last tuning: a model that never saw it is the fairest dev figure.
    earlier = [
        post for post in everything if post.batch != 5 and post.source not in {p.text for p in posts if p.batch == 5}
    ]
    fifth = [post for post in posts if post.batch == 5]
    model = fit(earlier)
    print(f"  trained on batches 1-4, batch 5 dev: {figures(fifth, post_choices(fifth, model), threshold)}")

    model = fit(everything)
    print(f"  in sample, all dev: {figures(posts, post_choices(posts, model), threshold)}")
    if args.dry_run:
        return
    scorer = exported(
        model,
        threshold,
        f"data/detection/dev.jsonl batches {TRAIN_BATCHES}: {len(posts)} posts "
        f"and {len(everything) - len(posts)} made from them, {readings_total} readings of the written",
    )
    args.output.write_text(scorer.to_json() + "\n", encoding="utf-8")
    print(f"written {args.output.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

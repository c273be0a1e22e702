"""Our detection corpus (data/detection): big enough, split once by a hash, labels that make sense, and the
detector's figures on the dev split (the split it is tuned on; bench/detect.py reports the test split)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from deephype.common.music_lookup.matching import normalize
from deephype.listener.detect import detect_song

CORPUS = Path(__file__).resolve().parents[1] / "data" / "detection"


def load(split: str) -> list[dict[str, str | None]]:
    lines = (CORPUS / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def in_test_split(text: str) -> bool:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % 100 < 35


def test_corpus_is_big_enough_and_covers_every_style() -> None:
    posts = load("dev") + load("test")
    assert len(posts) >= 400
    styles = Counter(post["style"] for post in posts)
    assert set(styles) == {"x", "mastodon", "bluesky", "blog"}
    assert min(styles.values()) >= 50
    negatives = [post for post in posts if post["artist"] is None]
    assert len(negatives) >= 150
    assert sum(1 for post in negatives if " - " in str(post["text"])) >= 80  # dashes that are not songs


@pytest.mark.parametrize("split", ["dev", "test"])
def test_each_post_sits_in_the_split_its_hash_gives(split: str) -> None:
    for post in load(split):
        assert in_test_split(str(post["text"])) == (split == "test"), post["id"]
        assert post["id"] == "d-" + hashlib.sha256(str(post["text"]).encode()).hexdigest()[:10]


def test_no_post_is_in_both_splits_or_twice() -> None:
    texts = [post["text"] for post in load("dev") + load("test")]
    assert len(texts) == len(set(texts))


def test_labels_are_both_set_or_both_empty() -> None:
    for post in load("dev") + load("test"):
        assert (post["artist"] is None) == (post["title"] is None), post["id"]
        if post["artist"] is not None:
            assert str(post["artist"]).strip() and str(post["title"]).strip()


HELD_OUT_BATCH = 6  # never tuned nor trained on: not even its dev posts (data/detection/README.md)


def test_batch_6_is_the_documented_held_out_batch() -> None:
    dev = [post for post in load("dev") if post.get("batch") == HELD_OUT_BATCH]
    test = [post for post in load("test") if post.get("batch") == HELD_OUT_BATCH]
    assert (len(dev), len(test)) == (141, 63)
    styles = Counter(post["style"] for post in dev + test)
    assert styles == {"x": 52, "mastodon": 51, "bluesky": 51, "blog": 50}
    assert sum(1 for post in dev + test if post["artist"] is None) == 69


def test_dev_split_figures() -> None:
    """The split we tune on (batches 1-5). A drop here means a change broke what it was tuned for."""
    right = found = positives = 0
    for post in load("dev"):
        if post.get("batch") == HELD_OUT_BATCH:
            continue
        detection = detect_song(str(post["text"]))
        positives += post["artist"] is not None
        if detection.artist is None:
            continue
        found += 1
        if post["artist"] is not None and (normalize(detection.artist), normalize(str(detection.title))) == (
            normalize(str(post["artist"])),
            normalize(str(post["title"])),
        ):
            right += 1
    assert right / found >= 0.97
    assert right / positives >= 0.93


def test_readme_gives_the_recorded_held_out_figures() -> None:
    """The README's detection table repeats bench/results/detect.json (rerun the bench, then the table)."""
    root = CORPUS.parents[1]
    results = json.loads((root / "bench" / "results" / "detect.json").read_text(encoding="utf-8"))
    readme = (root / "README.md").read_text(encoding="utf-8")
    rows = {
        "test, batch 6": results["catalog_batch_6_clean"],
        "batch 6, dev and test": results["catalog_batch_6_both_splits_clean"],
        "the rules alone on test batch 6": results["rules_only_batch_6_clean"],
        "whole test split now": results["catalog"],
        "whole test split, plausibility only": results["plausibility_only"],
    }
    for label, figures in rows.items():
        [line] = [line for line in readme.splitlines() if line.startswith("| ") and label in line.replace("*", "")]
        cells = [cell.strip(" *") for cell in line.split("|")[1:-1]]
        assert cells[1:] == [
            f"{figures['posts']} ({figures['positives']})",
            f"{figures['precision']:.3f}",
            f"{figures['recall']:.3f}",
        ], label

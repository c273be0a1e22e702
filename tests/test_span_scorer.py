"""The learned span scorer (services/listener/span_scorer.py): the detector uses it, it loads the model we
ship and refuses a broken one with a clear error, and training it is deterministic."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from deephype.listener.confirm import offline_lookup
from deephype.listener.detect import SongDetector
from deephype.listener.span_scorer import (
    FEATURES,
    SHIPPED_MODEL,
    SpanScorerError,
    load_span_scorer,
    parse_span_scorer,
)

ROOT = Path(__file__).resolve().parents[1]

# Forms the rules alone get wrong (they keep nothing, or the wrong span) and the scorer reads right: chatter
# after an unquoted title, a lead-in before the name, a name right before a quote, a possessive after a verb.
SCORER_FIXES = [
    ("Vela North - Glass Orchard still in my head a week later", ("Vela North", "Glass Orchard")),
    ("obsessed with Vela North - Glass Orchard rn", ("Vela North", "Glass Orchard")),
    ('Vela North "Glass Orchard" will be on my headstone', ("Vela North", "Glass Orchard")),
    ('Listen to Vela North\'s dreamy "Glass Orchard"', ("Vela North", "Glass Orchard")),
]


@pytest.mark.parametrize(("text", "expected"), SCORER_FIXES)
def test_the_scorer_reads_what_the_rules_alone_miss(text: str, expected: tuple[str, str]) -> None:
    rules = SongDetector(offline_lookup(), rules_only=True)(text)
    assert (rules.artist, rules.title) != expected
    explanation = SongDetector(offline_lookup()).explain(text)
    assert (explanation.detection.artist, explanation.detection.title) == expected
    assert "span scorer probability" in explanation.decision


def test_the_scorer_drops_a_wrong_span_the_rules_keep() -> None:
    text = "the way vela north - glass orchard hits at midnight"
    assert SongDetector(offline_lookup(), rules_only=True)(text).artist == "the way vela north"
    assert SongDetector(offline_lookup())(text).artist is None


def test_explain_shows_each_reading_and_its_probability() -> None:
    explanation = SongDetector(offline_lookup()).explain("obsessed with Vela North - Glass Orchard rn")
    shorter = {(c.artist, c.title): c for c in explanation.readings}
    assert shorter[("Vela North", "Glass Orchard")].variant
    assert shorter[("Vela North", "Glass Orchard")].probability is not None
    assert all(c.probability is None or 0.0 <= c.probability <= 1.0 for c in explanation.candidates)


def test_a_rules_veto_still_holds() -> None:
    """A score or a schedule is vetoed by the rules; the scorer never picks a vetoed reading."""
    for text in ("Monday - Friday we are open 🎶", "Final score: Lakers 102 - Celtics 99"):
        assert SongDetector(offline_lookup())(text).artist is None


def test_the_shipped_model_loads_and_its_compiled_trees_match_walking_them() -> None:
    scorer = load_span_scorer()
    assert "batches (1, 2, 3, 4, 5)" in scorer.trained_on  # batch 6 is held out
    assert 0.0 < scorer.threshold < 1.0
    readings = SongDetector(offline_lookup()).readings("#np Vela North - Glass Orchard is unreal")
    assert readings.features
    for row in readings.features:
        assert len(row) == len(FEATURES)
        compiled = scorer.probability(row)
        walked = 1.0 / (1.0 + pow(2.718281828459045, -scorer.raw_by_walking(row)))
        assert compiled == pytest.approx(walked, abs=1e-9)


def test_a_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    with pytest.raises(SpanScorerError, match=r"nowhere\.json cannot be read.*train_span_scorer"):
        load_span_scorer(missing)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda model: "{not json", "not valid JSON"),
        (lambda model: json.dumps({**model, "format": 99}), "expected a JSON object of format"),
        (lambda model: json.dumps({**model, "features": model["features"][:-1]}), "other features"),
        (lambda model: json.dumps({**model, "trees": [[[0, "__import__('os')", 1, 2, 0.0]]]}), "garbles"),
        (lambda model: json.dumps({**model, "trees": [[[0, 0.5, 7, 9, 0.0]]]}), "points outside"),
        (lambda model: json.dumps({**model, "threshold": 1.5}), "threshold"),
        (lambda model: json.dumps({k: v for k, v in model.items() if k != "baseline"}), "garbles"),
    ],
)
def test_a_corrupt_model_file_is_a_clear_error(mangle, message: str, tmp_path: Path) -> None:
    model = json.loads(SHIPPED_MODEL.read_text(encoding="utf-8"))
    broken = tmp_path / "broken.json"
    broken.write_text(mangle(model), encoding="utf-8")
    with pytest.raises(SpanScorerError, match=message):
        load_span_scorer(broken)


def test_rules_only_is_the_documented_way_round_the_scorer() -> None:
    explanation = SongDetector(offline_lookup(), rules_only=True).explain("#np Vela North - Glass Orchard")
    assert (explanation.detection.artist, explanation.detection.title) == ("Vela North", "Glass Orchard")
    assert "span scorer" not in explanation.decision


def _trainer():
    spec = importlib.util.spec_from_file_location("train_span_scorer", ROOT / "bench" / "train_span_scorer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_training_is_deterministic_and_reads_no_held_out_post() -> None:
    trainer = _trainer()
    written = trainer.dev_posts()
    assert {post.get("batch", 1) for post in written} == {1, 2, 3, 4, 5}
    sample = written[:40]
    detector = SongDetector(offline_lookup(), rules_only=True)
    models = []
    for _ in range(2):
        posts = trainer.readings(detector, sample + trainer.synthetic(sample))
        model = trainer.fit(posts)
        models.append(trainer.exported(model, 0.5, "a sample").to_json())
    assert models[0] == models[1]
    assert parse_span_scorer(models[0], "a sample").threshold == 0.5

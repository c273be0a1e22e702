"""The curator's taste as a text scorer: P(the curator approves this candidate | its words).

A logistic regression over hashed word 1-2 grams (scikit-learn), trained by learn.py on what the curator
approved (and the edited, human-improved sentences) against what was passed over or rejected. The ranker
adds weight * P to each candidate's score. Saved as JSON (only the weights that are not zero), so a
version folder holds no pickles.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

N_FEATURES = 2**18
NGRAMS = (1, 2)


def _vectorizer() -> object:
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=N_FEATURES, ngram_range=NGRAMS, alternate_sign=False, norm="l2", lowercase=True)


@dataclass
class ApprovalScorer:
    weights: dict[int, float]
    intercept: float
    # How much P(approve) counts in the rank score (chosen on dev decisions by learn.py).
    weight: float = 1.0

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        labels: Sequence[int],
        weights: Sequence[float] | None = None,
        *,
        c: float = 4.0,
        seed: int = 0,
    ) -> ApprovalScorer:
        from sklearn.linear_model import LogisticRegression

        if len(set(labels)) < 2:
            raise ValueError("the approval scorer needs approved and not-approved texts")
        features = _vectorizer().transform(list(texts))  # type: ignore[attr-defined]
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
        model.fit(features, np.asarray(labels), sample_weight=None if weights is None else np.asarray(weights))
        coef = model.coef_[0]
        nonzero = np.flatnonzero(coef)
        return cls({int(i): float(coef[i]) for i in nonzero}, float(model.intercept_[0]))

    def probabilities(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        features = _vectorizer().transform(list(texts)).tocsr()  # type: ignore[attr-defined]
        result = []
        for row in range(features.shape[0]):
            start, end = features.indptr[row], features.indptr[row + 1]
            logit = self.intercept + sum(
                self.weights.get(int(i), 0.0) * float(v)
                for i, v in zip(features.indices[start:end], features.data[start:end], strict=True)
            )
            result.append(1.0 / (1.0 + math.exp(-max(min(logit, 50.0), -50.0))))
        return result

    def save(self, path: Path) -> None:
        payload = {
            "kind": "hashed-logistic",
            "n_features": N_FEATURES,
            "ngrams": list(NGRAMS),
            "intercept": self.intercept,
            "weight": self.weight,
            "weights": {str(i): w for i, w in self.weights.items()},
        }
        path.write_text(json.dumps(payload), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> ApprovalScorer:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        if payload.get("kind") != "hashed-logistic" or payload.get("n_features") != N_FEATURES:
            raise ValueError(f"{path} is not an approval scorer this version of deephype can read")
        return cls(
            {int(i): float(w) for i, w in payload["weights"].items()},
            float(payload["intercept"]),
            float(payload.get("weight", 1.0)),
        )

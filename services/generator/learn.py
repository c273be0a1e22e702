"""Learning from the curator: the labelled set → a new model version → promoted only if it ranks better.

    labelled sets (GET /v1/decisions?view=sets on the curator, engagement from the poster's /v1/engagement)
      split by decision time: oldest 60% train, next 20% dev, newest 20% held out
    → the approval scorer (approval.py) on train: approved and edited-after texts vs passed over / rejected;
      its weight in the rank score chosen on dev
    → the LC-GAN 'approval' value on train decisions (lcgan_train.py), when the model is a VAE and there
      are enough of both kinds: the actor moves prior codes towards what the curator approves
    → judged on the held-out sets against the promoted version: does it rank the candidate the curator
      approved higher (top-1 share and mean reciprocal rank, each set's candidates re-scored by both)?
    → written whole as a new version (versions.py); promoted only when its held-out MRR beats the promoted
      one's, else kept aside with its report.

Held-out re-scoring uses each candidate's stored score without the approval part it was ranked with, plus
the version's own approval part: both versions are judged on the same candidates, by the same base score.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deephype.common.contracts import ModelInfo
from deephype.common.settings import Settings
from deephype.generator.approval import ApprovalScorer
from deephype.generator.versions import MANIFEST, REPORT, Version, VersionStore

log = logging.getLogger("deephype.generator")

APPROVAL_FILE = "approval.json"
WEIGHT_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
MIN_SETS = 20  # decided sets needed before a version is trained
MIN_HELD_OUT_APPROVED = 3  # approved held-out sets needed to judge a version


# --- the labelled set ---


def fetch_sets(curator_url: str, token: str = "", since_id: int = 0, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The curator's labelled sets; `token` is its API bearer token (DEEPHYPE_CURATOR_API_TOKEN)."""
    import httpx

    url = f"{curator_url.rstrip('/')}/v1/decisions"
    try:
        response = httpx.get(
            url,
            params={"view": "sets", "since_id": since_id, "limit": 100_000},
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=timeout,
        )
        response.raise_for_status()
        return list(response.json())
    except (httpx.HTTPError, ValueError) as exc:
        raise ValueError(f"cannot read the curator's decisions from {url}: {exc}") from exc


def fetch_engagement(poster_url: str, timeout: float = 30.0) -> dict[str, list[dict[str, Any]]]:
    """approval id → that approval's posts with their engagement checkpoints."""
    import httpx

    url = f"{poster_url.rstrip('/')}/v1/engagement"
    try:
        response = httpx.get(url, params={"limit": 10_000}, timeout=timeout)
        response.raise_for_status()
        posts = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ValueError(f"cannot read the poster's engagement from {url}: {exc}") from exc
    by_approval: dict[str, list[dict[str, Any]]] = {}
    for post in posts:
        by_approval.setdefault(post["approval_id"], []).append(post)
    return by_approval


def with_engagement(sets: Iterable[dict[str, Any]], engagement: dict[str, list[dict[str, Any]]]) -> list[dict]:
    return [{**s, "engagement": engagement.get(s.get("approval_id") or "", [])} for s in sets]


def write_jsonl(rows: Iterable[dict[str, Any]], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    count = 0
    with temp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    temp.replace(path)
    return count


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc})") from exc
        if not isinstance(row, dict) or not isinstance(row.get("candidates"), list):
            raise ValueError(f"{path}:{number}: not a labelled set (as `deephype learn export` writes)")
        rows.append(row)
    return rows


def audience_weight(labelled: dict[str, Any]) -> float:
    """How much the audience's response adds to an approved text: 1 + log(1 + likes + reposts + replies) at
    the latest checkpoint read, summed over the platforms it went to (1 when nothing was read)."""
    total = 0
    for post in labelled.get("engagement") or []:
        latest = post.get("latest") or {}
        total += sum(int(latest.get(name) or 0) for name in ("likes", "reposts", "replies"))
    return 1.0 + math.log1p(total)


def examples(sets: Sequence[dict[str, Any]]) -> tuple[list[str], list[int], list[float]]:
    """Texts, labels and weights: approved (and the curator's edit of it) 1, weighted by the audience's
    response to the post; passed over and rejected 0."""
    texts: list[str] = []
    labels: list[int] = []
    weights: list[float] = []
    for labelled in sets:
        weight = audience_weight(labelled)
        for candidate in labelled["candidates"]:
            approved = candidate["label"] == "approved"
            texts.append(candidate["text"])
            labels.append(int(approved))
            weights.append(weight if approved else 1.0)
        if labelled.get("edit"):
            texts.append(labelled["edit"]["after"])
            labels.append(1)
            weights.append(weight)
    return texts, labels, weights


def split_sets(sets: Sequence[dict[str, Any]]) -> tuple[list[dict], list[dict], list[dict]]:
    ordered = sorted(sets, key=lambda s: s.get("decision_id") or 0)
    n = len(ordered)
    a, b = round(n * 0.6), round(n * 0.8)
    return ordered[:a], ordered[a:b], ordered[b:]


# --- judging a version on decisions ---


def rank_metrics(sets: Sequence[dict[str, Any]], scorer: ApprovalScorer | None) -> dict[str, float]:
    """How well a version ranks the candidate the curator approved, over the approved sets."""
    top1 = reciprocal = 0.0
    judged = 0
    for labelled in sets:
        candidates = labelled["candidates"]
        if labelled.get("decision") != "approved" or len(candidates) < 2:
            continue
        base = [c["score"] - float(c.get("scores", {}).get("approval_bonus", 0.0)) for c in candidates]
        bonus = (
            [scorer.weight * p for p in scorer.probabilities([c["text"] for c in candidates])]
            if scorer is not None
            else [0.0] * len(candidates)
        )
        scores = [b + x for b, x in zip(base, bonus, strict=True)]
        chosen = next(i for i, c in enumerate(candidates) if c["label"] == "approved")
        # Ties count against the version: it must put the approved one strictly first.
        rank = 1 + sum(1 for i, s in enumerate(scores) if i != chosen and s >= scores[chosen])
        top1 += rank == 1
        reciprocal += 1.0 / rank
        judged += 1
    return {
        "sets": float(judged),
        "top1": top1 / judged if judged else 0.0,
        "mrr": reciprocal / judged if judged else 0.0,
    }


def load_scorer(version: Version | None) -> ApprovalScorer | None:
    if version is None or not (version.path / APPROVAL_FILE).is_file():
        return None
    return ApprovalScorer.load(version.path / APPROVAL_FILE)


# --- one round of learning ---


@dataclass
class LearnOptions:
    lcgan: bool = True
    lcgan_steps: int = 300
    seed: int = 0
    min_sets: int = MIN_SETS
    # Fine-tune the LSTM decoder on approved and edited sentences (finetune.py); kept only when held-out
    # approved sentences become more likely. Off by default: not yet measured by bench/learning.py.
    finetune: bool = False
    finetune_steps: int = 60


def learn(
    sets: Sequence[dict[str, Any]],
    store: VersionStore,
    base_model: Path,
    options: LearnOptions | None = None,
    progress: Callable[[str], None] = log.info,
) -> dict[str, Any]:
    """Train a version on `sets`, judge it on held-out decisions, write it, promote it if it is better."""
    options = options or LearnOptions()
    store.clean_partial()
    decided = [s for s in sets if s.get("candidates")]
    if len(decided) < options.min_sets:
        raise ValueError(f"only {len(decided)} decided candidate sets; learning needs at least {options.min_sets}")
    train, dev, held_out = split_sets(decided)
    texts, labels, weights = examples(train)
    scorer = ApprovalScorer.fit(texts, labels, weights, seed=options.seed)
    # The weight of P(approve) in the rank score, on dev (never on the held-out sets that judge it).
    dev_results = {}
    for weight in WEIGHT_GRID:
        scorer.weight = weight
        dev_results[weight] = rank_metrics(dev, scorer)["mrr"]
    scorer.weight = max(WEIGHT_GRID, key=lambda w: (dev_results[w], -w))
    progress(f"approval scorer: {len(texts)} texts ({sum(labels)} approved); weight {scorer.weight} on dev")

    current = store.current()
    current_scorer = load_scorer(current)
    new_metrics = rank_metrics(held_out, scorer)
    old_metrics = rank_metrics(held_out, current_scorer)
    enough = new_metrics["sets"] >= MIN_HELD_OUT_APPROVED
    better = enough and new_metrics["mrr"] > old_metrics["mrr"]
    if not enough:
        reason = f"only {int(new_metrics['sets'])} approved held-out sets (need {MIN_HELD_OUT_APPROVED})"
    elif better:
        reason = (
            f"held-out MRR {new_metrics['mrr']:.3f} > {old_metrics['mrr']:.3f} of {current.id if current else 'base'}"
        )
    else:
        reason = (
            f"held-out MRR {new_metrics['mrr']:.3f} <= {old_metrics['mrr']:.3f} of {current.id if current else 'base'}"
        )
    progress(f"judged on {int(new_metrics['sets'])} held-out sets: {reason}")

    version_id = store.new_id()
    report: dict[str, Any] = {
        "version": version_id,
        "parent": current.id if current else None,
        "created_at": datetime.now(UTC).isoformat(),
        "sets": {"train": len(train), "dev": len(dev), "held_out": len(held_out)},
        "examples": {"texts": len(texts), "approved": sum(labels)},
        "weight": scorer.weight,
        "dev_mrr_by_weight": {str(w): round(v, 4) for w, v in dev_results.items()},
        "held_out": {"new": new_metrics, "current": old_metrics},
        "promoted": better,
        "reason": reason,
    }
    with store.writing(version_id) as folder:
        scorer.save(folder / APPROVAL_FILE)
        tuned = False
        if options.finetune:
            report["finetune"] = finetune_version(train + dev, held_out, base_model, folder, options)
            tuned = bool(report["finetune"].get("kept"))
        if options.lcgan:
            # On the fine-tuned model when there is one: an LC-GAN is tied to the VAE it was trained on.
            report["lcgan"] = train_approval_lcgan(train + dev, folder if tuned else base_model, folder, options)
        manifest = {
            "id": version_id,
            "base_model": str(base_model),
            "last_decision_id": max((s.get("decision_id") or 0) for s in decided),
            "approval_weight": scorer.weight,
            "lcgan": bool(report.get("lcgan", {}).get("trained")),
            "finetuned": tuned,
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        (folder / REPORT).write_text(json.dumps(report, indent=2), encoding="utf-8")
    if better:
        store.promote(version_id)
    else:
        progress(f"version {version_id} kept aside (not promoted): {reason}")
    return report


def approved_sentences(sets: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """What the curator approved (its edit where it edited), with <artist>/<title> put back as the corpus has them."""
    from deephype.generator.values import _unfill

    texts, genres = [], []
    for labelled in sets:
        song = labelled.get("song", {})
        for candidate in labelled["candidates"]:
            if candidate["label"] != "approved":
                continue
            text = labelled["edit"]["after"] if labelled.get("edit") else candidate["text"]
            texts.append(_unfill(text, song.get("artist"), song.get("title")))
            genres.append(list(song.get("genres", [])))
    return texts, genres


def finetune_version(
    sets: Sequence[dict[str, Any]],
    held_out: Sequence[dict[str, Any]],
    base_model: Path,
    folder: Path,
    options: LearnOptions,
) -> dict[str, Any]:
    """Fine-tune the decoder on approved sentences; write model.pt into the version only if held-out
    approved sentences get more likely under it."""
    from deephype.generator.checkpoint import load_model
    from deephype.generator.finetune import FinetuneConfig, decoder_nll, finetune_decoder, save_finetuned

    loaded = load_model(base_model, "cpu")
    texts, genres = approved_sentences(sets)
    held_texts, held_genres = approved_sentences(held_out)
    if not texts or not held_texts:
        return {"kept": False, "reason": "no approved sentences to fine-tune on or to judge by"}
    tuned = finetune_decoder(loaded, texts, genres, FinetuneConfig(steps=options.finetune_steps, seed=options.seed))
    before, after = decoder_nll(loaded, held_texts, held_genres), decoder_nll(tuned, held_texts, held_genres)
    kept = after < before
    note = {"sentences": len(texts), "held_out": len(held_texts), "nll_before": before, "nll_after": after}
    if kept:
        save_finetuned(tuned, folder, note)
    return {"kept": kept, **note}


def train_approval_lcgan(
    sets: Sequence[dict[str, Any]], base_model: Path, folder: Path, options: LearnOptions
) -> dict[str, Any]:
    """The LC-GAN 'approval' value on these decisions, saved into the version folder (when it can learn)."""
    from deephype.generator.checkpoint import load_model
    from deephype.generator.lcgan import LCGANConfig
    from deephype.generator.lcgan_train import train_lcgan
    from deephype.generator.values import Approval, Decision, _unfill

    decisions = []
    for labelled in sets:
        song = labelled.get("song", {})
        for candidate in labelled["candidates"]:
            text = candidate["text"]
            if candidate["label"] == "approved" and labelled.get("edit"):
                text = labelled["edit"]["after"]
            decisions.append(
                Decision(
                    _unfill(text, song.get("artist"), song.get("title")),
                    candidate["label"] == "approved",
                    list(song.get("genres", [])),
                )
            )
    try:
        value = Approval(decisions)
        loaded = load_model(base_model, "cpu")
        if not loaded.model.is_vae:
            return {"trained": False, "reason": "the model has no latent space"}
        lcgan = train_lcgan(
            loaded,
            value,
            [],
            LCGANConfig(steps=options.lcgan_steps, seed=options.seed),
            out_dir=folder,
            progress=False,
            log=lambda line: log.info("%s", line),
        )
    except ValueError as exc:
        return {"trained": False, "reason": str(exc)}
    return {"trained": True, "prior": lcgan.metrics.get("prior", {})}


# --- serving a version ---


def versions_dir(settings: Settings) -> Path:
    if settings.learn_versions_dir:
        return Path(settings.learn_versions_dir)
    return settings.state_dir / "generator" / "versions" / Path(settings.generator_model).name


def version_source(base_model: Path, settings: Settings, version: Version | None) -> Any:
    """The base model's candidate source with a version's approval scorer (and approval LC-GAN) on top."""
    from deephype.generator.candidates import ModelCandidateSource
    from deephype.generator.lcgan import lcgan_path, load_lcgan, vae_fingerprint

    # A version with its own fine-tuned decoder serves from its folder (model.pt + its approval LC-GAN).
    finetuned = version is not None and version.manifest.get("finetuned") and (version.path / "model.pt").is_file()
    source = ModelCandidateSource.load(version.path if finetuned else base_model, settings)  # type: ignore[union-attr]
    if version is None:
        return source
    source.approval = load_scorer(version)
    lcgan_file = lcgan_path(version.path, "approval")
    if version.manifest.get("lcgan") and lcgan_file.is_file() and source.loaded.model.is_vae and not finetuned:
        fingerprint = vae_fingerprint(source.loaded.model)
        source.lcgan = load_lcgan(lcgan_file, source.loaded.config.latent_dim, source.loaded.device, vae=fingerprint)
    source.info = ModelInfo(name=f"{source.info.name}+learned", version=version.id)
    return source


class AutoLearner:
    """The generator's own learning: after every `every` new decided sets, one round of `learn`, run by a
    watcher thread (never on the request path). The decisions stay in the curator, so a restart mid-round
    loses nothing: the next round reads them again."""

    def __init__(self, settings: Settings, base_model: Path, store: VersionStore, options: LearnOptions) -> None:
        self.settings = settings
        self.base_model = base_model
        self.store = store
        self.options = options

    def step(self) -> dict[str, Any] | None:
        every = self.settings.learn_every_decisions
        if every <= 0:
            return None
        versions = self.store.versions()
        seen = max((v.manifest.get("last_decision_id", 0) for v in versions), default=0)
        sets = fetch_sets(self.settings.learn_curator_url, self.settings.curator_api_token.get_secret_value())
        if self.settings.learn_poster_url:
            sets = with_engagement(sets, fetch_engagement(self.settings.learn_poster_url))
        new = [s for s in sets if (s.get("decision_id") or 0) > seen]
        if len(new) < every or len(sets) < self.options.min_sets:
            return None
        return learn(sets, self.store, self.base_model, self.options)


def versioned_source(base_model: Path, settings: Settings) -> Any:
    """What the generator serves: the promoted version of the base model, swappable while it runs."""
    from deephype.generator.versions import SwappableSource

    return SwappableSource(
        VersionStore(versions_dir(settings)), lambda version: version_source(base_model, settings, version)
    )

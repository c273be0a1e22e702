"""Does the bot learn its curator's taste? The learning loop with a simulated curator, over several seeds.

    flock /tmp/cpu-bench.lock nice -n 5 .venv/bin/python bench/learning.py            # 3 seeds, LSTM VAE
    .venv/bin/python bench/learning.py --seeds 0 --decisions 100 --no-lcgan           # a quick look

Per seed: a fresh versions folder and curator database; the simulated curator (tests/helpers/sim_curator.py:
approves the best-ranked candidate that names an instrument and is positive, fixes typos, else rejects)
decides every song the generator writes, through the generator's bus handler and the curator's store;
after every --learn-every decisions `learn` trains a version and promotes it only if it ranks the
curator's choice better on held-out decisions; the generator swaps to it. The figure: the share of fresh
songs (never decided, the same ones for every version) whose top-ranked candidate the simulated curator
would approve, after --decisions decisions, against the starting model measured in the same run (the
anchor). The judge is the curator's hidden rule; the learner only ever sees its decisions.

Writes bench/results/learning.json and bench/results/learning.png.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.helpers

from deephype.common.settings import DATA_DIR
from deephype.generator.learn import LearnOptions
from tests.helpers.learning_loop import LearningLoop

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_POINTS = 15.0


def run_seed(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        options = LearnOptions(lcgan=not args.no_lcgan, lcgan_steps=args.lcgan_steps, seed=seed)
        loop = LearningLoop(Path(tmp), args.model, seed=seed, options=options)
        curve = [{"decisions": 0, "share": loop.top_choice_share(args.eval_songs), "version": None}]
        start = time.perf_counter()
        bar = tqdm(total=args.decisions, desc=f"seed {seed}", unit="decision", leave=False)
        while loop.reviewed < args.decisions:
            step = min(args.learn_every, args.decisions - loop.reviewed)
            loop.review(step)
            bar.update(step)
            report = loop.learn()
            curve.append(
                {
                    "decisions": loop.reviewed,
                    "share": loop.top_choice_share(args.eval_songs),
                    "version": loop.source.info.version,
                    "promoted": report["promoted"],
                    "reason": report["reason"],
                    "lcgan": report.get("lcgan", {}).get("trained"),
                }
            )
        bar.close()
        sets = loop.curator.db.query("SELECT status, COUNT(*) AS n FROM songs GROUP BY status")
        return {
            "seed": seed,
            "start_share": curve[0]["share"],
            "final_share": curve[-1]["share"],
            "gain_points": round(100 * (curve[-1]["share"] - curve[0]["share"]), 1),
            "curve": curve,
            "decided": {row["status"]: row["n"] for row in sets},
            "seconds": round(time.perf_counter() - start, 1),
        }


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for result in results:
        ax.plot(
            [p["decisions"] for p in result["curve"]],
            [100 * p["share"] for p in result["curve"]],
            marker="o",
            label=f"seed {result['seed']}",
        )
    ax.set_xlabel("curator decisions")
    ax.set_ylabel("top candidate the curator would approve (%)")
    ax.set_title("Learning the curator's taste (simulated curator)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DATA_DIR / "models" / "lstm")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--decisions", type=int, default=300)
    parser.add_argument("--learn-every", type=int, default=100)
    parser.add_argument("--eval-songs", type=int, default=200)
    parser.add_argument("--lcgan-steps", type=int, default=300)
    parser.add_argument("--no-lcgan", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "learning.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = [run_seed(seed, args) for seed in args.seeds]
    gains = [r["gain_points"] for r in results]
    summary = {
        "model": str(args.model),
        "decisions": args.decisions,
        "learn_every": args.learn_every,
        "eval_songs": args.eval_songs,
        "lcgan": not args.no_lcgan,
        "anchor": "the starting model (no learned version), same fresh songs, same run",
        "target_points": TARGET_POINTS,
        "gain_points": gains,
        "mean_gain_points": round(statistics.mean(gains), 1),
        "met_on_every_seed": all(g >= TARGET_POINTS for g in gains),
        "seeds": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    plot(results, args.out.with_suffix(".png"))
    for r in results:
        print(
            f"seed {r['seed']}: top candidate approved {100 * r['start_share']:.1f}% -> {100 * r['final_share']:.1f}% "
            f"after {args.decisions} decisions ({r['gain_points']:+.1f} points; {r['seconds']} s)"
        )
    print(f"mean gain {summary['mean_gain_points']:+.1f} points; target >= {TARGET_POINTS} on every seed: "
          f"{'met' if summary['met_on_every_seed'] else 'MISSED'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

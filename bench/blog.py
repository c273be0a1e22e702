"""Music-blog benchmark: build a corpus from ../shared/data/blog_posts_sample.json with the corpus tool,
train the sentence VAE and the plain LSTM LM with the same budget, report held-out PPL, KL and active units.

    .venv/bin/python bench/blog.py --minutes 12
    .venv/bin/python bench/blog.py --quality-only --minutes 15 [--pretrained-steps 250] [--reuse]

The blog text is only read at run time (never copied into the repo); the corpus goes to /tmp.
Writes bench/results/blog.json. With --quality / --quality-only it also trains the product's models on the
blog corpus (`deephype train`, as `make model` does, within the same budget) and runs bench/quality.py on
them: bench/results/quality-blog.json keeps the figures only (no sentences: the blog's text and anything
trained on it stay out of the repo).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from deephype.cli import main as deephype
from deephype.generator.data import read_corpus
from deephype.generator.train import TrainConfig, train_on_examples

BLOG_POSTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "blog_posts_sample.json"
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=12.0, help="training budget per model")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--eval-k", type=int, default=20)
    parser.add_argument("--work", type=Path, default=Path("/tmp/deephype-blog"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy box)")
    parser.add_argument("--quality", action="store_true", help="also train the product models and run quality.py")
    parser.add_argument("--quality-only", action="store_true", help="only the product models and quality.py")
    parser.add_argument("--pretrained-steps", type=int, default=0, help="also the pretrained-decoder VAE (steps)")
    parser.add_argument("--reuse", action="store_true", help="keep a product model already trained in --work")
    args = parser.parse_args()
    if not BLOG_POSTS.is_file():
        raise SystemExit(f"{BLOG_POSTS} is not there; nothing to benchmark")

    corpus = args.work / "corpus"
    started = time.monotonic()
    if deephype(["corpus", "build", str(BLOG_POSTS), "--out", str(corpus), "--no-plot", "--quiet"]) != 0:
        raise SystemExit("deephype corpus build failed")
    build_minutes = (time.monotonic() - started) / 60
    if args.quality_only:
        quality(corpus, args)
        return
    splits = read_corpus(corpus, max_tokens=40)
    results: dict[str, object] = {
        "corpus": {split: len(examples) for split, examples in splits.items()},
        "corpus_build_minutes": build_minutes,
        "budget_minutes_per_model": args.minutes,
        "hardware": f"{os.cpu_count()} shared CPU cores, torch {torch.__version__}, {args.threads} threads",
    }
    for name, baseline in (("vae", ""), ("lstm-lm", "lm")):
        config = TrainConfig(
            epochs=args.epochs,
            batch_size=32,
            kl_anneal_steps=800,
            word_dropout=0.3 if not baseline else 0.0,
            min_count=2,
            eval_k=args.eval_k,
            max_minutes=args.minutes,
            baseline=baseline,
            threads=args.threads,
            embed_dim=256,
            hidden_dim=256,
            latent_dim=32,
        )
        metrics = train_on_examples(splits, args.work / name, config, progress=False)
        metrics["config"] = dict(config.__dict__)
        results[name] = metrics
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "blog.json").write_text(json.dumps(results, indent=2) + "\n")

    print(f"\nblog corpus {results['corpus']}, budget {args.minutes} min per model")
    print(f"{'model':8} {'test PPL':>9} {'NLL':>8} {'KL':>6} {'MI':>6} {'AU':>6} {'epochs':>7}")
    for name in ("vae", "lstm-lm"):
        test = results[name]["test"]  # type: ignore[index]
        au = f"{test['active_units']}/{test['latent_dim']}"
        epochs = results[name]["epochs"]  # type: ignore[index]
        print(f"{name:8} {test['ppl']:9.1f} {test['nll']:8.2f} {test['kl']:6.2f} {test['mi']:6.2f} {au:>6} {epochs:7d}")
    if args.quality:
        quality(corpus, args)


def quality(corpus: Path, args: argparse.Namespace) -> None:
    """Train the product's models on the blog corpus as `make model` does, then judge them with quality.py."""
    models, python = args.work / "models", sys.executable
    cli = [python, "-m", "deephype.cli"]
    seed_and_threads = ["--seed", "0", "--threads", str(args.threads), "--quiet"]
    lstm = [*cli, "train", "--corpus", str(corpus), "--out", str(models / "lstm"), "--size", "small"]
    lstm += ["--epochs", "18", "--kl-anneal-steps", "500", "--eval-k", "5", "--max-minutes", str(args.minutes)]
    if not (args.reuse and (models / "lstm" / "model.pt").is_file()):
        subprocess.run([*lstm, *seed_and_threads], check=True)
    judged = ["--model", str(models / "lstm")]
    if args.pretrained_steps:
        pretrained = [*cli, "train", "--arch", "pretrained", "--corpus", str(corpus), "--out"]
        pretrained += [str(models / "pretrained"), "--epochs", "1", "--max-steps", str(args.pretrained_steps)]
        if not (args.reuse and (models / "pretrained" / "model.pt").is_file()):
            subprocess.run([*pretrained, "--eval-k", "5", *seed_and_threads], check=True)
        judged += ["--model", str(models / "pretrained")]
    raw = args.work / "quality.json"
    bench = [python, str(Path(__file__).with_name("quality.py")), "--corpus", str(corpus), *judged]
    bench += ["--models-dir", str(models), "--songs", "3", "--threads", str(args.threads), "--out", str(raw)]
    subprocess.run(bench, check=True)
    report = json.loads(raw.read_text())
    for system in report["systems"]:
        system.pop("examples", None)
    report["models"] = {
        name: json.loads((models / name / "metrics.json").read_text())
        for name in ("lstm", "pretrained")
        if (models / name / "metrics.json").is_file()
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "quality-blog.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS / 'quality-blog.json'} (figures only)")


if __name__ == "__main__":
    main()

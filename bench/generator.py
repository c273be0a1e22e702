"""Latency and throughput of the generator service: POST /v1/samples against a real `deephype serve generator`
process (uvicorn), for both architectures: the bundled pretrained-decoder VAE (data/models/default) and the
LSTM VAE (data/models/lstm), each ranked as the service ranks by default.

    .venv/bin/python bench/generator.py                       # both models, CPU
    .venv/bin/python bench/generator.py --models lstm --sequential 10 --concurrent 32

Per model, two runs against the same process:
- sequential: one request at a time (what one caller sees; every request decodes alone);
- concurrent: `--clients` callers at once, so the service's micro-batching (DEEPHYPE_GENERATOR_BATCH_SIZE)
  decodes several songs' samples together; candidates/s here against the sequential run is the anchor.
Prints p50/p99 latency and candidates/s; writes bench/results/generator.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers.processes import ServiceProcess

RESULTS = Path(__file__).resolve().parent / "results"
SONGS = [
    {"artist": "Paper Lanterns", "title": "Night Owls", "genres": ["indie rock"]},
    {"artist": "DJ Harbor", "title": "Concrete Bloom", "genres": ["house"]},
    {"artist": "June Okafor", "title": "Low Tide", "genres": ["neo soul"]},
    {"artist": "Iron Vale", "title": "Ash Crown", "genres": ["doom metal", "not-a-genre"]},
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def run(url: str, requests: int, clients: int, n: int, first_seed: int) -> dict[str, float]:
    """`requests` POSTs, `clients` at a time; latency per request and candidates per wall-clock second."""
    http = httpx.Client(timeout=600, limits=httpx.Limits(max_connections=clients))

    def one(i: int) -> tuple[float, int]:
        body = {"song": SONGS[i % len(SONGS)], "n": n, "seed": first_seed + i}
        start = time.perf_counter()
        response = http.post(url + "/v1/samples", json=body)
        response.raise_for_status()
        return time.perf_counter() - start, len(response.json()["candidates"])

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - started
    http.close()
    latencies = [a[0] for a in answers]
    candidates = sum(a[1] for a in answers)
    return {
        "requests": requests,
        "clients": clients,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * percentile(latencies, 99),
        "candidates_per_s": candidates / wall,
        "requests_per_s": requests / wall,
        "mean_candidates": candidates / requests,
    }


def bench_model(model: str, args: argparse.Namespace, work: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPHYPE_")}
    env.update(
        {
            "DEEPHYPE_STATE_DIR": str(work / model),
            "DEEPHYPE_GENERATOR_MODEL": model,
            "DEEPHYPE_GENERATOR_DEVICE": args.device,
            "DEEPHYPE_GENERATOR_SAMPLES": str(args.samples),
            "DEEPHYPE_GENERATOR_BATCH_SIZE": str(args.batch_size),
            "DEEPHYPE_GENERATOR_TORCH_THREADS": str(args.threads),
            "DEEPHYPE_GENERATOR_DECODE_THREADS": str(args.decode_threads),
        }
    )
    process = ServiceProcess("generator", env, work, label=f"generator-{model}")
    loading = time.perf_counter()
    process.start()
    try:
        deadline = time.monotonic() + 600
        while not process.ready():
            if time.monotonic() > deadline or (process.process and process.process.poll() is not None):
                raise SystemExit(f"the generator with model {model!r} did not get ready; log in {work}")
            time.sleep(0.5)
        load_s = time.perf_counter() - loading
        info = httpx.post(process.url + "/v1/samples", json={"song": SONGS[0], "n": 1}, timeout=600).json()["model"]
        sequential = run(process.url, args.sequential, 1, args.n, 1000)
        concurrent = run(process.url, args.concurrent, args.clients, args.n, 2000)
    finally:
        process.stop()
    return {
        "model": model,
        "model_info": info,
        "load_s": load_s,
        "sequential": sequential,
        "concurrent": concurrent,
        "batching_speedup": concurrent["candidates_per_s"] / sequential["candidates_per_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="default,lstm", help="DEEPHYPE_GENERATOR_MODEL values, comma-separated")
    parser.add_argument("--sequential", type=int, default=8, help="requests one at a time")
    parser.add_argument("--concurrent", type=int, default=16, help="requests in the concurrent run")
    parser.add_argument("--clients", type=int, default=8, help="callers at once in the concurrent run")
    parser.add_argument("--batch-size", type=int, default=8, help="DEEPHYPE_GENERATOR_BATCH_SIZE")
    parser.add_argument("--samples", type=int, default=32, help="codes decoded per request (GENERATOR_SAMPLES)")
    parser.add_argument("--threads", type=int, default=0, help="DEEPHYPE_GENERATOR_TORCH_THREADS (0: all cores)")
    parser.add_argument("--decode-threads", type=int, default=1, help="DEEPHYPE_GENERATOR_DECODE_THREADS")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("-n", type=int, default=8, help="candidates asked per request")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="deephype-bench-generator-"))
    runs = [bench_model(model.strip(), args, work) for model in args.models.split(",") if model.strip()]
    print(f"POST /v1/samples, n={args.n}, {args.samples} samples per request, {os.cpu_count()} CPUs, {args.device}")
    for r in runs:
        print(f"  {r['model']} ({r['model_info']['name']}), ready after {r['load_s']:.0f} s:")  # type: ignore[index]
        for mode in ("sequential", "concurrent"):
            f = r[mode]
            assert isinstance(f, dict)
            print(
                f"    {mode:>10} ({f['clients']} at a time): p50 {f['p50_ms']:8.0f} ms  p99 {f['p99_ms']:8.0f} ms"
                f"  {f['candidates_per_s']:7.2f} candidates/s  ({f['mean_candidates']:.1f} per request)"
            )
        print(f"    micro-batched / one at a time: {r['batching_speedup']:.2f}x candidates/s")
    report = {
        "command": " ".join(sys.argv),
        "cpus": os.cpu_count(),
        "device": args.device,
        "n": args.n,
        "samples_per_request": args.samples,
        "batch_size": args.batch_size,
        "decode_threads": args.decode_threads,
        "torch_threads": args.threads,
        "runs": runs,
        "note": "a real uvicorn process per model on a shared 2-core box: compare ratios within the run",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "generator.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

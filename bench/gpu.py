"""The generator on a GPU: candidates/s and p50/p99 per request for both architectures, in one short run.

    .venv/bin/python bench/gpu.py                                   # CUDA (bf16 autocast in the pretrained
                                                                    # decoder and the SmolLM2 ranker)
    .venv/bin/python bench/gpu.py --device cpu --samples 8 --requests 2 --batch-size 2   # a smoke run here

For each model (the bundled pretrained-decoder VAE and the LSTM VAE, ranked as the service ranks), the
service's own candidate source (ModelCandidateSource, what `deephype serve generator` runs) answers
- one request at a time (`generate`): the latency one caller sees and its candidates/s;
- micro-batches of --batch-size songs (`generate_batch`, as the service batches waiting songs): the
  latency of each song in its batch and candidates/s; against the one-at-a-time figure in the same run.
Under 5 minutes on a GPU with the defaults (most of it loading the models). Writes
bench/results/gpu-<device>.json. There is no GPU on the development box: there it only runs as a smoke
test with --device cpu and small sizes.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from deephype.common.contracts import Song
from deephype.common.settings import Settings
from deephype.generator.candidates import ModelCandidateSource
from deephype.generator.source import SampleRequest

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = Path(__file__).resolve().parents[1] / "data" / "models"
SONGS = [
    Song(artist="Paper Lanterns", title="Night Owls", genres=["indie rock"]),
    Song(artist="DJ Harbor", title="Concrete Bloom", genres=["house"]),
    Song(artist="June Okafor", title="Low Tide", genres=["neo soul"]),
    Song(artist="Iron Vale", title="Ash Crown", genres=["doom metal"]),
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def figures(latencies: list[float], candidates: int, samples: int, wall: float) -> dict[str, float]:
    return {
        "requests": len(latencies),
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * percentile(latencies, 99),
        "candidates_per_s": candidates / wall,
        "samples_decoded_per_s": samples / wall,
    }


def bench_model(name: str, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        generator_device=args.device,
        generator_samples=args.samples,
        generator_rank=args.rank,
        generator_batch_size=args.batch_size,
        generator_torch_threads=args.threads,
    )
    loading = time.perf_counter()
    source = ModelCandidateSource.load(MODELS / name, settings)
    load_s = time.perf_counter() - loading
    device = source.loaded.device

    def request(i: int) -> SampleRequest:
        return SampleRequest(song=SONGS[i % len(SONGS)], n=args.n, seed=1000 + i)

    source.generate_batch([request(i) for i in range(min(2, args.batch_size))])  # warm-up (kernels, caches)
    synchronize(device)

    latencies, candidates = [], 0
    started = time.perf_counter()
    for i in range(args.requests):
        begin = time.perf_counter()
        candidates += len(source.generate(request(i)))
        synchronize(device)
        latencies.append(time.perf_counter() - begin)
    alone = figures(latencies, candidates, args.requests * args.samples, time.perf_counter() - started)

    latencies, candidates, total = [], 0, args.requests * args.batch_size
    started = time.perf_counter()
    for first in range(0, total, args.batch_size):
        begin = time.perf_counter()
        results = source.generate_batch([request(i) for i in range(first, min(total, first + args.batch_size))])
        synchronize(device)
        took = time.perf_counter() - begin
        for result in results:
            if isinstance(result, Exception):
                raise result
            candidates += len(result)
            latencies.append(took)  # every song of a batch waits for the whole batch
    batched = figures(latencies, candidates, total * args.samples, time.perf_counter() - started)
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {
        "model": name,
        "arch": source.loaded.arch,
        "model_info": source.info.model_dump(),
        "ranked": source.ranker is not None,
        "load_s": load_s,
        "one_at_a_time": alone,
        "batched": batched,
        "batching_speedup": batched["candidates_per_s"] / alone["candidates_per_s"],
        "peak_gpu_memory_gib": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu (a smoke run)")
    parser.add_argument("--models", default="default,lstm", help="folders under data/models, comma-separated")
    parser.add_argument("--requests", type=int, default=20, help="requests one at a time; batches in the batched run")
    parser.add_argument("--batch-size", type=int, default=32, help="songs per micro-batch")
    parser.add_argument("--samples", type=int, default=32, help="samples decoded per song (GENERATOR_SAMPLES)")
    parser.add_argument("-n", type=int, default=5, help="candidates per song")
    parser.add_argument("--threads", type=int, default=0, help="CPU torch threads (0: the cores)")
    parser.add_argument("--rank", action=argparse.BooleanOptionalAction, default=True, help="GENERATOR_RANK")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run with --device cpu (and small sizes) for a smoke run")
    started = time.perf_counter()
    runs = [bench_model(name.strip(), args) for name in args.models.split(",") if name.strip()]
    hardware = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else platform.processor()
    print(
        f"generator on {args.device} ({hardware}): {args.samples} samples per song, n={args.n}, "
        f"micro-batches of {args.batch_size} songs, ranking {'on' if args.rank else 'off'}"
    )
    for r in runs:
        print(f"  {r['model']} ({r['arch']}, {r['model_info']['name']}), loaded in {r['load_s']:.0f} s")
        for mode in ("one_at_a_time", "batched"):
            f = r[mode]
            print(
                f"    {mode:>13}: p50 {f['p50_ms']:8.0f} ms  p99 {f['p99_ms']:8.0f} ms  "
                f"{f['candidates_per_s']:8.1f} candidates/s  {f['samples_decoded_per_s']:8.0f} samples/s"
            )
        print(f"    batched / one at a time: {r['batching_speedup']:.2f}x candidates/s")
    report = {
        "device": args.device,
        "hardware": hardware,
        "torch": torch.__version__,
        "args": vars(args),
        "runs": runs,
        "total_s": time.perf_counter() - started,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"gpu-{args.device.replace(':', '')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path} ({report['total_s']:.0f} s in all)")


if __name__ == "__main__":
    main()

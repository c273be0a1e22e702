"""End-to-end capacity: mentions/s from POST /v1/mentions to candidates on the bus, and p50/p99 latency
(mention posted → its candidates published), with the generator as one and as three competing consumers;
each both saturated and paced at 70% of the saturated rate (latency at a load the pipeline can carry).
Every service is its own process (`deephype serve`) on the local RabbitMQ, as in production.

    .venv/bin/python bench/pipeline.py [--mentions 1000] [--model default]

The generator micro-batches songs (DEEPHYPE_GENERATOR_BATCH_SIZE, --batch-size). --compare-batching adds,
for each generator count, a saturated run with batch size 1 (each song decoded alone on its handler thread,
as before micro-batching) in the same run: the anchor for the batching speed-up. With an LSTM model the
generator's decode is also put against a matmul peak measured here at the decode's batch shape (bench/
decode.py's): GFLOP/s of the decoder while it decodes, from the generator's own /metrics counters.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pika

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers.processes import ServiceProcess

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
PACED_SHARE = 0.7  # the paced runs offer this share of the saturated throughput
LISTENER_TOKEN = "bench-listener-token"
CATALOG = json.loads((Path(__file__).resolve().parents[1] / "data" / "catalog.json").read_text())["tracks"]


def run(
    generators: int,
    mentions: int,
    concurrency: int,
    model: str,
    work: Path,
    rate: float | None = None,
    generator_env: dict[str, str] | None = None,
) -> dict[str, float | None]:
    """Saturated (rate None: send as fast as `concurrency` clients can) or paced at `rate` mentions/s."""
    exchange = f"bench-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPHYPE_")}
    env.update(
        {
            "DEEPHYPE_AMQP_URL": AMQP_URL,
            "DEEPHYPE_EXCHANGE": exchange,
            "DEEPHYPE_LISTENER_SOURCES": "[]",
            "DEEPHYPE_LISTENER_API_TOKEN": LISTENER_TOKEN,
            "DEEPHYPE_STATE_DIR": str(work / exchange),
            "DEEPHYPE_GENERATOR_MODEL": model,
            "DEEPHYPE_PREFETCH": "32",
            "DEEPHYPE_HANDLER_THREADS": "4",
            **(generator_env or {}),
        }
    )
    names = ["listener", "enricher"] + ["generator"] * generators
    processes = [ServiceProcess(name, env, work, label=f"{exchange}-{name}-{i}") for i, name in enumerate(names)]
    for process in processes:
        process.start()
    deadline = time.monotonic() + 180
    while not all(p.ready() for p in processes):
        if time.monotonic() > deadline:
            raise SystemExit(f"services did not get ready; logs in {work}")
        time.sleep(0.2)

    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    tap = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(tap, exchange, routing_key="candidates.generated")
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    listener = processes[0].url

    def send(index: int) -> None:
        track = CATALOG[index % len(CATALOG)]
        body = {
            "platform": "http",
            "post_id": f"b{index}",
            "author": "bench",
            "text": f"#NowPlaying {track['artist']} - {track['title']} #{index}",
        }
        if rate:
            time.sleep(max(0.0, started + index / rate - time.perf_counter()))
        sent_at[f"b{index}"] = time.perf_counter()
        client.post(listener + "/v1/mentions", json=body).raise_for_status()

    # One pooled client: a new httpx client per request costs more CPU than the pipeline itself.
    client = httpx.Client(
        timeout=60,
        limits=httpx.Limits(max_connections=concurrency),
        headers={"Authorization": f"Bearer {LISTENER_TOKEN}"},
    )
    started = time.perf_counter()
    sender = threading.Thread(target=lambda: list(ThreadPoolExecutor(concurrency).map(send, range(mentions))))
    sender.start()
    last = started
    for method, _, body in channel.consume(tap, auto_ack=True, inactivity_timeout=120):
        if method is None:
            break
        now = time.perf_counter()
        post_id = json.loads(body)["enriched"]["mention"]["post_id"]
        latencies.append(now - sent_at[post_id])
        last = now
        if len(latencies) == mentions:
            break
    sender.join()
    client.close()
    connection.close()
    decoding = sum_decode_metrics([p for p in processes if p.name == "generator"])
    for process in processes:
        process.stop()
    cleanup(exchange)
    latencies.sort()
    return {
        "generators": generators,
        "offered_per_s": rate,
        "mentions": mentions,
        "completed": len(latencies),
        "mentions_per_s": len(latencies) / (last - started),
        "p50_s": statistics.median(latencies),
        "p99_s": latencies[int(0.99 * (len(latencies) - 1))],
        "batch_size": float((generator_env or {}).get("DEEPHYPE_GENERATOR_BATCH_SIZE", "8")),
        "wall_s": last - started,
        **decoding,
    }


def sum_decode_metrics(generators: list[ServiceProcess]) -> dict[str, float]:
    """The generators' own counters (candidates.py): seconds in batched decodes, tokens written, samples,
    and batches (the batch-size histogram), summed over the generator processes."""
    names = {
        "deephype_generator_decode_seconds_total": "decode_s",
        "deephype_generator_decoded_tokens_total": "decoded_tokens",
        "deephype_generator_decoded_rows_total": "decoded_samples",
        "deephype_generator_batch_size_count": "batches",
        "deephype_generator_batch_size_sum": "batched_songs",
    }
    totals = dict.fromkeys(names.values(), 0.0)
    for process in generators:
        text = httpx.get(process.url + "/metrics", timeout=10).text
        for line in text.splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name in names:
                totals[names[name]] += float(line.rsplit(" ", 1)[1])
    return totals


def decoder_share_of_peak(model: str, result: dict[str, float | None], threads: int) -> dict[str, float] | None:
    """An LSTM generator's decode GFLOP/s (bench/decode.py's FLOPs per token; written tokens only) against
    torch.matmul of the output layer's shape at the decode's batch rows, measured here with the generator's
    torch threads."""
    import torch

    from bench.decode import matmul_peak, step_flops
    from deephype.common.settings import Settings
    from deephype.generator.app import model_path
    from deephype.generator.checkpoint import CHECKPOINT_FORMAT, LoadedModel, load_model

    folder = model_path(Settings(_env_file=None, generator_model=model))  # type: ignore[call-arg]
    if torch.load(folder / "model.pt", map_location="cpu", weights_only=True).get("format") != CHECKPOINT_FORMAT:
        return None  # the pretrained decoder: no FLOP count here (its share of peak is not a target)
    loaded = load_model(folder, "cpu")
    if not isinstance(loaded, LoadedModel) or not result.get("decode_s") or not result.get("batches"):
        return None
    rows = max(1, round(float(result["decoded_samples"] or 0) / float(result["batches"] or 1)))
    before = torch.get_num_threads()
    torch.set_num_threads(threads or os.cpu_count() or 1)
    peak = matmul_peak(rows, loaded.config, repeats=max(10, 8192 // rows))
    torch.set_num_threads(before)
    gflops = float(result["decoded_tokens"] or 0) * step_flops(loaded.config) / float(result["decode_s"] or 1) / 1e9
    return {
        "decode_rows_per_batch": rows,
        "decode_gflops": gflops,
        "matmul_peak_gflops": peak,
        "share_of_peak": gflops / peak,
        "decode_busy_share_of_wall": float(result["decode_s"] or 0) / float(result["wall_s"] or 1),
    }


def cleanup(exchange: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    for service in ("enricher", "generator", "curator", "poster", "dead-letter"):
        channel.queue_delete(f"{exchange}.{service}")
        for ms in (1000, 5000, 30000, 300000, 3600000):
            channel.queue_delete(f"{exchange}.{service}.retry.{ms}ms")
    channel.exchange_delete(exchange)
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--model", default="lstm", help="DEEPHYPE_GENERATOR_MODEL for the generators")
    parser.add_argument("--generators", default="1,3", help="generator process counts to run, comma-separated")
    parser.add_argument("--batch-size", type=int, default=8, help="DEEPHYPE_GENERATOR_BATCH_SIZE")
    parser.add_argument("--batch-wait-ms", type=float, default=5.0, help="DEEPHYPE_GENERATOR_BATCH_WAIT_MS")
    parser.add_argument("--samples", type=int, default=32, help="DEEPHYPE_GENERATOR_SAMPLES per mention")
    parser.add_argument(
        "--rank", action=argparse.BooleanOptionalAction, default=True, help="DEEPHYPE_GENERATOR_RANK (the service's)"
    )
    # On this shared 2-core box torch's OpenMP threads wait on a core that the other services hold: one
    # thread decodes 3-5x faster than two. 0: the service's default (the cores).
    parser.add_argument("--generator-threads", type=int, default=1, help="DEEPHYPE_GENERATOR_TORCH_THREADS")
    parser.add_argument("--compare-batching", action="store_true", help="add saturated runs with batch size 1")
    parser.add_argument("--no-paced", action="store_true", help="skip the paced (70%%) latency runs")
    parser.add_argument("--out", default="pipeline.json", help="file name under bench/results")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="deephype-bench-"))
    generator_env = {
        "DEEPHYPE_GENERATOR_BATCH_SIZE": str(args.batch_size),
        "DEEPHYPE_GENERATOR_BATCH_WAIT_MS": str(args.batch_wait_ms),
        "DEEPHYPE_GENERATOR_SAMPLES": str(args.samples),
        "DEEPHYPE_GENERATOR_RANK": "true" if args.rank else "false",
        "DEEPHYPE_GENERATOR_TORCH_THREADS": str(args.generator_threads),
    }
    alone_env = {**generator_env, "DEEPHYPE_GENERATOR_BATCH_SIZE": "1"}
    results = []
    anchors = []
    for generators in [int(g) for g in args.generators.split(",")]:
        saturated = run(generators, args.mentions, args.concurrency, args.model, work, None, generator_env)
        if args.model != "null" and (share := decoder_share_of_peak(args.model, saturated, args.generator_threads)):
            saturated.update(share)
        results.append(saturated)
        if not args.no_paced:
            # Latency under a load the pipeline can carry: past saturation it only measures the queue's length.
            rate = PACED_SHARE * float(saturated["mentions_per_s"] or 0)
            results.append(run(generators, args.mentions, args.concurrency, args.model, work, rate, generator_env))
        if args.compare_batching:
            anchors.append(run(generators, args.mentions, args.concurrency, args.model, work, None, alone_env))
    print(
        f"mention → candidates, {args.mentions} mentions, model {args.model!r}, {args.samples} samples each, "
        f"ranking {'on' if args.rank else 'off'}, {os.cpu_count()} CPUs"
    )
    for r in results + anchors:
        offered = "as fast as possible" if r["offered_per_s"] is None else f"paced at {r['offered_per_s']:.1f}/s"
        print(
            f"  generators={r['generators']} batch={r['batch_size']:.0f} {offered:>20}:"
            f" {r['mentions_per_s']:7.2f} mentions/s ({r['mentions_per_s'] * args.samples:7.1f} samples/s)"
            f"   p50 {r['p50_s'] * 1000:7.0f} ms   p99 {r['p99_s'] * 1000:7.0f} ms"
            f"   ({r['completed']}/{r['mentions']} completed)"
        )
        if r.get("share_of_peak") is not None:
            print(
                f"      decoder: {r['decode_gflops']:.2f} GFLOP/s while decoding, {r['share_of_peak']:.1%} of a "
                f"{r['matmul_peak_gflops']:.2f} GFLOP/s matmul peak at batch {r['decode_rows_per_batch']:.0f}; "
                f"decoding {r['decode_busy_share_of_wall']:.0%} of the wall time"
            )
    report: dict[str, object] = {
        "command": " ".join(sys.argv),
        "model": args.model,
        "samples": args.samples,
        "rank": args.rank,
        "batch_size": args.batch_size,
        "generator_threads": args.generator_threads,
        "runs": results,
        "anchors_batch_size_1": anchors,
    }
    saturated_runs = [r for r in results if r["offered_per_s"] is None]
    if len(saturated_runs) >= 2:
        scale = saturated_runs[1]["mentions_per_s"] / saturated_runs[0]["mentions_per_s"]
        report["scale_3_vs_1"] = scale
        print(f"  {saturated_runs[1]['generators']} vs 1 generator throughput ratio: {scale:.2f}")
    for saturated, anchor in zip(saturated_runs, anchors, strict=False):
        speedup = saturated["mentions_per_s"] / anchor["mentions_per_s"]
        report.setdefault("batching_speedup", []).append(speedup)  # type: ignore[union-attr]
        print(
            f"  generators={saturated['generators']}: micro-batched (batch {args.batch_size}) / one song at a time:"
            f" {speedup:.2f}x candidates/s"
        )
    out = Path(__file__).parent / "results" / args.out
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

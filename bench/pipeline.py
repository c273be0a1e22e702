"""End-to-end capacity: mentions/s from POST /v1/mentions to candidates on the bus, and p50/p99 latency
(mention posted → its candidates published), with the generator as one and as three competing consumers;
each both saturated and paced at 70% of the saturated rate (latency at a load the pipeline can carry).
Every service is its own process (`deephype serve`) on the local RabbitMQ, as in production.

    .venv/bin/python bench/pipeline.py [--mentions 1000] [--model default]
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
    generators: int, mentions: int, concurrency: int, model: str, work: Path, rate: float | None = None
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
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="deephype-bench-"))
    results = []
    for generators in (1, 3):
        saturated = run(generators, args.mentions, args.concurrency, args.model, work)
        # Latency under a load the pipeline can carry: past saturation it only measures the queue's length.
        rate = PACED_SHARE * float(saturated["mentions_per_s"] or 0)
        results += [saturated, run(generators, args.mentions, args.concurrency, args.model, work, rate=rate)]
    print(f"mention → candidates, {args.mentions} mentions, model {args.model!r}, {os.cpu_count()} CPUs")
    for r in results:
        offered = "as fast as possible" if r["offered_per_s"] is None else f"paced at {r['offered_per_s']:.1f}/s"
        print(
            f"  generators={r['generators']} {offered:>20}: {r['mentions_per_s']:7.1f} mentions/s"
            f"   p50 {r['p50_s'] * 1000:7.0f} ms   p99 {r['p99_s'] * 1000:7.0f} ms"
            f"   ({r['completed']}/{r['mentions']} completed)"
        )
    scale = results[2]["mentions_per_s"] / results[0]["mentions_per_s"]
    print(f"  3 vs 1 generator throughput ratio: {scale:.2f}   (targets: ≥ 200 mentions/s, p99 < 1 s)")
    out = Path(__file__).parent / "results" / "pipeline.json"
    out.write_text(json.dumps({"model": args.model, "runs": results, "scale_3_vs_1": scale}, indent=2) + "\n")


if __name__ == "__main__":
    main()

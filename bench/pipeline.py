"""End-to-end capacity: mentions/s and p50/p99 latency through the services as separate processes
(`deephype serve`) on the local RabbitMQ, as in production.

--through published (default): all five services. A mention is POSTed to the listener, enriched, given
candidates, stored and emailed (outbox backend) by the curator, approved at once (DEEPHYPE_CURATOR_AUTO_APPROVE,
standing in for the human), posted by the poster (dry-run platform, no pacing), and announced: latency is
mention POSTed → its PublishedPost on the bus. --through candidates: listener, enricher and generator(s) only,
latency to the Candidates message.

Each setting runs saturated (as fast as --concurrency keep-alive clients can send), then paced at 70% of the
saturated rate (latency at a load the pipeline can carry). Where the time goes: CPU seconds per mention
of each process (the services, the broker, this load generator) from /proc, over the saturated run.

    .venv/bin/python bench/pipeline.py --model null --generators 1           # the bus and the cheap hops
    .venv/bin/python bench/pipeline.py --model lstm --through candidates     # the model
DEEPHYPE_GENERATOR_MODEL=null is the benchmark generator: fixed candidates at once, no model.

The generator micro-batches songs (DEEPHYPE_GENERATOR_BATCH_SIZE, --batch-size). --compare-batching adds,
for each generator count, a saturated run with batch size 1 (each song decoded alone on its handler thread,
as before micro-batching): the anchor for the batching speed-up, in the same run. With an LSTM model the
generator's decode is also put against a matmul peak measured here at the decode's batch shape
(bench/decode.py's): its GFLOP/s while decoding, from the generator's own /metrics counters.

    .venv/bin/python bench/pipeline.py --model lstm --through candidates --no-rank --compare-batching
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pika

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers.processes import ServiceProcess

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
PACED_SHARE = 0.7  # the paced runs offer this share of the saturated throughput
LISTENER_TOKEN = "bench-listener-token"
CATALOG = json.loads((Path(__file__).resolve().parents[1] / "data" / "catalog.json").read_text())["tracks"]
END_ROUTING_KEY = {"published": "post.published", "candidates": "candidates.generated"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its reaped children, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLOCK_TICKS


def broker_pid() -> int | None:
    found = subprocess.run(["pgrep", "-f", "beam.smp.*rabbit"], capture_output=True, text=True).stdout.split()
    return int(found[0]) if found else None


def service_env(
    exchange: str, work: Path, model: str, through: str, threads: int, generator_env: dict[str, str] | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPHYPE_")}
    env.update(
        {
            "DEEPHYPE_AMQP_URL": AMQP_URL,
            "DEEPHYPE_EXCHANGE": exchange,
            "DEEPHYPE_LISTENER_SOURCES": "[]",
            "DEEPHYPE_LISTENER_API_TOKEN": LISTENER_TOKEN,
            "DEEPHYPE_STATE_DIR": str(work / exchange),
            "DEEPHYPE_GENERATOR_MODEL": model,
            "DEEPHYPE_PREFETCH": "256",
            "DEEPHYPE_HANDLER_THREADS": str(threads),
            "DEEPHYPE_LOG_LEVEL": os.environ.get("DEEPHYPE_LOG_LEVEL", "INFO"),  # as in production
            **(generator_env or {}),
        }
    )
    if through == "published":
        env.update(
            {
                "DEEPHYPE_CURATOR_AUTO_APPROVE": "true",
                "DEEPHYPE_APPROVAL_KEYS": secrets.token_hex(32),
                "DEEPHYPE_CURATOR_PASSWORD": secrets.token_hex(16),
                "DEEPHYPE_CURATOR_SECRET_KEY": secrets.token_hex(32),
                "DEEPHYPE_CURATOR_EMAIL_BACKEND": "outbox",
                "DEEPHYPE_POSTER_PLATFORM": "dry_run",
                "DEEPHYPE_POSTER_MIN_GAP_SECONDS": "0",
                "DEEPHYPE_POSTER_GAP_JITTER_SECONDS": "0",
                "DEEPHYPE_POSTER_MAX_PER_HOUR": "100000000",
                "DEEPHYPE_POSTER_MAX_PER_DAY": "100000000",
            }
        )
    return env


class Sender:
    """Keep-alive HTTP/1.1 clients on threads (http.client: a fraction of httpx's CPU per request)."""

    def __init__(self, port: int, concurrency: int) -> None:
        self.port, self.concurrency = port, concurrency
        self.sent_at: dict[str, float] = {}  # trace id → when its POST went out
        self.errors: list[str] = []

    def run(self, mentions: int, rate: float | None) -> None:
        started = time.perf_counter()
        next_index = iter(range(mentions))
        lock = threading.Lock()

        def client() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            headers = {"Authorization": f"Bearer {LISTENER_TOKEN}", "Content-Type": "application/json"}
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    break
                track = CATALOG[index % len(CATALOG)]
                body = json.dumps(
                    {
                        "platform": "http",
                        "post_id": f"b{index}",
                        "author": "bench",
                        "text": f"#NowPlaying {track['artist']} - {track['title']} #{index}",
                    }
                )
                if rate:
                    time.sleep(max(0.0, started + index / rate - time.perf_counter()))
                sent = time.perf_counter()
                connection.request("POST", "/v1/mentions", body, headers)
                response = connection.getresponse()
                answer = response.read()
                if response.status != 202:
                    self.errors.append(f"{response.status}: {answer[:200]!r}")
                    continue
                self.sent_at[json.loads(answer)["trace_id"]] = sent
            connection.close()

        threads = [threading.Thread(target=client) for _ in range(self.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def run(
    generators: int,
    mentions: int,
    concurrency: int,
    model: str,
    through: str,
    threads: int,
    work: Path,
    rate: float | None = None,
    profile_with: str | None = None,
    generator_env: dict[str, str] | None = None,
    idle_timeout: float = 60.0,
) -> dict[str, Any]:
    """Saturated (rate None) or paced at `rate` mentions/s."""
    exchange = f"bench-{uuid.uuid4().hex[:8]}"
    env = service_env(exchange, work, model, through, threads, generator_env)
    names = ["listener", "enricher"] + ["generator"] * generators
    if through == "published":
        names += ["curator", "poster"]
    processes = [ServiceProcess(name, env, work, label=f"{exchange}-{name}-{i}") for i, name in enumerate(names)]
    for process in processes:
        process.start()
    deadline = time.monotonic() + 180
    while not all(p.ready() for p in processes):
        exited = [p.name for p in processes if p.process and p.process.poll() is not None]
        if exited or time.monotonic() > deadline:
            for process in processes:  # not left running (and loading the box) after the bench gives up
                process.stop()
            cleanup(exchange)
            raise SystemExit(f"services did not get ready ({', '.join(exited) or 'timed out'}); logs in {work}")
        time.sleep(0.2)

    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    tap = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(tap, exchange, routing_key=END_ROUTING_KEY[through])
    arrived: dict[str, float] = {}  # trace id → first time its end message was seen

    pids: dict[str, int] = {f"{p.name}-{i}": p.process.pid for i, p in enumerate(processes) if p.process}
    if (broker := broker_pid()) is not None:
        pids["rabbitmq"] = broker
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    own_before = time.process_time()

    profilers = [
        subprocess.Popen(
            [
                *(profile_with, "record", "--nonblocking", "--format", "raw", "--rate", "50", "--duration", "15"),
                *("--pid", str(pid), "--output", str(work / f"profile-{name}.txt")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
        if profile_with and rate is None and name != "rabbitmq"
    ]
    sender = Sender(int(processes[0].url.rsplit(":", 1)[1]), concurrency)
    started = time.perf_counter()
    sending = threading.Thread(target=sender.run, args=(mentions, rate))
    sending.start()
    last = started
    for method, _, body in channel.consume(tap, auto_ack=True, inactivity_timeout=idle_timeout):
        if method is None:
            break
        last = time.perf_counter()
        arrived.setdefault(json.loads(body)["trace_id"], last)
        if len(arrived) >= mentions - len(sender.errors):
            break
    sending.join()
    for profiler in profilers:
        profiler.wait()
    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    cpu["load generator (this process)"] = time.process_time() - own_before
    channel.cancel()
    connection.close()
    decoding = sum_decode_metrics([p for p in processes if p.name == "generator"]) if model != "null" else {}
    for process in processes:
        process.stop()
    cleanup(exchange)

    latencies = sorted(arrived[t] - sent for t, sent in sender.sent_at.items() if t in arrived)
    return {
        "through": through,
        "generators": generators,
        "offered_per_s": rate,
        "mentions": mentions,
        "completed": len(latencies),
        "errors": sender.errors[:5],
        "mentions_per_s": len(latencies) / (last - started),
        "p50_s": statistics.median(latencies) if latencies else None,
        "p99_s": latencies[int(0.99 * (len(latencies) - 1))] if latencies else None,
        "cpu_ms_per_mention": {name: 1000 * seconds / max(1, len(latencies)) for name, seconds in cpu.items()},
        "batch_size": int((generator_env or {}).get("DEEPHYPE_GENERATOR_BATCH_SIZE", "8")),
        "wall_s": last - started,
        **decoding,
    }


def sum_decode_metrics(generators: list[ServiceProcess]) -> dict[str, float]:
    """The generators' own counters (candidates.py, batching.py): seconds in batched decodes, tokens written,
    samples decoded, batches and the songs in them, summed over the generator processes."""
    names = {
        "deephype_generator_decode_seconds_total": "decode_s",
        "deephype_generator_decoded_tokens_total": "decoded_tokens",
        "deephype_generator_decoded_rows_total": "decoded_samples",
        "deephype_generator_batch_size_count": "batches",
        "deephype_generator_batch_size_sum": "batched_songs",
    }
    totals = dict.fromkeys(names.values(), 0.0)
    for process in generators:
        connection = http.client.HTTPConnection("127.0.0.1", process.port, timeout=10)
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
        connection.close()
        for line in text.splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name in names:
                totals[names[name]] += float(line.rsplit(" ", 1)[1])
    return totals


def decoder_share_of_peak(model: str, result: dict[str, Any], threads: int) -> dict[str, float] | None:
    """An LSTM generator's decode GFLOP/s (bench/decode.py's FLOPs per token; written tokens only) against
    torch.matmul of the output layer's shape at the decode's rows per batch, measured here with the
    generator's torch threads."""
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
    rows = max(1, round(result["decoded_samples"] / result["batches"]))
    before = torch.get_num_threads()
    torch.set_num_threads(threads or os.cpu_count() or 1)
    peak = matmul_peak(rows, loaded.config, repeats=max(10, 8192 // rows))
    torch.set_num_threads(before)
    gflops = result["decoded_tokens"] * step_flops(loaded.config) / result["decode_s"] / 1e9
    return {
        "decode_rows_per_batch": rows,
        "decode_gflops": gflops,
        "matmul_peak_gflops": peak,
        "share_of_peak": gflops / peak,
        "decode_busy_share_of_wall": result["decode_s"] / result["wall_s"],
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
    parser.add_argument("--model", default="lstm", help="DEEPHYPE_GENERATOR_MODEL for the generators (null: none)")
    parser.add_argument("--through", choices=sorted(END_ROUTING_KEY), default="published")
    parser.add_argument("--generators", default="1,3", help="generator processes, one setting per comma")
    parser.add_argument("--handler-threads", type=int, default=4)
    parser.add_argument(
        "--py-spy", help="py-spy's path: profile each service for 15 s of the saturated run (stacks in the work dir)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "pipeline.json")
    parser.add_argument("--batch-size", type=int, default=8, help="DEEPHYPE_GENERATOR_BATCH_SIZE")
    parser.add_argument("--batch-wait-ms", type=float, default=5.0, help="DEEPHYPE_GENERATOR_BATCH_WAIT_MS")
    parser.add_argument("--samples", type=int, default=32, help="DEEPHYPE_GENERATOR_SAMPLES per mention")
    parser.add_argument(
        "--rank", action=argparse.BooleanOptionalAction, default=True, help="DEEPHYPE_GENERATOR_RANK (the service's)"
    )
    # On this shared 2-core box torch's OpenMP threads wait on a core that other processes hold: one
    # thread decodes 3-5x faster than two there. 0: the service's default (the cores).
    parser.add_argument("--generator-threads", type=int, default=1, help="DEEPHYPE_GENERATOR_TORCH_THREADS")
    parser.add_argument("--decode-threads", type=int, default=1, help="DEEPHYPE_GENERATOR_DECODE_THREADS")
    # A pretrained-decoder batch on the CPU takes minutes: the run ends only after this long without output.
    parser.add_argument("--idle-timeout", type=float, default=60.0, help="seconds without an end message")
    parser.add_argument("--compare-batching", action="store_true", help="add saturated runs with batch size 1")
    parser.add_argument("--no-paced", action="store_true", help="skip the paced (70%%) latency runs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="deephype-bench-"))
    generator_env = {
        "DEEPHYPE_GENERATOR_BATCH_SIZE": str(args.batch_size),
        "DEEPHYPE_GENERATOR_BATCH_WAIT_MS": str(args.batch_wait_ms),
        "DEEPHYPE_GENERATOR_SAMPLES": str(args.samples),
        "DEEPHYPE_GENERATOR_RANK": "true" if args.rank else "false",
        "DEEPHYPE_GENERATOR_TORCH_THREADS": str(args.generator_threads),
        "DEEPHYPE_GENERATOR_DECODE_THREADS": str(args.decode_threads),
    }
    alone_env = {**generator_env, "DEEPHYPE_GENERATOR_BATCH_SIZE": "1"}
    results, anchors = [], []
    common = (args.mentions, args.concurrency, args.model, args.through, args.handler_threads, work)
    for generators in (int(g) for g in args.generators.split(",")):
        options = {"generator_env": generator_env, "idle_timeout": args.idle_timeout}
        saturated = run(generators, *common, profile_with=args.py_spy, **options)
        if args.model != "null" and (share := decoder_share_of_peak(args.model, saturated, args.generator_threads)):
            saturated.update(share)
        results.append(saturated)
        if not args.no_paced:
            # Latency under a load the pipeline can carry: past saturation it only measures the queue's length.
            rate = PACED_SHARE * float(saturated["mentions_per_s"] or 0)
            results.append(run(generators, *common, rate=rate, **options))
        if args.compare_batching:
            anchors.append(run(generators, *common, generator_env=alone_env, idle_timeout=args.idle_timeout))
    print(
        f"mention → {END_ROUTING_KEY[args.through]}, {args.mentions} mentions, model {args.model!r}, "
        f"{os.cpu_count()} CPUs, {args.concurrency} clients"
    )
    for r in results + anchors:
        offered = "as fast as possible" if r["offered_per_s"] is None else f"paced at {r['offered_per_s']:.1f}/s"
        p50 = f"{r['p50_s'] * 1000:7.0f}" if r["p50_s"] is not None else "      -"
        p99 = f"{r['p99_s'] * 1000:7.0f}" if r["p99_s"] is not None else "      -"
        print(
            f"  generators={r['generators']} batch={r['batch_size']} {offered:>20}:"
            f" {r['mentions_per_s']:7.1f} mentions/s"
            f"   p50 {p50} ms   p99 {p99} ms   ({r['completed']}/{r['mentions']} completed)"
        )
        if r["errors"]:
            print(f"    errors: {r['errors']}")
        if r["offered_per_s"] is None:
            spent = "  ".join(f"{name} {ms:.2f}" for name, ms in r["cpu_ms_per_mention"].items())
            print(f"    CPU ms per mention: {spent}")
        if r.get("share_of_peak") is not None:
            print(
                f"    decoder: {r['decode_gflops']:.2f} GFLOP/s while decoding, {r['share_of_peak']:.1%} of a "
                f"{r['matmul_peak_gflops']:.2f} GFLOP/s matmul peak at batch {r['decode_rows_per_batch']:.0f}; "
                f"decoding {r['decode_busy_share_of_wall']:.0%} of the wall time"
            )
    saturated_runs = [r for r in results if r["offered_per_s"] is None]
    speedups = [s["mentions_per_s"] / a["mentions_per_s"] for s, a in zip(saturated_runs, anchors, strict=False)]
    for run_, speedup in zip(saturated_runs, speedups, strict=False):
        print(
            f"  generators={run_['generators']}: micro-batched (batch {args.batch_size}) / one song at a time: "
            f"{speedup:.2f}x mentions/s ({args.samples} samples each)"
        )
    if len(results) >= 4 and not anchors:
        print(
            f"  throughput ratio, generators {results[2]['generators']} vs {results[0]['generators']}: "
            f"{results[2]['mentions_per_s'] / results[0]['mentions_per_s']:.2f}"
        )
    print(f"  logs and profiles: {work}")
    print("  targets (null generator, all five): ≥ 1,000 mentions/s; p99 < 1 s at 70% of that")
    args.out.parent.mkdir(exist_ok=True)
    report = {
        "command": " ".join(sys.argv),
        "model": args.model,
        "through": args.through,
        "generator_env": generator_env,
        "runs": results,
        "anchors_batch_size_1": anchors,
        "batching_speedup": speedups,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Our bus layer vs raw pika, same broker, same run: publish N messages with publisher confirms, then
consume and ack them all. Prints messages/s for each and the ratio (target: ours ≥ 50% of raw).

    .venv/bin/python bench/bus.py [--messages 5000]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from pathlib import Path

import pika

from deephype.common.bus import Subscription, queue_name
from deephype.common.contracts import SongMention, encode
from deephype.common.rabbit import RabbitBus
from deephype.common.settings import Settings

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def sample_mention(index: int) -> SongMention:
    return SongMention(
        platform="http",
        post_id=f"bench-{index}",
        author="bench",
        text=f"#np Low Tide - Glass Harbour, take {index}",
        artist="Low Tide",
        title="Glass Harbour",
    )


def raw_pika(bodies: list[bytes], prefetch: int) -> tuple[float, float]:
    """Publish with confirms on one channel, then consume with manual acks. Returns (publish s, consume s)."""
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    name = f"bench-raw-{uuid.uuid4().hex[:8]}"
    channel.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
    channel.confirm_delivery()
    properties = pika.BasicProperties(delivery_mode=2, content_type="application/json")
    started = time.perf_counter()
    for body in bodies:
        channel.basic_publish("", name, body, properties, mandatory=True)
    published = time.perf_counter()
    channel.basic_qos(prefetch_count=prefetch)
    received = 0

    def on_message(ch, method, _properties, _body) -> None:  # type: ignore[no-untyped-def]
        nonlocal received
        ch.basic_ack(method.delivery_tag)
        received += 1
        if received == len(bodies):
            ch.stop_consuming()

    channel.basic_consume(name, on_message)
    channel.start_consuming()
    consumed = time.perf_counter()
    channel.queue_delete(name)
    connection.close()
    return published - started, consumed - published


def ours(messages: list[SongMention], prefetch: int, threads: int) -> tuple[float, float]:
    settings = Settings(
        _env_file=None,
        amqp_url=AMQP_URL,
        exchange=f"bench-{uuid.uuid4().hex[:8]}",  # type: ignore[call-arg]
        prefetch=prefetch,
        handler_threads=threads,
    )
    bus = RabbitBus(settings, connection_name="bench")
    started = time.perf_counter()
    for message in messages:
        bus.publish(message)
    published = time.perf_counter()
    done = threading.Event()
    count = 0
    lock = threading.Lock()

    def handle(message: object) -> list:  # type: ignore[type-arg]
        nonlocal count
        with lock:
            count += 1
            if count == len(messages):
                done.set()
        return []

    bus.subscribe(Subscription("enricher", {SongMention: handle}))
    consume_started = time.perf_counter()
    bus.start()
    done.wait(600)
    # The last ack is sent by the consumer's I/O thread right after; wait for the queue to show it.
    consumed = time.perf_counter()
    bus.stop()
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    for service in ("enricher", "generator", "curator", "poster", "dead-letter"):
        channel.queue_delete(queue_name(settings.exchange, service))
        for delay in settings.retry_delays:
            channel.queue_delete(f"{settings.exchange}.{service}.retry.{int(delay * 1000)}ms")
    channel.exchange_delete(settings.exchange)
    connection.close()
    return published - started, consumed - consume_started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--prefetch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    messages = [sample_mention(i) for i in range(args.messages)]
    bodies = [encode(m) for m in messages]
    raw_publish, raw_consume = raw_pika(bodies, args.prefetch)
    our_publish, our_consume = ours(messages, args.prefetch, args.threads)
    n = args.messages
    result = {
        "messages": n,
        "body_bytes": len(bodies[0]),
        "raw": {
            "publish_per_s": n / raw_publish,
            "consume_per_s": n / raw_consume,
            "round_trip_per_s": n / (raw_publish + raw_consume),
        },
        "ours": {
            "publish_per_s": n / our_publish,
            "consume_per_s": n / our_consume,
            "round_trip_per_s": n / (our_publish + our_consume),
        },
    }
    result["ratio_publish"] = result["ours"]["publish_per_s"] / result["raw"]["publish_per_s"]
    result["ratio_consume"] = result["ours"]["consume_per_s"] / result["raw"]["consume_per_s"]
    result["ratio_round_trip"] = result["ours"]["round_trip_per_s"] / result["raw"]["round_trip_per_s"]
    print(f"{n} messages of {len(bodies[0])} bytes, publisher confirms, quorum queues, same broker")
    for who in ("raw", "ours"):
        r = result[who]
        print(
            f"  {who:<5} publish {r['publish_per_s']:8.0f}/s   consume+ack {r['consume_per_s']:8.0f}/s   "
            f"round trip {r['round_trip_per_s']:8.0f}/s"
        )
    print(
        f"  ours/raw: publish {result['ratio_publish']:.2f}, consume {result['ratio_consume']:.2f}, "
        f"round trip {result['ratio_round_trip']:.2f}  (target ≥ 0.50)"
    )
    out = Path(__file__).parent / "results" / "bus.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

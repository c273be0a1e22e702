"""Our bus vs raw pika on the same broker in the same run: publish N persistent messages to a quorum queue
with publisher confirms, then consume and ack them all.

The anchor is the fastest honest raw publisher: a pika SelectConnection with pipelined confirms (up to
--window unconfirmed messages in flight), publishing pre-encoded bodies. Consumption's anchor is a raw
BlockingConnection consumer acking each message in its callback. Our bus publishes the same messages with
`publish_many` (encoding each, all in flight, every one confirmed) and consumes them through the service
consumer (handler thread pool, ack after the outputs are confirmed). Also shown: our one-at-a-time
`publish` (what the listener's POST does), which waits for its confirm. Target: ours ≥ 25% of the
pipelined raw publish rate, for publish and consume.

    .venv/bin/python bench/bus.py [--messages 20000]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

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


def raw_pipelined_publish(queue: str, bodies: list[bytes], window: int) -> float:
    """Seconds to publish every body with confirms pipelined on one SelectConnection channel."""
    properties = pika.BasicProperties(delivery_mode=2, content_type="application/json")
    connection: pika.SelectConnection | None = None
    state = {"sent": 0, "low": 1, "started": 0.0, "finished": 0.0}
    pending: set[int] = set()

    def publish_more(channel: Any) -> None:
        while state["sent"] < len(bodies) and len(pending) < window:
            channel.basic_publish("", queue, bodies[int(state["sent"])], properties, mandatory=True)
            state["sent"] += 1
            pending.add(int(state["sent"]))

    def on_confirm(frame: Any) -> None:
        method = frame.method
        if isinstance(method, pika.spec.Basic.Nack):
            raise RuntimeError("the broker nacked a publish")
        if method.multiple:
            for tag in range(int(state["low"]), method.delivery_tag + 1):
                pending.discard(tag)
            state["low"] = max(state["low"], method.delivery_tag + 1)
        else:
            pending.discard(method.delivery_tag)
        if state["sent"] == len(bodies) and not pending:
            state["finished"] = time.perf_counter()
            assert connection is not None
            connection.close()
        else:
            publish_more(channels[0])

    channels: list[Any] = []

    def on_channel(channel: Any) -> None:
        channels.append(channel)

        def confirm_mode(_frame: Any) -> None:
            state["started"] = time.perf_counter()
            publish_more(channel)

        channel.confirm_delivery(on_confirm, callback=confirm_mode)

    connection = pika.SelectConnection(
        pika.URLParameters(AMQP_URL),
        on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
        on_close_callback=lambda c, _reason: c.ioloop.stop(),
    )
    connection.ioloop.start()
    if not state["finished"]:
        raise RuntimeError("the raw publisher stopped before every message was confirmed")
    return state["finished"] - state["started"]


def raw_pika(bodies: list[bytes], prefetch: int, window: int) -> tuple[float, float]:
    """Pipelined publish, then consume with manual acks. Returns (publish s, consume s)."""
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    name = f"bench-raw-{uuid.uuid4().hex[:8]}"
    channel.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
    publish_seconds = raw_pipelined_publish(name, bodies, window)
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
    return publish_seconds, consumed - published


def ours(messages: list[SongMention], prefetch: int, threads: int, one_at_a_time: int) -> tuple[float, float, float]:
    """(publish_many s, consume s, s per message published one at a time)."""
    settings = Settings(
        _env_file=None,
        amqp_url=AMQP_URL,
        exchange=f"bench-{uuid.uuid4().hex[:8]}",  # type: ignore[call-arg]
        prefetch=prefetch,
        handler_threads=threads,
    )
    bus = RabbitBus(settings, connection_name="bench")
    assert bus.is_connected()  # connect and declare before the clock starts, as the raw anchor does
    started = time.perf_counter()
    for message in messages[:one_at_a_time]:
        bus.publish(message)
    single = (time.perf_counter() - started) / max(1, one_at_a_time)
    started = time.perf_counter()
    bus.publish_many(messages[one_at_a_time:])
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
    # publish_many's share of the messages; the consumer handles them all.
    many = len(messages) - one_at_a_time
    return (published - started) * len(messages) / max(1, many), consumed - consume_started, single


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--window", type=int, default=2000, help="the raw publisher's unconfirmed messages")
    parser.add_argument("--prefetch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--one-at-a-time", type=int, default=300, help="of the messages, published one by one")
    args = parser.parse_args()
    messages = [sample_mention(i) for i in range(args.messages)]
    bodies = [encode(m) for m in messages]
    raw_publish, raw_consume = raw_pika(bodies, args.prefetch, args.window)
    our_publish, our_consume, our_single = ours(messages, args.prefetch, args.threads, args.one_at_a_time)
    n = args.messages
    anchor = n / raw_publish
    result: dict[str, Any] = {
        "messages": n,
        "body_bytes": len(bodies[0]),
        "raw_window": args.window,
        "raw": {"publish_pipelined_per_s": anchor, "consume_per_s": n / raw_consume},
        "ours": {
            "publish_many_per_s": n / our_publish,
            "publish_one_at_a_time_per_s": 1 / our_single,
            "consume_per_s": n / our_consume,
        },
    }
    result["ratio_publish"] = result["ours"]["publish_many_per_s"] / anchor
    result["ratio_consume"] = result["ours"]["consume_per_s"] / anchor
    result["ratio_consume_to_raw_consume"] = result["ours"]["consume_per_s"] / result["raw"]["consume_per_s"]
    raw, mine = result["raw"], result["ours"]
    print(f"{n} persistent messages of {len(bodies[0])} bytes, quorum queue, publisher confirms, same broker")
    print(f"  raw  publish, pipelined ({args.window} in flight) {raw['publish_pipelined_per_s']:8.0f}/s  (anchor)")
    print(f"  raw  consume+ack                        {raw['consume_per_s']:8.0f}/s")
    print(f"  ours publish_many                       {mine['publish_many_per_s']:8.0f}/s")
    print(f"  ours publish one at a time              {mine['publish_one_at_a_time_per_s']:8.0f}/s")
    print(f"  ours consume+ack ({args.threads} handler threads)    {mine['consume_per_s']:8.0f}/s")
    print(
        f"  ours / raw pipelined publish: publish {result['ratio_publish']:.2f}, "
        f"consume {result['ratio_consume']:.2f}  (target ≥ 0.25); "
        f"consume / raw consume {result['ratio_consume_to_raw_consume']:.2f}"
    )
    out = Path(__file__).parent / "results" / "bus.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

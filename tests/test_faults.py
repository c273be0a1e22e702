"""The fault suite: 1,000 mentions through all five services as separate processes over the real local
RabbitMQ, while each service is killed (-9) once and restarted and the broker is restarted once; poison
messages are thrown in too. At the end every mention is in exactly one terminal state: published after
approval, no song found, or dead-lettered with a reason. 0 lost, 0 published twice, 0 without approval.

Run alone with `pytest -m faults`. It restarts the local broker's app (rabbitmqctl stop_app/start_app).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pika
import pytest

from deephype.common.bus import queue_name
from deephype.common.rabbit import RabbitBus, _properties
from deephype.common.settings import Settings
from tests.conftest import wait_until
from tests.helpers.processes import SERVICES, ServiceProcess

# The test bounds itself (the sender's 900 s, the timeline's 600 s); pytest's 300 s default cut it short
# on a loaded machine with songs still flowing, which says nothing about loss.
pytestmark = [pytest.mark.faults, pytest.mark.rabbitmq, pytest.mark.slow, pytest.mark.timeout(900)]
REPO = Path(__file__).resolve().parents[1]
MENTIONS = int(os.environ.get("DEEPHYPE_FAULT_MENTIONS", "1000"))
CATALOG = json.loads((REPO / "data" / "catalog.json").read_text())["tracks"]


# Every secret setting is configured (for services that do not use them too): none may reach a log.
SECRETS = {
    "DEEPHYPE_CURATOR_PASSWORD": "pw-6f1c2e9a-curator",
    "DEEPHYPE_LISTENER_API_TOKEN": "listener-0c4b8e2f",
    "DEEPHYPE_CURATOR_SECRET_KEY": "key-9b7d4c1e-signing-secret-0123456789",
    "DEEPHYPE_APPROVAL_KEYS": "approval-4d2f8b1e-new-key-0123456789abcdef,approval-0a9c3e7d-old-key-0123456789",
    "DEEPHYPE_SMTP_PASSWORD": "smtp-3a8e5f2b",
    "DEEPHYPE_SENDGRID_API_KEY": "SG.sendgrid-7c2d9e4f",
    "DEEPHYPE_X_BEARER_TOKEN": "x-bearer-1d5f8a3c",
    "DEEPHYPE_X_CONSUMER_SECRET": "x-consumer-4e7b2a9d",
    "DEEPHYPE_X_ACCESS_TOKEN_SECRET": "x-access-8f3c6e1b",
    "DEEPHYPE_MASTODON_ACCESS_TOKEN": "masto-2b9e7d4a",
    "DEEPHYPE_BLUESKY_APP_PASSWORD": "bsky-5c1a8f3e",
    "DEEPHYPE_SPOTIFY_CLIENT_SECRET": "spotify-6e4d2b9c",
}


def mention_text(index: int) -> tuple[str, bool]:
    """Texts we write: most name a catalog song in one of several styles; some name none."""
    track = CATALOG[index % len(CATALOG)]
    styles = [
        f"#NowPlaying {track['artist']} - {track['title']} ({index})",
        f"“{track['title']}” by {track['artist']} has been on repeat, day {index}",
        f"Now playing: {track['artist']} – {track['title']} #{index}",
    ]
    if index % 10 == 7:
        return f"Meeting moved to 10:00 - 11:30 on day {index}", False
    return styles[index % len(styles)], True


@pytest.fixture
def stack(rabbit_settings: Settings, tmp_path: Path) -> Iterator[tuple[dict[str, ServiceProcess], Settings]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPHYPE_")}
    env.update(
        {
            "DEEPHYPE_AMQP_URL": rabbit_settings.amqp_url,
            "DEEPHYPE_EXCHANGE": rabbit_settings.exchange,
            "DEEPHYPE_STATE_DIR": str(tmp_path / "state"),
            "DEEPHYPE_LISTENER_SOURCES": "[]",
            "DEEPHYPE_CURATOR_AUTO_APPROVE": "true",
            "DEEPHYPE_RETRY_DELAYS": "[0.5, 2.0, 5.0]",
            "DEEPHYPE_MAX_ATTEMPTS": "8",
            "DEEPHYPE_HEARTBEAT_SECONDS": "10",
            "DEEPHYPE_PUBLISH_TIMEOUT_SECONDS": "60",
            "DEEPHYPE_HANDLER_THREADS": "4",
            "DEEPHYPE_GENERATOR_MODEL": os.environ.get("DEEPHYPE_FAULT_MODEL", "lstm"),
            "DEEPHYPE_GENERATOR_RANK": "false",
            # No pacing: every approval is due at once (the schedule has its own tests, with a test clock).
            "DEEPHYPE_POSTER_MIN_GAP_SECONDS": "0",
            "DEEPHYPE_POSTER_GAP_JITTER_SECONDS": "0",
            "DEEPHYPE_POSTER_MAX_PER_HOUR": "1000000",
            "DEEPHYPE_POSTER_MAX_PER_DAY": "1000000",
            **SECRETS,
        }
    )
    services = {name: ServiceProcess(name, env, tmp_path) for name in SERVICES}
    for service in services.values():
        service.start()
    assert wait_until(lambda: all(s.ready() for s in services.values()), timeout=120), "services did not get ready"
    yield services, rabbit_settings.with_overrides(state_dir=tmp_path / "state")
    for service in services.values():
        service.stop()


def post_mentions(listener: ServiceProcess, count: int, failures: list[str]) -> None:
    """A webhook sender: each post is retried until the listener answers (it may be down or restarting)."""
    token = SECRETS["DEEPHYPE_LISTENER_API_TOKEN"]
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        for index in range(count):
            text, _ = mention_text(index)
            body = {"platform": "http", "post_id": f"fault-{index}", "author": f"user{index % 37}", "text": text}
            for _ in range(600):
                try:
                    if client.post(listener.url + "/v1/mentions", json=body).status_code < 300:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            else:
                failures.append(f"post fault-{index} was never accepted")


def restart_broker() -> None:
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=120)
    time.sleep(2)
    subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)


def rows(path: Path, sql: str) -> list[sqlite3.Row]:
    connection = sqlite3.connect(path, timeout=30)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def test_nothing_lost_nothing_twice_nothing_unapproved(stack: tuple[dict[str, ServiceProcess], Settings]) -> None:
    services, settings = stack
    state = settings.state_dir
    failures: list[str] = []
    sender = threading.Thread(target=post_mentions, args=(services["listener"], MENTIONS, failures))
    sender.start()

    # Poison on every service queue while the flow goes on.
    bus = RabbitBus(settings, connection_name="fault-suite")
    poison = [
        b"{not json",
        b'{"schema_version": 7, "kind": "song_mention"}',
        b'{"schema_version": 1}',
        b'{"schema_version": 1, "kind": "approval", "x": "' + b"y" * 1_200_000 + b'"}',
    ]
    for service in ("enricher", "generator", "curator", "poster"):
        for body in poison:
            bus.publish_raw("", queue_name(settings.exchange, service), body, _properties(None))

    # Kill -9 each service once, in a random order, restarting it a moment later; restart the broker once.
    order = list(SERVICES)
    random.Random(7).shuffle(order)
    for position, name in enumerate(order):
        time.sleep(1.5)
        services[name].kill()
        time.sleep(0.5)
        services[name].start()
        if position == 2:
            restart_broker()
    sender.join(timeout=900)
    assert not sender.is_alive() and not failures, failures

    listener_db = state / "listener" / "listener.sqlite3"
    curator_db = state / "curator" / "curator.sqlite3"
    poster_db = state / "poster" / "poster.sqlite3"
    expected_songs = sum(mention_text(i)[1] for i in range(MENTIONS))

    def settled() -> bool:
        published = rows(curator_db, "SELECT COUNT(*) AS n FROM songs WHERE status='published'")[0]["n"]
        return published >= expected_songs

    assert wait_until(settled, timeout=600, interval=1.0), "not every song reached the timeline"

    posts = {r["post_id"]: r for r in rows(listener_db, "SELECT * FROM posts")}
    assert len(posts) == MENTIONS, "a mention was lost at the listener"
    no_song = {p for p, r in posts.items() if r["status"] == "no_song"}
    assert no_song == {f"fault-{i}" for i in range(MENTIONS) if not mention_text(i)[1]}
    song_traces = {r["trace_id"] for r in posts.values() if r["status"] == "on_bus"}
    assert len(song_traces) == expected_songs

    songs = rows(curator_db, "SELECT * FROM songs")
    assert sorted(s["trace_id"] for s in songs) == sorted(song_traces), "each mention: exactly one candidate set"
    approved = {r["set_id"] for r in rows(curator_db, "SELECT * FROM decisions WHERE decision='approved'")}
    ledger = rows(poster_db, "SELECT * FROM outbox")
    timeline = rows(poster_db, "SELECT * FROM timeline")
    assert len(ledger) == len(timeline) == expected_songs, "published twice, or not at all"
    assert {r["state"] for r in ledger} == {"published"}
    assert len({t["idempotency_key"] for t in timeline}) == len(timeline)
    approvals = {s["approval_id"]: s["set_id"] for s in songs}
    assert all(approvals[r["approval_id"]] in approved for r in ledger), "a post without an approval"

    # Only the poison is in the dead-letter queue, each with its reason.
    dead = bus.dead_letters(limit=100)
    assert len(dead) == 4 * len(poison), [d.reason for d in dead]
    reasons = " | ".join(d.reason for d in dead)
    for expected in ("not JSON", "schema_version 7", "failed validation", "too large"):
        assert expected in reasons

    # The operator's view and replay of them.
    env = {**os.environ, "DEEPHYPE_AMQP_URL": settings.amqp_url, "DEEPHYPE_EXCHANGE": settings.exchange}
    listing = subprocess.run(
        [sys.executable, "-m", "deephype.cli", "dlq", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert len(listing.stdout.strip().splitlines()) == len(dead)
    assert all(json.loads(line)["reason"] for line in listing.stdout.splitlines())
    replay = subprocess.run(
        [sys.executable, "-m", "deephype.cli", "dlq", "replay"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert f"replayed {len(dead)}" in replay.stdout
    assert wait_until(lambda: len(bus.dead_letters(limit=100)) == len(dead), timeout=60)  # poison stays poison
    bus.stop()
    for service in services.values():
        service.stop()
    logs = "".join(path.read_text(errors="replace") for path in state.parent.glob("*.log"))
    assert "Application startup complete" in logs  # the logs are really there
    leaked = [name for name, secret in SECRETS.items() if secret in logs]
    assert not leaked, f"secrets in the logs: {leaked}"
    with pika.BlockingConnection(pika.URLParameters(settings.amqp_url)) as connection:
        assert connection.is_open  # the broker is back and serving

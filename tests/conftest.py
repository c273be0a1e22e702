"""Shared fixtures. Tests that need the broker use the real local RabbitMQ; each gets its own exchange
and queues (a random prefix), deleted afterwards, so tests never see each other's messages."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pika
import pytest

from deephype.common.bus import DEAD_LETTER_QUEUE, QUEUE_BINDINGS, queue_name, retry_queue_name
from deephype.common.settings import Settings
from deephype.generator.source import CandidateSource
from tests.fakes import bluesky as fake_bluesky
from tests.fakes import mastodon as fake_mastodon
from tests.fakes import x as fake_x
from tests.helpers.postgres import postgres_url  # noqa: F401  (a fixture: a fresh PostgreSQL database per run)

AMQP_URL = os.environ.get("DEEPHYPE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
# The delivery tests run the bundled LSTM VAE: milliseconds per song, where the default pretrained-decoder
# model takes seconds on a CPU (its own tests are in test_pretrained_vae.py and test_default_model.py).
BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "data" / "models" / "lstm"
SHARED_BLOG_SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "blog_posts_sample.json"


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.05) -> bool:
    """Poll until predicate() is truthy; tests assert on the result, never on how long it took."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@cache
def bundled_model() -> CandidateSource:
    """The bundled LSTM model (data/models/lstm) as the generator serves it, loaded once per test run."""
    from deephype.generator.candidates import ModelCandidateSource

    # Ranked by the decoder's own likelihood: the independent ranker has tests of its own (test_pretrained_vae).
    return ModelCandidateSource.load(BUNDLED_MODEL, Settings(_env_file=None, generator_rank=False))  # type: ignore[call-arg]


# The curator signs approvals with it and the poster checks them (needed over RabbitMQ; see signing.py).
TEST_APPROVAL_KEY = "test-approval-key-7d1e0c5a9b3f4e2d8c6a"


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "state_dir": tmp_path / "state",
        "approval_keys": TEST_APPROVAL_KEY,
        "retry_delays": [0.2, 0.5, 1.0],
        "max_attempts": 3,
        "handler_threads": 2,
        "shutdown_grace_seconds": 2.0,
        "publish_timeout_seconds": 10.0,
        # Delivery tests need candidates, not the independent ranker (which would load a 1.5 GB LM per copy).
        "generator_rank": False,
        # Posts go out as soon as they are approved: pacing has its own tests, with a test clock.
        "poster_min_gap_seconds": 0.0,
        "poster_gap_jitter_seconds": 0.0,
        "poster_max_per_hour": 100_000,
        "poster_max_per_day": 100_000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def delete_topology(settings: Settings) -> None:
    """Delete every queue of this test's exchange, whatever retry tiers its processes declared."""
    listed = subprocess.run(
        ["rabbitmqctl", "list_queues", "name", "--quiet", "--no-table-headers"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    names = {line.strip() for line in listed.stdout.splitlines() if line.startswith(f"{settings.exchange}.")}
    names |= {queue_name(settings.exchange, service) for service in [*QUEUE_BINDINGS, DEAD_LETTER_QUEUE]}
    names |= {
        retry_queue_name(settings.exchange, service, delay)
        for service in QUEUE_BINDINGS
        for delay in settings.retry_delays
    }
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    channel = connection.channel()
    for name in sorted(names):
        channel.queue_delete(name)
    channel.exchange_delete(settings.exchange)
    connection.close()


@pytest.fixture
def rabbit_settings(tmp_path: Path) -> Iterator[Settings]:
    try:
        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
    except pika.exceptions.AMQPConnectionError as exc:
        pytest.fail(f"RabbitMQ is not reachable at {AMQP_URL} ({exc!r}); `make test` starts it")
    settings = make_settings(tmp_path, amqp_url=AMQP_URL, exchange=f"test-{uuid.uuid4().hex[:10]}")
    yield settings
    delete_topology(settings)


# Fake X / Mastodon / Bluesky servers, shared by the platform source and publisher tests.
@pytest.fixture
def x() -> Iterator[fake_x.FakeX]:
    with fake_x.FakeX() as fake:
        yield fake


@pytest.fixture
def mastodon() -> Iterator[fake_mastodon.FakeMastodon]:
    with fake_mastodon.FakeMastodon() as fake:
        yield fake


@pytest.fixture
def bluesky() -> Iterator[fake_bluesky.FakeBluesky]:
    with fake_bluesky.FakeBluesky() as fake:
        yield fake

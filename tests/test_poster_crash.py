"""kill -9 the poster (a real `deephype serve poster` on RabbitMQ) mid-queue, twice, each time in the middle
of a platform call; after the restarts every approved post is out exactly once on X, Mastodon and Bluesky."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from deephype.common.rabbit import RabbitBus
from deephype.common.settings import Settings
from tests.conftest import TEST_APPROVAL_KEY, wait_until
from tests.fakes import bluesky as fb
from tests.fakes import mastodon as fm
from tests.fakes import x as fx
from tests.fakes.server import Fault
from tests.helpers.processes import ServiceProcess
from tests.test_post_composition import CREDIT, approve

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]
PLATFORMS = ("x", "mastodon", "bluesky")


def poster_env(settings: Settings, x: fx.FakeX, mastodon: fm.FakeMastodon, bluesky: fb.FakeBluesky) -> dict[str, str]:
    return {
        **os.environ,
        "DEEPHYPE_AMQP_URL": settings.amqp_url,
        "DEEPHYPE_EXCHANGE": settings.exchange,
        "DEEPHYPE_STATE_DIR": str(settings.state_dir),
        "DEEPHYPE_APPROVAL_KEYS": TEST_APPROVAL_KEY,
        "DEEPHYPE_LOG_FORMAT": "text",
        "DEEPHYPE_RETRY_DELAYS": "[0.2, 0.5, 1.0]",
        "DEEPHYPE_POSTER_PLATFORMS": json.dumps(PLATFORMS),
        # A human pace, sped up: each platform's posts come 0.2-0.3 s apart, so a kill lands mid-queue.
        "DEEPHYPE_POSTER_MIN_GAP_SECONDS": "0.2",
        "DEEPHYPE_POSTER_GAP_JITTER_SECONDS": "0.1",
        "DEEPHYPE_POSTER_MAX_PER_HOUR": "1000",
        "DEEPHYPE_POSTER_MAX_PER_DAY": "1000",
        "DEEPHYPE_PLATFORM_TIMEOUT_SECONDS": "120",  # a hanging call stays in flight until the kill
        "DEEPHYPE_X_BASE_URL": x.url,
        "DEEPHYPE_X_CONSUMER_KEY": fx.CONSUMER_KEY,
        "DEEPHYPE_X_CONSUMER_SECRET": fx.CONSUMER_SECRET,
        "DEEPHYPE_X_ACCESS_TOKEN": fx.ACCESS_TOKEN,
        "DEEPHYPE_X_ACCESS_TOKEN_SECRET": fx.ACCESS_TOKEN_SECRET,
        "DEEPHYPE_MASTODON_BASE_URL": mastodon.url,
        "DEEPHYPE_MASTODON_ACCESS_TOKEN": fm.ACCESS_TOKEN,
        "DEEPHYPE_BLUESKY_BASE_URL": bluesky.url,
        "DEEPHYPE_BLUESKY_HANDLE": fb.BOT_HANDLE,
        "DEEPHYPE_BLUESKY_APP_PASSWORD": fb.BOT_PASSWORD,
    }


def test_kill_9_mid_queue_and_mid_call_then_restart_posts_everything_exactly_once_per_platform(
    rabbit_settings: Settings,
    tmp_path: Path,
    x: fx.FakeX,
    mastodon: fm.FakeMastodon,
    bluesky: fb.FakeBluesky,
) -> None:
    count = 5
    approvals = [
        approve(tmp_path / f"a{i}", PLATFORMS, f"Take {i}: cold water, warm light.", post_id=f"p{i}")
        for i in range(count)
    ]
    expected = {f"Take {i}: cold water, warm light." + CREDIT for i in range(count)}
    bus = RabbitBus(rabbit_settings, connection_name="poster-crash-test")
    for approval in approvals:
        bus.publish(approval)
    # The first X post is made but never answered (the kill comes mid-call, after it went out); the first
    # Bluesky post is never made (mid-call, before it went out).
    x.server.fail("/2/tweets", Fault(hang_after=True, times=1))
    bluesky.server.fail("/xrpc/com.atproto.repo.createRecord", Fault(hang=True, times=1))
    env = poster_env(rabbit_settings, x, mastodon, bluesky)
    runs = [ServiceProcess("poster", env, tmp_path, label=f"poster-{n}") for n in range(3)]
    try:
        runs[0].start()
        assert wait_until(lambda: len(x.posted_by_bot()) == 1, timeout=60)  # in flight on X, and out
        runs[0].kill()
        assert (len(mastodon.posted_by_bot()), len(bluesky.posted_by_bot())) == (0, 0)

        runs[1].start()
        creates = "/xrpc/com.atproto.repo.createRecord"
        assert wait_until(lambda: any(r.path == creates for r in bluesky.server.requests), timeout=60)
        assert wait_until(lambda: len(mastodon.posted_by_bot()) >= 1, timeout=30)
        runs[1].kill()  # in flight on Bluesky, not out; the rest still queued
        assert len(x.posted_by_bot()) < count and bluesky.posted_by_bot() == []

        runs[2].start()
        assert wait_until(
            lambda: all(len(fake.posted_by_bot()) >= count for fake in (x, mastodon, bluesky)), timeout=90
        )
        assert wait_until(runs[2].ready, timeout=30)
        assert wait_until(lambda: bus.queue_depths()["poster"] == 0)
    finally:
        for run in runs:
            run.stop()
        bus.stop()
    for fake in (x, mastodon, bluesky):
        texts = [post.text for post in fake.posted_by_bot()]
        assert sorted(texts) == sorted(expected), type(fake).__name__  # every one, none twice
    assert bus.dead_letters() == []
    logs = "".join((tmp_path / f"poster-{n}.log").read_text() for n in range(3))
    assert "already has post" in logs and "never went out, posting it now" in logs

"""kill -9 a consumer while it handles a message (before the ack): after a restart the message is handled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from deephype.common.rabbit import RabbitBus
from deephype.common.settings import Settings
from tests.conftest import wait_until
from tests.test_bus import mention

pytestmark = pytest.mark.rabbitmq
REPO = Path(__file__).resolve().parents[1]


def start_consumer(settings: Settings, log: Path, *, hang: bool) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TEST_AMQP_URL": settings.amqp_url, "TEST_EXCHANGE": settings.exchange}
    command = [sys.executable, "-m", "tests.helpers.slow_consumer", "--log", str(log), *(["--hang"] if hang else [])]
    return subprocess.Popen(command, cwd=REPO, env=env)


def test_a_message_in_flight_when_its_consumer_dies_is_handled_after_restart(
    rabbit_settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "handled.log"
    log.touch()
    bus = RabbitBus(rabbit_settings, connection_name="crash-test")
    sent = mention("crash-1")
    bus.publish(sent)

    first = start_consumer(rabbit_settings, log, hang=True)
    try:
        assert wait_until(lambda: f"started {sent.message_id}" in log.read_text(), timeout=30)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        first.kill()
    assert f"done {sent.message_id}" not in log.read_text()

    second = start_consumer(rabbit_settings, log, hang=False)
    try:
        assert wait_until(lambda: f"done {sent.message_id} pid={second.pid}" in log.read_text(), timeout=60)
        assert wait_until(lambda: bus.queue_depths()["enricher"] == 0)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=10)
        bus.stop()
    assert bus.dead_letters() == []

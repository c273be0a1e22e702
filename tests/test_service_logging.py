"""`deephype serve` logs: JSON lines with time, level, service and trace id by default (one mention's
lines in three services share its trace id), readable text with DEEPHYPE_LOG_FORMAT=text. The INFO lines
that tell the story (mention seen, curator emailed, post published) appear."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deephype.common.rabbit import RabbitBus
from deephype.common.settings import Settings
from tests.conftest import TEST_APPROVAL_KEY, wait_until
from tests.factories import candidates
from tests.helpers.processes import ServiceProcess

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]
TOKEN = "listener-token-for-logs"


def service_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPHYPE_")}
    env.update(
        {
            "DEEPHYPE_STATE_DIR": str(tmp_path / "state"),
            "DEEPHYPE_LISTENER_SOURCES": "[]",
            "DEEPHYPE_LISTENER_API_TOKEN": TOKEN,
            "DEEPHYPE_APPROVAL_KEYS": TEST_APPROVAL_KEY,
            "DEEPHYPE_CURATOR_AUTO_APPROVE": "true",
            **extra,
        }
    )
    return env


@pytest.fixture
def processes() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        process.stop()


def start(processes: list[ServiceProcess], name: str, env: dict[str, str], log_dir: Path) -> ServiceProcess:
    process = ServiceProcess(name, env, log_dir)
    process.start()
    processes.append(process)
    return process


def json_lines(log: Path) -> list[dict[str, Any]]:
    lines = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            lines.append({"not_json": line})
    return lines


def post_mention(listener: ServiceProcess, post_id: str) -> str:
    body = {"post_id": post_id, "author": "ana", "text": "#NowPlaying Radiohead - Creep"}
    response = httpx.post(listener.url + "/v1/mentions", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 202, response.text
    return str(response.json()["trace_id"])


def test_one_mention_is_followed_through_three_services_by_its_trace_id(
    rabbit_settings: Settings, tmp_path: Path, processes: list[ServiceProcess]
) -> None:
    env = service_env(tmp_path, DEEPHYPE_AMQP_URL=rabbit_settings.amqp_url, DEEPHYPE_EXCHANGE=rabbit_settings.exchange)
    listener, curator, poster = (start(processes, name, env, tmp_path) for name in ("listener", "curator", "poster"))
    assert wait_until(lambda: all(p.ready() for p in processes), timeout=120), "services did not get ready"

    trace_id = post_mention(listener, "log-1")
    # The enricher and generator are not running: hand the curator candidates for this mention's trace.
    bus = RabbitBus(rabbit_settings, connection_name="logging-test")
    bus.publish(candidates("log-1").model_copy(update={"trace_id": trace_id}))
    bus.stop()

    def line(process: ServiceProcess, starts: str) -> dict[str, Any] | None:
        log = tmp_path / f"{process.name}.log"
        found = [r for r in json_lines(log) if str(r.get("message", "")).startswith(starts)]
        return found[0] if found else None

    assert wait_until(lambda: line(poster, "published"), timeout=60), (tmp_path / "poster.log").read_text()
    for process, starts in ((listener, "mention"), (curator, "emailed the curator"), (poster, "published")):
        record = line(process, starts)
        assert record is not None, (tmp_path / f"{process.name}.log").read_text()
        assert record["level"] == "INFO" and record["service"] == process.name
        assert record["trace_id"] == trace_id and record["time"].startswith("20")
    # Every line is JSON, uvicorn's too.
    for process in processes:
        assert not [r for r in json_lines(tmp_path / f"{process.name}.log") if "not_json" in r]


def test_text_logs_with_a_setting(tmp_path: Path, processes: list[ServiceProcess]) -> None:
    listener = start(processes, "listener", service_env(tmp_path, DEEPHYPE_LOG_FORMAT="text"), tmp_path)
    assert wait_until(listener.ready, timeout=60)
    trace_id = post_mention(listener, "log-2")
    log = tmp_path / "listener.log"
    assert wait_until(lambda: f"[{trace_id}]" in log.read_text())
    [line] = [line for line in log.read_text().splitlines() if f"[{trace_id}]" in line]
    assert " INFO " in line and " listener " in line and "Radiohead - Creep" in line

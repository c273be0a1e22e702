"""Issue 15: the README's "Without Docker" recipe works as written: five `deephype serve NAME --port N`
processes on one broker and one set of settings carry a mention to a published post, and the emailed
review link points at DEEPHYPE_PUBLIC_URL. (Ports are free ones here: the README's may be taken.)"""

from __future__ import annotations

import email
import re
from pathlib import Path

import httpx
import pytest

from deephype.common.settings import Settings
from tests.conftest import wait_until
from tests.helpers.processes import SERVICES, ServiceProcess
from tests.test_service_logging import post_mention, processes, service_env, start  # noqa: F401 - fixture

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]
PUBLIC_URL = "https://review.example.org"


def test_the_five_services_without_docker_as_the_readme_runs_them(
    rabbit_settings: Settings,
    tmp_path: Path,
    processes: list[ServiceProcess],  # noqa: F811
) -> None:
    recipe = re.findall(r"^\.venv/bin/deephype serve (\w+) --port (\d+) &$", (REPO / "README.md").read_text(), re.M)
    assert [name for name, _ in recipe] == list(SERVICES)
    assert len({port for _, port in recipe}) == len(SERVICES)  # one port each, none the default 8000
    env = service_env(
        tmp_path,
        DEEPHYPE_AMQP_URL=rabbit_settings.amqp_url,
        DEEPHYPE_EXCHANGE=rabbit_settings.exchange,
        DEEPHYPE_PUBLIC_URL=PUBLIC_URL,
        DEEPHYPE_GENERATOR_RANK="false",
    )
    services = {name: start(processes, name, env, tmp_path) for name in SERVICES}
    assert wait_until(lambda: all(s.ready() for s in services.values()), timeout=300), "not every service is ready"

    post_mention(services["listener"], "go-live-1")
    assert wait_until(lambda: httpx.get(services["poster"].url + "/v1/posts").json(), timeout=300)
    [eml] = (tmp_path / "state" / "curator" / "outbox").glob("*.eml")
    mail = email.message_from_bytes(eml.read_bytes())
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert any(line.startswith(f"{PUBLIC_URL}/review/") for line in text.splitlines())

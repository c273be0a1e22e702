"""Issue 15: secrets that persist. Without DEEPHYPE_CURATOR_SECRET_KEY the curator makes a key once and keeps
it in its state dir (mode 0600), so an emailed review link and a login outlive a restart; the demo's
password does too; `deephype curator rotate-key` is the way to end them all."""

from __future__ import annotations

import contextlib
import email
import os
import random
import re
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from deephype.common.memory_bus import InMemoryBus
from deephype.common.service import create_app
from deephype.common.settings import Settings
from deephype.curator.app import build
from deephype.demo import demo_password
from tests.conftest import make_settings, wait_until
from tests.factories import candidates

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "a password for the restart test"


def curator(settings: Settings) -> tuple[TestClient, InMemoryBus]:
    """A curator as a fresh process would build it: nothing kept in memory from an earlier one."""
    bus = InMemoryBus(settings)
    parts, _, _ = build(settings, bus)
    return TestClient(create_app(parts, bus)), bus


def emailed_link(settings: Settings) -> str:
    [eml] = (settings.state_dir / "curator" / "outbox").glob("*.eml")
    mail = email.message_from_bytes(eml.read_bytes())
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    return next(line for line in text.splitlines() if "/review/" in line).split("/review/", 1)[1]


def rotate_key(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "deephype.cli", "curator", "rotate-key"]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_emailed_link_and_a_login_survive_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, curator_password=PASSWORD)  # no DEEPHYPE_CURATOR_SECRET_KEY
    message = candidates("r1")
    client, bus = curator(settings)
    with client:
        bus.publish(message)
        assert wait_until(lambda: list((settings.state_dir / "curator" / "outbox").glob("*.eml")))
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
        assert client.post("/login", data={"password": PASSWORD, "csrf": csrf}).status_code == 200
        cookies = dict(client.cookies)
    key_file = settings.state_dir / "curator" / "secret_key"
    assert key_file.is_file() and mode(key_file) == 0o600
    token = emailed_link(settings)

    restarted, _ = curator(settings)
    with restarted:
        restarted.cookies.update(cookies)
        assert restarted.get("/", follow_redirects=False).status_code == 200, "the login ended with the restart"
    restarted, _ = curator(settings)
    with restarted:
        opened = restarted.get(f"/review/{token}")
        assert opened.status_code == 200 and f"/songs/{message.message_id}" in str(opened.url)


def test_rotating_the_key_ends_earlier_links(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    client, bus = curator(settings)
    with client:
        bus.publish(candidates("r2"))
        assert wait_until(lambda: list((settings.state_dir / "curator" / "outbox").glob("*.eml")))
    token = emailed_link(settings)
    old_key = (settings.state_dir / "curator" / "secret_key").read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPHYPE_")}
    env["DEEPHYPE_STATE_DIR"] = str(settings.state_dir)
    rotated = rotate_key(tmp_path, env)
    assert rotated.returncode == 0, rotated.stderr
    assert "restart the curator" in rotated.stdout
    key_file = settings.state_dir / "curator" / "secret_key"
    assert key_file.read_text() != old_key and mode(key_file) == 0o600
    restarted, _ = curator(settings)
    with restarted:
        refused = restarted.get(f"/review/{token}")
        assert refused.status_code == 403 and "not valid" in refused.text

    # A key set in the environment is not the file's to rotate: the command says where to change it.
    env["DEEPHYPE_CURATOR_SECRET_KEY"] = "k" * 32
    refused_cli = rotate_key(tmp_path, env)
    assert refused_cli.returncode == 2 and "DEEPHYPE_CURATOR_SECRET_KEY" in refused_cli.stderr


def test_the_demo_keeps_its_password_across_restarts(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first = demo_password(settings)
    stored = settings.state_dir / "curator" / "demo_password"
    assert first and mode(stored) == 0o600
    assert demo_password(make_settings(tmp_path)) == first  # a restart reads the same one
    assert demo_password(make_settings(tmp_path / "other")) != first  # another state dir, another password
    assert demo_password(make_settings(tmp_path, curator_password="set by hand")) == "set by hand"


def free_port_block(size: int = 6) -> int:
    """A base port whose next `size - 1` ports are free too (the demo serves on BASE+1 … BASE+5)."""
    for base in range(random.randrange(20_000, 40_000, 10), 60_000, 10):
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + size):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise AssertionError("no free block of ports")


def start_demo(state_dir: Path, port_base: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`deephype demo` as an operator runs it; returns the process and the password it prints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPHYPE_")}
    command = [sys.executable, "-m", "deephype.cli", "demo", "--port-base", str(port_base), "--state-dir"]
    demo = subprocess.Popen(
        [*command, str(state_dir)], cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    found: list[str] = []

    def printed_password() -> bool:
        found[:] = re.findall(r"password: (\S+)", log.read_text(errors="replace"))
        return bool(found) or demo.poll() is not None

    assert wait_until(printed_password, timeout=300), "the demo printed no password"
    assert found, log.read_text(errors="replace")
    return demo, found[0]


def stop_demo(demo: subprocess.Popen[bytes]) -> None:
    demo.send_signal(signal.SIGINT)  # Ctrl-C, as the demo says
    try:
        demo.wait(timeout=60)
    except subprocess.TimeoutExpired:
        demo.kill()
        demo.wait(timeout=10)


@pytest.mark.slow
def test_restarting_the_demo_keeps_its_password_and_its_emailed_links(tmp_path: Path) -> None:
    state, base = tmp_path / "demo", free_port_block()
    curator = f"http://127.0.0.1:{base + 4}"
    outbox = state / "curator" / "outbox"
    demo, password = start_demo(state, base, tmp_path / "first.log")
    try:
        assert wait_until(lambda: list(outbox.glob("*.eml")), timeout=300), "the demo emailed no song"
    finally:
        stop_demo(demo)
    [eml, *_] = sorted(outbox.glob("*.eml"))
    mail = email.message_from_bytes(eml.read_bytes())
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    link = next(line for line in text.splitlines() if "/review/" in line)

    demo, password_again = start_demo(state, base, tmp_path / "second.log")
    try:
        assert password_again == password
        assert wait_until(lambda: _answers(curator + "/login"), timeout=120)
        opened = httpx.get(link, follow_redirects=True, timeout=30)
        assert opened.status_code == 200 and "/songs/" in str(opened.url), opened.text[:300]
        with httpx.Client(base_url=curator, timeout=30) as client:
            csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
            logged_in = client.post("/login", data={"password": password, "csrf": csrf})
            assert (logged_in.status_code, logged_in.headers["location"]) == (303, "/")  # not 401: same password
    finally:
        stop_demo(demo)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False

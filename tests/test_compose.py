"""No Docker engine runs here, so the compose file is checked as data: every service, healthcheck, port
and volume it must have, and every Dockerfile it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("listener", "enricher", "generator", "curator", "poster")


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_every_service_is_there_waits_for_a_healthy_broker_and_checks_its_own_readiness() -> None:
    services = compose()["services"]
    assert set(SERVICES) | {"rabbitmq", "generator-gpu"} == set(services)
    assert "rabbitmq-diagnostics" in services["rabbitmq"]["healthcheck"]["test"]
    assert any(str(port).endswith(":15672:15672") for port in services["rabbitmq"]["ports"])  # management UI
    for name in (*SERVICES, "generator-gpu"):
        service = services[name]
        assert service["depends_on"]["rabbitmq"]["condition"] == "service_healthy", name
        assert "/readyz" in " ".join(service["healthcheck"]["test"]), name
        assert service["environment"]["DEEPHYPE_AMQP_URL"].startswith("amqp://"), name
        dockerfile = REPO / service["build"]["dockerfile"]
        assert dockerfile.exists(), dockerfile
        assert "/readyz" in dockerfile.read_text()
        assert service["ports"], name


def test_state_and_models_live_in_named_volumes_and_scaled_services_have_no_fixed_host_port() -> None:
    data = compose()
    services, volumes = data["services"], set(data["volumes"])
    for name in ("listener", "curator", "poster"):
        [mount] = services[name]["volumes"]
        volume, target = mount.split(":")
        assert volume in volumes and target == "/var/lib/deephype"
    assert "models:/models" in services["generator"]["volumes"]
    assert services["generator"]["environment"]["DEEPHYPE_MODELS_DIR"] == "/models"
    for name in ("generator", "enricher"):  # `--scale generator=3` must not fight over one host port
        for port in services[name]["ports"]:
            address, host_port, container_port = interpolate(str(port), {}).rsplit(":", 2)
            assert (address, host_port, container_port) == ("127.0.0.1", "", "8000"), name


def test_the_gpu_profile_reserves_an_nvidia_device_for_the_generator() -> None:
    gpu = compose()["services"]["generator-gpu"]
    assert gpu["profiles"] == ["gpu"]
    [device] = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert gpu["environment"]["DEEPHYPE_GENERATOR_DEVICE"] == "cuda"


def test_each_image_installs_only_its_own_extra() -> None:
    for name in SERVICES:
        text = (REPO / "services" / name / "Dockerfile").read_text()
        assert f'".[{name}]"' in text or f'".[{name},postgres]"' in text  # + the PostgreSQL driver, for state
        assert f'"serve", "{name}"' in text
    assert "torch" not in (REPO / "services" / "listener" / "Dockerfile").read_text()
    generator = (REPO / "services" / "generator" / "Dockerfile").read_text()
    assert "cp -r data/models/. /models/" in generator  # a fresh models volume starts with the bundled model
    assert (REPO / "data" / "models" / "default" / "model.pt").is_file()


# --- issue 12, item 10: nothing listens beyond this machine by default, and no guest/guest ----------------


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} (what this file uses), as `docker compose` does."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise ValueError(arg or f"{name} is required")
        return arg if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, text)


def published_ports(env: dict[str, str]) -> list[str]:
    return [interpolate(str(port), env) for service in compose()["services"].values() for port in service["ports"]]


def test_every_published_port_listens_on_localhost_unless_the_env_says_otherwise() -> None:
    ports = published_ports({"RABBITMQ_PASSWORD": "x"})
    assert len(ports) == 8
    assert all(port.startswith("127.0.0.1:") for port in ports), ports
    opened = published_ports({"RABBITMQ_PASSWORD": "x", "COMPOSE_BIND_ADDRESS": "0.0.0.0"})
    assert all(port.startswith("0.0.0.0:") for port in opened), opened
    assert "COMPOSE_BIND_ADDRESS=127.0.0.1" in (REPO / ".env.example").read_text().splitlines()


def test_broker_credentials_come_from_the_env_file_and_are_never_guest() -> None:
    services = compose()["services"]
    env = {"RABBITMQ_USER": "bot", "RABBITMQ_PASSWORD": "s3cret-from-env"}
    broker = services["rabbitmq"]["environment"]
    assert interpolate(broker["RABBITMQ_DEFAULT_USER"], env) == "bot"
    assert interpolate(broker["RABBITMQ_DEFAULT_PASS"], env) == "s3cret-from-env"
    for name in (*SERVICES, "generator-gpu"):
        url = interpolate(services[name]["environment"]["DEEPHYPE_AMQP_URL"], env)
        assert url == "amqp://bot:s3cret-from-env@rabbitmq:5672/%2F", name
    assert "guest:guest" not in (REPO / "docker-compose.yml").read_text()
    with pytest.raises(ValueError, match="set RABBITMQ_PASSWORD"):  # no default password: compose refuses
        interpolate(broker["RABBITMQ_DEFAULT_PASS"], {})


# --- issue 15: .env decides the deployment; compose's `environment:` would override it -----------------

# Fixed by the compose network or the image layout, not by the operator.
CONTAINER_ONLY = {"DEEPHYPE_AMQP_URL", "DEEPHYPE_MODELS_DIR", "DEEPHYPE_GENERATOR_DEVICE"}


def test_public_url_and_every_other_deployment_setting_come_from_the_env_file() -> None:
    for name, service in compose()["services"].items():
        if name == "rabbitmq":
            continue
        assert {"path": ".env", "required": False} in service["env_file"], name
        overridden = set(service["environment"]) - CONTAINER_ONLY
        assert not overridden, f"{name} sets {overridden} under environment:, hiding .env's value"

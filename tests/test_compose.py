"""No Docker engine runs here, so the compose file is checked as data: every service, healthcheck, port
and volume it must have, and every Dockerfile it names."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("listener", "enricher", "generator", "curator", "poster")


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_every_service_is_there_waits_for_a_healthy_broker_and_checks_its_own_readiness() -> None:
    services = compose()["services"]
    assert set(SERVICES) | {"rabbitmq", "generator-gpu"} == set(services)
    assert "rabbitmq-diagnostics" in services["rabbitmq"]["healthcheck"]["test"]
    assert "15672:15672" in services["rabbitmq"]["ports"]  # management UI
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
        assert all(":" not in str(port) for port in services[name]["ports"]), name


def test_the_gpu_profile_reserves_an_nvidia_device_for_the_generator() -> None:
    gpu = compose()["services"]["generator-gpu"]
    assert gpu["profiles"] == ["gpu"]
    [device] = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert gpu["environment"]["DEEPHYPE_GENERATOR_DEVICE"] == "cuda"


def test_each_image_installs_only_its_own_extra() -> None:
    for name in SERVICES:
        text = (REPO / "services" / name / "Dockerfile").read_text()
        assert f'".[{name}]"' in text
        assert f'"serve", "{name}"' in text
    assert "torch" not in (REPO / "services" / "listener" / "Dockerfile").read_text()
    generator = (REPO / "services" / "generator" / "Dockerfile").read_text()
    assert "cp -r data/models/. /models/" in generator  # a fresh models volume starts with the bundled model
    assert (REPO / "data" / "models" / "default" / "model.pt").is_file()

"""The Kubernetes manifests (deploy/), checked offline: each kustomization rendered by kustomize (the one in
kubectl, or a kustomize binary), every object validated against Kubernetes' own schemas (kubernetes-validate,
pinned in the dev extra, strict: an unknown field fails), KEDA's objects by their required fields, and what
the services need from them: probes on /readyz and /healthz, resource requests, real settings, the GPU node
for the generator and autoscaling on its real queue. No cluster is involved (see the README)."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from deephype.common.bus import queue_name

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
TARGETS = ("base", "overlays/dev", "overlays/production")
KUBERNETES_VERSION = "1.30.0"  # the oldest minor still supported upstream when this was written
SERVICES = ("listener", "enricher", "generator", "curator", "poster")


def renderer() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


@cache
def render(target: str) -> list[dict[str, Any]]:
    command = renderer()
    if command is None:
        pytest.skip("no kustomize (nor kubectl) on this machine to render the manifests")
    done = subprocess.run([*command, str(DEPLOY / target)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def objects(target: str, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in render(target) if o["kind"] == kind}


def env_example_names() -> set[str]:
    lines = (REPO / ".env.example").read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if line.startswith("DEEPHYPE_")}


def check_keda(obj: dict[str, Any], everything: list[dict[str, Any]]) -> None:
    """KEDA's CRDs are not in Kubernetes' schemas: their required fields, and what they point at, by hand."""
    spec = obj["spec"]
    if obj["kind"] == "ScaledObject":
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        target = spec["scaleTargetRef"]["name"]
        assert any(o["kind"] == "Deployment" and o["metadata"]["name"] == target for o in everything)
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert spec["triggers"], "a ScaledObject needs a trigger"
        for trigger in spec["triggers"]:
            assert trigger["type"] and isinstance(trigger["metadata"], dict)
            assert all(isinstance(v, str) for v in trigger["metadata"].values()), "KEDA metadata values are strings"
            auth = trigger.get("authenticationRef", {}).get("name")
            if auth:
                assert any(o["kind"] == "TriggerAuthentication" and o["metadata"]["name"] == auth for o in everything)
    elif obj["kind"] == "TriggerAuthentication":
        for ref in spec["secretTargetRef"]:
            assert ref["parameter"] and ref["name"] and ref["key"]
    else:
        raise AssertionError(f"unknown KEDA kind {obj['kind']}")


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_is_valid_for_kubernetes(target: str) -> None:
    import kubernetes_validate

    everything = render(target)
    assert {o["kind"] for o in everything} >= {"Deployment", "Service", "ConfigMap", "ScaledObject"}
    for obj in everything:
        if obj["apiVersion"].startswith("keda.sh/"):
            check_keda(obj, everything)
        else:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("target", TARGETS)
def test_each_service_is_probed_sized_and_configured(target: str) -> None:
    deployments = objects(target, "Deployment")
    assert set(deployments) == set(SERVICES)
    services = objects(target, "Service")
    config = objects(target, "ConfigMap")["deephype-config"]["data"]
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]
        [container] = pod["spec"]["containers"]
        [port] = container["ports"]
        assert port["containerPort"] == int(config["DEEPHYPE_PORT"])
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
        requests = container["resources"]["requests"]
        assert requests["cpu"] and requests["memory"], name
        assert {r.get("configMapRef", r.get("secretRef", {})).get("name") for r in container["envFrom"]} == {
            "deephype-config",
            "deephype-secrets",
        }
        assert name in container["image"]
        # The Service reaches these pods, on the named port.
        assert pod["metadata"]["labels"].items() >= services[name]["spec"]["selector"].items()
        assert services[name]["spec"]["ports"][0]["targetPort"] == port["name"]
    for budget in objects(target, "PodDisruptionBudget").values():
        labels = budget["spec"]["selector"]["matchLabels"]
        assert any(d["spec"]["template"]["metadata"]["labels"].items() >= labels.items() for d in deployments.values())
    # PostgreSQL and RabbitMQ are outside: named, not run here.
    assert {n for n, s in services.items() if s["spec"].get("type") == "ExternalName"} == {"postgres", "rabbitmq"}


@pytest.mark.parametrize("target", TARGETS)
def test_the_settings_named_are_real_settings(target: str) -> None:
    known = env_example_names()
    config = objects(target, "ConfigMap")["deephype-config"]["data"]
    assert set(config) <= known, set(config) - known
    for deployment in objects(target, "Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            names = {e["name"] for e in container.get("env", [])}
            assert names <= known, names - known
    secret_keys = {
        line.split("=", 1)[0]
        for line in (DEPLOY / "secrets.example.env").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {k for k in secret_keys if k.startswith("DEEPHYPE_")} <= known
    assert {"DEEPHYPE_AMQP_URL", "DEEPHYPE_DATABASE_URL", "DEEPHYPE_CURATOR_SECRET_KEY"} <= secret_keys
    for auth in objects(target, "TriggerAuthentication").values():
        assert {ref["key"] for ref in auth["spec"]["secretTargetRef"]} <= secret_keys


@pytest.mark.parametrize("target", ["base", "overlays/production"])
def test_the_generator_runs_on_a_gpu_node_and_scales_on_its_queue(target: str) -> None:
    generator = objects(target, "Deployment")["generator"]["spec"]["template"]["spec"]
    assert generator["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    [container] = generator["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "DEEPHYPE_GENERATOR_DEVICE", "value": "cuda"} in container["env"]
    scaler = objects(target, "ScaledObject")["generator"]
    [trigger] = scaler["spec"]["triggers"]
    exchange = objects(target, "ConfigMap")["deephype-config"]["data"]["DEEPHYPE_EXCHANGE"]
    assert trigger["type"] == "rabbitmq" and trigger["metadata"]["mode"] == "QueueLength"
    assert trigger["metadata"]["queueName"] == queue_name(exchange, "generator")
    assert scaler["spec"]["maxReplicaCount"] > 1


def test_the_dev_overlay_runs_without_gpus_in_its_own_namespace() -> None:
    generator = objects("overlays/dev", "Deployment")["generator"]["spec"]["template"]["spec"]
    assert "nodeSelector" not in generator and "tolerations" not in generator
    [container] = generator["containers"]
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
    assert {"name": "DEEPHYPE_GENERATOR_DEVICE", "value": "cpu"} in container["env"]
    assert {o["metadata"].get("namespace") for o in render("overlays/dev")} == {"deephype-dev"}
    assert {o["metadata"].get("namespace") for o in render("overlays/production")} == {"deephype"}


def test_every_base_file_is_in_the_kustomization() -> None:
    kustomization = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"]) | {p["path"] for p in kustomization["patches"] if "path" in p}
    assert listed == {p.name for p in (DEPLOY / "base").glob("*.yaml")} - {"kustomization.yaml"}

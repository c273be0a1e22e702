"""Schema-driven tests of every HTTP endpoint from its own OpenAPI spec (schemathesis): whatever the
input, no service answers 500."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings

from deephype.common.memory_bus import InMemoryBus
from deephype.pipeline import build_pipeline
from tests.conftest import bundled_model, make_settings

SERVICES = ("listener", "enricher", "generator", "curator", "poster")


@cache
def apps() -> dict[str, FastAPI]:
    config = make_settings(
        Path(tempfile.mkdtemp(prefix="deephype-openapi-")), curator_api_token="pw", listener_sources=[]
    )
    return build_pipeline(config, InMemoryBus(config), candidate_source=bundled_model()).apps()


def operations() -> list[tuple[str, object]]:
    found = []
    for name in SERVICES:
        # The curator's schema is not public (issue 12, item 10): it takes the API token.
        headers = {"Authorization": "Bearer pw"} if name == "curator" else {}
        schema = schemathesis.openapi.from_asgi("/openapi.json", apps()[name], headers=headers)
        for result in schema.get_all_operations():
            operation = result.ok()
            found.append(pytest.param(name, operation, id=f"{name} {operation.method.upper()} {operation.path}"))
    return found


@pytest.mark.parametrize(("service", "operation"), operations())
def test_no_input_makes_a_server_error(service: str, operation) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": "Bearer pw"} if service == "curator" else {}

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=operation.as_strategy())
    def check(case) -> None:  # type: ignore[no-untyped-def]
        response = case.call(headers=headers)
        assert response.status_code < 500, f"{case.method} {case.formatted_path} → {response.status_code}"

    check()

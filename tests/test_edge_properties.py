"""Property tests of the edges: arbitrary JSON values (NaN, Infinity, lone surrogates, huge numbers and
strings, deep nesting), whole or in place of one field of a valid body, sent to every HTTP endpoint of
every service and to every queue on the real RabbitMQ. No endpoint answers 5xx; every message is settled
(acked: handled or dead-lettered) on its first delivery, none left unacked, none retried in a loop."""

from __future__ import annotations

import json
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deephype.common.bus import MESSAGES_FAILED, QUEUE_BINDINGS, queue_name
from deephype.common.contracts import Approval, EnrichedSong, PublishedPost, encode
from deephype.common.memory_bus import InMemoryBus
from deephype.common.rabbit import RabbitBus, _properties
from deephype.common.settings import Settings
from deephype.pipeline import build_pipeline
from tests.conftest import bundled_model, make_settings, wait_until
from tests.factories import candidates, mention

LISTENER_TOKEN, CURATOR_TOKEN = "listener-token", "curator-token"
AUTH = {"Authorization": f"Bearer {LISTENER_TOKEN}"}
CURATOR_AUTH = {"Authorization": f"Bearer {CURATOR_TOKEN}"}

# --- arbitrary JSON, as text: what json.dumps writes and more (NaN, lone surrogates, huge, nested) ------

LONE_SURROGATES = st.sampled_from(["\ud800", "\udfff", "a\udc00b", "\udbff\u0301"])
STRINGS = st.one_of(
    st.text(st.characters(categories=["L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Co", "Cs"]), max_size=40),
    LONE_SURROGATES,
    st.sampled_from(["\x00", "\u202e", "Radio\u200bhead", "A" * 600, "p" + "\u0301" * 19_000, "x" * 30_000]),
)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**300), max_value=10**300),
    st.floats(allow_nan=True, allow_infinity=True),
)
LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, STRINGS)
VALUES = st.recursive(
    LEAVES,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(STRINGS, children, max_size=4)),
    max_leaves=12,
)
RAW_BODIES = st.one_of(
    st.integers(min_value=1, max_value=200_000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(min_value=1, max_value=200_000).map(lambda depth: "[" * depth),
    st.sampled_from(['{"a": 1e400}', "9" * 5_000, '{"a": NaN}', "-Infinity", "", "{", '"\\ud800"']),
)


def dumps(value: Any) -> str:
    """json.dumps as a careless sender would: NaN and Infinity written out, surrogates escaped."""
    return json.dumps(value, allow_nan=True)


def replace_one_field(template: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    """A copy of `template` with the field at `path` (nested keys) set to `value`."""
    copy = json.loads(json.dumps(template))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


def field_paths(value: Any, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    paths = []
    if isinstance(value, dict):
        for key, child in value.items():
            paths.append([*prefix, key])
            paths.extend(field_paths(child, (*prefix, key)))
    return paths


def bodies(templates: list[dict[str, Any]]) -> st.SearchStrategy[str]:
    """Whole arbitrary values, raw nasty text, or a valid body with one (nested) field made arbitrary."""

    @st.composite
    def mutated(draw: st.DrawFn) -> str:
        template = draw(st.sampled_from(templates))
        path = draw(st.sampled_from(field_paths(template)))
        return dumps(replace_one_field(template, path, draw(VALUES)))

    return st.one_of(VALUES.map(dumps), RAW_BODIES, mutated())


# --- HTTP ------------------------------------------------------------------------------------------------


@cache
def apps() -> dict[str, FastAPI]:
    config = make_settings(
        Path(tempfile.mkdtemp(prefix="deephype-edges-")),
        listener_sources=[],
        listener_api_token=LISTENER_TOKEN,
        curator_password="pw",
        curator_api_token=CURATOR_TOKEN,
    )
    return build_pipeline(config, InMemoryBus(config), candidate_source=bundled_model()).apps()


def routes() -> list[tuple[str, str, str]]:
    """Every operation each service's OpenAPI document lists."""
    found = [
        (service, method.upper(), path)
        for service, app in apps().items()
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    ]
    assert ("listener", "POST", "/v1/mentions") in found and ("generator", "POST", "/v1/samples") in found
    return found


HTTP_TEMPLATES = [
    {"platform": "x", "post_id": "1", "author": "ana", "text": "#np Radiohead - Creep", "mentions_bot": False},
    {"song": {"artist": "Radiohead", "title": "Creep", "audio_features": {"tempo": 92.0}}, "n": 1, "seed": 1},
    {"candidate_id": "c1", "text": "Still perfect."},
]
PATH_PARTS = st.binary(max_size=40).map(lambda raw: quote(raw, safe="") or "x")


def test_no_http_input_makes_a_server_error() -> None:
    clients = {
        name: TestClient(app, headers=CURATOR_AUTH if name == "curator" else AUTH) for name, app in apps().items()
    }

    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(route=st.sampled_from(routes()), body=bodies(HTTP_TEMPLATES), part=PATH_PARTS, query=PATH_PARTS)
    def check(route: tuple[str, str, str], body: str, part: str, query: str) -> None:
        service, method, path = route
        url = "".join(part if piece.startswith("{") else piece for piece in _split_path(path)) + f"?status={query}"
        response = clients[service].request(method, url, content=body, headers={"content-type": "application/json"})
        assert response.status_code < 500, f"{service} {method} {url} {body[:200]!r} → {response.status_code}"

    check()


def _split_path(path: str) -> list[str]:
    """'/v1/songs/{set_id}/approve' → ['/v1/songs/', '{set_id}', '/approve']."""
    pieces, rest = [], path
    while "{" in rest:
        before, _, after = rest.partition("{")
        name, _, rest = after.partition("}")
        pieces += [before, "{" + name + "}"]
    return [*pieces, rest]


# --- queues, on the real RabbitMQ ----------------------------------------------------------------------


def queue_templates() -> dict[str, list[dict[str, Any]]]:
    made = candidates()
    enriched: EnrichedSong = made.enriched
    approval = made.child(
        Approval,
        candidates_message_id=made.message_id,
        candidate_id=made.candidates[0].candidate_id,
        final_text="Still perfect.",
        edited=False,
        song=enriched.song,
    )
    published = approval.child(
        PublishedPost,
        approval_id=approval.message_id,
        candidate_id=approval.candidate_id,
        platform="dry_run",
        post_id="p1",
        text="Still perfect.",
        dry_run=True,
    )
    as_dict = lambda message: json.loads(encode(message))  # noqa: E731
    return {
        "enricher": [as_dict(mention())],
        "generator": [as_dict(enriched)],
        "curator": [as_dict(made), as_dict(published)],
        "poster": [as_dict(approval)],
    }


def messages_in_queues(exchange: str) -> dict[str, int]:
    """Ready plus unacknowledged messages of every queue of this exchange, as the broker counts them."""
    listed = subprocess.run(
        ["rabbitmqctl", "list_queues", "name", "messages", "--quiet", "--no-table-headers"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    counts = {}
    for line in listed.stdout.splitlines():
        name, _, count = line.strip().rpartition("\t")
        if name.startswith(f"{exchange}.") and count.isdigit():
            counts[name] = int(count)
    return counts


def retries_so_far() -> float:
    return sum(MESSAGES_FAILED.labels(service, "retry")._value.get() for service in QUEUE_BINDINGS)


@pytest.mark.rabbitmq
def test_no_queue_input_is_left_unacked_or_loops(rabbit_settings: Settings) -> None:
    config = rabbit_settings.with_overrides(listener_sources=[], curator_auto_approve=True, max_attempts=3)
    bus = RabbitBus(config, connection_name="edge-properties")
    pipeline = build_pipeline(config, bus, candidate_source=bundled_model())
    pipeline.start()
    injector = RabbitBus(config, connection_name="edge-properties-injector")
    templates = queue_templates()
    retries_before = retries_so_far()
    sent: list[str] = []
    try:
        assert bus.wait_connected(30)

        @settings(max_examples=120, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(data=st.data(), service=st.sampled_from(sorted(templates)))
        def publish(data: st.DataObject, service: str) -> None:
            body = data.draw(bodies(templates[service]))
            injector.publish_raw(
                "", queue_name(config.exchange, service), body.encode("utf-8", "surrogatepass"), _properties(None)
            )
            sent.append(service)

        publish()
        dead_letter_queue = queue_name(config.exchange, "dead-letter")

        def settled() -> bool:
            counts = messages_in_queues(config.exchange)
            return all(count == 0 for name, count in counts.items() if name != dead_letter_queue)

        assert wait_until(settled, timeout=120, interval=0.5), messages_in_queues(config.exchange)
        assert retries_so_far() == retries_before, "a message was retried instead of settled on its first delivery"
        dead = bus.dead_letters(limit=len(sent) + 10)
        assert dead, "no poison message was dead-lettered: the test sent none?"
        for record in dead:
            assert record.attempts == 1 and "redelivered" not in record.reason, record.reason
    finally:
        injector.stop()
        pipeline.stop()

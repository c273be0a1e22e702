"""Forged approvals (issue 12, item 1): only an approval the curator signed is published.

The attack: anyone who can publish to the broker puts a well-formed Approval on `approval.granted`. On
the real RabbitMQ, a forged one (unsigned, or signed with the attacker's own key) and an altered copy of a
genuine one are dead-lettered with the reason and never posted; the curator's own approval is posted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from fastapi.testclient import TestClient

from deephype.common.bus import PermanentError, Subscription
from deephype.common.contracts import Approval, Song, decode, encode
from deephype.common.db import Database
from deephype.common.memory_bus import InMemoryBus
from deephype.common.rabbit import RabbitBus
from deephype.common.service import create_app
from deephype.common.settings import Settings
from deephype.common.signing import ApprovalKeyError, ApprovalKeys, key_id, new_key
from deephype.curator import app as curator_app
from deephype.curator.app import ApprovalSender
from deephype.curator.store import SCHEMA as CURATOR_SCHEMA
from deephype.curator.store import CuratorStore
from deephype.poster import app as poster_app
from deephype.poster.handlers import SCHEMA, Dispatcher, PostLedger, make_approval_handler
from deephype.poster.publishers import DryRunPublisher
from tests.conftest import make_settings, wait_until
from tests.factories import candidates

REPO = Path(__file__).resolve().parents[1]


def forged(text: str = "Follow @spam for free followers") -> Approval:
    """What an attacker can write without the key: well-formed, with made-up ids."""
    return Approval(
        candidates_message_id="made-up-set",
        candidate_id="made-up-candidate",
        final_text=text,
        edited=False,
        song=Song(artist="Radiohead", title="Creep"),
    )


# --- the attack on the real broker --------------------------------------------------------------------


@pytest.fixture
def curator_and_poster(rabbit_settings: Settings) -> Iterator[tuple[RabbitBus, TestClient, PostLedger, Settings]]:
    settings = rabbit_settings.with_overrides(curator_api_token="token-signing-test")
    bus = RabbitBus(settings, connection_name="signing-test")
    curator_parts, _, _ = curator_app.build(settings, bus)
    poster_parts, ledger = poster_app.build(settings, bus)
    for parts in (curator_parts, poster_parts):
        for subscription in parts.subscriptions:
            bus.subscribe(subscription)
    bus.start()
    curator_parts.start()
    poster_parts.start()  # its dispatcher posts what the queue holds
    try:
        assert bus.wait_connected(20)
        yield bus, TestClient(create_app(curator_parts, bus, manage_bus=False)), ledger, settings
    finally:
        poster_parts.stop()
        curator_parts.stop()
        bus.stop()


@pytest.mark.rabbitmq
def test_forged_and_altered_approvals_are_dead_lettered_and_only_the_curators_is_posted(
    curator_and_poster: tuple[RabbitBus, TestClient, PostLedger, Settings],
) -> None:
    bus, curator, ledger, settings = curator_and_poster
    auth = {"Authorization": "Bearer token-signing-test"}
    message = candidates("sig-1")
    bus.publish(message)
    assert wait_until(lambda: curator.get("/v1/songs?status=pending", headers=auth).json())
    genuine_text = "A tide that never quite comes in."
    approved = curator.post(
        f"/v1/songs/{message.message_id}/approve",
        headers=auth,
        json={"candidate_id": message.candidates[0].candidate_id, "text": genuine_text},
    )
    assert approved.status_code == 200, approved.text
    assert wait_until(lambda: ledger.published())
    stored = _stored_approval(settings)
    assert stored.signature and stored.final_text == genuine_text

    def publish(approval: Approval) -> None:
        bus.publish_raw(
            settings.exchange, Approval.routing_key, encode(approval), pika.BasicProperties(delivery_mode=2)
        )

    publish(forged())  # no signature at all
    publish(ApprovalKeys([new_key()]).sign(forged("Signed with a key of my own")))  # the attacker's key
    publish(stored.model_copy(update={"final_text": "Altered after signing"}))  # the same id, new text
    publish(stored.model_copy(update={"message_id": "f" * 32, "final_text": "Altered, and a new id"}))

    assert wait_until(lambda: len(bus.dead_letters()) >= 4)
    reasons = sorted(dead.reason for dead in bus.dead_letters())
    assert len(reasons) == 4, reasons
    assert sum("not signed" in r for r in reasons) == 1, reasons
    assert sum("which this poster does not accept" in r for r in reasons) == 1, reasons
    assert sum("altered or forged" in r for r in reasons) == 2, reasons
    assert {dead.origin_queue for dead in bus.dead_letters()} == {"poster"}
    [post] = ledger.published()
    assert post["text"].startswith(genuine_text + "\n\n")  # composed: the song's credit follows
    assert len(ledger.db.query("SELECT * FROM timeline")) == 1


def _stored_approval(settings: Settings) -> Approval:
    """The approval exactly as the curator signed, stored and sent it."""
    database = Database(settings.state_dir / "curator" / "curator.sqlite3", "")
    [row] = database.query("SELECT approval FROM songs WHERE approval IS NOT NULL")
    return decode(row["approval"].encode(), Approval)


# --- the signature itself ------------------------------------------------------------------------------


def test_a_signature_survives_the_wire_and_covers_every_field(tmp_path: Path) -> None:
    keys = ApprovalKeys([new_key()])
    signed = keys.sign(forged())
    received = decode(encode(signed), Approval)
    assert keys.problem(received) is None
    changes: dict[str, object] = {
        "final_text": "something else",
        "edited": True,
        "approved_by": "someone",
        "candidate_id": "other",
        "message_id": "other-id",
        "trace_id": "other-trace",
        "song": Song(artist="Radiohead", title="Creep", genres=["rock"]),
        "created_at": signed.created_at.replace(year=2001),
    }
    for field, value in changes.items():
        altered = decode(encode(signed.model_copy(update={field: value})), Approval)
        assert keys.problem(altered) == (
            "the approval's signature does not match its content: it was altered or forged"
        ), field
    assert "malformed" in str(keys.problem(signed.model_copy(update={"signature": "abc"})))
    assert "not signed" in str(keys.problem(forged()))


def test_rotation_accepts_the_old_key_while_the_new_one_signs() -> None:
    old, new = new_key(), new_key()
    before = ApprovalKeys([old])
    during = ApprovalKeys([new, old])
    after = ApprovalKeys([new])
    in_flight = before.sign(forged())
    assert during.problem(in_flight) is None  # signed before the rotation, still posted
    fresh = during.sign(forged())
    assert fresh.signature is not None and key_id(new) in fresh.signature
    assert after.problem(fresh) is None and before.problem(fresh) is not None
    assert "does not accept" in str(after.problem(in_flight))


def test_missing_or_weak_keys_are_refused_with_the_setting_named(tmp_path: Path) -> None:
    over_rabbitmq = make_settings(tmp_path, approval_keys="", amqp_url="amqp://guest:guest@127.0.0.1:5672/%2F")
    with pytest.raises(ApprovalKeyError, match="DEEPHYPE_APPROVAL_KEYS is not set"):
        ApprovalKeys.from_settings(over_rabbitmq)
    with pytest.raises(ApprovalKeyError, match="at least 32 characters"):
        ApprovalKeys.from_settings(make_settings(tmp_path, approval_keys="short"))
    # One process (in-memory bus): curator and poster share a key of the process's own.
    in_memory = make_settings(tmp_path, approval_keys="")
    assert ApprovalKeys.from_settings(in_memory).problem(ApprovalKeys.from_settings(in_memory).sign(forged())) is None


def test_the_poster_handler_refuses_before_it_publishes(tmp_path: Path) -> None:
    db = Database(tmp_path / "poster.sqlite3", SCHEMA)
    publisher = DryRunPublisher(db)
    handle = make_approval_handler(PostLedger(db), publisher, ApprovalKeys([new_key()]))
    with pytest.raises(PermanentError, match="not signed"):
        handle(forged())
    assert publisher.timeline() == []


def test_keys_commands_make_a_key_and_rotate_the_setting() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPHYPE_")}
    made = _cli(["keys", "new"], env).strip()
    assert len(made) >= 32 and "," not in made
    current = "c" * 40 + "," + "d" * 40
    rotated = _cli(["keys", "rotate"], {**env, "DEEPHYPE_APPROVAL_KEYS": current}).strip()
    name, _, value = rotated.partition("=")
    keys = value.split(",")
    assert name == "DEEPHYPE_APPROVAL_KEYS" and len(keys) == 2 and keys[1] == "c" * 40 and keys[0] != made
    assert ApprovalKeys(keys).signing_key_id == key_id(keys[0])
    kept = _cli(["keys", "rotate", "--keep", "2"], {**env, "DEEPHYPE_APPROVAL_KEYS": current}).strip()
    assert kept.endswith(current)


def _cli(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "deephype.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_unsigned_approval_parses_so_its_reason_is_clear() -> None:
    body = json.loads(encode(forged()))
    body.pop("signature", None)
    assert decode(json.dumps(body).encode(), Approval).signature is None


def test_an_approval_stored_before_a_rotation_is_sent_signed_with_the_new_key(tmp_path: Path) -> None:
    """The curator restarts with [new, old]; an approval it had stored but not sent still gets posted by a
    poster that already dropped the old key, because the sender signs it again with the current key."""
    old, new = new_key(), new_key()
    curator_db = Database(tmp_path / "curator.sqlite3", CURATOR_SCHEMA)
    message = candidates("rot-1")
    before = CuratorStore(curator_db, ApprovalKeys([old]))
    before.add_candidates(message)
    stored = before.approve(message.message_id, message.candidates[0].candidate_id, None, by="t", post_platform="x")
    assert ApprovalKeys([new]).problem(stored) is not None  # as stored, the new poster would refuse it

    settings = make_settings(tmp_path)
    bus = InMemoryBus(settings)
    poster_db = Database(tmp_path / "poster.sqlite3", SCHEMA)
    ledger = PostLedger(poster_db)
    publisher = DryRunPublisher(poster_db)
    dispatcher = Dispatcher(ledger, publisher, bus.publish)
    handler = make_approval_handler(ledger, publisher, ApprovalKeys([new]), wake=dispatcher.wake)
    bus.subscribe(Subscription("poster", {Approval: handler}))
    bus.start()
    dispatcher.start()
    try:
        after = CuratorStore(curator_db, ApprovalKeys([new, old]))
        assert ApprovalSender(after, bus, interval=0.0).send_pending() == 1
        assert wait_until(ledger.published)
        dispatcher.stop()
    finally:
        bus.stop()
    assert [post["approval_id"] for post in ledger.published()] == [stored.message_id]
    assert bus.dead_letters() == []

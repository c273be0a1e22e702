"""End to end over the real local RabbitMQ: a mention goes in, candidates reach the curator, an approval
through the curator's HTTP API makes the poster publish exactly once and tell the curator so; redelivering
every message of the run once more publishes nothing new."""

from __future__ import annotations

import json
import threading

import pika
import pytest
from fastapi.testclient import TestClient

from deephype.common.contracts import Approval, Candidates, EnrichedSong, PostStatus, PublishedPost, SongMention
from deephype.common.rabbit import RabbitBus
from deephype.common.settings import Settings
from deephype.pipeline import build_pipeline
from tests.conftest import bundled_model, wait_until

pytestmark = pytest.mark.rabbitmq


class Tap:
    """A queue of our own bound to every routing key of the exchange: a copy of each message of the run."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.messages: list[tuple[str, bytes]] = []
        self.connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
        channel = self.connection.channel()
        channel.exchange_declare(settings.exchange, exchange_type="topic", durable=True)
        self.queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(self.queue, settings.exchange, routing_key="#")
        self.channel = channel

    def drain(self) -> list[tuple[str, bytes]]:
        while True:
            method, _, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return self.messages
            self.messages.append((method.routing_key, body))

    def close(self) -> None:
        self.connection.close()


def test_mention_to_exactly_one_post_and_redelivery_publishes_nothing_new(rabbit_settings: Settings) -> None:
    settings = rabbit_settings.with_overrides(
        curator_password="s3cret-pass",
        curator_api_token="s3cret-token",
        listener_sources=[],
        listener_api_token="listener-token",
    )
    tap = Tap(settings)
    bus = RabbitBus(settings, connection_name="e2e")
    pipeline = build_pipeline(settings, bus, candidate_source=bundled_model())
    pipeline.start()
    try:
        assert bus.wait_connected(20)
        apps = pipeline.apps()
        listener, curator, poster = (
            TestClient(apps["listener"]),
            TestClient(apps["curator"]),
            TestClient(apps["poster"]),
        )
        for client in (listener, curator, poster):
            assert client.get("/readyz").status_code == 200

        response = listener.post(
            "/v1/mentions",
            headers={"Authorization": "Bearer listener-token"},
            json={
                "platform": "http",
                "post_id": "e2e-1",
                "author": "ana",
                "text": "#NowPlaying Radiohead - Weird Fishes, still perfect",
            },
        )
        assert response.status_code == 202, response.text
        assert response.json()["artist"] == "Radiohead"

        auth = {"Authorization": "Bearer s3cret-token"}
        assert curator.get("/v1/songs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert curator.get("/v1/songs", headers={"Authorization": "Bearer s3cret-pass"}).status_code == 401
        assert wait_until(lambda: curator.get("/v1/songs?status=pending", headers=auth).json())
        [song] = curator.get("/v1/songs?status=pending", headers=auth).json()
        assert song["genres"] == ["alternative rock", "art pop"]  # from the offline catalog
        assert song["trace_id"] == response.json()["trace_id"]
        top = song["candidates"][0]

        approved = curator.post(
            f"/v1/songs/{song['set_id']}/approve",
            headers=auth,
            json={"candidate_id": top["candidate_id"], "text": top["text"] + " (edited)"},
        )
        assert approved.status_code == 200, approved.text
        again = curator.post(
            f"/v1/songs/{song['set_id']}/approve", headers=auth, json={"candidate_id": top["candidate_id"]}
        )
        assert again.status_code == 409

        assert wait_until(lambda: poster.get("/v1/posts").json())
        assert wait_until(
            lambda: curator.get(f"/v1/songs/{song['set_id']}", headers=auth).json()["status"] == "published"
        )
        [post] = poster.get("/v1/posts").json()
        assert post["text"].startswith(top["text"] + " (edited)\n\n")  # then the song credit
        decisions = curator.get("/v1/decisions", headers=auth).json()
        assert [(d["decision"], d["edited"]) for d in decisions] == [("approved", 1)]

        # Every message of the run, once more.
        assert wait_until(
            lambda: (
                curator.get(f"/v1/songs/{song['set_id']}", headers=auth).json()["post_states"][-1]["state"]
                == "published"
            )
        )
        messages = list(tap.drain())
        # The poster's word on the post: 'published', maybe after 'queued' (if a report fell between the two).
        statuses = [key for key, _ in messages if key == PostStatus.routing_key]
        assert 1 <= len(statuses) <= 2
        kinds = sorted(key for key, _ in messages if key != PostStatus.routing_key)
        assert kinds == sorted(
            [
                SongMention.routing_key,
                EnrichedSong.routing_key,
                Candidates.routing_key,
                Approval.routing_key,
                PublishedPost.routing_key,
            ]
        )
        for routing_key, body in messages:
            bus.publish_raw(settings.exchange, routing_key, body, pika.BasicProperties(delivery_mode=2))
        # The replayed mention re-derives an enriched song and candidates, the replayed enriched song
        # candidates again, the replayed approval its published post (no new status: nothing changed):
        # n + n + 4 messages, no new ids.
        replayed = 2 * len(messages) + 4
        assert wait_until(lambda: len(tap.drain()) >= replayed)
        assert wait_until(lambda: all(depth == 0 for depth in bus.queue_depths().values()))
        threading.Event().wait(1.0)  # let any straggler land before counting
        assert len(tap.drain()) == replayed
        ids = {json.loads(body)["message_id"] for _, body in tap.drain()}
        assert ids == {json.loads(body)["message_id"] for _, body in messages}
        assert len(poster.get("/v1/posts").json()) == 1
        assert len(pipeline.posts.db.query("SELECT * FROM timeline")) == 1
        assert len(curator.get("/v1/songs", headers=auth).json()) == 1
        assert bus.dead_letters() == []
    finally:
        pipeline.stop()
        tap.close()

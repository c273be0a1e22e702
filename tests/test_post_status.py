"""The poster tells the curator where each approved post stands (PostStatus: queued for when, published with
its link, failed or held and why), at least once and in any order, and the curator keeps the newest word:
its review page and its API show it. Both stores on SQLite and on the local PostgreSQL; over the real
RabbitMQ end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pika
import pytest

from deephype.common.compose import PostFormat
from deephype.common.contracts import Approval, Envelope, Platform, PostStatus, ReplyTarget, decode
from deephype.common.settings import Settings
from deephype.common.signing import ApprovalKeys
from deephype.curator.handlers import make_post_status_handler
from deephype.curator.review import outcome
from deephype.curator.store import MIGRATIONS as CURATOR_MIGRATIONS
from deephype.curator.store import CuratorStore
from deephype.poster.handlers import SCHEMA, Dispatcher, PostQueue, make_approval_handler
from deephype.poster.publishers import PublishRefused, PublishResult
from deephype.poster.schedule import Pacing, TestClock
from tests.conftest import TEST_APPROVAL_KEY, wait_until
from tests.factories import candidates
from tests.helpers.curator_and_poster import curator_and_poster
from tests.helpers.postgres import BACKENDS, open_store, postgres_url
from tests.test_pipeline_rabbit import Tap

__all__ = ["postgres_url"]  # the session fixture, used through open_store
KEYS = ApprovalKeys([TEST_APPROVAL_KEY])
START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Platform403:
    """A stand-in for an outside platform (not our code): rate-limits first, or refuses a text for good."""

    idempotent = False
    text_limit = 500
    platform = Platform.dry_run

    def __init__(self) -> None:
        self.rate_limited = 0  # how many calls to answer with a 429 first
        self.calls: list[str] = []

    def publish(self, text: str, reply_to: ReplyTarget | None, idempotency_key: str) -> PublishResult:
        self.calls.append(text)
        if "REFUSE" in text:
            raise PublishRefused("403 Forbidden: this text breaks the platform's rules", permanent=True)
        if self.rate_limited:
            self.rate_limited -= 1
            raise PublishRefused("429 Too Many Requests", retry_after_seconds=600)
        return PublishResult(post_id=f"p{len(self.calls)}", url=f"https://social.example/@bot/{len(self.calls)}")


class Reports(list[Envelope]):
    def __init__(self) -> None:
        super().__init__()
        self.down = False  # the broker refuses while this is set

    def __call__(self, message: Envelope) -> None:
        if self.down:
            raise ConnectionError("broker unreachable")
        self.append(message)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def sides(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path, pacing: Pacing, clock: TestClock
) -> tuple[CuratorStore, PostQueue]:
    """The curator's and the poster's stores, on SQLite or on the local PostgreSQL."""
    curator_db = open_store(request, backend, tmp_path / "curator.sqlite3", CURATOR_MIGRATIONS)
    curator = CuratorStore(curator_db, KEYS, PostFormat(("dry_run",)))
    return curator, PostQueue(open_store(request, backend, tmp_path / "poster.sqlite3", SCHEMA), pacing, clock)


def approve(curator: CuratorStore, post_id: str, text: str | None = None) -> tuple[str, Approval]:
    message = candidates(post_id)
    curator.add_candidates(message)
    approval = curator.approve(
        message.message_id, message.candidates[0].candidate_id, text, by="curator", post_platform=("dry_run",)
    )
    return message.message_id, approval


def test_each_state_is_reported_once_and_the_review_page_says_it_in_words(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    clock = TestClock(START)
    curator, queue = sides(request, backend, tmp_path, Pacing(min_gap=timedelta(hours=1), jitter=timedelta(0)), clock)
    platform, reports = Platform403(), Reports()
    dispatcher = Dispatcher(queue, platform, lambda post: None, report=reports, max_attempts=3)
    handle_approval = make_approval_handler(queue, platform, KEYS)
    record = make_post_status_handler(curator)

    (first, first_approval), (second, second_approval) = approve(curator, "1"), approve(curator, "2")
    handle_approval(first_approval)
    handle_approval(second_approval)
    platform.rate_limited = 1
    dispatcher.run_due()  # the first is due now and rate-limited; the second waits its hour
    states = {(r.approval_id, r.state) for r in reports if isinstance(r, PostStatus)}
    assert states == {(first_approval.message_id, "queued"), (second_approval.message_id, "queued")}
    for report in reports:
        assert record(report) == []

    words = [p.words for p in outcome(curator, first).platforms]
    assert words == [
        "Queued for the dry-run timeline: due to go out at 2026-12-01 12:10 UTC. The last try failed "
        "(429 Too Many Requests); it is tried again then."
    ]
    [waiting] = outcome(curator, second).platforms
    assert waiting.state == "queued" and "due to go out at 2026-12-01 13:00 UTC" in waiting.words

    dispatcher.run_due()  # nothing changed: nothing reported again
    assert len(reports) == 2

    clock.advance(minutes=10)
    reports.down = True  # the broker is away when the post goes out: the report waits, nothing is lost
    [post] = dispatcher.run_due()
    assert len(reports) == 2 and queue.unreported()
    reports.down = False
    dispatcher.run_due()
    published = reports[-1]
    assert isinstance(published, PostStatus) and published.state == "published" and published.url == post.url
    record(published)
    [done] = outcome(curator, first).platforms
    assert done.state == "published" and done.url == post.url
    assert done.words == "Published on the dry-run timeline at 2026-12-01 12:10 UTC."

    # At least once means any order: an old "queued" delivered again after "published" changes nothing.
    assert not curator.record_post_status(reports[0])
    assert outcome(curator, first).platforms[0].state == "published"
    api = curator.song(first).as_json()["post_states"]
    assert [(p["platform"], p["state"], p["url"]) for p in api] == [("dry_run", "published", post.url)]
    decided = {d["set_id"]: d["posts"] for d in curator.decisions()}
    assert [p["state"] for p in decided[first]] == ["published"]
    assert [p["state"] for p in decided[second]] == ["queued"]


def test_a_refused_post_says_failed_and_why_and_a_redelivered_status_is_a_duplicate(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    clock = TestClock(START)
    curator, queue = sides(request, backend, tmp_path, Pacing(), clock)
    platform, reports = Platform403(), Reports()
    dispatcher = Dispatcher(queue, platform, lambda post: None, report=reports)
    set_id, approval = approve(curator, "3", "Please REFUSE this one.")
    make_approval_handler(queue, platform, KEYS)(approval)
    dispatcher.run_due()
    [failed] = reports  # queued and refused within one pass: only where it ended is reported
    assert failed.state == "failed" and "403 Forbidden" in (failed.error or "")
    assert curator.record_post_status(failed)
    assert not curator.record_post_status(failed)  # the same report again
    [state] = outcome(curator, set_id).platforms
    assert state.words == (
        "Failed on the dry-run timeline: 403 Forbidden: this text breaks the platform's rules. "
        "Nothing was posted there."
    )
    # The same state, reported again by a poster that lost its record of reporting it: the same message id.
    with queue.db.transaction() as connection:
        connection.execute("DELETE FROM status_reports")
    dispatcher.run_due()
    assert reports[-1].message_id == failed.message_id


def test_a_status_that_breaks_the_contract_is_refused() -> None:
    good = PostStatus(approval_id="a", platform="x", state="queued", at=START, due_at=START).model_dump(mode="json")
    for bad in ({"state": "lost"}, {"at": "2026-12-01T12:00:00"}, {"platform": "myspace"}, {"approval_id": ""}):
        with pytest.raises(Exception, match="failed validation"):
            decode(json.dumps({**good, **bad}).encode())
    assert decode(json.dumps(good).encode()) == PostStatus.model_validate(good)


@pytest.mark.rabbitmq
def test_over_rabbitmq_the_curator_shows_queued_published_and_failed_and_replays_change_nothing(
    rabbit_settings: Settings,
) -> None:
    """A curator and a poster, each on its own broker connection as in production: approvals through the
    curator's API; the poster paces them an hour apart, posts one, refuses one; the curator's API and page
    show each state; every status message of the run delivered once more changes nothing."""
    settings = rabbit_settings.with_overrides(
        curator_api_token="token", curator_password="pw-for-the-page", poster_min_gap_seconds=3600.0
    )
    tap = Tap(settings)
    platform = Platform403()
    auth = {"Authorization": "Bearer token"}
    with curator_and_poster(settings, platform) as running:
        curator_bus, poster_bus, store, api = running.curator_bus, running.poster_bus, running.store, running.api
        songs = [candidates(f"r{i}") for i in range(3)]
        for message in songs:
            curator_bus.publish(message)
        assert wait_until(lambda: len(store.songs()) == 3)

        def states() -> list[str | None]:
            found = [api.get(f"/v1/songs/{m.message_id}", headers=auth).json()["post_states"] for m in songs]
            return [s[0]["state"] if s else None for s in found]

        # One at a time, so the first takes the first slot (the poster handles approvals on two threads).
        expected: list[str | None] = [None, None, None]
        for i, (text, now, state) in enumerate(
            zip(
                (None, None, "Please REFUSE this."),
                (False, False, True),
                ("published", "queued", "failed"),
                strict=True,
            )
        ):
            message = songs[i]
            body = {"candidate_id": message.candidates[0].candidate_id, "now": now} | ({"text": text} if text else {})
            assert api.post(f"/v1/songs/{message.message_id}/approve", json=body, headers=auth).status_code == 200
            expected[i] = state
            assert wait_until(lambda: states() == expected), states()
        published, queued, failed = (api.get(f"/v1/songs/{m.message_id}", headers=auth).json() for m in songs)
        assert published["post_states"][0]["url"] == published["post_url"]
        due = datetime.fromisoformat(queued["post_states"][0]["due_at"])
        assert timedelta(minutes=59) < due - datetime.now(UTC) <= timedelta(hours=1)
        assert "403 Forbidden" in failed["post_states"][0]["error"]
        decisions = api.get("/v1/decisions", headers=auth).json()
        assert sorted(d["posts"][0]["state"] for d in decisions) == ["failed", "published", "queued"]

        # The page, as the curator sees it.
        login = api.get("/login")
        csrf = login.text.split('name="csrf" value="')[1].split('"')[0]
        api.post("/login", data={"password": "pw-for-the-page", "csrf": csrf})
        page = api.get(f"/songs/{songs[1].message_id}").text
        assert 'class="stage post-state queued"' in page and "due to go out at" in page
        assert "Failed on the dry-run timeline: 403 Forbidden" in api.get(f"/songs/{songs[2].message_id}").text
        approved = api.get("/?status=approved").text  # the queue shows what is waiting and what failed
        assert ">queued on the dry-run timeline<" in approved and ">failed on the dry-run timeline<" in approved

        before = store.db.query("SELECT * FROM post_states ORDER BY approval_id")
        statuses = [(key, body) for key, body in tap.drain() if key == PostStatus.routing_key]
        # At least the last state of each post (a state passed within one dispatch is not reported).
        assert len(statuses) >= 3
        for key, body in statuses:
            poster_bus.publish_raw(settings.exchange, key, body, pika.BasicProperties(delivery_mode=2))
        assert wait_until(lambda: all(depth == 0 for depth in curator_bus.queue_depths().values()))
        assert [dict(r) for r in store.db.query("SELECT * FROM post_states ORDER BY approval_id")] == [
            dict(r) for r in before
        ]
        assert curator_bus.dead_letters() == []
    tap.close()


def test_the_curator_queue_receives_post_statuses() -> None:
    """The binding that carries them (declared by every process, so none is unroutable)."""
    from deephype.common.bus import QUEUE_BINDINGS

    assert PostStatus in QUEUE_BINDINGS["curator"]

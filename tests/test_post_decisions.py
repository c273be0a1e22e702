"""A curator's word on a post the poster could not finish: a held post (it may have gone out) or a failed
one is requeued (it goes out at once) or dropped, and a queued one can be dropped before its time. The
decision is signed like an approval, applies only to the state the curator saw (a redelivered requeue
never posts twice), and the poster reports the new state back. Both stores on SQLite and on PostgreSQL;
the API and the page over the real RabbitMQ; the page's buttons in headless Chromium."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from deephype.common.bus import PermanentError
from deephype.common.contracts import Envelope, Platform, PostDecision, PostStatus, ReplyTarget
from deephype.common.settings import Settings
from deephype.common.signing import ApprovalKeys, new_key
from deephype.curator.review import outcome
from deephype.curator.store import CuratorStore, PostNotActionable
from deephype.poster.handlers import SCHEMA, Dispatcher, PostQueue, make_approval_handler, make_decision_handler
from deephype.poster.publishers import PublishResult
from deephype.poster.schedule import Pacing, TestClock
from tests.conftest import TEST_APPROVAL_KEY, wait_until
from tests.factories import candidates
from tests.helpers.curator_and_poster import curator_and_poster
from tests.helpers.postgres import open_store, postgres_url
from tests.test_post_status import approve as approve_only
from tests.test_post_status import backend, sides
from tests.test_review_page_browser import PASSWORD, browser, serving, submit

__all__ = ["backend", "browser", "postgres_url"]  # fixtures, used by name
KEYS = ApprovalKeys([TEST_APPROVAL_KEY])
START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class FlakyPlatform:
    """A stand-in for a platform that cannot say whether a cut-off call went out (not our code): its first
    call breaks mid-way, so the poster holds the post for a person rather than risk posting twice."""

    idempotent = False
    text_limit = 500
    platform = Platform.dry_run

    def __init__(self, breaks: int = 1) -> None:
        self.breaks = breaks
        self.calls: list[str] = []

    def publish(self, text: str, reply_to: ReplyTarget | None, idempotency_key: str) -> PublishResult:
        self.calls.append(text)
        if self.breaks:
            self.breaks -= 1
            raise ConnectionResetError("connection reset while posting")
        return PublishResult(post_id=f"p{len(self.calls)}", url=f"https://social.example/@bot/{len(self.calls)}")


def approve(curator: CuratorStore, post_id: str, handle_approval: Callable[[Envelope], object]) -> str:
    set_id, approval = approve_only(curator, post_id)
    handle_approval(approval)
    return set_id


def relay(reports: list[Envelope], curator: CuratorStore) -> None:
    for report in reports:
        if isinstance(report, PostStatus):
            curator.record_post_status(report)
    reports.clear()


def test_a_held_post_is_requeued_once_and_a_redelivered_or_stale_requeue_changes_nothing(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    clock = TestClock(START)
    curator, queue = sides(request, backend, tmp_path, Pacing(), clock)
    platform, reports = FlakyPlatform(), []
    dispatcher = Dispatcher(queue, platform, lambda post: None, report=reports.append)
    decide = make_decision_handler(queue, KEYS)
    set_id = approve(curator, "h1", make_approval_handler(queue, platform, KEYS))

    dispatcher.run_due()  # the call breaks: held, not retried
    relay(reports, curator)
    [held] = outcome(curator, set_id).platforms
    assert held.state == "held" and held.actions == ("requeue", "drop") and held.attempts == 1
    assert "requeue or drop it" in held.words

    requeue = curator.post_decision(set_id, "dry_run", "requeue", by="curator")
    assert KEYS.problem(requeue) is None and requeue.attempts == 1
    assert decide(requeue) == []
    [post] = dispatcher.run_due()
    assert platform.calls == [post.text, post.text]  # the broken call and the requeued one
    relay(reports, curator)
    [published] = outcome(curator, set_id).platforms
    assert published.state == "published" and published.actions == ()

    decide(requeue)  # redelivered: the post is published now
    stale = curator.keys.sign(requeue.model_copy(update={"message_id": "other", "attempts": 0}))
    decide(stale)
    assert dispatcher.run_due() == [] and len(platform.calls) == 2
    with pytest.raises(PostNotActionable, match="a published post cannot be requeued"):
        curator.post_decision(set_id, "dry_run", "requeue", by="curator")


def test_a_requeue_decided_on_an_older_attempt_does_not_apply_to_a_newer_hold(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    """Held, requeued, held again: the first requeue, delivered late, must not send it out a third time."""
    clock = TestClock(START)
    curator, queue = sides(request, backend, tmp_path, Pacing(), clock)
    platform, reports = FlakyPlatform(breaks=2), []
    dispatcher = Dispatcher(queue, platform, lambda post: None, report=reports.append)
    decide = make_decision_handler(queue, KEYS)
    set_id = approve(curator, "h2", make_approval_handler(queue, platform, KEYS))
    dispatcher.run_due()
    relay(reports, curator)
    first = curator.post_decision(set_id, "dry_run", "requeue", by="curator")
    decide(first)
    dispatcher.run_due()  # breaks again: held at attempt 2
    assert queue.get(first.approval_id, "dry_run")["state"] == "held"
    decide(first)
    assert dispatcher.run_due() == [] and len(platform.calls) == 2
    relay(reports, curator)
    [held_again] = outcome(curator, set_id).platforms
    assert held_again.state == "held" and held_again.attempts == 2


def test_a_queued_post_is_dropped_and_never_goes_out(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    clock = TestClock(START)
    curator, queue = sides(request, backend, tmp_path, Pacing(min_gap=timedelta(hours=1), jitter=timedelta(0)), clock)
    platform, reports = FlakyPlatform(breaks=0), []
    dispatcher = Dispatcher(queue, platform, lambda post: None, report=reports.append)
    handle = make_approval_handler(queue, platform, KEYS)
    first, second = approve(curator, "q1", handle), approve(curator, "q2", handle)
    dispatcher.run_due()  # the first goes out; the second waits an hour
    relay(reports, curator)
    [waiting] = outcome(curator, second).platforms
    assert waiting.state == "queued" and waiting.actions == ("drop",)
    with pytest.raises(PostNotActionable, match="a queued post cannot be requeued"):
        curator.post_decision(second, "dry_run", "requeue", by="curator")

    make_decision_handler(queue, KEYS)(curator.post_decision(second, "dry_run", "drop", by="curator"))
    clock.advance(hours=2)
    assert dispatcher.run_due() == [] and len(platform.calls) == 1
    relay(reports, curator)
    [dropped] = outcome(curator, second).platforms
    assert (
        dropped.state == "dropped"
        and dropped.words == "Dropped: it will not go out on the dry-run timeline (dropped by curator)."
    )
    assert outcome(curator, first).platforms[0].state == "published"
    assert [p["state"] for p in curator.song(second).as_json()["post_states"]] == ["dropped"]


def test_only_a_decision_the_curator_signed_is_applied(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    queue = PostQueue(open_store(request, "sqlite", tmp_path / "poster.sqlite3", SCHEMA), Pacing(), TestClock(START))
    decide = make_decision_handler(queue, KEYS)
    decision = PostDecision(approval_id="a" * 32, platform="dry_run", action="requeue", attempts=1)
    with pytest.raises(PermanentError, match=r"post decision \w+ refused: the post decision is not signed"):
        decide(decision)
    with pytest.raises(PermanentError, match="does not accept"):
        decide(ApprovalKeys([new_key()]).sign(decision))
    with pytest.raises(PermanentError, match="altered or forged"):
        decide(KEYS.sign(decision).model_copy(update={"attempts": 2}))
    # An approval's signature never signs a decision: each kind of message has its own domain.
    signed = KEYS.sign(decision)
    assert KEYS.sign(decision.model_copy(update={"action": "drop"})).signature != signed.signature
    assert decide(signed) == []  # signed, but there is no such post: logged and done with


def test_the_poster_queue_receives_post_decisions() -> None:
    from deephype.common.bus import QUEUE_BINDINGS

    assert PostDecision in QUEUE_BINDINGS["poster"]


@pytest.mark.rabbitmq
def test_over_rabbitmq_the_api_and_the_page_drop_and_requeue(rabbit_settings: Settings) -> None:
    """Curator and poster on their own broker connections: a post paced an hour out is dropped through the
    API; a held one is requeued from the page and goes out; bad requests get clear 4xx answers."""
    settings = rabbit_settings.with_overrides(
        curator_api_token="token", curator_password="pw-for-the-page", poster_min_gap_seconds=3600.0
    )
    platform = FlakyPlatform()
    auth = {"Authorization": "Bearer token"}
    with curator_and_poster(settings, platform) as running:
        curator_bus, poster_bus, store, api = running.curator_bus, running.poster_bus, running.store, running.api
        held, queued = candidates("rq1"), candidates("rq2")

        def state(set_id: str) -> str | None:
            found = api.get(f"/v1/songs/{set_id}", headers=auth).json()["post_states"]
            return found[0]["state"] if found else None

        for message in (held, queued):
            curator_bus.publish(message)
            assert wait_until(lambda m=message: any(s.set_id == m.message_id for s in store.songs()))
            body = {"candidate_id": message.candidates[0].candidate_id}
            assert api.post(f"/v1/songs/{message.message_id}/approve", json=body, headers=auth).status_code == 200
        assert wait_until(lambda: state(held.message_id) == "held" and state(queued.message_id) == "queued")

        url = f"/v1/songs/{queued.message_id}/posts/dry_run"
        assert api.post(f"{url}/requeue", headers=auth).status_code == 409  # a queued post is not requeued
        assert api.post(f"{url}/publish", headers=auth).status_code == 422
        assert api.post(f"/v1/songs/{queued.message_id}/posts/myspace/drop", headers=auth).status_code == 422
        assert api.post("/v1/songs/nosuchsong/posts/dry_run/drop", headers=auth).status_code == 404
        assert api.post(f"{url}/drop", json={"attempts": -1}, headers=auth).status_code == 422
        assert api.post(f"{url}/drop").status_code == 401
        accepted = api.post(f"{url}/drop", headers=auth)
        assert accepted.status_code == 202 and "dropped" in accepted.json()["accepted"]
        assert wait_until(lambda: state(queued.message_id) == "dropped")

        login = api.get("/login")
        csrf = login.text.split('name="csrf" value="')[1].split('"')[0]
        api.post("/login", data={"password": "pw-for-the-page", "csrf": csrf})
        page = api.get(f"/songs/{held.message_id}").text
        assert 'id="requeue-dry_run"' in page and 'id="drop-dry_run"' in page
        csrf = page.split('name="csrf" value="')[1].split('"')[0]  # the logged-in session's
        forged = {"csrf": "forged", "attempts": 1}
        assert api.post(f"/songs/{held.message_id}/posts/dry_run/requeue", data=forged).status_code == 403
        done = api.post(
            f"/songs/{held.message_id}/posts/dry_run/requeue",
            data={"csrf": csrf, "attempts": 1},
            follow_redirects=False,
        )
        assert done.status_code == 303
        assert wait_until(lambda: state(held.message_id) == "published")
        assert len(platform.calls) == 2  # the broken call and the requeued one; the dropped post never
        page = api.get(f"/songs/{held.message_id}").text
        assert 'id="requeue-dry_run"' not in page and "Published on the dry-run timeline" in page
        assert curator_bus.dead_letters() == [] and poster_bus.dead_letters() == []


@pytest.mark.browser
def test_in_the_browser_the_curator_drops_a_queued_post(tmp_path: Path, browser: webdriver.Chrome) -> None:
    with serving(tmp_path, poster_min_gap_seconds=3600.0) as (pipeline, curator_url, poster_url):
        first, second = candidates("bd1"), candidates("bd2")
        for message in (first, second):
            pipeline.bus.publish(message)
        assert wait_until(lambda: len(pipeline.curator.songs()) == 2)
        browser.get(curator_url + "/login")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        submit(browser, browser.find_element(By.CSS_SELECTOR, "form button"))
        for message in (first, second):
            browser.get(f"{curator_url}/songs/{message.message_id}")
            submit(browser, browser.find_element(By.CSS_SELECTOR, "#candidate-1 button.approve"))
        assert wait_until(lambda: len(httpx.get(poster_url + "/v1/posts").json()) == 1)

        def shown_state() -> str:
            browser.get(f"{curator_url}/songs/{second.message_id}")
            found = browser.find_elements(By.ID, "state-dry_run")
            return found[0].get_attribute("class") if found else ""

        assert wait_until(lambda: "queued" in shown_state())
        assert not browser.find_elements(By.ID, "requeue-dry_run")
        submit(browser, browser.find_element(By.CSS_SELECTOR, "#drop-dry_run button"))
        assert "dropped and will not go out" in browser.find_element(By.CSS_SELECTOR, ".flash").text
        assert wait_until(lambda: "dropped" in shown_state())
        assert "Dropped: it will not go out" in browser.find_element(By.ID, "state-dry_run").text
        assert not browser.find_elements(By.ID, "drop-dry_run")
        queue = httpx.get(poster_url + "/v1/queue").json()
        assert all(row["approval_id"] != pipeline.curator.song(second.message_id).approval_id for row in queue)
        assert len(httpx.get(poster_url + "/v1/posts").json()) == 1

"""Past one machine: every service's state on the local PostgreSQL (a fresh database), two copies of the
curator and two of the poster, each its own process with its own state folder (as on two hosts: nothing
shared but the database and the broker). 500 mentions with auto-approval; one poster copy is killed (-9)
mid-run and not restarted. Every approval is published exactly once on the (fake) Mastodon, none is lost,
the surviving copy takes over the dead one's cut-off call, and the review page of either curator copy
lists every song."""

from __future__ import annotations

import collections
import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from deephype.common.bus import derive_id
from deephype.common.settings import Settings
from deephype.poster.schedule import stamp
from tests.conftest import TEST_APPROVAL_KEY, wait_until
from tests.fakes import mastodon as fm
from tests.fakes.server import Fault
from tests.helpers.postgres import fresh_database
from tests.helpers.processes import ServiceProcess
from tests.test_faults import mention_text, post_mentions

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]
MENTIONS = int(os.environ.get("DEEPHYPE_COPIES_MENTIONS", "500"))
PASSWORD = "pw-copies-3c9e"
LISTENER_TOKEN = "listener-0c4b8e2f"  # what post_mentions sends


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def env_for(settings: Settings, database: str, mastodon: fm.FakeMastodon, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPHYPE_")}
    env.update(
        {
            "DEEPHYPE_AMQP_URL": settings.amqp_url,
            "DEEPHYPE_EXCHANGE": settings.exchange,
            "DEEPHYPE_STATE_DIR": str(state),  # one per process: no file is shared
            "DEEPHYPE_DATABASE_URL": database,
            "DEEPHYPE_DATABASE_POOL_SIZE": "4",
            "DEEPHYPE_LOG_FORMAT": "text",
            "DEEPHYPE_LISTENER_SOURCES": "[]",
            "DEEPHYPE_LISTENER_API_TOKEN": LISTENER_TOKEN,
            "DEEPHYPE_GENERATOR_MODEL": "null",  # the hops under test are the stores, not the model
            "DEEPHYPE_CURATOR_AUTO_APPROVE": "true",
            "DEEPHYPE_CURATOR_PASSWORD": PASSWORD,
            "DEEPHYPE_CURATOR_SECRET_KEY": "copies-secret-key-0123456789abcdef",  # the copies share it
            "DEEPHYPE_APPROVAL_KEYS": TEST_APPROVAL_KEY,
            "DEEPHYPE_RETRY_DELAYS": "[0.5, 2.0, 5.0]",
            "DEEPHYPE_MAX_ATTEMPTS": "8",
            "DEEPHYPE_POSTER_PLATFORMS": '["mastodon"]',
            "DEEPHYPE_POSTER_MIN_GAP_SECONDS": "0",
            "DEEPHYPE_POSTER_GAP_JITTER_SECONDS": "0",
            "DEEPHYPE_POSTER_MAX_PER_HOUR": "1000000",
            "DEEPHYPE_POSTER_MAX_PER_DAY": "1000000",
            "DEEPHYPE_MASTODON_BASE_URL": mastodon.url,
            "DEEPHYPE_MASTODON_ACCESS_TOKEN": fm.ACCESS_TOKEN,
            "DEEPHYPE_PLATFORM_TIMEOUT_SECONDS": "120",  # the hung call stays in flight until the kill
        }
    )
    return env


def count(database: str, sql: str) -> int:
    with psycopg.connect(database, autocommit=True) as connection:
        return int(connection.execute(sql).fetchone()[0])  # type: ignore[index]


def stuck_claim(database: str) -> str:
    """The copy (its claimed_by) whose call has been 'publishing' for over a second; empty if none."""
    sql = "SELECT claimed_by FROM poster.outbox WHERE state='publishing' AND started_at < %s"
    cutoff = stamp(datetime.now(UTC) - timedelta(seconds=1))
    with psycopg.connect(database, autocommit=True) as connection:
        rows = connection.execute(sql, (cutoff,)).fetchall()
    return rows[0][0] if rows else ""


def review_page_songs(curator: ServiceProcess) -> set[str]:
    """Sign in to a curator copy's review page and read every song id on the 'all' list, page by page."""
    with httpx.Client(base_url=curator.url, timeout=30, follow_redirects=True) as client:
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert csrf is not None
        client.post("/login", data={"password": PASSWORD, "csrf": csrf.group(1)})
        songs: set[str] = set()
        for page in range(1, 10_000):
            html = client.get("/", params={"status": "all", "page": page}).text
            found = set(re.findall(r'href="/songs/([0-9a-f]+)"', html))
            if not found or found <= songs:
                return songs
            songs |= found
    return songs


def test_two_curators_and_two_posters_on_one_postgres_publish_every_approval_exactly_once(
    rabbit_settings: Settings, mastodon: fm.FakeMastodon, database: str, tmp_path: Path
) -> None:
    def process(name: str, label: str) -> ServiceProcess:
        return ServiceProcess(name, env_for(rabbit_settings, database, mastodon, tmp_path / label), tmp_path, label)

    services = {
        "listener": process("listener", "listener"),
        "enricher": process("enricher", "enricher"),
        "generator": process("generator", "generator"),
        "curator-1": process("curator", "curator-1"),
        "curator-2": process("curator", "curator-2"),
        "poster-1": process("poster", "poster-1"),
        "poster-2": process("poster", "poster-2"),
    }
    try:
        for service in services.values():
            service.start()
        assert wait_until(lambda: all(s.ready() for s in services.values()), timeout=120), "not ready"
        failures: list[str] = []
        sender = threading.Thread(target=post_mentions, args=(services["listener"], MENTIONS, failures))
        sender.start()
        expected = sum(mention_text(i)[1] for i in range(MENTIONS))
        # Mid-run, both posters posting: the next post is made but never answered, and the copy making that
        # call is killed (-9) while it waits; it stays dead.
        assert wait_until(lambda: len(mastodon.posted_by_bot()) >= expected // 4, timeout=300)
        mastodon.server.fail("/api/v1/statuses", Fault(hang_after=True, times=1))
        hung = wait_until(lambda: stuck_claim(database), timeout=60)
        assert hung, "no call hung"
        [victim] = [n for n, s in services.items() if s.process and f"-{s.process.pid}-" in stuck_claim(database)]
        services[victim].kill()
        survivor = "poster-2" if victim == "poster-1" else "poster-1"
        sender.join(timeout=600)
        assert not sender.is_alive() and not failures, failures

        published = "SELECT COUNT(*) FROM curator.songs WHERE status='published'"
        assert wait_until(lambda: count(database, published) >= expected, timeout=300, interval=1.0), (
            f"{count(database, published)} of {expected} songs published"
        )
        for name in ("curator-1", "curator-2"):
            assert len(review_page_songs(services[name])) == expected, f"{name}'s review page misses songs"
    finally:
        for service in services.values():
            service.stop()

    # Exactly once: one status per approval on the platform, and no approval called twice except at most
    # the one cut off by the kill (Mastodon's Idempotency-Key makes that repeat return the first status).
    with psycopg.connect(database, autocommit=True) as connection:
        approvals = [r[0] for r in connection.execute("SELECT approval_id FROM curator.songs").fetchall()]
        outbox = connection.execute("SELECT approval_id, state, claimed_by FROM poster.outbox").fetchall()
        decisions = count(database, "SELECT COUNT(*) FROM curator.decisions WHERE decision='approved'")
        mentions = count(database, "SELECT COUNT(*) FROM listener.posts")
    assert mentions == MENTIONS and len(approvals) == decisions == expected
    assert len(outbox) == expected and {state for _, state, _ in outbox} == {"published"}
    keys = {derive_id(approval, "post", "mastodon") for approval in approvals}
    assert set(mastodon.idempotency_keys) == keys
    posts = mastodon.posted_by_bot()
    assert len(posts) == expected and len({p.id for p in posts}) == expected
    creates = collections.Counter(
        r.headers.get("idempotency-key") for r in mastodon.server.requests if r.path == "/api/v1/statuses"
    )
    assert set(creates) == keys
    # The hung call went out and was made again by the survivor: one status, as the platform dedupes it.
    assert sorted(n for n in creates.values() if n > 1) == [2], "an approval was sent to the platform twice"
    copies = collections.Counter(claimed_by.rsplit("-", 2)[-2] for _, _, claimed_by in outbox)  # by pid
    assert len(copies) == 2, f"both poster copies should have posted: {copies}"
    assert "was cut off" in (tmp_path / f"{survivor}.log").read_text()  # the dead copy's call, taken over

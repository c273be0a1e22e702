"""The review page in a real browser (Debian's headless Chromium through Selenium): log in, edit, approve,
and see the dry-run post; a candidate's markup stays text; a review link works once."""

from __future__ import annotations

import email
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from deephype.common.memory_bus import InMemoryBus
from deephype.pipeline import Pipeline, build_pipeline
from tests.conftest import bundled_model, make_settings, wait_until
from tests.factories import candidates

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Pipeline, str, str]]:
    with serving(tmp_path) as served:
        yield served


@contextmanager
def serving(tmp_path: Path, **overrides: object) -> Iterator[tuple[Pipeline, str, str]]:
    """The pipeline with its curator and poster on HTTP: (pipeline, curator URL, poster URL)."""
    curator_port, poster_port = free_port(), free_port()
    curator_url = f"http://127.0.0.1:{curator_port}"
    settings = make_settings(
        tmp_path,
        curator_password=PASSWORD,
        curator_secret_key="s" * 32,
        public_url=curator_url,
        listener_sources=[],
        **overrides,
    )
    pipeline = build_pipeline(settings, InMemoryBus(settings), candidate_source=bundled_model())
    pipeline.start()
    apps = pipeline.apps()
    servers = []
    for name, port in (("curator", curator_port), ("poster", poster_port)):
        server = uvicorn.Server(uvicorn.Config(apps[name], host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        servers.append(server)
    assert wait_until(lambda: all(s.started for s in servers))
    yield pipeline, curator_url, f"http://127.0.0.1:{poster_port}"
    for server in servers:
        server.should_exit = True
    pipeline.stop()


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail("Debian's chromium and chromium-driver are needed (make test installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
    ):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.implicitly_wait(5)
    yield chrome
    chrome.quit()


def submit(browser: webdriver.Chrome, button: WebElement) -> None:
    """Click a form's button and wait for the next page: reading the page before the old one is gone
    would race the browser's navigation. The old document carries a mark the next one lacks; asking about
    the old button instead can meet chromedriver mid-navigation ("Node with given id does not belong to
    the document"), so errors while the page turns are polled through."""
    browser.execute_script("window.__deephypeOldPage = true")
    button.click()
    WebDriverWait(browser, 10, ignored_exceptions=(WebDriverException,)).until(
        lambda driver: driver.execute_script(
            "return window.__deephypeOldPage === undefined && document.readyState === 'complete'"
        )
    )


def test_log_in_edit_approve_and_see_the_dry_run_post(running, browser: webdriver.Chrome, tmp_path: Path) -> None:
    pipeline, curator_url, poster_url = running
    hostile = "<script>window.pwned = 1</script> is what the bridge sounds like"
    message = candidates("b1", texts=(hostile, "A calm second take."))
    pipeline.bus.publish(message)
    assert wait_until(lambda: pipeline.curator.songs())

    browser.get(curator_url + "/")
    assert browser.current_url.endswith("/login")
    browser.find_element(By.NAME, "password").send_keys("wrong")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "form button"))
    assert "Wrong password" in browser.page_source
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    submit(browser, browser.find_element(By.CSS_SELECTOR, "form button"))

    submit(browser, browser.find_element(By.ID, f"row-{message.message_id}"))  # from the queue to the song
    card = browser.find_element(By.ID, f"song-{message.message_id}")
    assert "Low Tide" in card.text and "Glass Harbour" in card.text
    boxes = card.find_elements(By.CSS_SELECTOR, "form.candidate:not(#own) textarea")
    assert boxes[0].get_attribute("value").startswith(hostile)  # shown as text …
    assert browser.execute_script("return window.pwned") is None  # … never run
    browser.save_screenshot(str(tmp_path / "review.png"))

    boxes[1].clear()
    boxes[1].send_keys("A calm second take, edited by a human.")
    submit(browser, card.find_elements(By.CSS_SELECTOR, "button.approve")[1])
    assert "Approved" in browser.find_element(By.CSS_SELECTOR, ".flash").text

    assert wait_until(lambda: httpx.get(poster_url + "/v1/posts").json())
    [post] = httpx.get(poster_url + "/v1/posts").json()
    assert post["text"] == "A calm second take, edited by a human."
    assert post["url"].startswith("dry-run://timeline/")
    assert wait_until(lambda: pipeline.curator.song(message.message_id).status == "published")
    browser.get(f"{curator_url}/songs/{message.message_id}")
    assert "published" in browser.find_element(By.CSS_SELECTOR, ".status").text.lower()
    assert post["url"] in browser.page_source


def test_a_review_link_opens_one_song_decides_once_and_never_approves_by_itself(running, browser) -> None:
    pipeline, _, _ = running
    message = candidates("b2")
    pipeline.bus.publish(message)
    outbox = pipeline.settings.state_dir / "curator" / "outbox"
    assert wait_until(lambda: list(outbox.glob("*.eml")))
    mail = email.message_from_bytes(next(outbox.glob("*.eml")).read_bytes())
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    link = next(line for line in text.splitlines() if "/review/" in line)

    # A mail scanner fetching the link changes nothing.
    assert httpx.get(link, follow_redirects=True).status_code == 200
    time.sleep(0.2)
    assert pipeline.curator.song(message.message_id).status == "pending"

    browser.get(link)
    assert f"/songs/{message.message_id}" in browser.current_url
    submit(browser, browser.find_element(By.CSS_SELECTOR, "button.reject"))
    assert "Rejected" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    assert pipeline.curator.song(message.message_id).status == "rejected"

    browser.delete_all_cookies()
    browser.get(link)
    assert "already used" in browser.page_source
    browser.get(link[:-3] + "abc")
    assert "not valid" in browser.page_source


def test_forms_without_the_csrf_token_are_refused(running) -> None:
    pipeline, curator_url, _ = running
    message = candidates("b3")
    pipeline.bus.publish(message)
    assert wait_until(lambda: pipeline.curator.songs())
    with httpx.Client(base_url=curator_url) as client:
        client.get("/login")
        csrf_less = client.post("/login", data={"password": PASSWORD, "csrf": "forged"})
        assert csrf_less.status_code == 403
        approve = client.post(
            f"/songs/{message.message_id}/approve",
            data={"csrf": "x", "candidate_id": message.candidates[0].candidate_id, "text": "hi"},
        )
        assert approve.status_code in (303, 403)
    assert pipeline.curator.song(message.message_id).status == "pending"

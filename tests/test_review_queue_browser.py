"""Issue 15: the review page as a person works through it, in headless Chromium: the queue, one song with
the post that named it, a live count while editing, approve, and what became of it; a too-long edit comes
back with the edit kept. Screenshots at phone (390 px) and desktop (1280 px) width go to build/screenshots/
(ignored by git) for a person to look at."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from deephype.common.bus import derive_id
from deephype.common.contracts import Candidates, ScoredText
from deephype.pipeline import Pipeline
from tests.conftest import wait_until
from tests.factories import candidates
from tests.test_review_page_browser import PASSWORD, browser, running, serving, submit  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser
SCREENSHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"
POST_URL = "https://social.example/@ana/110"
SCORES = [
    {"loglik_per_token": -2.1, "fluency": -2.2, "genre_fit": -0.3, "critic": 0.6, "latent_move": 2.4},
    {"loglik_per_token": -3.0, "fluency": -3.1, "genre_fit": -1.2, "critic": 0.4, "latent_move": 1.0},
    {"loglik_per_token": -4.0, "fluency": -3.9, "genre_fit": -2.5, "critic": 0.1, "latent_move": 0.2},
]


def scored(post_id: str, texts: tuple[str, ...], **kw: object) -> Candidates:
    """Candidates with the numbers the generator attaches, so the page has something to put in words."""
    message = candidates(post_id, texts=texts, **kw)
    return message.model_copy(
        update={
            "candidates": [
                ScoredText(candidate_id=derive_id(message.message_id, i), text=t, score=1 - i / 10, scores=SCORES[i])
                for i, t in enumerate(texts)
            ]
        }
    )


@pytest.fixture
def paced(tmp_path: Path) -> Iterator[tuple[Pipeline, str, str]]:
    """Posts paced as in production: the first goes out at once, the next waits an hour in the queue."""
    with serving(tmp_path, poster_min_gap_seconds=3600.0) as served:
        yield served


def shoot(chrome: webdriver.Chrome, name: str) -> None:
    """The page at 390 px and at 1280 px wide, full height."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in (390, 1280):
        chrome.set_window_size(width, 900)
        height = chrome.execute_script("return document.documentElement.scrollHeight")
        chrome.set_window_size(width, min(max(height + 200, 600), 4000))  # + the window's own frame
        chrome.execute_script("window.scrollTo(0, 0)")
        assert chrome.execute_script("return document.documentElement.scrollWidth") <= width, "sideways scroll"
        chrome.save_screenshot(str(SCREENSHOTS / f"{name}-{width}.png"))
    chrome.set_window_size(1280, 900)


def log_in(chrome: webdriver.Chrome, curator_url: str) -> None:
    chrome.get(curator_url + "/login")
    chrome.find_element(By.NAME, "password").send_keys(PASSWORD)
    submit(chrome, chrome.find_element(By.CSS_SELECTOR, "form button.approve"))


def test_walk_the_queue_edit_with_a_live_count_approve_and_see_it_published(paced, browser) -> None:  # noqa: F811
    pipeline, curator_url, _ = paced
    texts = (
        "Glass Harbour hums like a lighthouse left on at noon.",
        "A slow tide of reverb, and the chorus arrives like weather.",
        "Synths.",
    )
    older = scored("q1", texts)
    newer = scored("q2", texts, url=POST_URL)
    pipeline.bus.publish(older)
    assert wait_until(lambda: len(pipeline.curator.songs()) == 1)
    pipeline.bus.publish(newer)
    assert wait_until(lambda: len(pipeline.curator.songs()) == 2)

    log_in(browser, curator_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "ol.queue li a")
    assert [r.get_attribute("id") for r in rows] == [f"row-{newer.message_id}", f"row-{older.message_id}"]
    current = browser.find_element(By.CSS_SELECTOR, ".filters a[aria-current=page]")
    assert current.text.startswith("Pending") and "(2)" in current.text
    shoot(browser, "queue")

    submit(browser, rows[0])
    page = browser.find_element(By.ID, f"song-{newer.message_id}")
    quote = page.find_element(By.CSS_SELECTOR, ".mention blockquote")
    assert quote.text == "#np Low Tide - Glass Harbour"
    assert page.find_element(By.LINK_TEXT, "open the original post").get_attribute("href") == POST_URL
    assert "the dry-run timeline, as a new post" in page.find_element(By.CSS_SELECTOR, ".destination").text
    lookup = page.find_element(By.LINK_TEXT, "look the song up").get_attribute("href")  # no provider id: a search
    assert lookup.startswith("https://musicbrainz.org/search?") and "Glass+Harbour" in lookup
    judges = [j.text for j in page.find_elements(By.CSS_SELECTOR, "#candidate-1 .judge")]
    assert judges == ["fluent: reads smoothly", "on-genre: 74% likely", "novel: a fresh angle"]
    raw = page.find_element(By.CSS_SELECTOR, "#candidate-1 details.raw")
    assert not raw.get_attribute("open") and "loglik_per_token" in raw.get_attribute("textContent")

    # Shortcuts: j moves to the second candidate, e puts the cursor in its box.
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("j")
    body.send_keys("e")
    box = browser.switch_to.active_element
    assert box.get_attribute("id") == "box-2"
    count = page.find_element(By.ID, "count-2")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys("x" * 510)
    assert "too many" in count.text and "over" in count.get_attribute("class")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    edited = "The chorus arrives like weather, edited by a human."
    box.send_keys(edited)
    assert count.text == f"{len(edited)} / 500" and "over" not in count.get_attribute("class")
    shoot(browser, "song")

    submit(browser, page.find_element(By.CSS_SELECTOR, "#candidate-2 button.approve"))
    assert "Approved" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    outcome = browser.find_element(By.ID, "outcome")
    assert "by you (logged in)" in outcome.text
    assert edited in outcome.find_element(By.CSS_SELECTOR, ".approved-post").text
    assert browser.find_element(By.ID, "next-song").get_attribute("href").endswith(f"/songs/{older.message_id}")

    assert wait_until(lambda: pipeline.curator.song(newer.message_id).status == "published")
    browser.refresh()
    assert wait_until(lambda: pipeline.curator.song(newer.message_id).post_states)  # the poster's own word
    browser.refresh()
    stage = browser.find_element(By.CSS_SELECTOR, "#outcome .post-state.published")
    assert stage.text.startswith("Published on the dry-run timeline at")
    post_url = pipeline.curator.song(newer.message_id).post_url
    assert post_url and stage.find_element(By.TAG_NAME, "a").get_attribute("href") == post_url
    shoot(browser, "approved")

    browser.get(curator_url + "/?status=published")
    assert [r.get_attribute("id") for r in browser.find_elements(By.CSS_SELECTOR, "ol.queue li a")] == [
        f"row-{newer.message_id}"
    ]

    # The next song, approved as shown: the poster paces posts (DEEPHYPE_POSTER_MIN_GAP_SECONDS apart),
    # so this one waits in its queue, and the page says so.
    browser.get(f"{curator_url}/songs/{newer.message_id}")
    submit(browser, browser.find_element(By.ID, "next-song"))
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#candidate-1 button.approve"))

    def stage_now() -> str:
        browser.refresh()
        return browser.find_element(By.CSS_SELECTOR, "#outcome .stage").text

    assert wait_until(lambda: stage_now().startswith("Queued for the dry-run timeline: due to go out at"))
    due = pipeline.posts.get(pipeline.curator.song(older.message_id).approval_id, "dry_run")["due_at"]
    assert f"{due[:10]} {due[11:16]} UTC" in stage_now()  # the poster's own slot, an hour after the first
    assert browser.find_element(By.CSS_SELECTOR, "#outcome .post-state.queued")
    shoot(browser, "queued")
    assert pipeline.curator.song(older.message_id).status == "approved"
    browser.get(curator_url + "/?status=approved")
    row = browser.find_element(By.ID, f"row-{older.message_id}")
    assert row.find_element(By.CSS_SELECTOR, ".status.post-queued").text.lower() == "queued on the dry-run timeline"
    shoot(browser, "queue-approved")
    browser.get(f"{curator_url}/songs/{older.message_id}")
    assert not browser.find_elements(By.ID, "next-song")  # nothing is left to review


def test_a_too_long_edit_comes_back_with_the_edit_kept_and_what_to_change(running, browser) -> None:  # noqa: F811
    pipeline, curator_url, _ = running
    message = scored("q3", ("A first take.", "A second take.", "A third take."))
    pipeline.bus.publish(message)
    assert wait_until(lambda: pipeline.curator.songs())
    log_in(browser, f"{curator_url}")
    browser.get(f"{curator_url}/songs/{message.message_id}")

    box = browser.find_element(By.ID, "box-1")
    too_long = "So much to say about this song. " * 20
    box.clear()
    box.send_keys(too_long)
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#candidate-1 button.approve"))
    flash = browser.find_element(By.CSS_SELECTOR, ".flash.error")
    assert "the post for the dry-run timeline is" in flash.text and "500 is the most it takes" in flash.text
    assert f"Cut at least {len(too_long.strip()) - 500} characters. Change it and approve again." in flash.text
    kept = browser.find_element(By.ID, "box-1")
    assert kept.get_attribute("value").strip() == too_long.strip()  # the edit is still there to shorten
    assert "over" in browser.find_element(By.ID, "count-1").get_attribute("class")
    shoot(browser, "too-long")
    assert pipeline.curator.song(message.message_id).status == "pending"

    kept.send_keys(Keys.CONTROL, "a")
    kept.send_keys(Keys.DELETE)
    kept.send_keys("Short now.")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#candidate-1 button.approve"))
    assert "Approved" in browser.find_element(By.CSS_SELECTOR, ".flash").text
    assert pipeline.curator.song(message.message_id).status in ("approved", "published")

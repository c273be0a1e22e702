"""The RSS/Atom path against a local http.server: robots.txt, page completion, cache, rate limit."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deephype.corpus.build import BuildSettings, build_corpus
from deephype.corpus.sources import PoliteFetcher, parse_feed

ROBOTS = "User-agent: *\nDisallow: /private/\n"

PAGE_ONE = """<html><head><title>Cobalt Meadow - Small Weather | Feed Blog</title></head><body>
<nav>Home About Contact and a very long menu of links nobody reads</nav>
<article><h1>Cobalt Meadow - Small Weather</h1>
<p>Cobalt Meadow recorded Small Weather in one take on a cold porch in the early morning.</p>
<p>The harmonium hums underneath the whole song like a kettle about to boil.</p></article></body></html>"""

PAGE_SECRET = "<html><body><p>This page is private and must never be fetched by the crawler.</p></body></html>"


def rss(base: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Feed Blog</title>
<item><title>Cobalt Meadow - Small Weather</title><link>{base}/posts/one.html</link>
<description>A short teaser.</description></item>
<item><title>Secret Band - Hidden Song</title><link>{base}/private/two.html</link>
<description>Another teaser.</description></item>
</channel></rss>"""


def atom(base: str) -> str:
    body = " ".join(["DJ Quartz stretches Concrete Bloom into a long, patient groove for tired dancers."] * 12)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom Blog</title>
<entry><title>DJ Quartz – “Concrete Bloom”</title><link rel="alternate" href="{base}/posts/three.html"/>
<content type="html">&lt;p&gt;{body}&lt;/p&gt;</content></entry></feed>"""


class Site:
    """A tiny blog on 127.0.0.1 that records every path it is asked for."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append(self.path)
                base = f"http://{self.headers['Host']}"
                pages = {
                    "/robots.txt": ("text/plain", ROBOTS),
                    "/feed.xml": ("application/rss+xml", rss(base)),
                    "/atom.xml": ("application/atom+xml", atom(base)),
                    "/posts/one.html": ("text/html", PAGE_ONE),
                    "/private/two.html": ("text/html", PAGE_SECRET),
                    "/private/feed.xml": ("application/rss+xml", rss(base)),
                }
                if self.path not in pages:
                    self.send_error(404)
                    return
                kind, text = pages[self.path]
                data = text.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    with Site() as running:
        yield running


def test_feeds_build_respects_robots_and_caches(site: Site, tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(f"# our blogs\n{site.base}/feed.xml\n\n{site.base}/atom.xml\n{site.base}/private/feed.xml\n")
    settings = BuildSettings(plot=False, fetch_interval_seconds=0.0, cache_dir=str(tmp_path / "cache"))

    manifest = build_corpus([feeds], tmp_path / "out", settings=settings)
    records = [
        json.loads(line) for name in ("train", "valid", "test") for line in (tmp_path / "out" / f"{name}.jsonl").open()
    ]
    texts = {r["text"] for r in records}

    assert "<artist> recorded <title> in one take on a cold porch in the early morning." in texts  # from the page
    assert "The harmonium hums underneath the whole song like a kettle about to boil." in texts
    assert any(r["artist"] == "DJ Quartz" and r["title"] == "Concrete Bloom" for r in records)  # Atom content
    assert not any("private" in t for t in texts)
    assert "/private/two.html" not in site.requests and "/private/feed.xml" not in site.requests
    assert site.requests.count("/robots.txt") == 1
    assert "/posts/three.html" not in site.requests  # the Atom entry was long enough on its own
    fetch = manifest["inputs"][0]["fetch"]
    assert fetch["robots_blocked"] == 2
    assert any("private/feed.xml" in w for w in manifest["warnings"])

    asked_before = len(site.requests)
    second = build_corpus([feeds], tmp_path / "out", settings=settings)
    assert len(site.requests) == asked_before  # everything came from the disk cache
    assert second["inputs"][0]["fetch"]["cache_hits"] > 0
    assert second["inputs"][0]["fetch"]["fetched"] == 0
    assert second["content_sha256"] == manifest["content_sha256"]


def test_same_host_waits_other_host_does_not(site: Site, tmp_path: Path) -> None:
    now = [100.0]
    sleeps: list[float] = []

    def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    fetcher = PoliteFetcher(tmp_path / "cache", min_interval=5.0, sleep=fake_sleep, clock=lambda: now[0])
    assert fetcher.fetch(f"{site.base}/posts/one.html") == PAGE_ONE  # robots.txt, then the page: one wait
    assert sleeps == [5.0]
    other_host = site.base.replace("127.0.0.1", "localhost")
    assert fetcher.fetch(f"{other_host}/feed.xml") is not None  # its own robots.txt: no wait, then one wait
    assert sleeps == [5.0, 5.0]
    assert fetcher.fetch(f"{site.base}/posts/one.html") == PAGE_ONE  # cached: no request, no wait
    assert sleeps == [5.0, 5.0]


def test_missing_robots_allows_and_server_error_forbids(site: Site, tmp_path: Path) -> None:
    fetcher = PoliteFetcher(tmp_path / "cache", min_interval=0.0)
    assert fetcher.fetch(f"{site.base}/posts/one.html") == PAGE_ONE
    assert fetcher.fetch(f"{site.base}/nope.html") is None  # 404 page
    unreachable = PoliteFetcher(tmp_path / "cache2", min_interval=0.0, timeout=2.0)
    assert unreachable.fetch("http://127.0.0.1:9/x.html") is None  # nothing listens on port 9
    assert unreachable.stats.robots_blocked == 1


def test_feed_parser_reads_rss_and_atom() -> None:
    items = parse_feed(rss("http://blog.test"), "http://blog.test/feed.xml")
    assert [i["link"] for i in items] == ["http://blog.test/posts/one.html", "http://blog.test/private/two.html"]
    entry = parse_feed(atom("http://blog.test"), "http://blog.test/atom.xml")[0]
    assert entry["title"] == "DJ Quartz – “Concrete Bloom”"
    assert entry["link"] == "http://blog.test/posts/three.html"
    with pytest.raises(ValueError, match="not a valid RSS/Atom feed"):
        parse_feed("<html><body>oops", "http://blog.test/broken")

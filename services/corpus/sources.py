"""Readers for every input the corpus tool accepts, and the polite HTTP fetcher behind the feed reader.

- posts: a JSON array or JSONL of scraped blog posts ({"title", "content", "url", "domain", ...})
- labelled: JSONL of our own sentences ({"text", "artist", "title", "genres", "families"}), or a folder
  of such files
- html: a folder of saved HTML pages
- feeds: a text file of RSS/Atom feed URLs, fetched with robots.txt respected, a per-host pause and an
  on-disk cache

Every reader checks its input first and raises ValueError naming the file, the record and the field.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import urllib.robotparser
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from deephype.corpus.genres import Vocabulary

FORMATS = ("auto", "posts", "labelled", "html", "feeds")
USER_AGENT = "deephype-corpus/0.1 (music blog corpus builder; respects robots.txt)"


@dataclass
class Post:
    """A document whose sentences still need cleaning, a song from its headline, and genres."""

    source: str
    title: str
    text: str
    site: str | None = None
    text_is_html: bool = False


@dataclass
class LabelledSentence:
    """One of our own sentences, already labelled: skips title parsing and genre lookup."""

    source: str
    text: str
    artist: str
    title: str
    genres: list[str]
    families: list[str]


# --- reading files safely --------------------------------------------------------------------------------


def read_text_file(path: Path) -> str:
    """The whole file as UTF-8 text, or a ValueError saying why it is not a usable text file."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, expected a file")
    try:
        data = path.read_bytes()
    except PermissionError as exc:
        raise ValueError(f"{path}: cannot read file ({exc.strerror})") from exc
    if not data.strip():
        raise ValueError(f"{path}: file is empty")
    if b"\x00" in data[:8192]:
        raise ValueError(f"{path}: looks like a binary file (NUL bytes), expected UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not valid UTF-8 (bad byte at offset {exc.start})") from exc


def list_folder(path: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files in a folder with one of the suffixes, sorted, or a ValueError if there are none."""
    try:
        entries = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    except PermissionError as exc:
        raise ValueError(f"{path}: cannot read folder ({exc.strerror})") from exc
    if not entries:
        raise ValueError(f"{path}: folder has no {'/'.join(suffixes)} files")
    return entries


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_records(path: Path) -> list[tuple[int, Any]]:
    """(record number, value) for a JSON array file or a JSONL file; numbers start at 1 (JSONL: the line)."""
    text = read_text_file(path)
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
        return list(enumerate(values, start=1))
    records: list[tuple[int, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: record {number}: invalid JSON ({exc.msg})") from exc
    if not records:
        raise ValueError(f"{path}: no records")
    return records


def _field(record: Any, name: str, kind: type | tuple[type, ...], where: str, required: bool = True) -> Any:
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if name not in record or record[name] is None:
        if required:
            raise ValueError(f"{where}: missing field {name!r}")
        return None
    value = record[name]
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ValueError(f"{where}: field {name!r} must be {expected}, got {type(value).__name__}")
    return value


# --- format detection ------------------------------------------------------------------------------------


def detect_format(path: Path) -> str:
    """Which reader fits a path: a folder of .html -> html, of .jsonl -> labelled; a .txt/.lst/.urls file
    -> feeds; a JSON/JSONL file -> labelled if its first record has "text", posts if it has "content"."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_dir():
        try:
            suffixes = {p.suffix.lower() for p in path.iterdir() if p.is_file()}
        except PermissionError as exc:
            raise ValueError(f"{path}: cannot read folder ({exc.strerror})") from exc
        if suffixes & {".html", ".htm"}:
            return "html"
        if ".jsonl" in suffixes:
            return "labelled"
        raise ValueError(f"{path}: folder has no .html or .jsonl files")
    if path.suffix.lower() in {".txt", ".lst", ".urls", ".feeds"}:
        return "feeds"
    number, first = load_records(path)[0]
    if isinstance(first, dict) and "text" in first and "content" not in first:
        return "labelled"
    if isinstance(first, dict) and ("content" in first or "title" in first):
        return "posts"  # read_posts names any missing field
    keys = sorted(first) if isinstance(first, dict) else type(first).__name__
    raise ValueError(
        f"{path}: record {number}: not a post (needs 'title' and 'content') nor a labelled sentence "
        f"(needs 'text', 'artist', 'title', 'genres', 'families'); found {keys}"
    )


# --- posts (JSON / JSONL) --------------------------------------------------------------------------------


def read_posts(path: Path) -> list[Post]:
    """Blog posts in the format of blog_posts_sample.json; checks every record before returning any."""
    posts: list[Post] = []
    for number, record in load_records(path):
        where = f"{path}: record {number}"
        title = _field(record, "title", str, where, required=False) or ""
        content = _field(record, "content", str, where)
        url = _field(record, "url", str, where, required=False)
        domain = _field(record, "domain", str, where, required=False)
        posts.append(Post(source=url or f"{path}#{number}", title=title, text=content, site=domain or url))
    return posts


# --- labelled sentences ----------------------------------------------------------------------------------


def read_labelled(path: Path, vocabulary: Vocabulary) -> list[LabelledSentence]:
    """Our own labelled sentences from a JSONL file or every .jsonl file in a folder."""
    files = list_folder(path, (".jsonl",)) if path.is_dir() else [path]
    sentences: list[LabelledSentence] = []
    families = set(vocabulary.families)
    for file in files:
        for number, record in load_records(file):
            where = f"{file}: record {number}"
            text = _field(record, "text", str, where)
            if not text.strip():
                raise ValueError(f"{where}: field 'text' is empty")
            artist = _field(record, "artist", str, where)
            title = _field(record, "title", str, where)
            genres = vocabulary.check_genres(_field(record, "genres", list, where), where)
            given = _field(record, "families", list, where)
            unknown = [f for f in given if not isinstance(f, str) or f not in families]
            if unknown:
                raise ValueError(f"{where}: unknown family {unknown} (not in data/genres.json)")
            merged = list(given) + [f for f in vocabulary.families_for(genres) if f not in given]
            sentences.append(LabelledSentence(f"{file}#{number}", text, artist, title, genres, merged))
    return sentences


# --- HTML ------------------------------------------------------------------------------------------------

_SKIP_TAGS = {
    "script",
    "style",
    "noscript",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "svg",
    "template",
    "iframe",
    "button",
    "select",
    "figcaption",
}
_BLOCK_TAGS = {
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "section",
    "article",
    "main",
    "blockquote",
    "tr",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "figure",
    "pre",
    "hr",
    "dd",
    "dt",
}
_HEADING_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_VOID_TAGS = {"br", "hr", "img", "meta", "link", "input", "source", "wbr", "area", "base", "col", "embed"}


class _ArticleExtractor(HTMLParser):
    """Collects the readable text of a page: the <article> (else <main>, else <body>), without menus,
    scripts or headings, paragraphs separated by blank lines; plus the headline and canonical URL."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: dict[str, list[str]] = {"article": [], "main": [], "body": []}
        self.inside: dict[str, int] = {"article": 0, "main": 0, "body": 0}
        self.skip_depth = 0
        self.heading_depth = 0
        self.title_parts: list[str] = []
        self.in_title = False
        self.h1_parts: list[str] = []
        self.in_h1 = False
        self.h1_done = False
        self.meta_title: str | None = None
        self.canonical: str | None = None

    def _emit(self, text: str) -> None:
        for scope, depth in self.inside.items():
            if depth:
                self.parts[scope].append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "meta" and attributes.get("property") in {"og:title", "twitter:title"}:
            self.meta_title = self.meta_title or attributes.get("content")
        if tag == "link" and "canonical" in attributes.get("rel", "").split():
            self.canonical = attributes.get("href") or None
        if tag == "title":
            self.in_title = True
        if tag in _VOID_TAGS:
            if tag in _BLOCK_TAGS:
                self._emit("\n\n")
            return
        if tag in self.inside:
            self.inside[tag] += 1
        if tag in _SKIP_TAGS:
            self.skip_depth += 1
        if tag in _HEADING_TAGS:
            self.heading_depth += 1
            self.in_h1 = tag == "h1" and not self.h1_done
        if tag in _BLOCK_TAGS:
            self._emit("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag in _VOID_TAGS:
            return
        if tag in _BLOCK_TAGS:
            self._emit("\n\n")
        if self.inside.get(tag):
            self.inside[tag] -= 1
        if tag in _SKIP_TAGS and self.skip_depth:
            self.skip_depth -= 1
        if tag in _HEADING_TAGS and self.heading_depth:
            self.heading_depth -= 1
            if tag == "h1" and self.in_h1:
                self.in_h1, self.h1_done = False, True

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title_parts.append(data)
            return
        if self.skip_depth:
            return
        if self.heading_depth:  # headings are not prose; the first <h1> is the headline
            if self.in_h1:
                self.h1_parts.append(data)
            return
        self._emit(data)

    def result(self) -> tuple[str, str]:
        for scope in ("article", "main", "body"):
            text = "".join(self.parts[scope])
            if text.strip():
                break
        paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
        body = "\n\n".join(p for p in paragraphs if p)
        headline = self.meta_title or "".join(self.h1_parts) or "".join(self.title_parts)
        return " ".join(headline.split()), body


def html_to_article(markup: str) -> tuple[str, str, str | None]:
    """(headline, article text, canonical URL) of an HTML page."""
    extractor = _ArticleExtractor()
    extractor.feed(markup)
    extractor.close()
    headline, body = extractor.result()
    return headline, body, extractor.canonical


def html_fragment_to_text(markup: str) -> str:
    """Text of an HTML fragment such as an RSS description."""
    return html_to_article(f"<body>{markup}</body>")[1]


def read_html_folder(path: Path) -> list[Post]:
    posts: list[Post] = []
    for file in list_folder(path, (".html", ".htm")):
        headline, body, canonical = html_to_article(read_text_file(file))
        if not body.strip():
            raise ValueError(f"{file}: no article text found in the HTML")
        posts.append(Post(source=canonical or str(file), title=headline, text=body, site=canonical))
    return posts


# --- HTTP: robots.txt, rate limit, disk cache ------------------------------------------------------------


@dataclass
class FetchStats:
    fetched: int = 0
    cache_hits: int = 0
    robots_blocked: int = 0
    errors: int = 0
    blocked_urls: list[str] = field(default_factory=list)


class PoliteFetcher:
    """GETs URLs the way a well-behaved crawler does: obeys robots.txt for our user agent, waits
    `min_interval` seconds between requests to the same host, and keeps every response on disk so a
    second run asks the network nothing."""

    def __init__(
        self,
        cache_dir: Path,
        min_interval: float = 2.0,
        user_agent: str = USER_AGENT,
        timeout: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.min_interval = min_interval
        self.user_agent = user_agent
        self.timeout = timeout
        self._sleep = sleep
        self._clock = clock
        self._last_request: dict[str, float] = {}
        self._robots: dict[str, urllib.robotparser.RobotFileParser] = {}
        self.stats = FetchStats()

    def _cache_path(self, url: str) -> Path:
        return self.cache_dir / (hashlib.sha256(url.encode("utf-8")).hexdigest() + ".json")

    def _wait_for_host(self, host: str) -> None:
        last = self._last_request.get(host)
        if last is not None:
            remaining = self.min_interval - (self._clock() - last)
            if remaining > 0:
                self._sleep(remaining)
        self._last_request[host] = self._clock()

    def _get(self, url: str) -> tuple[int, str]:
        """(status, body) from the cache or the network; status 0 means the request itself failed."""
        cached = self._cache_path(url)
        if cached.exists():
            entry = json.loads(cached.read_text(encoding="utf-8"))
            self.stats.cache_hits += 1
            return int(entry["status"]), str(entry["body"])
        host = urllib.parse.urlsplit(url).netloc
        self._wait_for_host(host)
        request = urllib.request.Request(url, headers={"User-Agent": self.user_agent})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                charset = response.headers.get_content_charset() or "utf-8"
                status, body = response.status, response.read().decode(charset, errors="replace")
        except urllib.error.HTTPError as exc:
            status, body = exc.code, ""
        except (urllib.error.URLError, TimeoutError, OSError):
            self.stats.errors += 1
            return 0, ""  # not cached: a network hiccup should be retried next run
        self.stats.fetched += 1
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write_text(cached, json.dumps({"url": url, "status": status, "body": body}))
        return status, body

    def _robots_for(self, url: str) -> urllib.robotparser.RobotFileParser:
        parts = urllib.parse.urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._robots:
            parser = urllib.robotparser.RobotFileParser(origin + "/robots.txt")
            status, body = self._get(origin + "/robots.txt")
            if status == 200:
                parser.parse(body.splitlines())
            elif 400 <= status < 500:
                parser.allow_all = True  # no robots.txt: everything is allowed
            else:
                parser.disallow_all = True  # server error or unreachable: assume nothing is (RFC 9309)
            self._robots[origin] = parser
        return self._robots[origin]

    def allowed(self, url: str) -> bool:
        return self._robots_for(url).can_fetch(self.user_agent, url)

    def fetch(self, url: str) -> str | None:
        """The body of a 200 response, or None if robots.txt forbids it or the request failed."""
        if not self.allowed(url):
            self.stats.robots_blocked += 1
            self.stats.blocked_urls.append(url)
            return None
        status, body = self._get(url)
        if status != 200:
            if status:
                self.stats.errors += 1
            return None
        return body


def _atomic_write_text(path: Path, text: str) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# --- feeds -----------------------------------------------------------------------------------------------


def read_feed_list(path: Path) -> list[str]:
    """Feed URLs, one a line; blank lines and '#' comments are skipped."""
    urls: list[str] = []
    for number, line in enumerate(read_text_file(path).splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = urllib.parse.urlsplit(line)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(f"{path}: line {number}: not an http(s) URL: {line[:80]!r}")
        urls.append(line)
    if not urls:
        raise ValueError(f"{path}: no feed URLs")
    return urls


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(element: ElementTree.Element, *names: str) -> str:
    for child in element:
        if _local(child.tag) in names and (child.text or "").strip():
            return child.text or ""
    return ""


def parse_feed(xml_text: str, feed_url: str) -> list[dict[str, str]]:
    """Items of an RSS 2.0 or Atom feed as {"title", "link", "html"}."""
    try:
        root = ElementTree.fromstring(xml_text.encode("utf-8"))
    except ElementTree.ParseError as exc:
        raise ValueError(f"{feed_url}: not a valid RSS/Atom feed ({exc})") from exc
    items: list[dict[str, str]] = []
    for element in root.iter():
        kind = _local(element.tag)
        if kind not in {"item", "entry"}:
            continue
        link = _child_text(element, "link").strip()
        if not link:  # Atom: <link rel="alternate" href="..."/>
            for child in element:
                if _local(child.tag) == "link" and child.get("rel", "alternate") == "alternate":
                    link = child.get("href", "")
                    break
        markup = (
            _child_text(element, "encoded")
            or _child_text(element, "content")
            or _child_text(element, "description", "summary")
        )
        items.append(
            {
                "title": _child_text(element, "title").strip(),
                "link": urllib.parse.urljoin(feed_url, link),
                "html": markup,
            }
        )
    return items


def read_feeds(path: Path, fetcher: PoliteFetcher, min_feed_words: int = 80) -> tuple[list[Post], list[str]]:
    """Posts from every feed in the list; an item whose feed text is short is completed from its page.
    Returns the posts and warnings (feeds that failed or were disallowed)."""
    posts: list[Post] = []
    warnings: list[str] = []
    for feed_url in read_feed_list(path):
        body = fetcher.fetch(feed_url)
        if body is None:
            warnings.append(f"{feed_url}: not fetched (robots.txt disallows it or the request failed)")
            continue
        try:
            items = parse_feed(body, feed_url)
        except ValueError as exc:
            warnings.append(str(exc))
            continue
        for item in items:
            text = html_fragment_to_text(item["html"])
            if len(text.split()) < min_feed_words and item["link"]:
                page = fetcher.fetch(item["link"])
                if page is not None:
                    _, page_text, _ = html_to_article(page)
                    if len(page_text.split()) > len(text.split()):
                        text = page_text
            if text.strip():
                posts.append(
                    Post(source=item["link"] or feed_url, title=item["title"], text=text, site=item["link"] or feed_url)
                )
    return posts, warnings

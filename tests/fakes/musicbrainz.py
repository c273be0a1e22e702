"""A fake MusicBrainz web service (/ws/2) in the XML format musicbrainzngs asks for
(musicbrainz.org/doc/MusicBrainz_API): the MMD-2.0 namespace, search results with ext:score.

- GET /ws/2/recording?query=recording:(…) artist:(…)&limit=N → <recording-list> with artist credits
- GET /ws/2/artist/{mbid}?inc=tags → <artist> with its <tag-list> (tag name + vote count)

Like the real service it refuses requests without a User-Agent (403). The songs are made up for the tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from tests.fakes.server import FakeAPI, FakeRequest, FakeResponse, FakeServer

NAMESPACES = 'xmlns="http://musicbrainz.org/ns/mmd-2.0#" xmlns:ext="http://musicbrainz.org/ns/ext#-2.0"'


@dataclass
class MBArtist:
    id: str
    name: str
    tags: dict[str, int] = field(default_factory=dict)  # tag → votes


@dataclass
class MBRecording:
    id: str
    title: str
    artist_ids: list[str]
    score: int = 100  # the search engine's own relevance, which our matcher must not trust blindly


def default_catalog() -> tuple[list[MBArtist], list[MBRecording]]:
    lanterns = MBArtist(
        "5a1f6d2e-0000-4000-8000-000000000001",
        "Lantern Hollow",
        {"indie folk": 9, "seen live": 7, "chamber pop": 4, "british": 3, "Singer/Songwriter": 2},
    )
    vela = MBArtist("5a1f6d2e-0000-4000-8000-000000000002", "Vela North", {"dream-pop": 5, "shoegaze": 3})
    tribute = MBArtist("5a1f6d2e-0000-4000-8000-000000000003", "Hollow Tribute Band", {"covers": 2})
    recordings = [
        MBRecording("9b000000-0000-4000-8000-000000000001", "Paper Boats (live)", [lanterns.id], 100),
        MBRecording("9b000000-0000-4000-8000-000000000002", "Paper Boats", [tribute.id], 98),
        MBRecording("9b000000-0000-4000-8000-000000000003", "Paper Boats", [lanterns.id], 97),
        MBRecording("9b000000-0000-4000-8000-000000000004", "Glass Orchard", [vela.id], 100),
    ]
    return [lanterns, vela, tribute], recordings


class FakeMusicBrainz(FakeAPI):
    def __init__(self, artists: list[MBArtist] | None = None, recordings: list[MBRecording] | None = None) -> None:
        if artists is None or recordings is None:
            artists, recordings = default_catalog()
        self.artists = {a.id: a for a in artists}
        self.recordings = recordings
        self.server = FakeServer(self.handle)

    @property
    def base_url(self) -> str:
        return self.server.url  # http://127.0.0.1:<port>

    def handle(self, request: FakeRequest) -> FakeResponse:
        if not request.headers.get("user-agent"):
            return _error(403, "Your requests are blocked: please send a meaningful User-Agent")
        if request.arg("fmt") not in (None, "xml"):
            return _error(400, "this fake speaks XML, as musicbrainzngs asks for")
        path = request.path.rstrip("/")  # musicbrainzngs asks for /ws/2/recording/?query=…
        if path == "/ws/2/recording":
            return self.search_recordings(request)
        if match := re.fullmatch(r"/ws/2/artist/([0-9a-f-]{36})", path):
            return self.artist(match.group(1), request.arg("inc") or "")
        return _error(404, "Not Found")

    def search_recordings(self, request: FakeRequest) -> FakeResponse:
        query = request.arg("query") or ""
        fields = {key: _unescape(value) for key, value in re.findall(r"(\w+):\(((?:\\.|[^)])*)\)", query)}
        if not fields:
            return _error(400, "Invalid query")
        limit = int(request.arg("limit") or 25)
        title_words = _words(fields.get("recording", ""))
        artist_words = _words(fields.get("artist", ""))
        found = []
        for recording in self.recordings:
            names = " ".join(self.artists[a].name for a in recording.artist_ids)
            if title_words <= _words(recording.title) and artist_words <= _words(names):
                found.append(recording)
        found.sort(key=lambda r: -r.score)
        items = "".join(self._recording_xml(r) for r in found[:limit])
        return FakeResponse.xml(
            f'<?xml version="1.0" encoding="UTF-8"?><metadata {NAMESPACES} created="2026-01-01T00:00:00.000Z">'
            f'<recording-list count="{len(found)}" offset="0">{items}</recording-list></metadata>'
        )

    def artist(self, artist_id: str, includes: str) -> FakeResponse:
        artist = self.artists.get(artist_id)
        if artist is None:
            return _error(404, "Not Found")
        tags = ""
        if "tags" in includes.split(" ") or "tags" in includes.split("+"):
            tags = "".join(
                f'<tag count="{votes}"><name>{escape(tag)}</name></tag>' for tag, votes in artist.tags.items()
            )
            tags = f'<tag-list count="{len(artist.tags)}">{tags}</tag-list>'
        return FakeResponse.xml(
            f'<?xml version="1.0" encoding="UTF-8"?><metadata {NAMESPACES}>'
            f'<artist id="{artist.id}" type="Group"><name>{escape(artist.name)}</name>'
            f"<sort-name>{escape(artist.name)}</sort-name>{tags}</artist></metadata>"
        )

    def _recording_xml(self, recording: MBRecording) -> str:
        credits = []
        for index, artist_id in enumerate(recording.artist_ids):
            artist = self.artists[artist_id]
            join = ' joinphrase=" &amp; "' if index < len(recording.artist_ids) - 1 else ""
            credits.append(
                f'<name-credit{join}><artist id="{artist.id}"><name>{escape(artist.name)}</name>'
                f"<sort-name>{escape(artist.name)}</sort-name></artist></name-credit>"
            )
        return (
            f'<recording id="{recording.id}" ext:score="{recording.score}"><title>{escape(recording.title)}</title>'
            f"<length>214000</length><artist-credit>{''.join(credits)}</artist-credit></recording>"
        )


def _error(status: int, message: str) -> FakeResponse:
    return FakeResponse.xml(f"<?xml version={quoteattr('1.0')}?><error><text>{escape(message)}</text></error>", status)


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))

"""A fake Spotify: the accounts token endpoint and the Web API endpoints the enricher uses, in Spotify's
wire format (developer.spotify.com/documentation/web-api):

- POST /api/token            client credentials (Basic auth, grant_type=client_credentials)
- GET  /v1/search            ?q=track:"T" artist:"A"&type=track&limit≤50 → {"tracks": paging of tracks}
- GET  /v1/tracks/{id}
- GET  /v1/artists?ids=…     → {"artists": [artist | null]};  GET /v1/artists/{id}
- GET  /v1/audio-features?ids=… → {"audio_features": [features | null]};  GET /v1/audio-features/{id}

Errors use Spotify's shape {"error": {"status", "message"}} (the token endpoint: {"error", "error_description"}).
The songs are made up for the tests.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import FakeAPI, FakeRequest, FakeResponse, FakeServer

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret"


@dataclass
class FakeArtist:
    id: str
    name: str
    genres: list[str] = field(default_factory=list)


@dataclass
class FakeTrack:
    id: str
    name: str
    artist_ids: list[str]
    popularity: int = 50
    album: str = "Album"
    audio_features: dict[str, float] | None = None


def default_catalog() -> tuple[list[FakeArtist], list[FakeTrack]]:
    lanterns = FakeArtist("0LanternHollow00000001", "Lantern Hollow", ["indie folk", "chamber pop", "stomp and holler"])
    vela = FakeArtist("0VelaNorth000000000002", "Vela North", ["dream pop", "shoegaze", "nu gaze"])
    remixer = FakeArtist("0KiloMarsh000000000003", "Kilo Marsh", ["deep house", "electronica"])
    features = {
        "danceability": 0.41,
        "energy": 0.63,
        "valence": 0.28,
        "acousticness": 0.52,
        "instrumentalness": 0.01,
        "liveness": 0.11,
        "speechiness": 0.04,
        "tempo": 118.2,
        "loudness": -7.9,
    }
    tracks = [
        # Popular remix and live versions come first in the results; the studio version must still win.
        FakeTrack("1PaperBoats0RemixKilo1", "Paper Boats - Kilo Marsh Remix", [lanterns.id, remixer.id], 71),
        FakeTrack("1PaperBoats0Live000002", "Paper Boats (Live at the Old Mill)", [lanterns.id], 64),
        FakeTrack("1PaperBoats0Studio0003", "Paper Boats", [lanterns.id], 58, "Low Tide", features),
        FakeTrack("1PaperBoats0Cover00004", "Paper Boats", ["0SomeoneElse0000000009"], 30),
        FakeTrack("2GlassOrchard000000001", "Glass Orchard", [vela.id], 45, "Static Bloom", None),
    ]
    someone = FakeArtist("0SomeoneElse0000000009", "The Karaoke Crew", ["karaoke"])
    return [lanterns, vela, remixer, someone], tracks


class FakeSpotify(FakeAPI):
    def __init__(self, artists: list[FakeArtist] | None = None, tracks: list[FakeTrack] | None = None) -> None:
        if artists is None or tracks is None:
            artists, tracks = default_catalog()
        self.artists = {a.id: a for a in artists}
        self.tracks = {t.id: t for t in tracks}
        self.track_order = [t.id for t in tracks]
        self.tokens: set[str] = set()
        self.server = FakeServer(self.handle)

    # --- addresses ---

    @property
    def api_url(self) -> str:
        return f"{self.server.url}/v1/"

    @property
    def auth_url(self) -> str:
        return f"{self.server.url}/api/token"

    # --- routes ---

    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.path == "/api/token":
            return self.token(request)
        if not request.path.startswith("/v1/"):
            return _error(404, "Service not found")
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self.tokens:
            return _error(401, "Invalid access token")
        if request.method != "GET":
            return _error(405, "Method not allowed")
        path = request.path.removeprefix("/v1/").rstrip("/")
        if path == "search":
            return self.search(request)
        if match := re.fullmatch(r"tracks/([^/]+)", path):
            return self.track(match.group(1))
        if path == "artists":
            ids = (request.arg("ids") or "").split(",")
            return FakeResponse.json({"artists": [self._artist_object(i) for i in ids if i]})
        if match := re.fullmatch(r"artists/([^/]+)", path):
            found = self._artist_object(match.group(1))
            return FakeResponse.json(found) if found else _error(404, "Resource not found")
        if path == "audio-features":
            ids = (request.arg("ids") or "").split(",")
            return FakeResponse.json({"audio_features": [self._features_object(i) for i in ids if i]})
        if match := re.fullmatch(r"audio-features/([^/]+)", path):
            found = self._features_object(match.group(1))
            return FakeResponse.json(found) if found else _error(404, "analysis not found")
        return _error(404, "Service not found")

    def token(self, request: FakeRequest) -> FakeResponse:
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.method != "POST" or request.form().get("grant_type") != "client_credentials":
            return FakeResponse.json({"error": "unsupported_grant_type"}, 400)
        if request.headers.get("authorization") != f"Basic {expected}":
            return FakeResponse.json({"error": "invalid_client", "error_description": "Invalid client"}, 400)
        token = secrets.token_urlsafe(16)
        self.tokens.add(token)
        return FakeResponse.json({"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    def search(self, request: FakeRequest) -> FakeResponse:
        query = request.arg("q") or ""
        if not query:
            return _error(400, "No search query")
        if request.arg("type") != "track":
            return _error(400, "This fake only searches tracks")
        try:
            limit = int(request.arg("limit") or 20)
            offset = int(request.arg("offset") or 0)
        except ValueError:
            return _error(400, "Invalid limit")
        if not 0 < limit <= 50:
            return _error(400, "Invalid limit")
        filters = dict(re.findall(r'(track|artist):"([^"]*)"', query))
        title_words = _words(filters.get("track", query))
        artist_words = _words(filters.get("artist", ""))
        found = []
        for track_id in self.track_order:
            track = self.tracks[track_id]
            names = " ".join(self.artists[a].name for a in track.artist_ids if a in self.artists)
            if title_words and not title_words <= _words(track.name):
                continue
            if artist_words and not artist_words <= _words(names):
                continue
            found.append(track)
        found.sort(key=lambda t: -t.popularity)  # like Spotify: relevance and popularity, not our intent
        page = found[offset : offset + limit]
        base = f"{request.headers.get('host', '')}/v1/search"
        return FakeResponse.json(
            {
                "tracks": {
                    "href": f"http://{base}?query={query}&type=track&offset={offset}&limit={limit}",
                    "items": [self._track_object(t) for t in page],
                    "limit": limit,
                    "next": None,
                    "offset": offset,
                    "previous": None,
                    "total": len(found),
                }
            }
        )

    def track(self, track_id: str) -> FakeResponse:
        if not re.fullmatch(r"[A-Za-z0-9]{22}", track_id):
            return _error(400, "invalid id")
        track = self.tracks.get(track_id)
        return FakeResponse.json(self._track_object(track)) if track else _error(404, "Resource not found")

    # --- objects as the Web API returns them ---

    def _artist_simple(self, artist_id: str) -> dict[str, Any]:
        artist = self.artists.get(artist_id) or FakeArtist(artist_id, "Unknown")
        return {
            "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist.id}"},
            "href": f"https://api.spotify.com/v1/artists/{artist.id}",
            "id": artist.id,
            "name": artist.name,
            "type": "artist",
            "uri": f"spotify:artist:{artist.id}",
        }

    def _artist_object(self, artist_id: str) -> dict[str, Any] | None:
        artist = self.artists.get(artist_id)
        if artist is None:
            return None
        return {
            **self._artist_simple(artist_id),
            "followers": {"href": None, "total": 1234},
            "genres": artist.genres,
            "images": [],
            "popularity": 40,
        }

    def _track_object(self, track: FakeTrack) -> dict[str, Any]:
        artists = [self._artist_simple(a) for a in track.artist_ids]
        return {
            "album": {
                "album_type": "album",
                "artists": artists[:1],
                "external_urls": {"spotify": "https://open.spotify.com/album/x"},
                "href": "https://api.spotify.com/v1/albums/x",
                "id": "0AlbumFake000000000000",
                "images": [],
                "name": track.album,
                "release_date": "2021-04-09",
                "release_date_precision": "day",
                "total_tracks": 10,
                "type": "album",
                "uri": "spotify:album:0AlbumFake000000000000",
            },
            "artists": artists,
            "disc_number": 1,
            "duration_ms": 214_000,
            "explicit": False,
            "external_ids": {"isrc": "XXFAKE000001"},
            "external_urls": {"spotify": f"https://open.spotify.com/track/{track.id}"},
            "href": f"https://api.spotify.com/v1/tracks/{track.id}",
            "id": track.id,
            "is_local": False,
            "name": track.name,
            "popularity": track.popularity,
            "preview_url": None,
            "track_number": 3,
            "type": "track",
            "uri": f"spotify:track:{track.id}",
        }

    def _features_object(self, track_id: str) -> dict[str, Any] | None:
        track = self.tracks.get(track_id)
        if track is None or track.audio_features is None:
            return None
        return {
            **track.audio_features,
            "key": 5,
            "mode": 1,
            "time_signature": 4,
            "duration_ms": 214_000,
            "id": track.id,
            "type": "audio_features",
            "uri": f"spotify:track:{track.id}",
            "track_href": f"https://api.spotify.com/v1/tracks/{track.id}",
            "analysis_url": f"https://api.spotify.com/v1/audio-analysis/{track.id}",
        }


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> FakeResponse:
    return FakeResponse.json({"error": {"status": status, "message": message}}, status, headers)


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))

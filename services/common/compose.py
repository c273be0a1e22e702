"""A post says what it is about: the approved commentary placed in a per-platform template with the song.

The curator composes each platform's post (and the human sees and may edit it); the poster posts it as
signed. A template names any of {text}, {artist}, {title}, {link}; where the link is unknown it is left
out with the spaces before it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field

from deephype.common.contracts import EnrichedSong, Song
from deephype.common.settings import Settings

DEFAULT_POST_TEMPLATE = '{text}\n\n{artist} - "{title}" {link}'
TEMPLATE_FIELDS = frozenset({"text", "artist", "title", "link"})
_SPOTIFY_ID = re.compile(r"[0-9A-Za-z]{22}")
_MUSICBRAINZ_RECORDING = "musicbrainz:recording:"


def template_problem(template: str) -> str | None:
    """Why `template` cannot compose a post; None when it can."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        return f"post template {template!r} is not a valid format string: {exc}"
    if unknown := fields - TEMPLATE_FIELDS:
        return f"post template {template!r} names {sorted(unknown)}; it may use {sorted(TEMPLATE_FIELDS)}"
    if "text" not in fields:
        return f"post template {template!r} has no {{text}}: the approved commentary would be lost"
    return None


def track_url(track_id: str | None) -> str | None:
    """The public page of a track id we got from Spotify or MusicBrainz (an offline catalog id has none)."""
    if not track_id:
        return None
    if track_id.startswith(_MUSICBRAINZ_RECORDING):
        return f"https://musicbrainz.org/recording/{track_id.removeprefix(_MUSICBRAINZ_RECORDING)}"
    if _SPOTIFY_ID.fullmatch(track_id):
        return f"https://open.spotify.com/track/{track_id}"
    return None


def song_link(enriched: EnrichedSong) -> str | None:
    """The best link for a song: its Spotify or MusicBrainz page, else the post that talked about it."""
    mention = enriched.mention
    return track_url(enriched.song.track_id) or track_url(mention.spotify_track_id) or mention.url


_NO_LINK = "\x00nolink\x00"


def _render(template: str, text: str, song: Song, link: str | None) -> str:
    """The template filled in; an unknown link takes the spaces before it along (no double or trailing ones)."""
    values = {"text": text, "artist": song.artist, "title": song.title, "link": link or _NO_LINK}
    composed = re.sub(r"[ \t]*" + re.escape(_NO_LINK), "", template.format_map(values))
    return "\n".join(line.rstrip() for line in composed.splitlines()).strip()


def compose_post(template: str, text: str, song: Song, link: str | None) -> str:
    if problem := template_problem(template):
        raise ValueError(problem)
    return _render(template, text.strip(), song, link)


def template_for(templates: Mapping[str, str], default: str, platform: str) -> str:
    return templates.get(platform) or default


def commentary_of(post: str, template: str, song: Song, link: str | None) -> str | None:
    """The {text} inside a composed `post`, when the rest of it is the template's; None when edited."""
    marker = "\x00TEXT\x00"
    shape = _render(template, marker, song, link)
    before, _, after = shape.partition(marker)
    post = post.strip()
    if len(post) < len(before) + len(after) or not (post.startswith(before) and post.endswith(after)):
        return None
    return post[len(before) : len(post) - len(after)].strip() or None


@dataclass(frozen=True)
class PostFormat:
    """Which platforms an approval goes to and each one's template (from the settings)."""

    platforms: tuple[str, ...] = ("dry_run",)
    default_template: str = DEFAULT_POST_TEMPLATE
    templates: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for template in (self.default_template, *self.templates.values()):
            if problem := template_problem(template):
                raise ValueError(problem)

    @classmethod
    def from_settings(cls, settings: Settings) -> PostFormat:
        platforms = tuple(dict.fromkeys(settings.poster_platforms or [settings.poster_platform]))
        return cls(platforms, settings.post_template, dict(settings.post_templates))

    def template(self, platform: str) -> str:
        return template_for(self.templates, self.default_template, platform)

    def compose(self, platform: str, text: str, song: Song, link: str | None) -> str:
        return compose_post(self.template(platform), text, song, link)

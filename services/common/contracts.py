"""Every message that crosses the bus, in one place.

Each hop has one versioned pydantic model. Every message carries a message id (for dedupe), a trace id
that follows one mention through all five services, and created_at. Unknown fields are rejected so a
producer/consumer version skew shows up as a dead-lettered message with a reason, not as silent loss.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import regex
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from deephype.common import strict_json

SCHEMA_VERSION = 1

ShortText = Annotated[str, Field(min_length=1, max_length=512)]
PostText = Annotated[str, Field(max_length=20_000)]


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class Platform(StrEnum):
    x = "x"
    mastodon = "mastodon"
    bluesky = "bluesky"
    feed = "feed"  # JSONL / RSS feed files
    http = "http"  # injected through POST /v1/mentions
    dry_run = "dry_run"  # the poster's offline timeline


# Length limits of the platforms we publish to, as each counts length (see text_length).
PLATFORM_TEXT_LIMITS: dict[str, int] = {"x": 280, "bluesky": 300, "mastodon": 500, "dry_run": 500}
LINK_LENGTH = 23  # X and Mastodon count every link as 23 characters, however long or short
_SCHEME_LINK = re.compile(r"https?://\S+", re.IGNORECASE)
_BARE_DOMAIN = re.compile(r"(?<![@\w])[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b(?:/\S*)?", re.IGNORECASE)  # X links these
# X counts a code point in these ranges as 1 and any other (CJK, emoji, ...) as 2 (twitter-text, config v3).
_X_LIGHT = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))


def text_length(text: str, platform: str) -> int:
    """The length of `text` as `platform` counts it against PLATFORM_TEXT_LIMITS, never less than it does.

    X: NFC code points weighted 1 or 2, each link 23 (a bare domain counts at least 23: X may link it).
    Mastodon: each http(s) link 23, the rest per character. Bluesky: graphemes (user-perceived characters,
    an emoji with modifiers is one). The dry run: code points. An X emoji sequence counts a little more than
    X says: the safe side, since a text the platform refuses is a post that never goes out."""
    text = unicodedata.normalize("NFC", text)
    if platform == "bluesky":
        return len(regex.findall(r"\X", text))  # extended grapheme clusters, as Bluesky counts
    if platform not in ("x", "mastodon"):
        return len(text)
    links = len(_SCHEME_LINK.findall(text))
    rest = _SCHEME_LINK.sub(" ", text)
    length = links * LINK_LENGTH - links  # each link was replaced by one space, counted below
    if platform == "mastodon":
        return length + len(rest)
    for domain in _BARE_DOMAIN.findall(rest):
        length += max(LINK_LENGTH, _x_weight(domain)) - _x_weight(domain)
    return length + _x_weight(rest)


def _x_weight(text: str) -> int:
    return sum(1 if any(lo <= ord(ch) <= hi for lo, hi in _X_LIGHT) else 2 for ch in text)


def length_problem(text: str, platform: str) -> str | None:
    """Why `text` cannot be posted on `platform` for its length; None when it fits."""
    limit = PLATFORM_TEXT_LIMITS.get(platform)
    length = text_length(text, platform)
    if limit is None or length <= limit:
        return None
    return f"the text is {length} characters as {platform} counts them; {platform} allows {limit}"


EnvelopeT = TypeVar("EnvelopeT", bound="Envelope")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Envelope(Strict):
    """Fields every bus message carries."""

    routing_key: ClassVar[str]

    schema_version: Literal[1] = SCHEMA_VERSION
    message_id: str = Field(default_factory=new_id, min_length=1, max_length=64)
    trace_id: str = Field(default_factory=new_id, min_length=1, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("created_at must carry a timezone")
        return value

    def child(self, message_type: type[EnvelopeT], **fields: Any) -> EnvelopeT:
        """Build the next hop's message, keeping this message's trace id."""
        return message_type(trace_id=self.trace_id, **fields)


class AudioFeatures(Strict):
    """Spotify-style audio features. Any may be missing: absence is not zero."""

    danceability: float | None = Field(default=None, ge=0, le=1)
    energy: float | None = Field(default=None, ge=0, le=1)
    valence: float | None = Field(default=None, ge=0, le=1)
    acousticness: float | None = Field(default=None, ge=0, le=1)
    instrumentalness: float | None = Field(default=None, ge=0, le=1)
    liveness: float | None = Field(default=None, ge=0, le=1)
    speechiness: float | None = Field(default=None, ge=0, le=1)
    tempo: float | None = Field(default=None, ge=0, le=300)
    loudness: float | None = Field(default=None, ge=-70, le=10)


class Song(Strict):
    artist: ShortText
    title: ShortText
    track_id: str | None = Field(default=None, max_length=128)
    genres: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=64)
    audio_features: AudioFeatures | None = None


class SongMention(Envelope):
    """listener → enricher: a post that names a song."""

    routing_key: ClassVar[str] = "mention.detected"
    kind: Literal["song_mention"] = "song_mention"
    platform: Platform
    post_id: str = Field(min_length=1, max_length=256)
    author: str = Field(min_length=1, max_length=256)
    text: PostText
    url: str | None = Field(default=None, max_length=2048)
    artist: ShortText
    title: ShortText
    spotify_track_id: str | None = Field(default=None, max_length=128)
    detection_confidence: float = Field(default=1.0, ge=0, le=1)
    observed_at: datetime = Field(default_factory=utcnow)
    # The post mentioned the bot: the poster may reply to it (X only allows replies to such posts).
    on_demand: bool = False


class EnrichedSong(Envelope):
    """enricher → generator: the mention plus what we know about the song."""

    routing_key: ClassVar[str] = "song.enriched"
    kind: Literal["enriched_song"] = "enriched_song"
    mention: SongMention
    song: Song
    provider: str = Field(min_length=1, max_length=64)
    # Why audio features are missing, when they are (e.g. "not in catalog", "403 from spotify").
    audio_features_missing_reason: str | None = None


class ScoredText(Strict):
    candidate_id: str = Field(default_factory=new_id)
    text: Annotated[str, Field(min_length=1, max_length=2000)]
    score: float
    scores: dict[str, float] = Field(default_factory=dict)
    # The model version that wrote it (generator/versions.py); None from senders that predate versions.
    model_version: str | None = Field(default=None, max_length=200)


class ModelInfo(Strict):
    name: str
    version: str


class Candidates(Envelope):
    """generator → curator: ranked commentary for one song."""

    routing_key: ClassVar[str] = "candidates.generated"
    kind: Literal["candidates"] = "candidates"
    enriched: EnrichedSong
    candidates: list[ScoredText] = Field(min_length=1, max_length=64)
    model: ModelInfo


class ReplyTarget(Strict):
    platform: Platform
    post_id: str


class Approval(Envelope):
    """curator → poster: a human approved this text."""

    routing_key: ClassVar[str] = "approval.granted"
    kind: Literal["approval"] = "approval"
    candidates_message_id: str
    candidate_id: str
    final_text: Annotated[str, Field(min_length=1, max_length=2000)]
    edited: bool
    song: Song
    reply_to: ReplyTarget | None = None
    approved_by: str = "curator"
    # The composed post per platform the curator approved it for ({text} in that platform's template,
    # maybe edited); a platform not named here posts final_text as it is.
    posts: dict[Annotated[str, Field(max_length=32)], Annotated[str, Field(min_length=1, max_length=2000)]] = Field(
        default_factory=dict, max_length=8
    )
    # The curator asked for it to go out now rather than wait its turn in the poster's schedule.
    post_now: bool = False
    # The curator's HMAC over every other field (deephype.common.signing). Optional here so that an
    # unsigned approval parses and the poster dead-letters it with that reason, instead of a schema error.
    signature: str | None = Field(default=None, max_length=256)


class PublishedPost(Envelope):
    """poster → anyone listening (curator records it): the text is live."""

    routing_key: ClassVar[str] = "post.published"
    kind: Literal["published_post"] = "published_post"
    approval_id: str
    candidate_id: str
    platform: Platform
    post_id: str
    url: str | None = None
    text: str
    dry_run: bool
    published_at: datetime = Field(default_factory=utcnow)


PostState = Literal["queued", "published", "failed", "held", "dropped"]


class PostStatus(Envelope):
    """poster → curator: where one approved post stands on one platform: queued (due when), published
    (its link), failed or held for a human (why), or dropped by one (PostDecision). Sent at least once per
    change of its row in the poster's queue; the curator keeps the one with the latest `at`, so a late
    redelivery never undoes a newer state."""

    routing_key: ClassVar[str] = "post.status"
    kind: Literal["post_status"] = "post_status"
    approval_id: str = Field(min_length=1, max_length=64)
    platform: Platform
    state: PostState
    at: datetime  # when the poster reported this state (its clock; later reports of one post have later times)
    due_at: datetime | None = None  # queued: when it is due to go out
    post_id: str | None = Field(default=None, max_length=256)
    url: str | None = Field(default=None, max_length=2048)
    error: str | None = Field(default=None, max_length=2000)  # failed/held: why; queued: why the last try failed
    attempts: int = Field(default=0, ge=0)

    @field_validator("at", "due_at")
    @classmethod
    def _aware_times(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("times must carry a timezone")
        return value


class PostDecision(Envelope):
    """curator → poster: a human's word on one post that is held, failed or still queued on one platform:
    `requeue` (post it now: the curator checked the account and it is not there) or `drop` (never post it).

    `attempts` is the attempt count the curator was shown (PostStatus.attempts): the poster applies the
    decision only while the post is still in that state, so a redelivered requeue can never send a post out
    a second time. Signed like an Approval (deephype.common.signing): the broker alone cannot requeue."""

    routing_key: ClassVar[str] = "post.decision"
    kind: Literal["post_decision"] = "post_decision"
    approval_id: str = Field(min_length=1, max_length=64)
    platform: Platform
    action: Literal["requeue", "drop"]
    attempts: int = Field(ge=0)
    decided_by: str = Field(default="curator", min_length=1, max_length=64)
    signature: str | None = Field(default=None, max_length=256)


MESSAGE_TYPES: tuple[type[Envelope], ...] = (
    SongMention,
    EnrichedSong,
    Candidates,
    Approval,
    PublishedPost,
    PostStatus,
    PostDecision,
)
AnyMessage = Annotated[
    SongMention | EnrichedSong | Candidates | Approval | PublishedPost | PostStatus | PostDecision,
    Field(discriminator="kind"),
]
_any_message = TypeAdapter(AnyMessage)


class InvalidMessage(ValueError):
    """A message body we cannot accept; the reason is meant for the dead-letter queue."""


def decode(body: bytes, expected: type[EnvelopeT] | None = None, *, max_bytes: int = 1_000_000) -> EnvelopeT:
    """Parse a bus body into its contract, or raise InvalidMessage with a clear reason."""
    if len(body) > max_bytes:
        raise InvalidMessage(f"payload too large: {len(body)} bytes > {max_bytes}")
    try:
        raw = strict_json.loads(body)
    except strict_json.NotStrictJson as exc:
        where = ".".join(map(str, exc.location))
        raise InvalidMessage(f"not decodable: {exc.reason}" + (f" (at {where})" if where else "")) from exc
    if not isinstance(raw, dict):
        raise InvalidMessage(f"body is a JSON {type(raw).__name__}, expected an object")
    version = raw.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InvalidMessage(f"unsupported schema_version {version!r} (this build reads {SCHEMA_VERSION})")
    try:
        message = expected.model_validate(raw) if expected is not None else _any_message.validate_python(raw)
    except ValidationError as exc:
        kind = raw.get("kind", "?")
        raise InvalidMessage(f"{kind} failed validation: {_short_errors(exc)}") from exc
    return message  # type: ignore[return-value]


def encode(message: Envelope) -> bytes:
    return message.model_dump_json().encode("utf-8")


def _short_errors(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for error in exc.errors()[:limit]:
        where = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")

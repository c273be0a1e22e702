"""Property-based tests of every contract: anything valid round-trips, anything else is refused with a
reason (InvalidMessage), never another exception."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from deephype.common.contracts import (
    MESSAGE_TYPES,
    Approval,
    AudioFeatures,
    Candidates,
    EnrichedSong,
    InvalidMessage,
    ModelInfo,
    PublishedPost,
    ReplyTarget,
    ScoredText,
    Song,
    SongMention,
    decode,
    encode,
)

# Text without leading/trailing whitespace (the contracts strip it) and at least one visible character.
words = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40).map(str.strip).filter(bool)
unit = st.none() | st.floats(0, 1)
features = st.builds(AudioFeatures, danceability=unit, energy=unit, valence=unit, tempo=st.none() | st.floats(0, 300))
songs = st.builds(
    Song, artist=words, title=words, genres=st.lists(words, max_size=5), audio_features=st.none() | features
)
mentions = st.builds(
    SongMention,
    platform=st.sampled_from(["x", "mastodon", "bluesky", "feed", "http"]),
    post_id=words,
    author=words,
    text=st.text(max_size=300),
    artist=words,
    title=words,
    on_demand=st.booleans(),
)
enriched = st.builds(lambda m, s: m.child(EnrichedSong, mention=m, song=s, provider="p"), mentions, songs)
scored = st.builds(ScoredText, text=words, score=st.floats(-100, 100), scores=st.dictionaries(words, st.floats(-9, 9)))
candidate_sets = st.builds(
    lambda e, c: e.child(Candidates, enriched=e, candidates=c, model=ModelInfo(name="m", version="1")),
    enriched,
    st.lists(scored, min_size=1, max_size=4),
)
approvals = st.builds(
    lambda s, t, r: Approval(
        candidates_message_id="c", candidate_id="k", final_text=t, edited=False, song=s, reply_to=r
    ),
    songs,
    words,
    st.none() | st.builds(ReplyTarget, platform=st.just("x"), post_id=words),
)
published = st.builds(
    lambda t: PublishedPost(approval_id="a", candidate_id="k", platform="dry_run", post_id="p", text=t, dry_run=True),
    words,
)
any_message = st.one_of(mentions, enriched, candidate_sets, approvals, published)


@settings(max_examples=150, deadline=None)
@given(any_message)
def test_every_message_round_trips_through_the_wire_format(message) -> None:  # type: ignore[no-untyped-def]
    decoded = decode(encode(message))
    assert decoded == message and type(decoded) is type(message)
    assert decode(encode(message), type(message)) == message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_are_refused_with_a_reason(body: bytes) -> None:
    try:
        decode(body)
    except InvalidMessage as exc:
        assert str(exc)


@settings(max_examples=200, deadline=None)
@given(any_message, st.sampled_from(["drop", "retype", "extra", "version"]), st.data())
def test_damaged_messages_are_refused_with_a_reason(message, damage: str, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    raw = json.loads(encode(message))
    key = data.draw(st.sampled_from(sorted(raw)))
    if damage == "drop":
        del raw[key]
    elif damage == "retype":
        raw[key] = [raw[key]]
    elif damage == "extra":
        raw["unexpected_field"] = 1
    else:
        raw["schema_version"] = data.draw(st.integers().filter(lambda v: v != 1))
    try:
        decoded = decode(json.dumps(raw).encode())
    except InvalidMessage as exc:
        assert str(exc)
    else:  # only dropping a field that has a default may still parse
        assert damage == "drop" and type(decoded) in MESSAGE_TYPES

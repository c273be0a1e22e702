"""Messages for tests, written by us."""

from __future__ import annotations

from deephype.common.bus import derive_id
from deephype.common.contracts import Candidates, EnrichedSong, ModelInfo, ScoredText, Song, SongMention


def mention(
    post_id: str = "1", *, on_demand: bool = False, platform: str = "http", url: str | None = None
) -> SongMention:
    return SongMention(
        platform=platform,
        post_id=post_id,
        author="ana",
        text="#np Low Tide - Glass Harbour",
        url=url,
        artist="Low Tide",
        title="Glass Harbour",
        on_demand=on_demand,
    )


def candidates(
    post_id: str = "1", texts: tuple[str, ...] = ("First take.", "Second take."), **kw: object
) -> Candidates:
    m = mention(post_id, **kw)  # type: ignore[arg-type]
    enriched = m.child(
        EnrichedSong,
        message_id=derive_id(m.message_id, "enriched"),
        mention=m,
        song=Song(artist=m.artist, title=m.title, genres=["dream pop"]),
        provider="test",
    )
    return enriched.child(
        Candidates,
        message_id=derive_id(enriched.message_id, "candidates"),
        enriched=enriched,
        candidates=[
            ScoredText(candidate_id=derive_id(enriched.message_id, i), text=t, score=1 - i / 10)
            for i, t in enumerate(texts)
        ],
        model=ModelInfo(name="test", version="1"),
    )

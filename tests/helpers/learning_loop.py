"""The learning loop end to end, in one process, with the services' own parts: the generator's bus handler
over the versioned source, the curator's store (candidate sets, approvals, rejections, edits), the labelled
set the curator serves, `learn`, and the generator's swap to a promoted version. The simulated curator
(sim_curator.py) makes every decision. Used by tests/test_learning.py and bench/learning.py."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deephype.common.bus import derive_id
from deephype.common.compose import PostFormat
from deephype.common.contracts import Candidates, EnrichedSong, Song, SongMention
from deephype.common.db import Database
from deephype.common.settings import Settings
from deephype.common.signing import ApprovalKeys
from deephype.curator.labels import labelled_sets
from deephype.curator.store import SCHEMA as CURATOR_SCHEMA
from deephype.curator.store import CuratorStore
from deephype.generator.handlers import make_candidates_handler
from deephype.generator.learn import LearnOptions, learn, versioned_source
from deephype.generator.source import SampleRequest
from deephype.generator.versions import VersionStore
from tests.helpers.sim_curator import decide, likes

TEST_KEY = "learning-loop-approval-key-0123456789abcdef"
GENRES = [
    "indie rock", "dream pop", "jazz", "folk", "hip hop", "metal", "techno", "country", "soul", "punk",
    "ambient", "r&b",
]  # fmt: skip
ARTISTS = ["Low Tide", "Mara Vell", "The Quiet Hours", "Juno Bay", "Static Orchard", "Pale Lanterns"]
TITLES = ["Glass Harbour", "Night Swim", "Paper Crowns", "Slow Return", "Copper Sky", "Little Engines"]


@dataclass
class LearningLoop:
    workdir: Path
    model_dir: Path
    seed: int = 0
    options: LearnOptions = field(default_factory=LearnOptions)
    candidates: int = 5
    samples: int = 32

    def __post_init__(self) -> None:
        self.settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            state_dir=self.workdir / "state",
            generator_model=str(self.model_dir),
            generator_rank=False,
            generator_torch_threads=1,
            generator_samples=self.samples,
            learn_versions_dir=str(self.workdir / "versions"),
            approval_keys=TEST_KEY,
        )
        self.versions = VersionStore(self.workdir / "versions")
        self.source = versioned_source(self.model_dir, self.settings)
        self.handle = make_candidates_handler(self.source, n=self.candidates, platform="x")
        self.curator = CuratorStore(
            # Where the curator service keeps it: a curator app built on these settings serves these decisions.
            Database(self.workdir / "state" / "curator" / "curator.sqlite3", CURATOR_SCHEMA),
            ApprovalKeys([TEST_KEY]),
            PostFormat(("x",)),
        )
        self.rng = random.Random(self.seed)
        self.reviewed = 0
        self.reports: list[dict[str, Any]] = []

    def song(self, key: str) -> EnrichedSong:
        rng = random.Random(f"{self.seed}/{key}")
        artist, title = rng.choice(ARTISTS), rng.choice(TITLES)
        mention = SongMention(
            message_id=derive_id("sim-song", self.seed, key), platform="http", post_id=f"{self.seed}-{key}",
            author="sim", text=f"#np {artist} - {title}",
            artist=artist, title=title,
        )  # fmt: skip
        return mention.child(
            EnrichedSong,
            message_id=derive_id(mention.message_id, "enriched"),
            mention=mention,
            song=Song(artist=artist, title=title, genres=[rng.choice(GENRES)]),
            provider="sim",
        )

    def review(self, count: int) -> None:
        """`count` new songs through the generator's handler and the curator's store, each decided."""
        for _ in range(count):
            self.reviewed += 1
            [message] = self.handle(self.song(f"train-{self.reviewed}"))
            assert isinstance(message, Candidates)
            self.curator.add_candidates(message)
            verdict = decide([c.text for c in message.candidates])
            if verdict.candidate_index is None:
                self.curator.reject(message.message_id, by="sim-curator")
            else:
                chosen = message.candidates[verdict.candidate_index]
                self.curator.approve(
                    message.message_id, chosen.candidate_id, verdict.text, by="sim-curator", post_platform="x"
                )

    def learn(self) -> dict[str, Any]:
        report = learn(labelled_sets(self.curator.db), self.versions, self.model_dir, self.options)
        self.source.check()
        self.reports.append(report)
        return report

    def top_choice_share(self, songs: int) -> float:
        """Share of fresh songs (the same ones for every version) whose top candidate the curator would approve."""
        liked = 0
        for number in range(songs):
            song = self.song(f"eval-{number}").song
            request = SampleRequest(song=song, n=self.candidates, platform="x", seed=10_000 + number)
            texts = self.source.generate(request)
            liked += bool(texts) and likes(texts[0].text)
        return liked / songs

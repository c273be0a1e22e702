"""What the generator service needs from a model: song in, scored candidate texts out.

`load_candidate_source` picks the bundled VAE (+ LC-GAN) when a model folder is there, else the clearly
named placeholder, so the pipeline runs before a model has been trained.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from deephype.common.contracts import ModelInfo, ScoredText, Song
from deephype.common.normalise import NormalisedInput


class SampleRequest(NormalisedInput):
    model_config = ConfigDict(extra="forbid")

    song: Song
    n: int = Field(default=5, ge=1, le=64)
    # Below 0.05 sampling is greedy in all but name, and a denormal (5e-324) becomes 0 in float32.
    temperature: float | None = Field(default=None, ge=0.05, le=5)
    use_lcgan: bool | None = None
    platform: str = Field(default="x", pattern="^(x|mastodon|bluesky|dry_run)$")
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)


class SampleResponse(BaseModel):
    candidates: list[ScoredText]
    model: ModelInfo


class CandidateSource(Protocol):
    info: ModelInfo

    def generate(self, request: SampleRequest) -> list[ScoredText]:
        """Up to request.n candidates, best first, each within the platform's length limit."""

    def ready(self) -> bool: ...

"""Reading the corpus folder and turning sentences into padded, length-bucketed batches.

The corpus folder (written by `deephype corpus build`) holds train.jsonl / valid.jsonl / test.jsonl, one
object per sentence: {"text", "artist", "title", "genres", "families", "source", "split"}. Only "text"
is required here; "genres"/"families" (and optional "audio_features") make the condition.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from deephype.generator.condition import ConditionEncoder
from deephype.generator.vocab import Vocab, tokenize

SPLITS = ("train", "valid", "test")


@dataclass
class Example:
    tokens: list[str]
    genres: list[str] = field(default_factory=list)
    audio_features: dict[str, Any] | None = None


@dataclass
class Batch:
    inputs: torch.Tensor  # [B, T] <bos> w1 .. wn <pad>..
    targets: torch.Tensor  # [B, T] w1 .. wn <eos> <pad>..
    lengths: torch.Tensor  # [B] tokens incl. <eos>
    cond: torch.Tensor  # [B, cond_dim]

    def to(self, device: torch.device) -> Batch:
        return Batch(*(t.to(device, non_blocking=True) for t in (self.inputs, self.targets, self.lengths, self.cond)))


def corpus_rows(path: Path) -> Iterator[tuple[str, list[str], dict[str, Any]]]:
    """(text, genres + families, row) for each line of a corpus .jsonl file; a bad line raises ValueError
    naming file and line."""
    if not path.is_file():
        raise FileNotFoundError(f"corpus file not found: {path}")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc})") from exc
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise ValueError(f"{path}:{number}: expected an object with a string 'text'")
            genres = [*row.get("genres", []), *row.get("families", [])]
            if not all(isinstance(g, str) for g in genres):
                raise ValueError(f"{path}:{number}: 'genres' and 'families' must be lists of strings")
            yield row["text"], genres, row


def read_jsonl(path: Path, max_tokens: int | None = None) -> list[Example]:
    """Sentences of one corpus file, tokenized."""
    examples = []
    for text, genres, row in corpus_rows(path):
        tokens = tokenize(text)
        if not tokens:
            continue
        if max_tokens is not None:
            tokens = tokens[:max_tokens]
        examples.append(Example(tokens, genres, row.get("audio_features")))
    return examples


def read_corpus(corpus_dir: Path, max_tokens: int | None = None) -> dict[str, list[Example]]:
    """All three splits of a corpus folder."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"corpus folder not found: {corpus_dir}")
    splits = {split: read_jsonl(corpus_dir / f"{split}.jsonl", max_tokens) for split in SPLITS}
    for split in ("train", "valid"):
        if not splits[split]:
            raise ValueError(f"{corpus_dir / (split + '.jsonl')} has no sentences")
    return splits


@dataclass
class EncodedSet:
    """A split as id lists plus one condition row per sentence (kept on CPU)."""

    ids: list[list[int]]
    cond: torch.Tensor

    def __len__(self) -> int:
        return len(self.ids)


def encode_examples(examples: Sequence[Example], vocab: Vocab, condition: ConditionEncoder) -> EncodedSet:
    ids = [vocab.encode(example.tokens) for example in examples]
    cond = torch.zeros(len(examples), condition.dim)
    cache: dict[tuple[str, ...], torch.Tensor] = {}
    for row, example in enumerate(examples):
        if example.audio_features:
            cond[row] = condition.encode(example.genres, example.audio_features).vector
            continue
        key = tuple(example.genres)
        if key not in cache:
            cache[key] = condition.encode(example.genres).vector
        cond[row] = cache[key]
    return EncodedSet(ids, cond)


def make_batch(ids: Sequence[Sequence[int]], cond: torch.Tensor, vocab: Vocab) -> Batch:
    lengths = torch.tensor([len(s) + 1 for s in ids])
    width = int(lengths.max())
    inputs = torch.full((len(ids), width), vocab.pad_id, dtype=torch.long)
    targets = torch.full((len(ids), width), vocab.pad_id, dtype=torch.long)
    for row, sentence in enumerate(ids):
        n = len(sentence)
        inputs[row, 0] = vocab.bos_id
        inputs[row, 1 : n + 1] = torch.tensor(sentence, dtype=torch.long)
        targets[row, :n] = torch.tensor(sentence, dtype=torch.long)
        targets[row, n] = vocab.eos_id
    return Batch(inputs, targets, lengths, cond)


def iterate_batches(
    data: EncodedSet, vocab: Vocab, batch_size: int, shuffle: bool, rng: random.Random | None = None
) -> Iterator[Batch]:
    """Batches of similar length (little padding); batch order shuffled when training."""
    order = sorted(range(len(data)), key=lambda i: len(data.ids[i]))
    if shuffle:
        # Shuffle within coarse length buckets so batches differ between epochs but stay tight.
        rng = rng or random.Random(0)
        order = sorted(range(len(data)), key=lambda i: (len(data.ids[i]) // 4, rng.random()))
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle:
        rng.shuffle(chunks)  # type: ignore[union-attr]
    for chunk in chunks:
        yield make_batch([data.ids[i] for i in chunk], data.cond[chunk], vocab)

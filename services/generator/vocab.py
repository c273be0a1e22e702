"""Tokenizer and vocabulary of the sentence VAE.

`tokenize` lower-cases and splits text into words and punctuation, keeping the placeholders <artist> and
<title> as single tokens; `detokenize` joins tokens back into natural text (no space before , . ! ? ' …,
first letter of each sentence capitalised). `Vocab` is built from the training corpus with a min count.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
ARTIST, TITLE = "<artist>", "<title>"
SPECIALS = (PAD, BOS, EOS, UNK)
PLACEHOLDERS = (ARTIST, TITLE)

# Placeholders first, then numbers (3.5, 2:45), words (with inner apostrophes/hyphens: don't, lo-fi), and
# any other single symbol.
_TOKEN_RE = re.compile(r"(?i:<artist>|<title>)|\d+(?:[.,:]\d+)+|[^\W_]+(?:['\-][^\W_]+)*|\S")
_NO_SPACE_BEFORE = {",", ".", "!", "?", ";", ":", "%", ")", "]", "}", "'", "’", "…", "n't"}
_NO_SPACE_AFTER = {"(", "[", "{", "$", "#", "@"}
_SENTENCE_END = {".", "!", "?", "…"}


def tokenize(text: str) -> list[str]:
    """Split text into lower-cased tokens; punctuation marks are tokens of their own."""
    text = text.replace("’", "'").replace("“", '"').replace("”", '"')
    return [token.lower() for token in _TOKEN_RE.findall(text)]


def detokenize(tokens: Sequence[str]) -> str:
    """Join tokens into natural text: the inverse of `tokenize` up to case and spacing."""
    out: list[str] = []
    capitalize_next = True
    quote_open = False
    no_space = True
    for token in tokens:
        if token in SPECIALS:
            continue
        piece = token
        if capitalize_next and piece[:1].isalpha():
            piece = piece[:1].upper() + piece[1:]
            capitalize_next = False
        elif piece[:1].isalnum() or piece in PLACEHOLDERS:
            capitalize_next = False
        if piece == "i":
            piece = "I"
        if token == '"':
            # Straight quotes alternate: an opening quote hugs the next word, a closing one the last.
            attach_left = quote_open
            quote_open = not quote_open
            if not no_space and not attach_left:
                out.append(" ")
            out.append(piece)
            no_space = not attach_left
            continue
        attaches_left = token in _NO_SPACE_BEFORE or (token.startswith("'") and len(token) > 1)
        if out and not no_space and not attaches_left:
            out.append(" ")
        out.append(piece)
        no_space = token in _NO_SPACE_AFTER
        if token in _SENTENCE_END:
            capitalize_next = True
    return "".join(out)


@dataclass
class Vocab:
    """Token ↔ id. Ids 0-3 are <pad> <bos> <eos> <unk>; the placeholders always follow."""

    itos: list[str]
    stoi: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if list(self.itos[: len(SPECIALS)]) != list(SPECIALS):
            raise ValueError(f"vocabulary must start with {list(SPECIALS)}, got {self.itos[:4]}")
        if len(set(self.itos)) != len(self.itos):
            raise ValueError("vocabulary has duplicate tokens")
        self.stoi = {token: index for index, token in enumerate(self.itos)}

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], min_count: int = 2, max_size: int = 30_000) -> Vocab:
        """Keep tokens seen at least `min_count` times (most frequent first, at most `max_size`)."""
        counts = Counter(token for sentence in sentences for token in sentence)
        reserved = [*SPECIALS, *PLACEHOLDERS]
        for token in reserved:
            counts.pop(token, None)
        kept = [t for t, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_count]
        return cls(reserved + kept[: max(0, max_size - len(reserved))])

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def bos_id(self) -> int:
        return 1

    @property
    def eos_id(self) -> int:
        return 2

    @property
    def unk_id(self) -> int:
        return 3

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [self.stoi.get(token, self.unk_id) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids to tokens, stopping at <eos> and skipping <pad>/<bos>."""
        tokens = []
        for index in ids:
            if index == self.eos_id:
                break
            if index in (self.pad_id, self.bos_id):
                continue
            tokens.append(self.itos[index])
        return tokens

"""Tokenizer and vocabulary of the sentence VAE."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deephype.generator.vocab import ARTIST, TITLE, Vocab, detokenize, tokenize


def test_punctuation_and_placeholders_are_tokens() -> None:
    assert tokenize("<Artist>'s new single, <title>, is LOUD!") == [
        ARTIST, "'", "s", "new", "single", ",", TITLE, ",", "is", "loud", "!",
    ]  # fmt: skip
    assert tokenize("don't sleep on lo-fi (really).") == ["don't", "sleep", "on", "lo-fi", "(", "really", ")", "."]


@pytest.mark.parametrize(
    "text",
    [
        "<title> by <artist> is a warm, hazy dream.",
        "I can't stop playing <title>! Is it the chorus? Yes.",
        'They called it "the song of the summer" and meant it.',
        "Lo-fi beats (mostly) at 3.5 stars; 100% worth it.",
        "Wait for the drop: it hits at 2:45.",
    ],
)
def test_detokenize_inverts_tokenize(text: str) -> None:
    assert detokenize(tokenize(text)) == text


def test_detokenize_skips_special_tokens_and_attaches_contractions() -> None:
    assert detokenize(["<bos>", "it", "'s", "great", "<eos>"]) == "It's great"
    assert detokenize(["does", "n't", "matter", "."]) == "Doesn't matter."


text_pieces = st.lists(
    st.sampled_from(["<artist>", "<title>", "song", "I", "don't", "3.5", ",", ".", "!", "?", '"', "'", "(", ")",
                     "-", ";", ":", "lo-fi", "%", "$", "wow"]),
    max_size=25,
)  # fmt: skip


@given(text_pieces, st.lists(st.sampled_from([" ", "", "  "]), min_size=25, max_size=25))
def test_tokenize_detokenize_is_stable(pieces: list[str], gaps: list[str]) -> None:
    text = "".join(piece + gap for piece, gap in zip(pieces, gaps, strict=False))
    tokens = tokenize(text)
    assert tokenize(detokenize(tokens)) == tokens


def test_vocab_min_count_specials_and_unknowns() -> None:
    sentences = [["the", "song", "<title>"], ["the", "drop"], ["the", "song"]]
    vocab = Vocab.build(sentences, min_count=2)
    assert vocab.itos[:6] == ["<pad>", "<bos>", "<eos>", "<unk>", ARTIST, TITLE]
    assert vocab.itos[6:] == ["the", "song"]  # "drop" is seen once
    assert vocab.encode(["the", "drop", TITLE]) == [6, vocab.unk_id, 5]
    assert vocab.decode([1, 6, 7, 2, 6]) == ["the", "song"]  # stops at <eos>


def test_vocab_rejects_a_broken_token_list() -> None:
    with pytest.raises(ValueError, match="must start with"):
        Vocab(["the", "<pad>"])
    with pytest.raises(ValueError, match="duplicate"):
        Vocab(["<pad>", "<bos>", "<eos>", "<unk>", "a", "a"])

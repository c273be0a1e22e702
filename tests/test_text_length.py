"""Post length as each platform counts it: links, wide characters, and the limits the bot must respect."""

from __future__ import annotations

import unicodedata

import pytest
import regex
from hypothesis import given
from hypothesis import strategies as st

from deephype.common.contracts import PLATFORM_TEXT_LIMITS, length_problem, text_length

LONG_LINK = "https://open.spotify.com/track/" + "a" * 60


@pytest.mark.parametrize(
    ("text", "platform", "length"),
    [
        ("plain words", "x", 11),
        (f"hear it {LONG_LINK}", "x", 8 + 23),  # X shortens every link to 23
        ("at x.co now", "x", 3 + 23 + 4),  # a bare domain: X links it, so at least 23
        ("日本の歌", "x", 8),  # CJK counts 2 on X
        ("“curly” quotes – and a dash", "x", 27),  # general punctuation counts 1
        ("🎸", "x", 2),
        ("e.g. a sentence", "x", 15),  # not a domain
        (f"hear it {LONG_LINK}", "mastodon", 8 + 23),
        ("at x.co now", "mastodon", 11),  # Mastodon links only http(s) URLs
        ("日本の歌", "mastodon", 4),
        (f"hear it {LONG_LINK}", "bluesky", 8 + len(LONG_LINK)),  # Bluesky counts the whole text
        ("cafe\u0301", "bluesky", 4),  # NFC: é is one character
    ],
)
def test_lengths_as_the_platforms_count_them(text: str, platform: str, length: int) -> None:
    assert text_length(text, platform) == length


def test_the_limit_is_checked_with_the_platforms_count() -> None:
    assert length_problem("a" * 280, "x") is None
    assert "281 characters as x counts them; x allows 280" in str(length_problem("a" * 281, "x"))
    assert length_problem("日" * 141, "x") is not None  # 141 characters, 282 as X counts them
    assert length_problem("fits " + LONG_LINK * 1, "x") is None  # 96 characters, 28 as X counts them
    assert length_problem("a" * 300, "bluesky") is None and length_problem("a" * 301, "bluesky") is not None
    assert length_problem("a" * 500, "mastodon") is None and length_problem("a" * 501, "mastodon") is not None


@given(st.text(alphabet=st.characters(blacklist_characters="./:"), max_size=400))
def test_without_links_x_counts_each_character_once_or_twice(text: str) -> None:
    characters = len(unicodedata.normalize("NFC", text))
    assert characters <= text_length(text, "x") <= 2 * characters
    assert text_length(text, "mastodon") == characters
    # Bluesky counts graphemes: a letter with its combining marks, or an emoji sequence, is one.
    assert text_length(text, "bluesky") == len(regex.findall(r"\X", unicodedata.normalize("NFC", text)))
    assert text_length(text, "bluesky") <= characters
    assert set(PLATFORM_TEXT_LIMITS) >= {"x", "mastodon", "bluesky", "dry_run"}

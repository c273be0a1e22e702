"""Each cleaning step on small texts written for the test."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from deephype.corpus.clean import (
    NearDuplicateIndex,
    clean_text,
    dedupe,
    fix_mojibake,
    is_boilerplate,
    is_english,
    paragraphs,
    replace_song_names,
    split_sentences,
    strip_markup,
)


def test_ftfy_repairs_real_mojibake() -> None:
    assert fix_mojibake("Itâ€™s a â€œsongâ€\x9d") == 'It\'s a "song"'


def test_ascii_squashed_mojibake_is_repaired() -> None:
    text = 'ItaEUR(tm)s their aEURoeBest SongaEUR yet aEUR" truly.'
    assert fix_mojibake(text) == 'It\'s their "Best Song" yet  -  truly.'
    assert fix_mojibake("CafA(c) au lait") == "Café au lait"


def test_clean_words_are_left_alone_by_the_mojibake_table() -> None:
    assert fix_mojibake("A3 paper and an A1 poster") == "A3 paper and an A1 poster"


def test_markup_goes_and_link_text_stays() -> None:
    text = "**Bold** and _soft_ [the video](https://v.example/x) at https://a.example/y or www.b.example <b>now</b>"
    assert " ".join(strip_markup(text).split()) == "Bold and soft the video at or now"


def test_placeholders_survive_tag_stripping() -> None:
    text = "<p><artist> shares <title> and <i>more</i></p>"
    assert " ".join(strip_markup(text).split()) == "<artist> shares <title> and more"
    assert clean_text("<artist>'s new one, <title>, is <em>great</em>.") == "<artist>'s new one, <title>, is great."


def test_hard_wraps_are_joined_and_menus_and_headings_dropped() -> None:
    text = "### Heading\n\nA line that was\nwrapped at eighty columns.\n\n  * __Home\n  * __About\n\nNext paragraph."
    assert paragraphs(strip_markup(text)) == ["A line that was wrapped at eighty columns.", "Next paragraph."]


def test_boilerplate_is_recognised() -> None:
    for sentence in (
        "Follow Velvet Harbor on Instagram.",
        "Listen below.",
        "Stream it here.",
        "Buy the EP on Bandcamp.",
        "Tour dates are below.",
        "Facebook | Twitter | Soundcloud",
        "May 3 - Leeds @ The Hall",
        "6/25/26 - Leeds - The Hall",
        "<artist>, Quiet Records, Harbor Lights, Tour 2026",
        "chill electronic indie music new music photography",
    ):
        assert is_boilerplate(sentence), sentence
    for sentence in (
        "The guitars shimmer over a patient drum machine.",
        "By the end I was ready to buy a ticket to anywhere.",
        "<artist> wrote <title> after a long winter.",
        "It has drums, bass, a choir, and strings, all at once.",
    ):
        assert not is_boilerplate(sentence), sentence


def test_sentences_split_on_real_boundaries_only() -> None:
    text = "Mt. Hood wrote it in Nov. 2020. It is great! Is it?\n\nNew paragraph here."
    assert split_sentences(text) == ["Mt. Hood wrote it in Nov. 2020.", "It is great!", "Is it?", "New paragraph here."]


def test_song_names_become_placeholders() -> None:
    sentence = 'Velvet Harbor\'s new song "Paper Lanterns" shows VELVET HARBOR at their best.'
    expected = '<artist>\'s new song "<title>" shows <artist> at their best.'
    assert replace_song_names(sentence, "Velvet Harbor", "Paper Lanterns") == expected


def test_title_words_in_running_text_are_not_replaced() -> None:
    sentence = 'She is my best friend, and Best Friend is a song about her; I love "best friend".'
    result = replace_song_names(sentence, "Mira Sol", "Best Friend")
    assert result == 'She is my best friend, and <title> is a song about her; I love "<title>".'


def test_multi_word_artists_match_in_any_case() -> None:
    result = replace_song_names("I love Band of Lanterns and BAND OF LANTERNS.", "BAND OF LANTERNS", "Night Swim")
    assert result == "I love <artist> and <artist>."


def test_one_word_names_need_capitals() -> None:
    assert replace_song_names("Boys made the boys cry.", "Boys", "Tears") == "<artist> made the boys cry."


def test_leading_the_is_optional_for_the_artist() -> None:
    result = replace_song_names("The Lantern Keepers and Lantern Keepers fans.", "The Lantern Keepers", "Night Swim")
    assert result == "<artist> and <artist> fans."


def test_english_filter() -> None:
    assert is_english("The band recorded their second album in a small cabin by the lake.")
    assert not is_english("Nous aimons beaucoup cette chanson, elle est douce et très belle avec une guitare.")
    assert is_english("Short one.")  # too short to judge
    assert not is_english("新曲を公開")  # short, but not Latin script


def test_exact_and_near_duplicates_are_dropped_in_order() -> None:
    sentences = [
        "The guitars shimmer over a patient drum machine while the vocals drift.",
        "the guitars shimmer over a patient drum machine, while the vocals drift!",  # exact after normalising
        "The guitars shimmer over a patient drum machine while the vocals drift away.",  # near
        "Something completely different about a quiet piano.",
    ]
    assert dedupe(sentences) == [sentences[0], sentences[3]]


def test_near_duplicate_threshold_is_respected() -> None:
    index = NearDuplicateIndex(threshold=0.99)
    assert index.add_if_new("one two three four five six seven eight nine ten")
    assert index.add_if_new("one two three four five six seven eight nine eleven")  # similar but below 0.99
    assert not index.add_if_new("one two three four five six seven eight nine ten")


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_cleaner_never_crashes(text: str) -> None:
    cleaned = clean_text(text)
    assert isinstance(cleaned, str)
    for sentence in split_sentences(cleaned):
        assert sentence.strip()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["<artist>", "<title>", "word", "**x**", "<b>", "&amp;", "\n", " ", "'"]), max_size=30))
def test_placeholders_are_never_damaged(parts: list[str]) -> None:
    text = " ".join(parts)
    cleaned = clean_text(text)
    assert cleaned.count("<artist>") == text.count("<artist>")
    assert cleaned.count("<title>") == text.count("<title>")

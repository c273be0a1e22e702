"""Turn scraped post text into clean English sentences.

Each step is a small pure function so it can be tested on its own; `build.py` chains them and counts
what every step removes. The placeholders <artist> and <title> look like HTML tags: every step that
removes tags leaves exactly those two alone.
"""

from __future__ import annotations

import html
import re
import zlib
from collections.abc import Iterable
from functools import lru_cache

import ftfy
import numpy as np

from deephype.corpus.titles import name_key, normalise_spaces

PLACEHOLDERS = ("<artist>", "<title>")

# --- mojibake --------------------------------------------------------------------------------------------

# The sample was UTF-8 read as cp1252 ("â€œ") and then squashed to ASCII ("aEURoe"): ftfy can repair the
# first form but not the second, because the bytes it would need are gone. These are the ASCII shadows of
# the cp1252 mojibake of the common punctuation, longest first.
_ASCII_MOJIBAKE = (
    ("aEUR(tm)", "'"),  # ’ -> â€™ -> aEUR(tm)
    ("aEURoe", '"'),  # “ -> â€œ -> aEURoe
    ('aEUR"', " - "),  # — / – -> â€” / â€“ -> aEUR"
    ("aEUR~", "'"),  # ‘ -> â€˜ -> aEUR~
    ("aEUR|", "..."),  # … -> â€¦ -> aEUR|
    ("aEURC/", "•"),
    ("aEUR", '"'),  # ” -> â€\x9d, whose last byte was dropped
    ("A(c)", "é"),
    ("A!", "á"),
    ("A+-", "ñ"),
    ("A3", "ó"),
    ("A1/4", "ü"),
)


def fix_mojibake(text: str) -> str:
    """Repair encoding damage: ftfy for real mojibake, a table for the ASCII-squashed kind."""
    text = ftfy.fix_text(text, uncurl_quotes=True, normalization="NFC")
    if "aEUR" in text or "A(c)" in text:
        for broken, fixed in _ASCII_MOJIBAKE:
            if broken.startswith("A") and broken != "A(c)":
                # Two-letter shadows like 'A3' are ordinary text too; only repair them inside a word.
                text = re.sub(rf"(?<=[a-z]){re.escape(broken)}(?=[a-z])", fixed, text)
            else:
                text = text.replace(broken, fixed)
    return text


# --- markup ----------------------------------------------------------------------------------------------

_TAG = re.compile(r"<(?!/?(?:artist|title)>)/?[a-zA-Z][^<>]{0,300}>")
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]*)\]\((?:[^()]|\([^)]*\))*\)")
_MD_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"')\]]+", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b")
_HANDLE = re.compile(r"(?<![\w@])@\w{2,}")
# Emphasis may span a hard line wrap but never a blank line.
_EMPHASIS = re.compile(r"(\*{1,3}|_{1,3})(?=\S)((?:(?!\n\s*\n).)+?)(?<=\S)\1", re.DOTALL)
_LIST_ITEM = re.compile(r"^\s*(?:[*+•-]|\d+[.)])\s+")
_HEADING = re.compile(r"^\s*#{1,6}\s+")


def strip_markup(text: str) -> str:
    """Remove HTML tags and entities, markdown links, emphasis and headings, URLs, e-mail addresses and
    @handles; keep the link text and the <artist>/<title> placeholders."""
    text = _TAG.sub(" ", text)
    text = html.unescape(text)
    text = _MD_IMAGE.sub(" ", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_REF_LINK.sub(r"\1", text)
    text = _URL.sub(" ", text)
    text = _EMAIL.sub(" ", text)
    text = _HANDLE.sub(" ", text)
    for _ in range(3):  # nested emphasis: ***x*** / **_x_**
        text = _EMPHASIS.sub(r"\2", text)
    text = re.sub(r"(?<!\w)[*_]{2,}|[*_]{2,}(?!\w)", " ", text)  # unmatched leftovers
    text = re.sub(r"(?<=\w)\*+(?!\w)|(?<![\w\n])\*+(?=\w)", "", text)  # footnote stars: 'Center*'
    text = re.sub(r"(?<=\S )\*+(?=[ \"'])", "", text)  # a lone star between words (not a list marker)

    return text


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs with the hard line wraps joined. Headings and short list items
    (menus, tour dates) are dropped: they are not prose."""
    result: list[str] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines: list[str] = []
        for line in block.split("\n"):
            if _HEADING.match(line):
                continue
            if _LIST_ITEM.match(line):
                item = _LIST_ITEM.sub("", line)
                if len(item.split()) < 8:
                    continue
                line = item
            lines.append(line.strip())
        joined = normalise_spaces(" ".join(lines))
        if joined:
            result.append(tidy_punctuation(joined))
    return result


def tidy_punctuation(text: str) -> str:
    """Close the gaps markdown stripping leaves: '" Follow Me "' -> '"Follow Me"', 'word ,' -> 'word,'."""
    # Quotes pair up left to right; the spaces just inside each pair go.
    text = re.sub(r'"([^"]*)"', lambda m: '"' + m.group(1).strip() + '"', text)
    text = re.sub(r"(^|\s)'\s+([^'\s][^']*?)\s+'(?=\s|[.,;:!?]|$)", r"\1'\2'", text)  # "' Title '"
    text = re.sub(r"\s+([,.;:!?])(?=\s|$)", r"\1", text)
    text = re.sub(r"\(\s*\)", "", text)
    return normalise_spaces(text)


def clean_text(text: str) -> str:
    """Mojibake repair + markup removal + whitespace tidy, paragraphs kept apart by blank lines."""
    return "\n\n".join(paragraphs(strip_markup(fix_mojibake(text))))


# --- sentences -------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _segmenter():  # pysbd builds its rules once per segmenter
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def split_sentences(text: str) -> list[str]:
    """Sentences of a cleaned text, paragraph by paragraph (a sentence never spans two paragraphs)."""
    sentences: list[str] = []
    for paragraph in text.split("\n\n"):
        if paragraph.strip():
            sentences.extend(s.strip() for s in _segmenter().segment(paragraph) if s.strip())
    return sentences


# --- placeholders ----------------------------------------------------------------------------------------


def _name_pattern(name: str, any_case: bool = False) -> re.Pattern[str] | None:
    """A regex for a name in running text. With any_case, any capitalisation matches. Otherwise any case
    only inside quotes ('"best friend"'), elsewhere only the written, Title Case or UPPER CASE forms, so a
    title like 'Best Friend' does not eat the words 'best friend' in a sentence about friendship."""
    name = normalise_spaces(name).strip()
    if not name or not re.search(r"\w", name):
        return None
    start, end = r"(?<![\w<])", r"(?![\w>])"  # never inside a word or an existing placeholder

    def literal(form: str) -> str:
        return r"\s+".join(re.escape(part) for part in form.split()).replace("'", "['’]")

    if any_case:
        return re.compile(start + literal(name) + end, re.IGNORECASE)
    forms = {name, name.upper(), " ".join(w[:1].upper() + w[1:] for w in name.split()), name.title()}
    any_case_quoted = r'(?<=["\'])(?i:' + literal(name) + r')(?=["\'])'
    cased = "|".join(literal(form) for form in sorted(forms, key=len, reverse=True))
    return re.compile(any_case_quoted + "|" + start + "(?:" + cased + ")" + end)


def replace_song_names(sentence: str, artist: str | None, title: str | None) -> str:
    """Put <title> and <artist> where the song's own title and artist appear (also "Artist's"): the title
    first, so a song named after its artist stays a title inside quotes."""
    for name, placeholder in ((title, "<title>"), (artist, "<artist>")):
        if not name:
            continue
        variants = {name}
        if name.lower().startswith("the "):
            variants.add(name[4:])
        for variant in sorted(variants, key=len, reverse=True):
            # A band name of two or more words is not an everyday phrase: 'GANG OF X' finds 'Gang of X'.
            any_case = placeholder == "<artist>" and len(variant.split()) >= 2
            pattern = _name_pattern(variant, any_case)
            if pattern is not None:
                sentence = pattern.sub(placeholder, sentence)
    return re.sub(r"\b[Tt]he <artist>", "<artist>", sentence)


# --- filters ---------------------------------------------------------------------------------------------

_BOILERPLATE = re.compile(
    r"""
    \bfollow\b.{0,40}\bon\s+(?:instagram|twitter|facebook|soundcloud|spotify|youtube|bandcamp|tiktok)\b
    | \b(?:like|find|connect\ with)\b.{0,30}\bon\s+(?:instagram|facebook|twitter|soundcloud|spotify)\b
    | \b(?:listen|stream|watch|check\ (?:it|them|him|her)\ out|hear\ it|take\ a\ listen)\b
      .{0,25}\b(?:below|above|here|now)\b
    | \bstream\ (?:it|the\ (?:song|track|single|ep|album))\b
    | \b(?:buy|pre-?order|purchase|download|grab)\s+(?:it\b|(?:here|now|on|via|from)\b
      |(?:the|this|their|his|her|a|an|your)\s+(?:new\s+|debut\s+|full\s+)?(?:ep|album|single|track|song|record
      |vinyl|lp|cd|copy)\b)
    | \bfree\ download\b | \bout\ now\ (?:on|via)\b
    | \bavailable\ (?:now\ )?(?:on|via|at)\ (?:itunes|spotify|bandcamp|apple)
    | \btour\ dates\b | \btickets?\b.{0,20}\b(?:here|available|on\ sale)\b | \bon\ sale\b
    | \bsubscribe\b | \bnewsletter\b | \bsign\ up\b | \bclick\ here\b | \bread\ more\b | \bshare\ this\b
    | \brelated\ posts?\b | \bcookies?\b | \ball\ rights\ reserved\b | \bcopyright\b
    | \bphoto\ (?:by|credit)\b | \bcover\ art\ by\b | \bpremiered?\ (?:on|via|at)\b
    | \b(?:add|save)\ (?:it|this|the\ song)\ to\ your\b | \bplaylist\ below\b
    | ^\s*(?:via|source|credit|photo|image|words|text|tags?)\s*(?::|by\b)
    | \btags?\s*: | \s@\s
    | (?:facebook|twitter|soundcloud|spotify|instagram|youtube|bandcamp|apple\ music|tumblr)
      (?:\W+(?:facebook|twitter|soundcloud|spotify|instagram|youtube|bandcamp|apple\ music|tumblr)){1,}
    """,
    re.IGNORECASE | re.VERBOSE,
)


_LISTING_ITEM = re.compile(
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2}\b|\b\d{1,2}/\d{1,2}\b|\s@\s",
    re.IGNORECASE,
)


def is_boilerplate(sentence: str) -> bool:
    """Calls to action and site furniture: 'Follow X on Instagram', 'Listen below', 'Buy the EP', tour
    date listings, ..."""
    if _BOILERPLATE.search(sentence) is not None:
        return True
    if re.match(r"^\s*\d{1,2}/\d{1,2}(?:/\d{2,4})?\b", sentence):  # '6/25 - Leeds - The Hall'
        return True
    # A post's tag list ('Artist, Label, Album Name, Other Tag' or 'chill electronic indie new music'):
    # no sentence ending, and commas or a lower-case start.
    unfinished = not re.search(r"[.!?\"')’”:]\s*$", sentence)
    items = sentence.split(",")
    short_items = len(items) >= 4 and sum(len(item.split()) for item in items) / len(items) <= 3
    if unfinished and (short_items or sentence[:1].islower()):
        return True
    return len(_LISTING_ITEM.findall(sentence)) >= 3


def word_count(sentence: str) -> int:
    return len(sentence.split())


@lru_cache(maxsize=1)
def _language_identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def language_of(text: str) -> tuple[str, float]:
    """(ISO code, probability) from py3langid; the placeholders are hidden so they don't count."""
    for placeholder in PLACEHOLDERS:
        text = text.replace(placeholder, " ")
    lang, probability = _language_identifier().classify(text)
    return str(lang), float(probability)


def is_english(text: str, *, min_words: int = 6, min_confidence: float = 0.9) -> bool:
    """True unless the text is long enough to judge and confidently another language. Very short
    sentences are too noisy for an n-gram classifier, so they get the benefit of the doubt."""
    if word_count(text) < min_words:
        return not re.search(r"[^\x00-\u024f\u2000-\u206f\u20a0-\u20bf]", text)  # no CJK/Cyrillic/...
    lang, probability = language_of(text)
    return lang == "en" or probability < min_confidence


# --- duplicates ------------------------------------------------------------------------------------------


def normalised_key(sentence: str) -> str:
    """Exact-duplicate key: case, accents, punctuation and spacing do not matter."""
    return name_key(sentence)


def shingles(sentence: str, size: int = 3) -> set[str]:
    words = normalised_key(sentence).split()
    if len(words) < size:
        return {" ".join(words)}
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


_PRIME = (1 << 31) - 1  # small enough that a * h + b fits in int64


class NearDuplicateIndex:
    """MinHash + LSH over word 3-shingles: remembers sentences and answers "have I seen one like this?"
    Candidates from the LSH buckets are confirmed with the exact Jaccard similarity, so the threshold is
    exact; the hashing only decides which pairs are compared."""

    def __init__(self, threshold: float = 0.8, num_perm: int = 64, bands: int = 16, seed: int = 1) -> None:
        if num_perm % bands:
            raise ValueError("num_perm must be a multiple of bands")
        rng = np.random.default_rng(seed)
        self.threshold = threshold
        self.rows = num_perm // bands
        self.bands = bands
        self._a = rng.integers(1, _PRIME, size=(num_perm, 1), dtype=np.int64)
        self._b = rng.integers(0, _PRIME, size=(num_perm, 1), dtype=np.int64)
        self._buckets: list[dict[tuple[int, ...], list[int]]] = [{} for _ in range(bands)]
        self._shingles: list[set[str]] = []

    def _signature(self, items: set[str]) -> list[int]:
        hashes = np.array([zlib.crc32(item.encode()) % _PRIME for item in items], dtype=np.int64)
        return ((self._a * hashes[None, :] + self._b) % _PRIME).min(axis=1).tolist()

    def add_if_new(self, sentence: str) -> bool:
        """Remember the sentence and return True, or return False when a near duplicate is known."""
        items = shingles(sentence)
        signature = self._signature(items)
        keys = [tuple(signature[i * self.rows : (i + 1) * self.rows]) for i in range(self.bands)]
        seen: set[int] = set()
        for band, key in enumerate(keys):
            for other in self._buckets[band].get(key, ()):
                if other in seen:
                    continue
                seen.add(other)
                known = self._shingles[other]
                if len(items & known) / len(items | known) >= self.threshold:
                    return False
        index = len(self._shingles)
        self._shingles.append(items)
        for band, key in enumerate(keys):
            self._buckets[band].setdefault(key, []).append(index)
        return True


def dedupe(sentences: Iterable[str], threshold: float = 0.8) -> list[str]:
    """Keep the first of every group of exact or near duplicates, in input order."""
    exact: set[str] = set()
    near = NearDuplicateIndex(threshold)
    kept: list[str] = []
    for sentence in sentences:
        key = normalised_key(sentence)
        if key in exact:
            continue
        exact.add(key)
        if near.add_if_new(sentence):
            kept.append(sentence)
    return kept

"""`build_corpus`: inputs -> clean labelled sentences in train/valid/test JSONL + manifest + stats plot.

The pipeline, in order (the manifest counts what every step keeps):
  read posts -> clean text (mojibake, markup) -> drop non-English posts -> song from the headline ->
  sentences (pysbd) -> <artist>/<title> placeholders -> drop boilerplate -> drop too short / too long ->
  drop non-English sentences -> drop exact duplicates -> drop near duplicates -> genres -> split by song.
Labelled sentences (our own corpus) join at the sentence stage: they skip the headline and the genre
lookup but go through every filter.

Everything is written into a temporary folder next to the output and renamed into place at the end, so
an error leaves no half-written corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from deephype.corpus import clean
from deephype.corpus.genres import Catalog, Vocabulary, default_vocabulary, load_catalog
from deephype.corpus.sources import (
    FORMATS,
    LabelledSentence,
    PoliteFetcher,
    Post,
    detect_format,
    file_sha256,
    read_feeds,
    read_html_folder,
    read_labelled,
    read_posts,
)
from deephype.corpus.split import SPLITS, split_for_song
from deephype.corpus.titles import parse_song_title

MANIFEST_VERSION = 1
# Every counter the manifest reports, present even when zero.
COUNT_KEYS = (
    "posts",
    "posts_empty_after_cleaning",
    "posts_not_english",
    "posts_with_artist",
    "posts_with_title",
    "posts_with_genres",
    "sentences_split",
    "labelled_sentences",
    "dropped_boilerplate",
    "dropped_too_short",
    "dropped_too_long",
    "dropped_not_english",
    "dropped_exact_duplicate",
    "dropped_near_duplicate",
)
DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "deephype" / "http"


@dataclass
class BuildSettings:
    min_words: int = 4
    max_words: int = 60
    near_duplicate_threshold: float = 0.8
    split_fractions: tuple[float, float, float] = (0.90, 0.05, 0.05)
    # A sentence is dropped as foreign only when py3langid is at least this sure.
    language_confidence: float = 0.9
    input_format: str = "auto"
    fetch_interval_seconds: float = 2.0
    cache_dir: str = str(DEFAULT_CACHE_DIR)
    plot: bool = True

    def check(self) -> None:
        if self.min_words < 1 or self.max_words < self.min_words:
            raise ValueError(f"need 1 <= --min-words <= --max-words, got {self.min_words} and {self.max_words}")
        if not 0 < self.near_duplicate_threshold <= 1:
            raise ValueError("near-duplicate threshold must be in (0, 1]")
        if self.input_format not in FORMATS:
            raise ValueError(f"unknown format {self.input_format!r}; choose from {', '.join(FORMATS)}")


@dataclass
class Candidate:
    """A sentence on its way through the filters."""

    text: str
    artist: str | None
    title: str | None
    source: str
    genres: list[str] = field(default_factory=list)
    families: list[str] = field(default_factory=list)
    labelled: bool = False


def _read_inputs(
    inputs: Sequence[Path], settings: BuildSettings, vocabulary: Vocabulary
) -> tuple[list[Post], list[LabelledSentence], list[dict[str, Any]], list[str]]:
    """Read and check every input before any work is done."""
    posts: list[Post] = []
    labelled: list[LabelledSentence] = []
    described: list[dict[str, Any]] = []
    warnings: list[str] = []
    if not inputs:
        raise ValueError("no inputs given")
    for path in inputs:
        kind = settings.input_format if settings.input_format != "auto" else detect_format(path)
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        entry: dict[str, Any] = {"path": str(path), "format": kind, "sha256": {}}
        if kind == "posts":
            found = read_posts(path)
            posts.extend(found)
            entry["records"] = len(found)
        elif kind == "labelled":
            found_labelled = read_labelled(path, vocabulary)
            labelled.extend(found_labelled)
            entry["records"] = len(found_labelled)
            files = [f for f in files if f.suffix == ".jsonl"]
        elif kind == "html":
            if not path.is_dir():
                raise ValueError(f"{path}: --format html expects a folder of .html files")
            found = read_html_folder(path)
            posts.extend(found)
            entry["records"] = len(found)
            files = [f for f in files if f.suffix.lower() in {".html", ".htm"}]
        else:  # feeds
            fetcher = PoliteFetcher(Path(settings.cache_dir), min_interval=settings.fetch_interval_seconds)
            found, feed_warnings = read_feeds(path, fetcher)
            posts.extend(found)
            warnings.extend(feed_warnings)
            entry["records"] = len(found)
            entry["fetch"] = {k: v for k, v in asdict(fetcher.stats).items() if k != "blocked_urls"}
            entry["robots_blocked_urls"] = fetcher.stats.blocked_urls
        entry["sha256"] = {str(f): file_sha256(f) for f in files}
        described.append(entry)
    return posts, labelled, described, warnings


def _sentences_from_posts(
    posts: Iterable[Post], counts: Counter[str], settings: BuildSettings, catalog: Catalog, show: bool
) -> list[Candidate]:
    candidates: list[Candidate] = []
    vocabulary = default_vocabulary()
    for post in tqdm(list(posts), desc="posts", unit="post", disable=not show):
        counts["posts"] += 1
        text = clean.clean_text(post.text)
        if not text.strip():
            counts["posts_empty_after_cleaning"] += 1
            continue
        language, confidence = clean.language_of(text)
        if language != "en" and confidence >= settings.language_confidence:
            counts["posts_not_english"] += 1
            continue
        song = parse_song_title(post.title, post.site or post.source) if post.title else None
        artist, title = song if song else (None, None)
        genres = catalog.lookup(artist)
        counts["posts_with_artist"] += artist is not None
        counts["posts_with_title"] += title is not None
        counts["posts_with_genres"] += bool(genres)
        for sentence in clean.split_sentences(text):
            counts["sentences_split"] += 1
            candidates.append(
                Candidate(
                    text=clean.replace_song_names(sentence, artist, title),
                    artist=artist,
                    title=title,
                    source=post.source,
                    genres=genres,
                    families=vocabulary.families_for(genres),
                )
            )
    return candidates


def _filter(candidates: list[Candidate], counts: Counter[str], settings: BuildSettings) -> list[Candidate]:
    """The sentence filters, each counted: boilerplate, length, language, exact and near duplicates."""
    kept: list[Candidate] = []
    exact_seen: set[str] = set()
    near_index = clean.NearDuplicateIndex(settings.near_duplicate_threshold)
    for candidate in candidates:
        text = candidate.text
        if clean.is_boilerplate(text):
            counts["dropped_boilerplate"] += 1
            continue
        words = clean.word_count(text)
        if words < settings.min_words:
            counts["dropped_too_short"] += 1
            continue
        if words > settings.max_words:
            counts["dropped_too_long"] += 1
            continue
        if not clean.is_english(text, min_confidence=settings.language_confidence):
            counts["dropped_not_english"] += 1
            continue
        key = clean.normalised_key(text)
        if key in exact_seen:
            counts["dropped_exact_duplicate"] += 1
            continue
        exact_seen.add(key)
        if not near_index.add_if_new(text):
            counts["dropped_near_duplicate"] += 1
            continue
        kept.append(candidate)
    return kept


def _write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def _prepare_output(out_dir: Path) -> Path:
    """A fresh temporary folder beside the output; refuses to replace something that is not a corpus."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: exists and is not a folder")
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "manifest.json").exists():
        raise ValueError(f"{out_dir}: folder exists, is not empty and holds no corpus; refusing to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))


def _swap_into_place(temp_dir: Path, out_dir: Path) -> None:
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.replace(out_dir, old / "corpus")
        os.replace(temp_dir, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(temp_dir, out_dir)


def build_corpus(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    settings: BuildSettings | None = None,
    catalog: Catalog | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Build the corpus from the inputs into out_dir and return the manifest (also in manifest.json)."""
    settings = settings or BuildSettings()
    settings.check()
    out_dir = Path(out_dir)
    vocabulary = default_vocabulary()
    catalog = catalog or load_catalog(vocabulary=vocabulary)
    posts, labelled, described_inputs, warnings = _read_inputs([Path(p) for p in inputs], settings, vocabulary)

    # Our own labelled sentences teach the catalog their (fictional) artists for this run.
    for sentence in labelled:
        catalog.learn(sentence.artist, sentence.genres)
    counts: Counter[str] = Counter(dict.fromkeys(COUNT_KEYS, 0))
    candidates = _sentences_from_posts(posts, counts, settings, catalog, progress)
    for sentence in labelled:
        counts["labelled_sentences"] += 1
        text = clean.normalise_spaces(" ".join(clean.paragraphs(clean.strip_markup(clean.fix_mojibake(sentence.text)))))
        candidates.append(
            Candidate(text, sentence.artist, sentence.title, sentence.source, sentence.genres, sentence.families, True)
        )
    kept = _filter(candidates, counts, settings)

    by_split: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLITS}
    family_counts: Counter[str] = Counter()
    genre_counts: Counter[str] = Counter()
    for candidate in kept:
        split = split_for_song(candidate.artist, candidate.title, candidate.source, settings.split_fractions)
        by_split[split].append(
            {
                "text": candidate.text,
                "artist": candidate.artist,
                "title": candidate.title,
                "genres": candidate.genres,
                "families": candidate.families,
                "source": candidate.source,
                "split": split,
            }
        )
        family_counts.update(candidate.families or ["(none)"])
        genre_counts.update(candidate.genres)

    temp_dir = _prepare_output(out_dir)
    try:
        content_hash = hashlib.sha256()
        output_hashes: dict[str, str] = {}
        for name in SPLITS:
            path = temp_dir / f"{name}.jsonl"
            _write_jsonl(path, by_split[name])
            output_hashes[path.name] = file_sha256(path)
            content_hash.update(f"{path.name}:{output_hashes[path.name]}\n".encode())
        posts_kept = counts["posts"] - counts["posts_empty_after_cleaning"] - counts["posts_not_english"]
        stages = [("posts read", counts["posts"]), ("posts kept (clean, English)", posts_kept)] if posts else []
        stages.append(("sentences (split + labelled)", counts["sentences_split"] + counts["labelled_sentences"]))
        remaining = stages[-1][1]
        for label, key in (
            ("after boilerplate filter", "dropped_boilerplate"),
            ("after length filter", ("dropped_too_short", "dropped_too_long")),
            ("after language filter", "dropped_not_english"),
            ("after exact dedupe", "dropped_exact_duplicate"),
            ("after near dedupe", "dropped_near_duplicate"),
        ):
            keys = key if isinstance(key, tuple) else (key,)
            remaining -= sum(counts[k] for k in keys)
            stages.append((label, remaining))
        manifest: dict[str, Any] = {
            "manifest_version": MANIFEST_VERSION,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "inputs": described_inputs,
            "settings": {**asdict(settings), "split_fractions": list(settings.split_fractions)},
            "catalog": {"version": catalog.version, "artists": len(catalog.genres_by_artist)},
            "counts": {key: counts[key] for key in COUNT_KEYS},
            "stages": [{"stage": label, "count": value} for label, value in stages],
            "splits": {name: len(by_split[name]) for name in SPLITS},
            "songs_per_split": {
                name: len({(r["artist"], r["title"]) for r in by_split[name] if r["artist"]}) for name in SPLITS
            },
            "families": dict(family_counts.most_common()),
            "genres": dict(genre_counts.most_common()),
            "artists_without_genres": dict(Counter(catalog.misses).most_common()),
            "warnings": warnings,
            "outputs": output_hashes,
            "content_sha256": content_hash.hexdigest(),
        }
        (temp_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        if settings.plot:
            from deephype.corpus.stats import compute_stats, plot_stats

            plot_stats(compute_stats(temp_dir), temp_dir / "stats.png")
        _swap_into_place(temp_dir, out_dir)
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return manifest

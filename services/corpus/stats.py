"""`deephype corpus stats DIR`: what a built corpus holds, as a table and as a PNG."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from deephype.corpus.split import SPLITS

# Common English words that would otherwise fill the "top words" chart.
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each even few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just like
    me more most my myself no nor not now of off on once only or other our ours ourselves out over own
    really same she should so some such than that the their theirs them themselves then there these they
    this those through to too under until up us very was we were what when where which while who whom
    why will with would you your yours yourself yourselves it's that's there's they're we're i'm you're
    don't doesn't didn't can't won't isn't one get got make makes made way well much many new s t""".split()  # noqa: SIM905
)


def load_records(corpus_dir: Path) -> dict[str, list[dict[str, Any]]]:
    records: dict[str, list[dict[str, Any]]] = {}
    for name in SPLITS:
        path = corpus_dir / f"{name}.jsonl"
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing; is {corpus_dir} a corpus built by `deephype corpus build`?")
        with path.open(encoding="utf-8") as handle:
            records[name] = [json.loads(line) for line in handle if line.strip()]
    return records


def compute_stats(corpus_dir: str | Path, top_words: int = 25) -> dict[str, Any]:
    """Counts per stage (from the manifest), lengths, families, top words and placeholder use."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"{corpus_dir}: no such corpus folder")
    manifest_path = corpus_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    records = load_records(corpus_dir)
    everything = [r for name in SPLITS for r in records[name]]
    lengths = [len(r["text"].split()) for r in everything]
    families: Counter[str] = Counter()
    words: Counter[str] = Counter()
    for record in everything:
        families.update(record.get("families") or ["(none)"])
        for word in re.findall(r"<artist>|<title>|[a-z][a-z'’-]+", record["text"].lower()):
            if word not in STOPWORDS and word not in {"<artist>", "<title>"} and len(word) > 2:
                words[word] += 1
    total = len(everything) or 1
    return {
        "corpus": str(corpus_dir),
        "stages": manifest.get("stages", []),
        "counts": manifest.get("counts", {}),
        "settings": manifest.get("settings", {}),
        "splits": {name: len(records[name]) for name in SPLITS},
        "sentences": len(everything),
        "lengths": lengths,
        "mean_length": sum(lengths) / total,
        "families": dict(families.most_common()),
        "top_words": words.most_common(top_words),
        "with_artist_placeholder": sum("<artist>" in r["text"] for r in everything) / total,
        "with_title_placeholder": sum("<title>" in r["text"] for r in everything) / total,
        "with_genres": sum(bool(r.get("genres")) for r in everything) / total,
        "songs": len({(r.get("artist"), r.get("title")) for r in everything if r.get("artist")}),
    }


def print_stats(stats: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    stages = Table(title=f"Corpus {stats['corpus']}: pipeline", show_lines=False)
    stages.add_column("stage")
    stages.add_column("count", justify="right")
    stages.add_column("kept", justify="right")
    previous = None
    for row in stats["stages"]:
        # Only a share where the unit stays the same (posts -> sentences is a split, not a filter).
        kept = f"{row['count'] / previous:.0%}" if previous and row["count"] <= previous else ""
        stages.add_row(row["stage"], f"{row['count']:,}", kept)
        previous = row["count"] or None
    console.print(stages)

    summary = Table(title="Sentences")
    summary.add_column("measure")
    summary.add_column("value", justify="right")
    for name, count in stats["splits"].items():
        summary.add_row(f"{name} sentences", f"{count:,}")
    summary.add_row("songs", f"{stats['songs']:,}")
    summary.add_row("mean length (words)", f"{stats['mean_length']:.1f}")
    summary.add_row("with <artist>", f"{stats['with_artist_placeholder']:.1%}")
    summary.add_row("with <title>", f"{stats['with_title_placeholder']:.1%}")
    summary.add_row("with genres", f"{stats['with_genres']:.1%}")
    console.print(summary)

    families = Table(title="Genre families (sentences)")
    families.add_column("family")
    families.add_column("sentences", justify="right")
    for family, count in stats["families"].items():
        families.add_row(family, f"{count:,}")
    console.print(families)

    words = Table(title="Top words (no stop words)")
    words.add_column("word")
    words.add_column("count", justify="right")
    for word, count in stats["top_words"]:
        words.add_row(word, f"{count:,}")
    console.print(words)


def plot_stats(stats: dict[str, Any], png: str | Path) -> Path:
    """A 2x2 figure: pipeline funnel, sentence lengths, genre families, top words."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    png = Path(png)
    figure, axes = plt.subplots(2, 2, figsize=(15, 10.5), constrained_layout=True)
    splits = ", ".join(f"{name} {count:,}" for name, count in stats["splits"].items())
    figure.suptitle(f"deephype corpus: {stats['sentences']:,} sentences ({splits})", fontsize=15, weight="bold")

    funnel = axes[0][0]
    stages = stats["stages"] or [{"stage": "sentences", "count": stats["sentences"]}]
    labels = [row["stage"] for row in stages][::-1]
    values = [row["count"] for row in stages][::-1]
    bars = funnel.barh(labels, values, color="#4c72b0")
    funnel.bar_label(bars, labels=[f"{v:,}" for v in values], padding=4, fontsize=9)
    funnel.set_title("Pipeline: what each stage keeps")
    funnel.set_xlim(0, max([*values, 1]) * 1.18)
    funnel.tick_params(axis="y", labelsize=9)

    lengths = axes[0][1]
    if stats["lengths"]:
        top = max(stats["lengths"])
        lengths.hist(stats["lengths"], bins=range(0, top + 2), color="#55a868", edgecolor="white", linewidth=0.3)
    settings = stats.get("settings") or {}
    for key, label, side, shift in (("min_words", "min", "left", 3), ("max_words", "max", "right", -3)):
        if key in settings:
            lengths.axvline(settings[key], color="#c44e52", linestyle="--", linewidth=1)
            lengths.annotate(
                f"{label} {settings[key]}",
                (settings[key], 0.95),
                xycoords=("data", "axes fraction"),
                color="#c44e52",
                fontsize=9,
                ha=side,  # the max label sits left of its line so it stays inside the axes
                xytext=(shift, 0),
                textcoords="offset points",
            )
    lengths.set_title(f"Sentence length (mean {stats['mean_length']:.1f} words)")
    lengths.set_xlabel("words per sentence")
    lengths.set_ylabel("sentences")

    families = axes[1][0]
    family_items = list(stats["families"].items())[::-1]
    if family_items:
        bars = families.barh([f for f, _ in family_items], [c for _, c in family_items], color="#8172b2")
        families.bar_label(bars, labels=[f"{c:,}" for _, c in family_items], padding=3, fontsize=8)
        families.set_xlim(0, max(c for _, c in family_items) * 1.15)
    families.set_title(f"Genre families (sentences; {stats['with_genres']:.0%} have genres)")
    families.tick_params(axis="y", labelsize=9)

    words = axes[1][1]
    word_items = stats["top_words"][::-1]
    if word_items:
        words.barh([w for w, _ in word_items], [c for _, c in word_items], color="#dd8452")
    words.set_title("Top words (stop words and placeholders left out)")
    words.tick_params(axis="y", labelsize=9)

    png.parent.mkdir(parents=True, exist_ok=True)
    temp = png.with_name(f".{png.name}.tmp.png")
    try:
        figure.savefig(temp, dpi=110)
        os.replace(temp, png)
    finally:
        plt.close(figure)
        temp.unlink(missing_ok=True)
    return png

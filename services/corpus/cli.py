"""`deephype corpus build` and `deephype corpus stats`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    corpus = subparsers.add_parser("corpus", help="build and inspect the training corpus")
    commands = corpus.add_subparsers(dest="corpus_command", required=True, metavar="SUBCOMMAND")

    build = commands.add_parser(
        "build",
        help="clean, label and split posts into train/valid/test JSONL",
        description="Inputs: a JSON/JSONL file of blog posts, a folder of HTML pages, a text file of RSS/Atom "
        "feed URLs, or labelled-sentence JSONL (a file or a folder such as data/corpus/own).",
    )
    build.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    build.add_argument("--out", type=Path, required=True, help="output folder (replaced atomically)")
    build.add_argument(
        "--format", dest="input_format", default="auto", choices=("auto", "posts", "labelled", "html", "feeds")
    )
    build.add_argument("--min-words", type=int, default=4)
    build.add_argument("--max-words", type=int, default=60)
    build.add_argument(
        "--near-duplicate-threshold",
        type=float,
        default=0.8,
        help="word-trigram Jaccard similarity at which two sentences count as duplicates",
    )
    build.add_argument(
        "--language-confidence",
        type=float,
        default=0.9,
        help="drop a sentence as non-English only when py3langid is this sure",
    )
    build.add_argument(
        "--fetch-interval", type=float, default=2.0, help="seconds between two requests to the same host (feeds)"
    )
    build.add_argument("--cache-dir", type=Path, default=None, help="where fetched pages are kept")
    build.add_argument("--no-plot", action="store_true", help="skip the stats PNG")
    build.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    build.set_defaults(func=run_build)

    own = commands.add_parser(
        "catalog-own",
        help="record the artists of our labelled corpus (e.g. data/corpus/own) in data/genre_catalog.json",
    )
    own.add_argument("labelled", type=Path, metavar="DIR_OR_JSONL")
    own.add_argument("--catalog", type=Path, default=None, help="catalog file (default data/genre_catalog.json)")
    own.set_defaults(func=run_catalog_own)

    stats = commands.add_parser("stats", help="counts, lengths, genres and top words of a built corpus")
    stats.add_argument("corpus_dir", type=Path, metavar="DIR")
    stats.add_argument("--plot", type=Path, default=None, metavar="PNG", help="also write the charts here")
    stats.add_argument("--json", action="store_true", help="print the numbers as JSON instead of tables")
    stats.set_defaults(func=run_stats)


def run_build(args: argparse.Namespace) -> int:
    from deephype.corpus.build import BuildSettings, build_corpus

    settings = BuildSettings(
        min_words=args.min_words,
        max_words=args.max_words,
        near_duplicate_threshold=args.near_duplicate_threshold,
        language_confidence=args.language_confidence,
        input_format=args.input_format,
        fetch_interval_seconds=args.fetch_interval,
        plot=not args.no_plot,
    )
    if args.cache_dir is not None:
        settings.cache_dir = str(args.cache_dir)
    manifest = build_corpus(args.inputs, args.out, settings=settings, progress=not args.quiet and sys.stderr.isatty())
    if not args.quiet:
        from deephype.corpus.stats import compute_stats, print_stats

        for warning in manifest["warnings"]:
            print(f"warning: {warning}", file=sys.stderr)
        print_stats(compute_stats(args.out))
        print(f"wrote {args.out} (content sha256 {manifest['content_sha256'][:16]}...)")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from deephype.corpus.stats import compute_stats, plot_stats, print_stats

    stats = compute_stats(args.corpus_dir)
    if args.json:
        print(json.dumps({k: v for k, v in stats.items() if k != "lengths"}, indent=2))
    else:
        print_stats(stats)
    if args.plot is not None:
        plot_stats(stats, args.plot)
        print(f"wrote {args.plot}")
    return 0


def run_catalog_own(args: argparse.Namespace) -> int:
    from deephype.corpus.genres import CATALOG_PATH, default_vocabulary, write_own_artists
    from deephype.corpus.sources import read_labelled

    sentences = read_labelled(args.labelled, default_vocabulary())
    count = write_own_artists([(s.artist, s.genres) for s in sentences], args.catalog or CATALOG_PATH)
    print(f"{count} own artists recorded in {args.catalog or CATALOG_PATH}")
    return 0

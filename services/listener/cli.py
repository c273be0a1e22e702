"""`deephype detect`: post texts on stdin (one per line) → one JSON detection per line on stdout."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "detect",
        help="find the song each post names (one post per line on stdin, JSON lines out)",
        description=(
            "Reads post texts, one per line, on stdin and writes one JSON object per line: "
            '{"artist", "title", "spotify_track_id", "confidence"}; artist and title are null '
            "when the post names no song."
        ),
    )
    parser.set_defaults(func=run_detect)


def run_detect(args: argparse.Namespace) -> int:
    from deephype.listener.detect import detect_song

    for line in sys.stdin:
        text = line.rstrip("\r\n")
        detection = detect_song(text)
        sys.stdout.write(detection.model_dump_json() + "\n")
    sys.stdout.flush()
    return 0

"""`deephype detect`: posts on stdin (one per line) → one JSON detection per line on stdout.

A line is a post's text, or a JSON object with "text" and an "id" (or "post_id"): then --explain names the
post by its id instead of its line number.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "detect",
        help="find the song each post names (one post per line on stdin, JSON lines out)",
        description=(
            'Reads posts, one per line, on stdin: a post\'s text, or a JSON object with "text" and "id". '
            'Writes one JSON object per line: {"artist", "title", "spotify_track_id", "confidence"}; artist '
            "and title are null when the post names no song. Songs are confirmed against the bundled offline "
            "catalog; no network is used."
        ),
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help=(
            "for each post, list the candidates considered, the confirmation each got and why the winner won "
            "(or why nothing was kept), under the post's id or line number"
        ),
    )
    parser.set_defaults(func=run_detect)


def run_detect(args: argparse.Namespace) -> int:
    from deephype.listener.confirm import offline_lookup
    from deephype.listener.detect import SongDetector

    detector = SongDetector(offline_lookup())
    for number, line in enumerate(sys.stdin, start=1):
        post_id, text = _read_post(line.rstrip("\r\n"))
        if args.explain:
            sys.stdout.write(_explain(detector, text, f"id {post_id}" if post_id else f"line {number}"))
        else:
            sys.stdout.write(detector(text).model_dump_json() + "\n")
    sys.stdout.flush()
    return 0


def _read_post(line: str) -> tuple[str | None, str]:
    """A JSON object with "text" gives its id and text; anything else is the text itself."""
    if line.lstrip().startswith("{"):
        try:
            value = json.loads(line)
        except ValueError:
            return None, line
        if isinstance(value, dict) and isinstance(value.get("text"), str):
            post_id = value.get("id", value.get("post_id"))
            return (str(post_id) if post_id is not None else None), value["text"]
    return None, line


def _explain(detector: Any, text: str, label: str) -> str:
    explanation = detector.explain(text)
    found = explanation.detection
    lines = [f"{label}: {text!r}"]
    if not explanation.candidates:
        lines.append("  no candidates")
    # The rules' candidates, then the shorter readings proposed for the span scorer (only those it scored).
    shown = explanation.candidates + [c for c in explanation.readings if c.probability is not None]
    for number, candidate in enumerate(shown, start=1):
        confirmation = candidate.confirmation
        if candidate.veto:
            verdict = f"vetoed: {candidate.veto}"
        elif confirmation is None:
            verdict = "not looked up"
        else:
            source = f" by {confirmation.provider}" if confirmation.provider else ""
            verdict = f"{confirmation.verdict.value}{source}" + (
                f" ({confirmation.detail})" if confirmation.detail else ""
            )
        reasons = "; ".join(candidate.reasons) or "-"
        form = candidate.form + (", shorter reading" if candidate.variant else "")
        learned = f", span scorer {candidate.probability:.2f}" if candidate.probability is not None else ""
        lines.append(
            f"  candidate {number}: {candidate.artist!r} - {candidate.title!r} [{form}] "
            f"plausibility {candidate.plausibility:.2f}, score {candidate.score:.2f}{learned}; {verdict}; "
            f"cues: {reasons}"
        )
    outcome = f"{found.artist} - {found.title} (confidence {found.confidence:.2f})" if found.artist else "no song"
    lines.append(f"  result: {outcome}: {explanation.decision}")
    return "\n".join(lines) + "\n"

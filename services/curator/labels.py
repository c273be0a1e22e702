"""The labelled set the bot learns from: per candidate set, what the curator did with each candidate.

    approved      the one the curator chose (its text as generated; the edit, if any, beside it)
    passed_over   shown in the same set, not chosen, while another one was
    rejected      the whole set was rejected

Read-only over the curator's tables (store.py writes them); served by GET /v1/decisions?view=sets and
written as JSONL by `deephype learn export` (with the poster's engagement joined in by approval id).
"""

from __future__ import annotations

import json
from typing import Any

from deephype.common.db import Database


def labelled_sets(db: Database, since_id: int = 0, limit: int = 10_000) -> list[dict[str, Any]]:
    """Every decided set, oldest decision first; `since_id` skips sets decided at or before that decision id."""
    songs = db.query(
        "SELECT s.*, d.decision_id FROM songs s JOIN (SELECT set_id, MAX(id) AS decision_id FROM decisions"
        " GROUP BY set_id) d ON d.set_id = s.set_id WHERE d.decision_id > ? ORDER BY d.decision_id LIMIT ?",
        (since_id, limit),
    )
    sets = []
    for song in songs:
        decisions = db.query("SELECT * FROM decisions WHERE set_id=? ORDER BY id", (song["set_id"],))
        approved = next((d for d in decisions if d["decision"] == "approved"), None)
        message = json.loads(song["message"])
        versions = {c["candidate_id"]: c.get("model_version") for c in message.get("candidates", [])}
        default_version = (message.get("model") or {}).get("version")
        candidates = []
        for row in db.query("SELECT * FROM candidates WHERE set_id=? ORDER BY rank", (song["set_id"],)):
            if approved is None:
                label = "rejected"
            elif row["candidate_id"] == approved["candidate_id"]:
                label = "approved"
            else:
                label = "passed_over"
            candidates.append(
                {
                    "candidate_id": row["candidate_id"],
                    "rank": row["rank"],
                    "text": row["text"],
                    "score": row["score"],
                    "scores": json.loads(row["scores"]),
                    "model_version": versions.get(row["candidate_id"]) or default_version,
                    "label": label,
                }
            )
        edit = None
        if approved is not None and approved["edited"] and approved["final_text"] != approved["text"]:
            edit = {"before": approved["text"], "after": approved["final_text"]}
        sets.append(
            {
                "set_id": song["set_id"],
                "decision_id": song["decision_id"],
                "decision": "approved" if approved is not None else "rejected",
                "decided_at": song["decided_at"],
                "decided_by": decisions[-1]["decided_by"] if decisions else None,
                "song": {"artist": song["artist"], "title": song["title"], "genres": json.loads(song["genres"])},
                "model": song["model"],
                "candidates": candidates,
                "approved_candidate_id": approved["candidate_id"] if approved is not None else None,
                "edit": edit,
                "approval_id": song["approval_id"],
                "post": None
                if song["post_id"] is None
                else {
                    "platform": song["post_platform"],
                    "post_id": song["post_id"],
                    "url": song["post_url"],
                    "published_at": song["published_at"],
                },
            }
        )
    return sets

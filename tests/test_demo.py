"""`deephype demo --once --auto-approve --json`: one mention through all five services, one JSON object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_demo_once_prints_the_published_post(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPHYPE_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deephype.cli",
            "demo",
            "--once",
            "--auto-approve",
            "--json",
            "--state-dir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.strip().splitlines()
    post = json.loads(line)
    assert post["state"] == "published" and post["platform"] == "dry_run"
    assert post["artist"] == "Radiohead" and post["title"] == "Weird Fishes"
    assert post["text"] and len(post["text"]) <= 500
    assert "<artist>" not in post["text"] and "<title>" not in post["text"]
    # The post says what it is about: the song's credit and a link under the commentary.
    assert post["text"].endswith('\n\nRadiohead - "Weird Fishes" https://example.social/@lena_listens/1001')
    assert list((tmp_path / "curator" / "outbox").glob("*.eml"))

"""`deephype learn`: one round of learning from the curator (learn.py); `deephype learn export`: the
labelled set as JSONL; `deephype learn versions`: what was learned, what is promoted and why."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    learn = subparsers.add_parser(
        "learn",
        help="learn from the curator's decisions: a new model version, promoted only if it ranks better",
        description="Reads the labelled set (the curator's GET /v1/decisions?view=sets, or a JSONL export), "
        "trains the approval scorer and the LC-GAN approval value, judges the new version on held-out decisions "
        "against the promoted one, writes it (atomically) and promotes it only if it is better. A running "
        "generator picks up a promoted version by itself (DEEPHYPE_LEARN_POLL_SECONDS).",
    )
    learn.add_argument("action", nargs="?", choices=["run", "export", "versions"], default="run")
    learn.add_argument("--from", dest="source", type=Path, help="a JSONL labelled set instead of the curator's API")
    learn.add_argument("--out", type=Path, help="export: where to write the JSONL (default: stdout)")
    learn.add_argument("--curator-url", help="default: DEEPHYPE_LEARN_CURATOR_URL")
    learn.add_argument("--poster-url", help="default: DEEPHYPE_LEARN_POSTER_URL (empty: no engagement)")
    learn.add_argument("--model", type=Path, help="base model folder (default: the generator's model)")
    learn.add_argument("--versions", type=Path, help="versions folder (default: DEEPHYPE_LEARN_VERSIONS_DIR)")
    learn.add_argument("--no-lcgan", action="store_true", help="only the approval scorer, no LC-GAN")
    learn.add_argument("--lcgan-steps", type=int, default=300)
    learn.add_argument(
        "--finetune", action="store_true", help="also fine-tune the LSTM decoder on approved and edited sentences"
    )
    learn.add_argument("--seed", type=int, default=0)
    learn.set_defaults(func=cmd_learn)


def labelled(args: argparse.Namespace, settings: Any) -> list[dict[str, Any]]:
    from deephype.generator.learn import fetch_engagement, fetch_sets, read_jsonl, with_engagement

    if args.source is not None:
        if not args.source.is_file():
            raise FileNotFoundError(f"no labelled set at {args.source}")
        return read_jsonl(args.source)
    sets = fetch_sets(args.curator_url or settings.learn_curator_url, settings.curator_api_token.get_secret_value())
    poster = args.poster_url if args.poster_url is not None else settings.learn_poster_url
    return with_engagement(sets, fetch_engagement(poster) if poster else {})


def cmd_learn(args: argparse.Namespace) -> int:
    from deephype.common.settings import get_settings

    settings = get_settings()
    if args.lcgan_steps < 1:
        raise ValueError(f"--lcgan-steps must be >= 1, got {args.lcgan_steps}")
    if args.action == "export":
        from deephype.generator.learn import write_jsonl

        sets = labelled(args, settings)
        if args.out is None:
            for row in sets:
                print(json.dumps(row, ensure_ascii=False))
        else:
            print(f"wrote {write_jsonl(sets, args.out)} labelled sets to {args.out}")
        return 0

    from deephype.generator.learn import versions_dir
    from deephype.generator.versions import VersionStore

    store = VersionStore(args.versions or versions_dir(settings))
    if args.action == "versions":
        current = store.current_id()
        for version in store.versions():
            report = version.report
            mark = "*" if version.id == current else " "
            print(f"{mark} {version.id}  promoted={report.get('promoted')}  {report.get('reason', '')}")
        if current is None:
            print("  (no learned version promoted: the base model serves)")
        return 0

    import torch

    from deephype.generator.app import model_path
    from deephype.generator.learn import LearnOptions, learn

    torch.set_num_threads(1)
    model = args.model or model_path(settings)
    if not (Path(model) / "model.pt").is_file():
        raise FileNotFoundError(f"no model at {model}")
    options = LearnOptions(
        lcgan=not args.no_lcgan, lcgan_steps=args.lcgan_steps, seed=args.seed, finetune=args.finetune
    )
    report = learn(labelled(args, settings), store, Path(model), options, progress=print)
    print(json.dumps({k: report[k] for k in ("version", "promoted", "reason", "held_out")}, indent=2))
    return 0

"""Operator commands: `deephype serve NAME` runs one service; `deephype dlq list|replay` for dead letters."""

from __future__ import annotations

import argparse
import json
from typing import Any

SERVICES = ("listener", "enricher", "generator", "curator", "poster")


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser("serve", help="run one service (FastAPI + its bus consumer)")
    serve.add_argument("service", choices=SERVICES)
    serve.add_argument("--host", help="default: DEEPHYPE_HOST")
    serve.add_argument("--port", type=int, help="default: DEEPHYPE_PORT")
    serve.set_defaults(func=_serve)

    dlq = subparsers.add_parser("dlq", help="inspect or replay dead-lettered messages")
    actions = dlq.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="show dead letters (they stay in the queue)")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=_dlq_list)
    replay = actions.add_parser("replay", help="send dead letters back to the queues they came from")
    replay.add_argument("--limit", type=int, default=100)
    replay.set_defaults(func=_dlq_replay)


def _serve(args: argparse.Namespace) -> int:
    import importlib

    import uvicorn

    from deephype.common.logs import configure_logging
    from deephype.common.settings import get_settings

    settings = get_settings()
    configure_logging(settings, args.service)
    module = importlib.import_module(f"deephype.{args.service}.app")
    # log_config=None: uvicorn's loggers go through the handler configure_logging set up.
    uvicorn.run(
        module.create(settings),
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_config=None,
        log_level=settings.log_level.lower(),
    )
    return 0


def _broker_bus() -> Any:
    from deephype.common.buses import build_bus
    from deephype.common.settings import get_settings

    settings = get_settings()
    if not settings.amqp_url:
        raise ValueError("set DEEPHYPE_AMQP_URL: dead letters live in RabbitMQ")
    return build_bus(settings, connection_name="dlq-cli")


def _dlq_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    records = _broker_bus().dead_letters(args.limit)
    if args.json:
        for r in records:
            print(
                json.dumps(
                    {
                        "origin_queue": r.origin_queue,
                        "routing_key": r.routing_key,
                        "reason": r.reason,
                        "attempts": r.attempts,
                        "failed_at": r.failed_at,
                        "body": r.body.decode("utf-8", errors="replace")[:2000],
                    }
                )
            )
        return 0
    table = Table(title=f"{len(records)} dead letters")
    for column in ("queue", "attempts", "reason", "body"):
        table.add_column(column)
    for r in records:
        table.add_row(r.origin_queue, str(r.attempts), r.reason, r.body[:80].decode("utf-8", errors="replace"))
    Console().print(table)
    return 0


def _dlq_replay(args: argparse.Namespace) -> int:
    count = _broker_bus().replay_dead_letters(args.limit)
    print(f"replayed {count} dead letters")
    return 0

"""`deephype demo`: all five services in one process, fed the bundled sample mentions.

On the in-memory bus by default, on RabbitMQ when DEEPHYPE_AMQP_URL is set. The interactive demo serves
every service on localhost and prints the review page's address and password; what you approve there is
published to the dry-run timeline. `--once --auto-approve --json` runs one mention through and exits.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console

SERVICE_PORT_OFFSETS = {"listener": 1, "enricher": 2, "generator": 3, "curator": 4, "poster": 5}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run the whole pipeline in one process, offline")
    parser.add_argument("--once", action="store_true", help="one mention through the pipeline, then exit")
    parser.add_argument("--auto-approve", action="store_true", help="approve each song's top candidate")
    parser.add_argument("--json", action="store_true", help="print the published post as one JSON object")
    parser.add_argument("--port-base", type=int, default=8000, help="services listen on BASE+1 … BASE+5")
    parser.add_argument("--state-dir", type=Path, help="where state goes (default: var/demo; --once: a temp dir)")
    parser.add_argument("--timeout", type=float, default=300.0, help="--once gives up after this many seconds")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deephype.common.settings import Settings

    overrides: dict[str, Any] = {"curator_auto_approve": args.auto_approve}
    if args.once:
        overrides["state_dir"] = args.state_dir or Path(tempfile.mkdtemp(prefix="deephype-demo-"))
        overrides["listener_sources"] = []
    elif args.state_dir:
        overrides["state_dir"] = args.state_dir
    else:
        overrides["state_dir"] = Path("var/demo")
    settings = Settings(**overrides)
    if not settings.approval_keys.get_secret_value():
        from deephype.common.signing import new_key

        # Curator and poster are this one process, whichever bus: a key of its own signs its approvals.
        settings = settings.with_overrides(approval_keys=new_key())
    logging.basicConfig(
        level=logging.WARNING if args.json else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    if args.once:
        return _run_once(settings, args)
    return _run_interactive(settings, args)


def _run_once(settings: Any, args: argparse.Namespace) -> int:
    from deephype.common.buses import build_bus
    from deephype.listener.handlers import IngestStatus
    from deephype.listener.sources import FeedFileSource
    from deephype.pipeline import build_pipeline

    pipeline = build_pipeline(settings, build_bus(settings, connection_name="demo"))
    pipeline.start()
    try:
        for post, _ in FeedFileSource(settings.listener_feed_path).fetch(None):
            result = pipeline.listener.ingest(post)
            if result.status == IngestStatus.on_bus:
                break
        else:
            print("demo: no post in the sample feed names a song", file=sys.stderr)
            return 1
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            posts = pipeline.posts.published()
            if posts:
                post = posts[0]
                if args.json:
                    print(json.dumps(post, ensure_ascii=False))
                else:
                    Console().print(f"[bold green]published[/] {post['url']}: {post['text']}")
                return 0
            song = pipeline.curator.songs()
            if song and not args.auto_approve and song[0].status == "pending":
                print("demo: candidates are waiting for approval; pass --auto-approve with --once", file=sys.stderr)
                return 1
            time.sleep(0.05)
        print(f"demo: nothing was published within {args.timeout:.0f}s", file=sys.stderr)
        return 1
    finally:
        pipeline.stop()


def demo_password(settings: Any) -> str:
    """DEEPHYPE_CURATOR_PASSWORD, or one made on the first run and kept in the state dir (mode 0600), so a
    restarted demo takes the same password and its sessions and emailed links stay valid."""
    from deephype.common.state_secrets import stored_secret

    return settings.curator_password.get_secret_value() or stored_secret(
        settings.service_state_dir("curator") / "demo_password", lambda: secrets.token_urlsafe(9)
    )


def _run_interactive(settings: Any, args: argparse.Namespace) -> int:
    import uvicorn

    from deephype.common.buses import build_bus
    from deephype.pipeline import build_pipeline

    console = Console()
    password = demo_password(settings)
    settings = settings.with_overrides(curator_password=password)
    curator_url = f"http://127.0.0.1:{args.port_base + SERVICE_PORT_OFFSETS['curator']}"
    settings = settings.with_overrides(public_url=curator_url)
    pipeline = build_pipeline(settings, build_bus(settings, connection_name="demo"))
    pipeline.start()
    servers = []
    for name, app in pipeline.apps().items():
        config = uvicorn.Config(
            app, host="127.0.0.1", port=args.port_base + SERVICE_PORT_OFFSETS[name], log_level="warning"
        )
        server = uvicorn.Server(config)
        threading.Thread(target=server.run, name=f"http-{name}", daemon=True).start()
        servers.append(server)
    console.print(
        f"[bold]deephype demo[/] — bus: {'RabbitMQ' if settings.amqp_url else 'in-memory'}, "
        f"state in {settings.state_dir}"
    )
    for name, offset in SERVICE_PORT_OFFSETS.items():
        console.print(f"  {name:<9} http://127.0.0.1:{args.port_base + offset}")
    console.print(f"\n[bold]Review page:[/] {curator_url}/   password: [bold]{password}[/]")
    console.print(f"Emails to the curator are in {settings.state_dir / 'curator' / 'outbox'}")
    console.print("Approve a candidate there and it is published to the dry-run timeline. Ctrl-C stops.\n")
    shown: set[str] = set()
    try:
        while True:
            for post in reversed(pipeline.posts.published()):
                if post["approval_id"] not in shown:
                    shown.add(post["approval_id"])
                    console.print(f"[bold green]published[/] {post['artist']} - {post['title']}: {post['text']}")
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        for server in servers:
            server.should_exit = True
        pipeline.stop()
    return 0

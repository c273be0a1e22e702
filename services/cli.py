"""The `deephype` command. Each area registers its own subcommands; heavy imports (torch) happen only
inside the command that needs them, so `deephype --help` stays fast and the listener image needs no torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules exposing `register(subparsers) -> None`; each parser sets `func(args) -> int`.
COMMAND_MODULES = (
    "deephype.demo",
    "deephype.corpus.cli",
    "deephype.generator.cli",
    "deephype.generator.lcgan_cli",
    "deephype.generator.learn_cli",
    "deephype.listener.cli",
    "deephype.common.cli",
    "deephype.common.signing",
    "deephype.curator.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deephype",
        description="deephype, a music bot: its five services, the demo, and the model's and operator's tools.",
        epilog="`deephype COMMAND --help` explains one command and its options.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that area has not landed yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError, PermissionError) as exc:
        # Bad input is reported plainly, without a traceback.
        print(f"deephype {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

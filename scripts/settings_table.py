"""Every setting of .env.example as a Markdown table, for the README's "Every setting" section.

    .venv/bin/python scripts/settings_table.py           # print the table
    .venv/bin/python scripts/settings_table.py --write   # replace the README's section with it

A test checks that the README's section equals this script's output, so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def settings_table(env_example: str) -> str:
    """One row per DEEPHYPE_ line; its meaning is the comment right above it. Every setting needs a comment
    of its own: one is never carried over to the next setting (that repeated the wrong meaning in ~20 rows)."""
    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    comment: list[str] = []  # the comment lines right above the current line
    missing = []
    for line in env_example.splitlines():
        line = line.strip()
        if line.startswith("#"):
            comment.append(line.lstrip("#").strip())
            continue
        if line.startswith("DEEPHYPE_"):
            name, default = line.split("=", 1)
            if not comment:
                missing.append(name)
            shown = f"`{default}`" if default else "empty"
            rows.append(f"| `{name}` | {_cell(shown)} | {_cell(' '.join(comment))} |")
        comment = []  # a setting, a blank line or anything else ends the comment
    if missing:
        raise ValueError(f".env.example: give each of these a comment line right above it: {', '.join(missing)}")
    return "\n".join(rows) + "\n"


def _cell(text: str) -> str:
    """Table-safe Markdown: a | would end the cell, <name> would be read as an HTML tag."""
    return text.replace("|", "&#124;").replace("<", "&lt;")


def readme_with_table(readme: str, table: str) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md has no {START} … {END} section")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}{END}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    args = parser.parse_args()
    table = settings_table((REPO / ".env.example").read_text())
    if args.write:
        readme = REPO / "README.md"
        readme.write_text(readme_with_table(readme.read_text(), table))
    else:
        print(table, end="")


if __name__ == "__main__":
    main()

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
    """One row per DEEPHYPE_ line; its meaning is the comment above it (shared by the lines of a group)."""
    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    meaning: list[str] = []
    comment_open = False  # consecutive comment lines make one meaning
    for line in env_example.splitlines():
        line = line.strip()
        if not line:
            meaning, comment_open = [], False
        elif line.startswith("#"):
            meaning = [*meaning, line.lstrip("# ")] if comment_open else [line.lstrip("# ")]
            comment_open = True
        elif line.startswith("DEEPHYPE_"):
            name, default = line.split("=", 1)
            shown = f"`{default}`" if default else "empty"
            rows.append(f"| `{name}` | {_cell(shown)} | {_cell(' '.join(meaning))} |")
            comment_open = False
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

"""Secrets a service makes for itself and keeps in its state dir, so they outlive a restart.

A key made afresh per process would end every session and invalidate every emailed link on each restart.
Each secret is one file, created once with mode 0600 (readable by this user only) and read back after.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def stored_secret(path: Path, make: Callable[[], str] = new_secret) -> str:
    """The secret in `path`; made with `make()` and written there (mode 0600) the first time."""
    with contextlib.suppress(FileNotFoundError):
        if value := path.read_text(encoding="utf-8").strip():
            return value
    temporary = _written(path, make())
    try:
        os.link(temporary, path)  # only if there is none yet: two processes starting at once agree on one
    except FileExistsError:
        if not path.read_text(encoding="utf-8").strip():  # an empty file left by hand: replace it
            os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return path.read_text(encoding="utf-8").strip()


def replace_secret(path: Path, value: str) -> None:
    """Put `value` in `path` in one step (what rotating a key does)."""
    os.replace(_written(path, value), path)


def _written(path: Path, value: str) -> Path:
    """`value` in a new file beside `path`, mode 0600 from the start (never briefly readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as file:
        file.write(value + "\n")
    return temporary

"""Service state through one small layer: SQLite (the embedded default) here, PostgreSQL in store_postgres.py.

Stores write their SQL once, in the subset both engines speak: `?` placeholders, `INSERT ... ON CONFLICT`,
`RETURNING`, and DDL with TEXT / INTEGER / REAL columns; the PostgreSQL side translates the few spellings
that differ. Both give the same guarantees:
- `transaction()` takes the database's write lock up front (SQLite `BEGIN IMMEDIATE`, a PostgreSQL
  advisory lock), so check-then-write is atomic even when copies of a service on several hosts share it;
- `query()` reads without that lock (SQLite in WAL mode; PostgreSQL in autocommit);
- connections are long-lived (one per thread for SQLite, a pool for PostgreSQL): no connection setup per
  message;
- schema changes are versioned `Schema` steps, applied at start by whichever copy gets the migration lock
  first; the others then find them done;
- `presence(copy_id)` marks a running copy of a service so its peers can tell a crashed copy from a busy
  one (an OS file lock here, a session advisory lock on PostgreSQL: both vanish with the process).
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What a transaction hands its body: sqlite3.Connection's execute/executemany, on either engine."""

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> Any: ...


@dataclass(frozen=True)
class Schema:
    """A store's tables as numbered steps. Step 1 is the base, written `CREATE ... IF NOT EXISTS` and run at
    every start (so files made before versioning adopt it, and a table added to it reaches old files too);
    steps 2, 3, ... (ALTER TABLE, data changes) are applied once each, in order, and recorded."""

    component: str
    steps: tuple[str, ...]


MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (component, version)
);
"""


def split_statements(script: str) -> list[str]:
    """A DDL script's statements, split at `;` outside quotes and `--` comments."""
    statements, current, quote, comment = [], [], "", False
    for index, char in enumerate(script):
        if comment:
            comment = char != "\n"
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "-" and script[index : index + 2] == "--":
            comment = True
        elif char == ";":
            statements.append("".join(current))
            current = []
            continue
        current.append(char)
    statements.append("".join(current))
    return [s.strip() for s in statements if _code(s)]


def _code(statement: str) -> str:
    return re.sub(r"--[^\n]*", "", statement).strip()


class Database:
    """SQLite state in one file: WAL (readers never block the writer), synchronous=NORMAL (a commit is not an
    fsync; WAL keeps it across a process crash), one long-lived connection per thread."""

    dialect = "sqlite"

    def __init__(self, path: Path, schema: str | Schema = "") -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # This process's writers queue here, not in SQLite's busy handler (which sleeps 1-100 ms a try).
        self._writer = threading.RLock()  # re-entered, SQLite says "transaction within a transaction"
        self.apply(schema)

    def apply(self, schema: str | Schema) -> None:
        if isinstance(schema, Schema):
            self.migrate(schema)
        elif _code(schema):
            self.ensure_schema(schema)

    # --- schema ---

    def ensure_schema(self, schema: str) -> None:
        """Run idempotent DDL (CREATE ... IF NOT EXISTS) under the migration lock."""
        with self._migration() as connection:
            for statement in split_statements(schema):
                connection.execute(self.ddl(statement))

    def migrate(self, schema: Schema) -> list[int]:
        """Apply the steps of `schema` not applied yet; returns their versions. One copy does the work, in
        one transaction: copies that start together wait for it, then find nothing left to do."""
        applied = []
        with self._migration() as connection:
            connection.execute(self.ddl(MIGRATIONS_TABLE))
            done = {
                row["version"]
                for row in connection.execute(
                    "SELECT version FROM schema_migrations WHERE component=?", (schema.component,)
                ).fetchall()
            }
            for version, step in enumerate(schema.steps, start=1):
                if version in done and version > 1:
                    continue
                for statement in split_statements(step):
                    connection.execute(self.ddl(statement))
                if version in done:
                    continue
                connection.execute(
                    "INSERT INTO schema_migrations (component, version, applied_at) VALUES (?, ?, ?)",
                    (schema.component, version, datetime.now(UTC).isoformat()),
                )
                applied.append(version)
        return applied

    def schema_version(self, component: str) -> int:
        rows = self.query("SELECT MAX(version) AS v FROM schema_migrations WHERE component=?", (component,))
        return int(rows[0]["v"] or 0) if rows else 0

    def ddl(self, statement: str) -> str:
        """DDL as this engine spells it (SQLite: as written)."""
        return statement

    def _migration(self) -> AbstractContextManager[Connection]:
        return self.transaction()

    # --- connections and transactions ---

    def connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA busy_timeout=30000")
            _wal(connection)
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        connection = self.connection()
        with self._writer:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def query(self, sql: str, parameters: Sequence[object] = ()) -> list[Any]:
        return self.connection().execute(sql, tuple(parameters)).fetchall()

    def ping(self) -> bool:
        try:
            self.connection().execute("SELECT 1")
        except sqlite3.Error:
            return False
        return True

    def close(self) -> None:
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()

    # --- which copies of a service are running ---

    def presence(self, copy_id: str) -> Presence:
        """Mark this process as copy `copy_id` until it ends (or `release()`)."""
        return FilePresence(self._presence_dir(), copy_id)

    def alive(self, copy_id: str) -> bool:
        """Whether copy `copy_id` is running (it holds its presence)."""
        return FilePresence.held(self._presence_dir(), copy_id)

    def _presence_dir(self) -> Path:
        return self.path.parent / f"{self.path.stem}.copies"


def _wal(connection: sqlite3.Connection) -> None:
    """Switch a file to WAL. On a new file several copies starting together may try at once, and SQLite
    answers 'locked' at once (no busy wait) to all but one: those try again."""
    for attempt in range(200):
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 199:
                raise
            time.sleep(0.01 + random.random() * 0.04)


class Presence(Protocol):
    copy_id: str

    def ensure(self) -> None:
        """Make sure the mark is still held (take it again if it was lost)."""

    def release(self) -> None: ...


_COPY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


class FilePresence:
    """An exclusive flock on <dir>/<copy_id>.lock, held while the process lives: the kernel drops it when the
    process dies, kill -9 included. Good for copies on one host (which is all SQLite allows)."""

    def __init__(self, directory: Path, copy_id: str) -> None:
        if not _COPY_ID.match(copy_id):
            raise ValueError(f"bad copy id {copy_id!r}")
        self.copy_id = copy_id
        directory.mkdir(parents=True, exist_ok=True)
        self._path = directory / f"{copy_id}.lock"
        self._fd: int | None = None
        self.ensure()

    def ensure(self) -> None:
        if self._fd is None:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            self._path.unlink(missing_ok=True)
            os.close(fd)

    @staticmethod
    def held(directory: Path, copy_id: str) -> bool:
        if not _COPY_ID.match(copy_id):
            return False
        path = directory / f"{copy_id}.lock"
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            path.unlink(missing_ok=True)  # a crashed copy's mark: tidied by whoever finds it
            return False
        finally:
            os.close(fd)  # closing drops our lock too

"""Service state through one small layer: SQLite (the embedded default) here, PostgreSQL in store_postgres.py.

Stores write their SQL once, in the subset both engines speak: `?` placeholders, `INSERT ... ON CONFLICT`,
`RETURNING`, and DDL with TEXT / INTEGER / REAL columns; the PostgreSQL side translates the few spellings
that differ. Both give the same guarantees:
- `transaction()` takes the database's write lock up front (SQLite `BEGIN IMMEDIATE`, a PostgreSQL
  advisory lock), so check-then-write is atomic even when copies of a service on several hosts share it;
- `query()` reads without that lock (SQLite in WAL mode; PostgreSQL in autocommit);
- connections are long-lived (one per thread for SQLite reads and one shared for its writes, a pool for
  PostgreSQL): no connection setup per message;
- SQLite commits the transactions of a process's concurrent writers together (group commit, see
  CommitGroup), and `transaction()` returns only once its writes are committed: a handler acks its
  message after that, so at-least-once delivery holds and a crash before the commit redelivers;
- schema changes are versioned `Schema` steps, applied at start by whichever copy gets the migration lock
  first; the others then find them done;
- `presence(copy_id)` marks a running copy of a service so its peers can tell a crashed copy from a busy
  one (an OS file lock here, a session advisory lock on PostgreSQL: both vanish with the process).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
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
    fsync; WAL keeps it across a process crash), one long-lived connection per thread for reads and one
    shared by this process's writers, whose transactions commit in groups."""

    dialect = "sqlite"

    def __init__(self, path: Path, schema: str | Schema = "", *, max_group: int = 64) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # This process's writers queue in the group, not in SQLite's busy handler (which sleeps 1-100 ms a try).
        self._writes = CommitGroup(self._connect, max_group)
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
        """This thread's connection for reads."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
        return connection

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA busy_timeout=30000")
        _wal(connection)
        connection.execute("PRAGMA synchronous=NORMAL")
        with self._connections_lock:
            self._connections.append(connection)
        return connection

    def transaction(self) -> AbstractContextManager[Any]:
        """Write atomically: the body's writes are committed (maybe with other threads' in one commit) when
        this returns, or undone if the body raises."""
        return self._writes.transaction()

    @property
    def commits(self) -> int:
        """Commits made so far by this process's writers (fewer than their transactions under load)."""
        return self._writes.commits

    def writers_waiting(self) -> int:
        """This process's writers waiting for their turn (their bodies will join the open group)."""
        return self._writes.waiting

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
        self._writes = CommitGroup(self._connect, self._writes.max_size)

    # --- which copies of a service are running ---

    def presence(self, copy_id: str) -> Presence:
        """Mark this process as copy `copy_id` until it ends (or `release()`)."""
        return FilePresence(self._presence_dir(), copy_id)

    def alive(self, copy_id: str) -> bool:
        """Whether copy `copy_id` is running (it holds its presence)."""
        return FilePresence.held(self._presence_dir(), copy_id)

    def _presence_dir(self) -> Path:
        return self.path.parent / f"{self.path.stem}.copies"


class _Group:
    """The transaction bodies committed by one COMMIT."""

    def __init__(self) -> None:
        self.size = 0  # bodies that succeeded in it so far
        self.done = False
        self.error: BaseException | None = None  # why its COMMIT failed: each of its bodies raises it


class CommitGroup:
    """Group commit on one write connection: each transaction body runs alone, in a SAVEPOINT of a
    transaction that stays open while other writers of this process wait their turn, and the last body
    of the group (or the max_size-th) commits for all of them. A body that raises is undone alone.

    A caller's transaction() returns only after the COMMIT that holds its writes succeeded, and raises if
    it failed, so nothing that follows a write (publishing its outputs, then acking its message) happens
    before the write is committed. A crash before the COMMIT loses the whole group, none of whose callers
    has returned: their messages were not acked and come again. Alone, a writer commits at once, as before.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], max_size: int = 64) -> None:
        self._connect, self.max_size = connect, max_size
        self._connection: sqlite3.Connection | None = None  # opened by the first writer
        self.commits = 0
        self._turn = threading.Condition()
        self._holder: int | None = None  # the thread whose body runs now
        self._waiting = 0  # threads waiting for their turn
        self._group = _Group()

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def connection(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = self._connect()
        return self._connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        group = self._take_turn()
        connection, succeeded = self.connection, False
        try:
            if not connection.in_transaction:
                connection.execute("BEGIN IMMEDIATE")
            connection.execute("SAVEPOINT body")
            try:
                yield connection
            except BaseException:
                if connection.in_transaction:  # SQLite may have rolled it all back itself (disk full, ...)
                    connection.execute("ROLLBACK TO body")
                    connection.execute("RELEASE body")
                raise
            connection.execute("RELEASE body")
            group.size += 1
            succeeded = True
        finally:
            self._end_turn(group, wait_for_commit=succeeded)

    def _take_turn(self) -> _Group:
        me = threading.get_ident()
        with self._turn:
            if self._holder == me:
                raise sqlite3.OperationalError("cannot start a transaction within a transaction")
            self._waiting += 1
            while self._holder is not None:
                self._turn.wait()
            self._waiting -= 1
            self._holder = me
            if self._group.size and not self.connection.in_transaction:
                self._finish(sqlite3.OperationalError("the group's transaction was rolled back by SQLite"))
            return self._group

    def _end_turn(self, group: _Group, *, wait_for_commit: bool) -> None:
        with self._turn:
            self._holder = None
            if not self.connection.in_transaction:
                if group.size:  # rolled back under us: its bodies' writes are gone
                    self._finish(sqlite3.OperationalError("the group's transaction was rolled back by SQLite"))
            elif not self._waiting or group.size >= self.max_size:
                self._commit()  # nobody to wait for (or the group is full): its callers go on now
            self._turn.notify_all()
            while wait_for_commit and not group.done:
                self._turn.wait()
        if wait_for_commit and group.error is not None:
            raise sqlite3.OperationalError(f"the commit of this write failed: {group.error}") from group.error

    def _commit(self) -> None:
        """(Under the turn lock.) Commit the open group, or roll it back if it holds no body's writes."""
        if not self._group.size:
            self.connection.execute("ROLLBACK")
            return
        try:
            self.connection.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self.connection.execute("ROLLBACK")
            self._finish(exc)
            return
        self.commits += 1
        self._finish(None)

    def _finish(self, error: BaseException | None) -> None:
        self._group.done, self._group.error = True, error
        self._group = _Group()
        self._turn.notify_all()


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

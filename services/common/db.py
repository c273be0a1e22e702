"""SQLite for service state: one file per service, WAL so readers never block the writer, a connection
per thread, and `transaction()` taking the write lock up front so check-then-write is atomic even when
several copies of a service share the file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Database:
    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.ensure_schema(schema)

    def ensure_schema(self, schema: str) -> None:
        """Run idempotent DDL (CREATE ... IF NOT EXISTS); executescript manages its own transaction."""
        self.connection().executescript(schema)

    def connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=30000")
            self._local.connection = connection
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self.connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def query(self, sql: str, parameters: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        return self.connection().execute(sql, parameters).fetchall()

    def ping(self) -> bool:
        try:
            self.connection().execute("SELECT 1")
        except sqlite3.Error:
            return False
        return True

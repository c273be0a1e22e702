"""A fresh PostgreSQL database for a test run, on the local server (`make test` starts it: ensure-postgres.sh)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from deephype.common.db import Database, Schema

ADMIN_URL = os.environ.get("DEEPHYPE_TEST_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")


def _admin() -> object:
    psycopg = pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {ADMIN_URL} ({exc}); `make test` starts it")


def url_of(database: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database (its URL), dropped afterwards with every connection to it."""
    name = f"deephype_test_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    try:
        yield url_of(name)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
        admin.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One fresh database for the whole test run; each test's stores get schemas of their own in it."""
    with fresh_database() as url:
        yield url


BACKENDS = ("sqlite", "postgres")


def open_store(request: pytest.FixtureRequest, backend: str, path: Path, schema: str | Schema) -> Database:
    """A store on `backend`: the SQLite file `path`, or a new schema (namespace) in the test run's database.
    Closed when the test ends."""
    db: Database
    if backend == "postgres":
        from deephype.common.store_postgres import PostgresDatabase

        url = request.getfixturevalue("postgres_url")
        db = PostgresDatabase(url, f"{path.stem}_{uuid.uuid4().hex[:10]}", schema, pool_size=4)
    else:
        db = Database(path, schema)
    request.addfinalizer(db.close)
    return db


def same_store(db: Database, schema: str | Schema = "") -> Database:
    """Another handle on `db`'s store, as a second copy of the service (its own connections) opens it."""
    from deephype.common.store_postgres import PostgresDatabase

    if isinstance(db, PostgresDatabase):
        return PostgresDatabase(db._url, db.namespace, schema, pool_size=4)
    return Database(db.path, schema)


def reopen(where: str, namespace: str) -> Database:
    """A store by its SQLite path, or by URL and namespace (for a child process)."""
    if namespace:
        from deephype.common.store_postgres import PostgresDatabase

        return PostgresDatabase(where, namespace, pool_size=2)
    return Database(Path(where))

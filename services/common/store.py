"""Which engine holds a service's state: the one place that knows both (db.py never imports store_postgres).

Empty DEEPHYPE_<SERVICE>_DATABASE_URL and DEEPHYPE_DATABASE_URL: SQLite files under the state folder (the
embedded default, as `make demo` runs). A postgresql:// URL: that database, one schema per store.
"""

from __future__ import annotations

from deephype.common.db import Database, Schema
from deephype.common.settings import Settings


def open_database(settings: Settings, service: str, schema: str | Schema = "", name: str | None = None) -> Database:
    """The store `name` (default: the service's own) of `service`: <state_dir>/<service>/<name>.sqlite3, or
    the PostgreSQL schema `<service>` (`<service>_<name>` for a second store of the service)."""
    name = name or service
    url = settings.database_url_for(service)
    if url:
        from deephype.common.store_postgres import PostgresDatabase  # psycopg: only where PostgreSQL is used

        return PostgresDatabase(
            url,
            service if name == service else f"{service}_{name}",
            schema,
            pool_size=settings.database_pool_size,
            connect_timeout=settings.database_connect_timeout_seconds,
        )
    return Database(settings.service_state_dir(service) / f"{name}.sqlite3", schema)

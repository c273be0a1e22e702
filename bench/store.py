"""The store layer's write path vs raw sqlite3 in the same run: T threads each write N small
transactions (an upsert and a read, as a handler's check-then-write does) to one SQLite file.

Anchor: the fastest honest baseline, one raw sqlite3 connection (WAL, synchronous=NORMAL) doing every
transaction from one thread: no lock waits at all. Also shown: T raw connections, one per thread, left to
SQLite's busy handler (what the store did before it serialised its own writers in-process), and the
store's Database from T threads. With --postgres URL the same load runs on PostgreSQL too (its own
anchor: one raw psycopg connection, one thread).

    .venv/bin/python bench/store.py [--threads 4] [--transactions 2000] [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from deephype.common.db import Database

TABLE = "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
UPSERT = "INSERT INTO kv (k, v) VALUES (?, 1) ON CONFLICT (k) DO UPDATE SET v = kv.v + 1"


def raw(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(TABLE)
    return connection


def raw_transaction(connection: sqlite3.Connection, key: str) -> None:
    connection.execute("BEGIN IMMEDIATE")
    connection.execute(UPSERT, (key,))
    connection.execute("SELECT v FROM kv WHERE k=?", (key,)).fetchone()
    connection.execute("COMMIT")


def store_transaction(db: Database, key: str) -> None:
    with db.transaction() as connection:
        connection.execute(UPSERT, (key,))
        connection.execute("SELECT v FROM kv WHERE k=?", (key,)).fetchone()


def timed(threads: int, per_thread: int, work: Callable[[int, int], None]) -> float:
    """Transactions per second with `threads` threads each calling work(thread, i) per_thread times."""

    def run(thread: int) -> None:
        for i in range(per_thread):
            work(thread, i)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return threads * per_thread / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--transactions", type=int, default=2000, help="per thread")
    parser.add_argument("--postgres", default="", help="a PostgreSQL URL: run the same load there too")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "store.json")
    args = parser.parse_args()
    t, n = args.threads, args.transactions
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        one = raw(base / "anchor.sqlite3")
        results["sqlite raw, 1 connection, 1 thread (anchor)"] = timed(
            1, t * n, lambda _, i: raw_transaction(one, f"k{i % 500}")
        )
        connections = [raw(base / "raw.sqlite3") for _ in range(t)]
        results[f"sqlite raw, {t} connections, {t} threads (busy handler)"] = timed(
            t, n, lambda thread, i: raw_transaction(connections[thread], f"k{i % 500}")
        )
        db = Database(base / "store.sqlite3", TABLE)
        results[f"sqlite store, {t} threads"] = timed(t, n, lambda _, i: store_transaction(db, f"k{i % 500}"))
    if args.postgres:
        import psycopg

        from deephype.common.store_postgres import PostgresDatabase

        name = f"bench_{uuid.uuid4().hex[:8]}"
        pg = PostgresDatabase(args.postgres, name, TABLE, pool_size=t)
        anchor = psycopg.connect(args.postgres, autocommit=True, options=f"-c search_path={name}")

        def pg_raw(_: int, i: int) -> None:
            with anchor.transaction():
                anchor.execute(UPSERT.replace("?", "%s"), (f"k{i % 500}",))
                anchor.execute("SELECT v FROM kv WHERE k=%s", (f"k{i % 500}",)).fetchone()

        results["postgres raw, 1 connection, 1 thread (anchor)"] = timed(1, t * n // 4, pg_raw)
        results[f"postgres store, {t} threads"] = timed(t, n // 4, lambda _, i: store_transaction(pg, f"k{i % 500}"))
        anchor.execute(f'DROP SCHEMA "{name}" CASCADE')
        anchor.close()
        pg.close()
    for label, rate in results.items():
        anchor_label = "postgres raw" if label.startswith("postgres") else "sqlite raw"
        anchor_rate = next(v for k, v in results.items() if k.startswith(anchor_label) and "anchor" in k)
        print(f"{label:55s} {rate:10,.0f} tx/s  {rate / anchor_rate:5.2f}x anchor")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"threads": t, "transactions_per_thread": n, "tx_per_second": results}, indent=2))


if __name__ == "__main__":
    main()

"""The baselines dealtrail's figures are compared with, one per subcommand.

    python bench/baselines.py library-import STORE FILE
    python bench/baselines.py raw-insert STORE FILE
    python bench/baselines.py scan STORE TABLE

``library-import`` is the ``eventsourcing`` library used plainly: a plain
``Aggregate`` with one generic event carrying each line's fields, an
``Application`` with its default JSON transcoder, one ``save`` per deal.
``raw-insert`` is the ceiling of an import: each line's JSON bytes inserted
with ``executemany`` into a table shaped like the library's stored events,
in batched transactions. ``scan`` is the ceiling of a rebuild: every stored
payload of TABLE read in notification order and decoded with ``orjson``.

STORE is ``sqlite:////absolute/file.db`` or
``postgresql://user@host:port/db?schema=name``. Each prints one JSON object
(the events it handled) on stdout; ``bench/run.py`` times them from outside.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson

# Rows per transaction for the raw ceiling, and per page for the scan (the
# batch size of ``dealtrail projections rebuild``).
INSERT_BATCH = 10_000
SCAN_PAGE = 1_000


@dataclass(frozen=True, slots=True)
class Store:
    kind: str  # "sqlite" or "postgresql"
    path: str  # the SQLite file
    dsn: str  # the PostgreSQL server, without the schema
    schema: str


def parse_store(url: str) -> Store:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return Store("sqlite", unquote(parts.path[1:]), "", "")
    if parts.scheme == "postgresql":
        schema = parse_qs(parts.query).get("schema", ["public"])[-1]
        return Store("postgresql", "", url.split("?")[0], schema)
    raise SystemExit(f"error: {url}: not an sqlite:/// or postgresql:// URL")


def deal_id(key: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"bench-deal:{key}")


def read_lines(path: str) -> Iterator[tuple[bytes, dict[str, Any]]]:
    with open(path, "rb") as file:
        for raw in file:
            line = raw.strip()
            if line:
                yield line, orjson.loads(line)


# The plain library baseline.


def library_import(store: Store, path: str) -> int:
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate

    class PlainDeal(Aggregate):
        """A deal as the library's documentation would write one."""

        def __init__(self, key: str) -> None:
            self.key = key
            self.lines = 0

        @staticmethod
        def create_id(key: str) -> UUID:
            return deal_id(key)

        class Happened(Aggregate.Event):
            line: dict[str, Any]

            def apply(self, aggregate: Any) -> None:
                aggregate.lines += 1

        def happen(self, line: dict[str, Any]) -> None:
            self.trigger_event(self.Happened, line=line)

    if store.kind == "sqlite":
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": store.path,
        }
    else:
        create_schema(store)
        parts = urlsplit(store.dsn)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.path.lstrip("/"),
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or ""),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_SCHEMA": store.schema,
        }
    app: Application[UUID] = Application(env=env)
    seen: set[str] = set()
    current: PlainDeal | None = None
    count = 0
    for _, obj in read_lines(path):
        key = obj["deal"]
        if current is None or current.key != key:
            if current is not None:
                app.save(current)
            if key in seen:
                current = cast(PlainDeal, app.repository.get(deal_id(key)))
            else:
                current = PlainDeal(key)
                seen.add(key)
        current.happen(obj)
        count += 1
    if current is not None:
        app.save(current)
    app.close()
    return count


# The raw-insert ceiling.


def raw_insert(store: Store, path: str) -> int:
    versions: dict[str, int] = {}

    def rows() -> Iterator[tuple[UUID, int, str, bytes]]:
        for line, obj in read_lines(path):
            key = obj["deal"]
            version = versions.get(key, 0) + 1
            versions[key] = version
            yield deal_id(key), version, obj["type"], line

    count = 0
    if store.kind == "sqlite":
        db = sqlite3.connect(store.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE stored_events (originator_id TEXT, "
            "originator_version INTEGER, topic TEXT, state BLOB, "
            "PRIMARY KEY (originator_id, originator_version))"
        )
        for batch in batches(rows()):
            db.execute("BEGIN")
            db.executemany(
                "INSERT INTO stored_events VALUES (?, ?, ?, ?)",
                [(i.hex, v, t, s) for i, v, t, s in batch],
            )
            db.execute("COMMIT")
            count += len(batch)
        db.close()
        return count
    import psycopg
    from psycopg import sql

    create_schema(store)
    table = sql.Identifier(store.schema, "stored_events")
    with psycopg.connect(store.dsn) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (originator_id uuid NOT NULL, "
                "originator_version bigint NOT NULL, topic text, state bytea, "
                "notification_id bigserial, "
                "PRIMARY KEY (originator_id, originator_version))"
            ).format(table)
        )
        conn.execute(
            sql.SQL("CREATE UNIQUE INDEX ON {} (notification_id)").format(table)
        )
        conn.commit()
        insert = sql.SQL(
            "INSERT INTO {} (originator_id, originator_version, topic, state) "
            "VALUES (%s, %s, %s, %s)"
        ).format(table)
        for batch in batches(rows()):
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(insert, batch)
            count += len(batch)
    return count


def batches(
    rows: Iterator[tuple[UUID, int, str, bytes]],
) -> Iterator[list[tuple[UUID, int, str, bytes]]]:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == INSERT_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


# The scan-and-decode ceiling.


def scan(store: Store, table: str) -> int:
    count = 0
    if store.kind == "sqlite":
        db = sqlite3.connect(store.path)
        last = 0
        while True:
            page = db.execute(
                f"SELECT rowid, state FROM {table} WHERE rowid > ? "
                "ORDER BY rowid LIMIT ?",
                (last, SCAN_PAGE),
            ).fetchall()
            for _, state in page:
                orjson.loads(state)
            count += len(page)
            if len(page) < SCAN_PAGE:
                break
            last = page[-1][0]
        db.close()
        return count
    import psycopg
    from psycopg import sql

    query = sql.SQL(
        "SELECT notification_id, state FROM {} WHERE notification_id > %s "
        "ORDER BY notification_id LIMIT %s"
    ).format(sql.Identifier(store.schema, table))
    with psycopg.connect(store.dsn) as conn:
        last = 0
        while True:
            rows = conn.execute(query, (last, SCAN_PAGE)).fetchall()
            for _, state in rows:
                orjson.loads(state)
            count += len(rows)
            if len(rows) < SCAN_PAGE:
                break
            last = rows[-1][0]
    return count


def create_schema(store: Store) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(store.dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(store.schema)
            )
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("library-import", "raw-insert"):
        command = commands.add_parser(name)
        command.add_argument("store")
        command.add_argument("file")
    command = commands.add_parser("scan")
    command.add_argument("store")
    command.add_argument("table")
    args = parser.parse_args(argv)
    store = parse_store(args.store)
    if args.command == "library-import":
        count = library_import(store, args.file)
    elif args.command == "raw-insert":
        count = raw_insert(store, args.file)
    else:
        count = scan(store, args.table)
    sys.stdout.buffer.write(orjson.dumps({"events": count}) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

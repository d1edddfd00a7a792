"""dealtrail's PostgreSQL recorder: the library's, without pipeline mode, plus
one-transaction bulk writes and hash chains (see engine/sqlite.py).

The library sends inserts in psycopg pipeline mode; with a large batch (tens
of thousands of events in one import transaction) client and server both
wait on full socket buffers and the insert never finishes. Sending the same
statements in the ordinary way keeps its table lock, notification and
ordering guarantees and has no such limit.

Chain heads are read after the events are inserted, when the events table's
exclusive lock is held, and ``FOR UPDATE``: writers never link to the same
head.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier, Literal

from engine.chain import ChainRow, ChainSnapshot, ChainWriter, Head
from engine.sqlite import (
    CHAIN_TABLE,
    CHAINED_AFTER,
    HEADS_BATCH,
    HEADS_TABLE,
    META_TABLE,
    SCAN_BATCH,
    BulkInsert,
    ScannedEvent,
    last_per_deal,
)


class PostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        schema = Identifier(self.datastore.schema)
        id_type = self._id_type = Identifier(self.datastore.originator_id_type)
        self._events = SQL("{}.{}").format(schema, Identifier(self.events_table_name))
        self._chain = SQL("{}.{}").format(schema, Identifier(CHAIN_TABLE))
        self._heads = SQL("{}.{}").format(schema, Identifier(HEADS_TABLE))
        self._meta = SQL("{}.{}").format(schema, Identifier(META_TABLE))
        # The library's, but reading a state set to NULL outside dealtrail as
        # empty (which does not decode, and is reported as such) rather than
        # failing in bytes(None).
        self.select_events_statement = SQL(
            "SELECT originator_id, originator_version, topic, "
            "coalesce(state, ''::bytea) AS state FROM {} WHERE originator_id = %s"
        ).format(self._events)
        self.sql_create_statements += [
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (originator_id {} NOT NULL, "
                "originator_version bigint NOT NULL, digest bytea NOT NULL, "
                "PRIMARY KEY (originator_id, originator_version))"
            ).format(self._chain, id_type),
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (originator_id {} PRIMARY KEY, "
                "version bigint NOT NULL, digest bytea NOT NULL)"
            ).format(self._heads, id_type),
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, "
                "value bigint NOT NULL)"
            ).format(self._meta),
            # Kept from the first time: the events a store held before.
            SQL(
                "INSERT INTO {} SELECT {}, coalesce(max(notification_id), 0) "
                "FROM {} ON CONFLICT (name) DO NOTHING"
            ).format(self._meta, Literal(CHAINED_AFTER), self._events),
        ]

    def _create_table(self, curs: Cursor[DictRow]) -> None:
        # CREATE INDEX IF NOT EXISTS waits for any writer's table lock even
        # when the index exists, so a reader opening the store would wait for
        # a whole import. Tables, indexes and functions are created in one
        # transaction: when every table is there, so is the rest.
        schema = self.datastore.schema
        tables = [self.events_table_name, CHAIN_TABLE, HEADS_TABLE, META_TABLE]
        curs.execute(
            "SELECT bool_and(to_regclass(name) IS NOT NULL) AS ready "
            "FROM unnest(%s::text[]) AS name",
            ([f'"{schema}"."{table}"' for table in tables],),
        )
        row = curs.fetchone()
        if row is not None and row["ready"]:
            return
        # Creating them does wait for writers: bound it as writers' waits are.
        curs.execute(self.lock_table_statements[0])
        super()._create_table(curs)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            self._insert_events(curs, stored_events, **kwargs)
            if not stored_events:
                return None
            self._insert_stored_events(curs, stored_events, **kwargs)
            ids = self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
            writer: ChainWriter[UUID | str] = ChainWriter(
                lambda keys: self._read_heads(curs, keys)
            )
            self._write_links(curs, writer, stored_events)
            self._write_heads(curs, writer)
            return ids

    @contextmanager
    def bulk_insert(self) -> Iterator[BulkInsert]:
        """A writer of stored events, committed together when the block ends.

        The table lock is taken first, so the deals read while deciding
        cannot change under the import.
        """
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            self._lock_table(curs)
            writer: ChainWriter[UUID | str] = ChainWriter(
                lambda keys: self._read_heads(curs, keys)
            )

            def insert(stored_events: Sequence[StoredEvent]) -> None:
                if stored_events:
                    self._insert_stored_events(curs, stored_events)
                    self._write_links(curs, writer, stored_events)
                    self._write_heads(curs, writer)

            yield insert

    def _read_heads(
        self, curs: Cursor[DictRow], keys: Sequence[UUID | str]
    ) -> Mapping[UUID | str, Head]:
        heads: dict[UUID | str, Head] = {}
        it = iter(keys)
        while chunk := list(islice(it, HEADS_BATCH)):
            curs.execute(
                SQL(
                    "SELECT originator_id, version, digest FROM {} "
                    "WHERE originator_id = ANY(%s) FOR UPDATE"
                ).format(self._heads),
                (chunk,),
            )
            for row in curs.fetchall():
                heads[row["originator_id"]] = Head(row["version"], bytes(row["digest"]))
        return heads

    def _write_links(
        self,
        curs: Cursor[DictRow],
        writer: ChainWriter[UUID | str],
        stored_events: Sequence[StoredEvent],
    ) -> None:
        links = writer.link(
            (s.originator_id, s.originator_version, s.topic, s.state)
            for s in stored_events
        )
        if not links:
            return
        # One statement per batch: arrays, not a round trip per row.
        ids, versions, digests = zip(*links, strict=True)
        curs.execute(
            SQL(
                "INSERT INTO {} SELECT * FROM unnest(%s::{}[], %s::bigint[], "
                "%s::bytea[])"
            ).format(self._chain, self._id_type),
            (list(ids), list(versions), list(digests)),
        )

    def _write_heads(
        self, curs: Cursor[DictRow], writer: ChainWriter[UUID | str]
    ) -> None:
        heads = writer.drain()
        if not heads:
            return
        curs.executemany(
            SQL(
                "INSERT INTO {} VALUES (%s, %s, %s) ON CONFLICT (originator_id) "
                "DO UPDATE SET version = excluded.version, digest = excluded.digest"
            ).format(self._heads),
            [(k, h.version, h.digest) for k, h in heads],
        )

    def scan_by_originator(self, head: int) -> Iterator[ScannedEvent]:
        """Every event up to notification ``head``, each aggregate's events
        together and in order, read lazily through a server-side cursor."""
        statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {} "
            "WHERE notification_id <= %s ORDER BY originator_id, originator_version"
        ).format(self._events)
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor(name="dealtrail_scan") as curs,
        ):
            curs.itersize = SCAN_BATCH
            curs.execute(statement, (head,))
            for row in curs:
                yield (
                    str(row["originator_id"]),
                    row["originator_version"],
                    row["topic"],
                    # NULL (set outside dealtrail) decodes as nothing does.
                    b"" if row["state"] is None else bytes(row["state"]),
                )

    @contextmanager
    def read_chains(self) -> Iterator[ChainSnapshot]:
        """Everything verification reads, from one snapshot."""
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
            conn.cursor(name="dealtrail_chain_scan") as scan,
        ):
            # One snapshot for every statement below.
            curs.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            curs.execute(
                SQL("SELECT value FROM {} WHERE name = %s").format(self._meta),
                (CHAINED_AFTER,),
            )
            row = curs.fetchone()
            chained_after = int(row["value"]) if row else 0
            curs.execute(
                SQL("SELECT originator_id, version, digest FROM {}").format(self._heads)
            )
            heads = {
                _hex(r["originator_id"]): Head(r["version"], bytes(r["digest"]))
                for r in curs.fetchall()
            }
            curs.execute(
                SQL(
                    "SELECT c.originator_id, c.originator_version FROM {} c "
                    "LEFT JOIN {} e ON e.originator_id = c.originator_id "
                    "AND e.originator_version = c.originator_version "
                    "WHERE e.originator_id IS NULL"
                ).format(self._chain, self._events)
            )
            orphans: dict[str, list[int]] = {}
            for r in curs.fetchall():
                orphans.setdefault(_hex(r["originator_id"]), []).append(
                    r["originator_version"]
                )
            scan.itersize = SCAN_BATCH
            scan.execute(
                SQL(
                    "SELECT e.originator_id, e.notification_id, e.originator_version, "
                    "e.topic, e.state, c.digest FROM {} e LEFT JOIN {} c "
                    "ON c.originator_id = e.originator_id "
                    "AND c.originator_version = e.originator_version "
                    "ORDER BY e.originator_id, e.originator_version"
                ).format(self._events, self._chain)
            )
            yield ChainSnapshot(
                chained_after,
                heads,
                orphans,
                (
                    ChainRow(
                        _hex(r["originator_id"]),
                        r["notification_id"],
                        r["originator_version"],
                        # NULL (set outside dealtrail) matches no digest.
                        r["topic"] or "",
                        None if r["state"] is None else bytes(r["state"]),
                        None if r["digest"] is None else bytes(r["digest"]),
                    )
                    for r in scan
                ),
            )

    def stored_heads(
        self, at: int, originator: UUID | None = None
    ) -> Iterator[tuple[str, Head]]:
        """Each chained deal's last stored digest up to notification ``at``,
        in deal id order (one deal when ``originator`` is given)."""
        where: Composed = SQL("e.notification_id <= %s").format()
        params: list[Any] = [at]
        if originator is not None:
            where += SQL(" AND e.originator_id = %s")
            params.append(originator)
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT e.originator_id, e.originator_version, c.digest "
                    "FROM {} e JOIN {} c ON c.originator_id = e.originator_id "
                    "AND c.originator_version = e.originator_version WHERE {} "
                    "ORDER BY e.originator_id, e.originator_version"
                ).format(self._events, self._chain, where),
                params,
            )
            rows = curs.fetchall()
        yield from last_per_deal(
            (_hex(r["originator_id"]), r["originator_version"], bytes(r["digest"]))
            for r in rows
        )


def _hex(originator_id: UUID | str) -> str:
    """A deal id as 32 hex digits, as SQLite stores it and as chains name it."""
    return UUID(str(originator_id)).hex

"""dealtrail's SQLite recorder: the library's, plus one-transaction bulk writes
and hash chains (engine/chain.py).

An import writes deal after deal inside one transaction, so that it lands
whole or not at all while memory holds one deal at a time. The write lock is
taken first (BEGIN IMMEDIATE): the deals read while deciding cannot change
under the import.

Every write, single command or import, also writes each event's chain
digest and advances its deal's chain head in the same transaction. Heads are
read after the events are inserted, that is with the write lock held, so
two writers never link to the same head.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from itertools import islice
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteCursor,
    SQLiteDatastore,
)

from engine.chain import ChainRow, ChainSnapshot, ChainWriter, Head

BulkInsert = Callable[[Sequence[StoredEvent]], None]
# (originator id, version, topic, state) of a stored event.
ScannedEvent = tuple[str, int, str, bytes]


# Rows fetched at a time by a server-side cursor.
SCAN_BATCH = 2000
# Deal ids per head look-up (well under SQLite's bound-parameter limit).
HEADS_BATCH = 500

CHAIN_TABLE = "dealtrail_chain"
HEADS_TABLE = "dealtrail_chain_heads"
META_TABLE = "dealtrail_chain_meta"
# The meta row naming the last notification id recorded before chains.
CHAINED_AFTER = "chained_after"


class BulkRecorder(Protocol):
    """What dealtrail's recorders add to the library's, on either store."""

    def bulk_insert(self) -> AbstractContextManager[BulkInsert]: ...

    def scan_by_originator(self, head: int) -> Iterator[ScannedEvent]: ...

    def read_chains(self) -> AbstractContextManager[ChainSnapshot]: ...

    def stored_heads(
        self, at: int, originator: UUID | None = None
    ) -> Iterator[tuple[str, Head]]: ...


@contextmanager
def immediate_transaction(datastore: SQLiteDatastore) -> Iterator[SQLiteCursor]:
    """A transaction that takes the write lock first, so what it reads cannot
    change before it writes; committed when the block ends, else rolled back."""
    with datastore.get_connection(commit=True) as connection:
        cursor = connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield cursor
        except BaseException:
            connection.rollback()
            raise
        connection.commit()


class SQLiteRecorder(SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} (originator_id TEXT, "
            "originator_version INTEGER, digest BLOB NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version)) WITHOUT ROWID",
            f"CREATE TABLE IF NOT EXISTS {HEADS_TABLE} (originator_id TEXT "
            "PRIMARY KEY, version INTEGER NOT NULL, digest BLOB NOT NULL) "
            "WITHOUT ROWID",
            f"CREATE TABLE IF NOT EXISTS {META_TABLE} (name TEXT PRIMARY KEY, "
            "value INTEGER NOT NULL)",
        ]

    def _create_table(self, c: SQLiteCursor) -> None:
        super()._create_table(c)
        # Written once, when the store first has chains: the events it held
        # before. Only then, since a write here would make every opening
        # contend for the write lock.
        c.execute(f"SELECT 1 FROM {META_TABLE} WHERE name = ?", (CHAINED_AFTER,))
        if c.fetchone() is None:
            c.execute(
                f"INSERT OR IGNORE INTO {META_TABLE} SELECT ?, "
                f"coalesce(max(rowid), 0) FROM {self.events_table_name}",
                (CHAINED_AFTER,),
            )

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        writer: ChainWriter[str] = ChainWriter(lambda keys: _read_heads(c, keys))
        _write_links(c, writer, stored_events)
        _write_heads(c, writer)
        return ids

    @contextmanager
    def bulk_insert(self) -> Iterator[BulkInsert]:
        """A writer of stored events, committed together when the block ends."""
        with immediate_transaction(self.datastore) as cursor:
            statement = self.insert_events_statement
            writer: ChainWriter[str] = ChainWriter(
                lambda keys: _read_heads(cursor, keys)
            )

            def insert(stored_events: Sequence[StoredEvent]) -> None:
                cursor.executemany(
                    statement,
                    [
                        (_hex(s.originator_id), s.originator_version, s.topic, s.state)
                        for s in stored_events
                    ],
                )
                _write_links(cursor, writer, stored_events)
                _write_heads(cursor, writer)

            yield insert

    def scan_by_originator(self, head: int) -> Iterator[ScannedEvent]:
        """Every event up to notification ``head``, each aggregate's events
        together and in order, read lazily."""
        with self.datastore.transaction(commit=False) as cursor:
            # The library's notification id is the table's rowid.
            rows = cursor.sqlite_cursor.execute(
                "SELECT originator_id, originator_version, topic, state "
                f"FROM {self.events_table_name} WHERE rowid <= ? "
                "ORDER BY originator_id, originator_version",
                (head,),
            )
            for row in rows:
                yield row[0], row[1], row[2], row[3]

    @contextmanager
    def read_chains(self) -> Iterator[ChainSnapshot]:
        """Everything verification reads, from one snapshot."""
        events = self.events_table_name
        with self.datastore.transaction(commit=False) as cursor:
            c = cursor.sqlite_cursor
            c.execute(
                f"SELECT value FROM {META_TABLE} WHERE name = ?", (CHAINED_AFTER,)
            )
            row = c.fetchone()
            chained_after = int(row[0]) if row else 0
            c.execute(f"SELECT originator_id, version, digest FROM {HEADS_TABLE}")
            heads = {str(r[0]): Head(r[1], _bytes(r[2])) for r in c.fetchall()}
            c.execute(
                f"SELECT c.originator_id, c.originator_version FROM {CHAIN_TABLE} c "
                f"LEFT JOIN {events} e ON e.originator_id = c.originator_id "
                "AND e.originator_version = c.originator_version "
                "WHERE e.originator_id IS NULL"
            )
            orphans: dict[str, list[int]] = {}
            for r in c.fetchall():
                orphans.setdefault(str(r[0]), []).append(r[1])
            rows = c.execute(
                "SELECT e.originator_id, e.rowid, e.originator_version, e.topic, "
                f"e.state, c.digest FROM {events} e LEFT JOIN {CHAIN_TABLE} c "
                "ON c.originator_id = e.originator_id "
                "AND c.originator_version = e.originator_version "
                "ORDER BY e.originator_id, e.originator_version"
            )
            yield ChainSnapshot(
                chained_after,
                heads,
                orphans,
                (
                    ChainRow(
                        str(r[0]),
                        r[1],
                        r[2],
                        _text(r[3]),
                        None if r[4] is None else _bytes(r[4]),
                        None if r[5] is None else _bytes(r[5]),
                    )
                    for r in rows
                ),
            )

    def stored_heads(
        self, at: int, originator: UUID | None = None
    ) -> Iterator[tuple[str, Head]]:
        """Each chained deal's last stored digest up to notification ``at``,
        in deal id order (one deal when ``originator`` is given)."""
        where = "e.rowid <= ?"
        params: list[Any] = [at]
        if originator is not None:
            where += " AND e.originator_id = ?"
            params += [originator.hex]
        with self.datastore.transaction(commit=False) as cursor:
            rows = cursor.sqlite_cursor.execute(
                "SELECT e.originator_id, e.originator_version, c.digest "
                f"FROM {self.events_table_name} e JOIN {CHAIN_TABLE} c "
                "ON c.originator_id = e.originator_id "
                "AND c.originator_version = e.originator_version "
                f"WHERE {where} ORDER BY e.originator_id, e.originator_version",
                params,
            )
            yield from last_per_deal((str(r[0]), r[1], _bytes(r[2])) for r in rows)


def last_per_deal(
    rows: Iterator[tuple[str, int, bytes]],
) -> Iterator[tuple[str, Head]]:
    current: tuple[str, Head] | None = None
    for originator, version, digest in rows:
        if current is not None and current[0] != originator:
            yield current
        current = (originator, Head(version, digest))
    if current is not None:
        yield current


def _read_heads(c: SQLiteCursor, keys: Sequence[str]) -> Mapping[str, Head]:
    heads = {}
    it = iter(keys)
    while chunk := list(islice(it, HEADS_BATCH)):
        c.execute(
            f"SELECT originator_id, version, digest FROM {HEADS_TABLE} "
            f"WHERE originator_id IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        for row in c.fetchall():
            heads[str(row[0])] = Head(row[1], _bytes(row[2]))
    return heads


def _write_links(
    c: SQLiteCursor, writer: ChainWriter[str], stored_events: Sequence[StoredEvent]
) -> None:
    links = writer.link(
        (_hex(s.originator_id), s.originator_version, s.topic, s.state)
        for s in stored_events
    )
    c.executemany(f"INSERT INTO {CHAIN_TABLE} VALUES (?, ?, ?)", links)


def _write_heads(c: SQLiteCursor, writer: ChainWriter[str]) -> None:
    c.executemany(
        f"INSERT INTO {HEADS_TABLE} VALUES (?, ?, ?) ON CONFLICT (originator_id) "
        "DO UPDATE SET version = excluded.version, digest = excluded.digest",
        [(k, h.version, h.digest) for k, h in writer.drain()],
    )


def _bytes(value: bytes | str | float) -> bytes:
    """A BLOB column's value: SQLite hands back text, or a number, where one
    was written over it (a number as its text: bytes(n) would be n zeros)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return (value if isinstance(value, str) else str(value)).encode()


def _text(value: str | bytes | float | None) -> str:
    """A TEXT column's value as the chain reads it: anything else written
    over it outside dealtrail (NULL, a BLOB, a number) matches no digest."""
    if isinstance(value, str):
        return value
    return "" if value is None else repr(value)


def _hex(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id

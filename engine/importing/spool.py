"""Validated import events parked on disk, read back one deal at a time.

An import is decided deal by deal (a deal's opening first, then its events
in file order) so that memory holds one deal, not the file. The spool is
SQLite's private temporary database: a file in the temporary directory that
SQLite unlinks as soon as it has opened it, so nothing is left behind even
when the process is killed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from types import TracebackType

from engine.events import EVENT_TYPES, DealOpened, Event
from engine.importing.native import Located

_BATCH = 1000


class Spool:
    def __init__(self) -> None:
        # An empty name asks SQLite for a private, self-deleting database.
        self._db = sqlite3.connect("", isolation_level=None)
        # A scratch file: durability would only cost time.
        self._db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE spool (deal TEXT NOT NULL, rank INTEGER NOT NULL,"
            " seq INTEGER PRIMARY KEY, location TEXT NOT NULL,"
            " topic TEXT NOT NULL, state BLOB NOT NULL);"
        )
        self._buffer: list[tuple[str, int, str, str, bytes]] = []
        self.count = 0

    def add(self, item: Located) -> None:
        event = item.event
        # A deal opens before anything else is decided on it.
        rank = 0 if isinstance(event, DealOpened) else 1
        state = event.__pydantic_serializer__.to_json(event, exclude_none=True)
        self._buffer.append((event.deal, rank, item.location, event.type, state))
        self.count += 1
        if len(self._buffer) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO spool (deal, rank, location, topic, state)"
            " VALUES (?, ?, ?, ?, ?)",
            self._buffer,
        )
        self._db.execute("COMMIT")
        self._buffer.clear()

    def deals(self) -> Iterator[tuple[str, list[tuple[str, Event]]]]:
        """Each deal's events with their locations, deals in key order."""
        self._flush()
        self._db.execute(
            "CREATE INDEX IF NOT EXISTS by_deal ON spool (deal, rank, seq)"
        )
        rows = self._db.execute(
            "SELECT deal, location, topic, state FROM spool ORDER BY deal, rank, seq"
        )
        key: str | None = None
        events: list[tuple[str, Event]] = []
        for deal, location, topic, state in rows:
            if deal != key:
                if key is not None:
                    yield key, events
                key, events = deal, []
            events.append((location, EVENT_TYPES[topic].model_validate_json(state)))
        if key is not None:
            yield key, events

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

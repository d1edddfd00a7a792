"""dealtrail's PostgreSQL recorder: the library's, without pipeline mode.

The library sends inserts in psycopg pipeline mode; with a large batch (tens
of thousands of events in one import transaction) client and server both
wait on full socket buffers and the insert never finishes. Sending the same
statements in the ordinary way keeps its table lock, notification and
ordering guarantees and has no such limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder


class PostgresRecorder(PostgresApplicationRecorder):
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
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)

"""Materialised views: per-deal summaries kept beside the events, with tracking.

The summaries are a cache of a pure function of each deal's events and the
rule set. A runner reads the notification log after the tracked position, in
batches; for every deal a batch touches it recomputes that deal's summary
from the deal's whole history and upserts it, and records the batch's last
position in the same transaction. Upserting a recomputed row is idempotent,
so a crash between batches never counts anything twice: the next run
recomputes from the tracked position. A batch is saved only if the views are
still where it started, under the same rules; a build replaces everything
in one transaction. So concurrent runners, and a rebuild under one of them,
never leave rows older than the position.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.sqlite import SQLiteTrackingRecorder

from engine.sqlite import immediate_transaction

VIEW = "deal_summaries"


@dataclass(frozen=True, slots=True)
class ViewRow:
    deal: str
    account: str
    owner: str
    status: str
    document: bytes  # the summary's JSON


class ViewStore(Protocol):
    def save(
        self,
        rows: Sequence[ViewRow],
        tracking: Tracking,
        *,
        after: int,
        rules_hash: str,
    ) -> None:
        """Upsert rows and move the position from ``after`` to the tracking's.

        Raises IntegrityError, writing nothing, when the views are no longer
        at ``after`` under ``rules_hash``: another runner moved or rebuilt
        them meanwhile, and these rows may be stale.
        """

    def replace(
        self, rows: Sequence[ViewRow], tracking: Tracking | None, rules_hash: str
    ) -> None:
        """Replace all rows, the position and the rules in one transaction."""

    def reset(self, rules_hash: str) -> None: ...
    def load(
        self,
        *,
        status: str | None = None,
        owner: str | None = None,
        account: str | None = None,
    ) -> list[bytes]: ...
    def load_keys(self, *, account: str) -> list[str]: ...
    def position(self) -> int: ...
    def rules_hash(self) -> str | None: ...


class SQLiteViews(SQLiteTrackingRecorder):
    """The views in an SQLite store."""

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS deal_summaries ("
            "deal TEXT PRIMARY KEY, account TEXT NOT NULL, owner TEXT NOT NULL, "
            "status TEXT NOT NULL, document BLOB NOT NULL)",
            "CREATE TABLE IF NOT EXISTS view_rules ("
            "view TEXT PRIMARY KEY, rules_hash TEXT NOT NULL)",
            # An audit reads the deals of one account: it must not scan all.
            "CREATE INDEX IF NOT EXISTS deal_summaries_account "
            "ON deal_summaries (account, status)",
            "CREATE INDEX IF NOT EXISTS deal_summaries_owner ON deal_summaries (owner)",
        ]

    def save(
        self,
        rows: Sequence[ViewRow],
        tracking: Tracking,
        *,
        after: int,
        rules_hash: str,
    ) -> None:
        with immediate_transaction(self.datastore) as c:
            c.execute(
                "SELECT (SELECT rules_hash FROM view_rules WHERE view = ?), "
                "(SELECT max(notification_id) FROM tracking "
                "WHERE application_name = ?)",
                (VIEW, VIEW),
            )
            stored_hash, position = c.fetchone()
            if stored_hash != rules_hash or (position or 0) != after:
                raise IntegrityError("the views moved on under another runner")
            self._upsert(c, rows)
            self._insert_tracking(c, tracking)

    def replace(
        self, rows: Sequence[ViewRow], tracking: Tracking | None, rules_hash: str
    ) -> None:
        with immediate_transaction(self.datastore) as c:
            c.execute("DELETE FROM deal_summaries")
            c.execute("DELETE FROM tracking WHERE application_name = ?", (VIEW,))
            c.execute(
                "INSERT INTO view_rules VALUES (?, ?) ON CONFLICT (view) "
                "DO UPDATE SET rules_hash = excluded.rules_hash",
                (VIEW, rules_hash),
            )
            self._upsert(c, rows)
            if tracking is not None:
                self._insert_tracking(c, tracking)

    def reset(self, rules_hash: str) -> None:
        self.replace([], None, rules_hash)

    @staticmethod
    def _upsert(c: Any, rows: Sequence[ViewRow]) -> None:
        c.executemany(
            "INSERT INTO deal_summaries VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (deal) DO UPDATE SET account=excluded.account, "
            "owner=excluded.owner, status=excluded.status, "
            "document=excluded.document",
            [(r.deal, r.account, r.owner, r.status, r.document) for r in rows],
        )

    def load(
        self,
        *,
        status: str | None = None,
        owner: str | None = None,
        account: str | None = None,
    ) -> list[bytes]:
        where, params = _filters(
            {"status": status, "owner": owner, "account": account}, "?"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT document FROM deal_summaries{where} ORDER BY deal", params
            )
            return [bytes(row[0]) for row in c.fetchall()]

    def load_keys(self, *, account: str) -> list[str]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT deal FROM deal_summaries WHERE account = ? ORDER BY deal",
                (account,),
            )
            return [str(row[0]) for row in c.fetchall()]

    def position(self) -> int:
        return self.max_tracking_id(VIEW) or 0

    def rules_hash(self) -> str | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT rules_hash FROM view_rules WHERE view = ?", (VIEW,))
            row = c.fetchone()
            return None if row is None else str(row[0])


def _filters(values: dict[str, str | None], marker: str) -> tuple[str, list[Any]]:
    used = {k: v for k, v in values.items() if v is not None}
    if not used:
        return "", []
    clause = " AND ".join(f"{column} = {marker}" for column in used)
    return f" WHERE {clause}", list(used.values())


def postgres_views_class() -> type[Any]:
    """The PostgreSQL views recorder (imported only when PostgreSQL is used)."""
    from eventsourcing.postgres import PostgresTrackingRecorder
    from psycopg.sql import SQL, Identifier

    class PostgresViews(PostgresTrackingRecorder):
        """The views in a PostgreSQL store, in the store's schema."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            schema = Identifier(self.datastore.schema)
            self._summaries = SQL("{}.dealtrail_deal_summaries").format(schema)
            self._rules = SQL("{}.dealtrail_view_rules").format(schema)
            self._tracking = SQL("{}.{}").format(
                schema, Identifier(self.tracking_table_name)
            )
            self.sql_create_statements += [
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} (deal text PRIMARY KEY, "
                    "account text NOT NULL, owner text NOT NULL, "
                    "status text NOT NULL, document bytea NOT NULL)"
                ).format(self._summaries),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} (view text PRIMARY KEY, "
                    "rules_hash text NOT NULL)"
                ).format(self._rules),
                # An audit reads the deals of one account: it must not scan all.
                SQL(
                    "CREATE INDEX IF NOT EXISTS dealtrail_deal_summaries_account "
                    "ON {} (account, status)"
                ).format(self._summaries),
                SQL(
                    "CREATE INDEX IF NOT EXISTS dealtrail_deal_summaries_owner "
                    "ON {} (owner)"
                ).format(self._summaries),
            ]

        def save(
            self,
            rows: Sequence[ViewRow],
            tracking: Tracking,
            *,
            after: int,
            rules_hash: str,
        ) -> None:
            with self.datastore.transaction(commit=True) as curs:
                # The rules row's lock orders this against other savers and
                # against a rebuild's replacement.
                curs.execute(
                    SQL("SELECT rules_hash FROM {} WHERE view = %s FOR UPDATE").format(
                        self._rules
                    ),
                    (VIEW,),
                )
                row = curs.fetchone()
                position = self._max_tracking_id(VIEW, curs) or 0
                if row is None or row["rules_hash"] != rules_hash or position != after:
                    raise IntegrityError("the views moved on under another runner")
                self._upsert(curs, rows)
                self._insert_tracking(curs, tracking)

        def replace(
            self, rows: Sequence[ViewRow], tracking: Tracking | None, rules_hash: str
        ) -> None:
            with self.datastore.transaction(commit=True) as curs:
                curs.execute(
                    SQL(
                        "INSERT INTO {} VALUES (%s, %s) ON CONFLICT (view) "
                        "DO UPDATE SET rules_hash = excluded.rules_hash"
                    ).format(self._rules),
                    (VIEW, rules_hash),
                )
                curs.execute(SQL("DELETE FROM {}").format(self._summaries))
                curs.execute(
                    SQL("DELETE FROM {} WHERE application_name = %s").format(
                        self._tracking
                    ),
                    (VIEW,),
                )
                self._upsert(curs, rows)
                if tracking is not None:
                    self._insert_tracking(curs, tracking)

        def reset(self, rules_hash: str) -> None:
            self.replace([], None, rules_hash)

        def _upsert(self, curs: Any, rows: Sequence[ViewRow]) -> None:
            if rows:
                curs.executemany(
                    SQL(
                        "INSERT INTO {} VALUES (%s, %s, %s, %s, %s) "
                        "ON CONFLICT (deal) DO UPDATE SET "
                        "account=excluded.account, owner=excluded.owner, "
                        "status=excluded.status, document=excluded.document"
                    ).format(self._summaries),
                    [(r.deal, r.account, r.owner, r.status, r.document) for r in rows],
                )

        def load(
            self,
            *,
            status: str | None = None,
            owner: str | None = None,
            account: str | None = None,
        ) -> list[bytes]:
            where, params = _filters(
                {"status": status, "owner": owner, "account": account}, "%s"
            )
            with self.datastore.transaction(commit=False) as curs:
                curs.execute(
                    SQL("SELECT document FROM {}").format(self._summaries)
                    + SQL(where)
                    + SQL(" ORDER BY deal"),
                    params,
                )
                return [bytes(row["document"]) for row in curs.fetchall()]

        def load_keys(self, *, account: str) -> list[str]:
            with self.datastore.transaction(commit=False) as curs:
                curs.execute(
                    SQL("SELECT deal FROM {} WHERE account = %s ORDER BY deal").format(
                        self._summaries
                    ),
                    (account,),
                )
                return [str(row["deal"]) for row in curs.fetchall()]

        def position(self) -> int:
            return self.max_tracking_id(VIEW) or 0

        def rules_hash(self) -> str | None:
            with self.datastore.transaction(commit=False) as curs:
                curs.execute(
                    SQL("SELECT rules_hash FROM {} WHERE view = %s").format(
                        self._rules
                    ),
                    (VIEW,),
                )
                row = curs.fetchone()
                return None if row is None else str(row["rules_hash"])

    return PostgresViews


@dataclass(frozen=True, slots=True)
class ViewStatus:
    position: int
    head: int
    rules_hash: str | None

    @property
    def lag(self) -> int:
        return self.head - self.position


Progress = Callable[[int, int], None]
"""Called with (position reached, head) after each batch."""

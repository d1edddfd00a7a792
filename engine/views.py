"""Materialised views: per-deal summaries kept beside the events, with tracking.

The summaries are a cache of a pure function of each deal's events and the
rule set. A runner reads the notification log after the tracked position, in
batches; for every deal a batch touches it recomputes that deal's summary
from the deal's whole history and upserts it, and records the batch's last
position in the same transaction. Upserting a recomputed row is idempotent,
so a crash between batches never counts anything twice: the next run
recomputes from the tracked position.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteTrackingRecorder

VIEW = "deal_summaries"


@dataclass(frozen=True, slots=True)
class ViewRow:
    deal: str
    account: str
    owner: str
    status: str
    document: bytes  # the summary's JSON


class ViewStore(Protocol):
    def save(self, rows: Sequence[ViewRow], tracking: Tracking) -> None: ...
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
        ]

    def save(self, rows: Sequence[ViewRow], tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.executemany(
                "INSERT INTO deal_summaries VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (deal) DO UPDATE SET account=excluded.account, "
                "owner=excluded.owner, status=excluded.status, "
                "document=excluded.document",
                [(r.deal, r.account, r.owner, r.status, r.document) for r in rows],
            )
            self._insert_tracking(c, tracking)

    def reset(self, rules_hash: str) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute("DELETE FROM deal_summaries")
            c.execute("DELETE FROM tracking WHERE application_name = ?", (VIEW,))
            c.execute(
                "INSERT INTO view_rules VALUES (?, ?) ON CONFLICT (view) "
                "DO UPDATE SET rules_hash = excluded.rules_hash",
                (VIEW, rules_hash),
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
            ]

        def save(self, rows: Sequence[ViewRow], tracking: Tracking) -> None:
            with self.datastore.transaction(commit=True) as curs:
                if rows:
                    curs.executemany(
                        SQL(
                            "INSERT INTO {} VALUES (%s, %s, %s, %s, %s) "
                            "ON CONFLICT (deal) DO UPDATE SET "
                            "account=excluded.account, owner=excluded.owner, "
                            "status=excluded.status, document=excluded.document"
                        ).format(self._summaries),
                        [
                            (r.deal, r.account, r.owner, r.status, r.document)
                            for r in rows
                        ],
                    )
                self._insert_tracking(curs, tracking)

        def reset(self, rules_hash: str) -> None:
            with self.datastore.transaction(commit=True) as curs:
                curs.execute(SQL("DELETE FROM {}").format(self._summaries))
                curs.execute(
                    SQL("DELETE FROM {} WHERE application_name = %s").format(
                        self._tracking
                    ),
                    (VIEW,),
                )
                curs.execute(
                    SQL(
                        "INSERT INTO {} VALUES (%s, %s) ON CONFLICT (view) "
                        "DO UPDATE SET rules_hash = excluded.rules_hash"
                    ).format(self._rules),
                    (VIEW, rules_hash),
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

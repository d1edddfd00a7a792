"""Direct looks at a store's tables, beneath the application.

The crash and soak tests check the stored rows themselves (versions per deal)
rather than trusting the code under test to report them.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

from engine.application import DealTrail
from engine.projections.summary import summarise
from engine.rules import RuleSet

RULES = RuleSet()


def versions_by_originator(url: str) -> dict[str, list[int]]:
    """Every stored event's version, per originator, read from the table."""
    select = "SELECT originator_id, originator_version FROM {} ORDER BY 1, 2"
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:///")
        with _closing_sqlite(path) as conn:
            rows = conn.execute(select.format("stored_events")).fetchall()
    else:
        import psycopg
        from psycopg import sql

        base, schema = postgres_parts(url)
        with psycopg.connect(base) as conn:
            table = sql.Identifier(schema, "dealtrail_events")
            rows = conn.execute(sql.SQL(select).format(table)).fetchall()
    found: dict[str, list[int]] = defaultdict(list)
    for originator, version in rows:
        found[str(originator).replace("-", "")].append(int(version))
    return dict(found)


def gaps_in_versions(url: str) -> dict[str, list[int]]:
    """Originators whose versions are not exactly 1..n, with their versions."""
    return {
        originator: versions
        for originator, versions in versions_by_originator(url).items()
        if versions != list(range(1, len(versions) + 1))
    }


def pure_documents(app: DealTrail) -> list[bytes]:
    """What the views must hold: each deal's summary computed from nothing."""
    return [
        summarise(app.history(key), RULES).model_dump_json().encode()
        for key in app.deal_keys()
    ]


def postgres_parts(url: str) -> tuple[str, str]:
    """(server URL, schema) of a postgresql:// store URL."""
    parts = urlsplit(url)
    schema = parse_qs(parts.query).get("schema", ["public"])[-1]
    return url.split("?")[0], schema


def sibling_url(url: str, name: str) -> str:
    """Another store of the same kind beside ``url`` (a file or a schema)."""
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:///")
        directory = path.rsplit("/", 1)[0]
        return f"sqlite:///{directory}/{name}.db"
    base, schema = postgres_parts(url)
    return f"{base}?schema={schema}_{name}"


def drop(url: str) -> None:
    """Remove a PostgreSQL store's schema (SQLite files go with tmp_path)."""
    if url.startswith("sqlite:"):
        return
    import psycopg
    from psycopg import sql

    base, schema = postgres_parts(url)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


@contextmanager
def _closing_sqlite(path: str) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path)
    try:
        yield conn
    finally:
        conn.close()

"""Shared fixtures: real SQLite files and a real PostgreSQL server.

PostgreSQL tests use a fresh schema each in the database named by
DEALTRAIL_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test).
Without a server they skip, unless DEALTRAIL_REQUIRE_POSTGRES=1 (as in CI),
where a missing server fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from engine.application import DealTrail

POSTGRES_BASE = os.environ.get(
    "DEALTRAIL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


class Clock:
    """A clock the test moves by hand (the store's recording time)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))


def _postgres_available() -> str | None:
    import psycopg

    try:
        base = POSTGRES_BASE.split("?")[0]
        with psycopg.connect(base, connect_timeout=3):
            return None
    except psycopg.Error as e:
        return str(e).strip().splitlines()[0]


@pytest.fixture(scope="session")
def postgres_server() -> str:
    problem = _postgres_available()
    if problem is not None:
        message = f"PostgreSQL not reachable at {POSTGRES_BASE}: {problem}"
        if os.environ.get("DEALTRAIL_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return POSTGRES_BASE.split("?")[0]


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    import psycopg
    from psycopg import sql

    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{postgres_server}?schema={schema}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> str:
    return f"sqlite:///{os.fspath(tmp_path)}/dealtrail.db"


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def store_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once per store kind."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def app(store_url: str, clock: Clock) -> Iterator[DealTrail]:
    application = DealTrail(store_url, clock=clock)
    yield application
    application.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI (DEALTRAIL_REQUIRE_POSTGRES=1) a skipped test fails the run."""
    if os.environ.get("DEALTRAIL_REQUIRE_POSTGRES") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped"):
        reporter.write_line("error: tests were skipped, and CI requires them all")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

"""Store URLs -> eventsourcing persistence settings.

``sqlite:///relative.db`` and ``sqlite:////absolute.db`` name an SQLite file
(the embedded default); ``postgresql://user[:password]@host[:port]/db`` names
a PostgreSQL database, with an optional ``?schema=name``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from engine.errors import InputError

DEFAULT_STORE = "sqlite:///dealtrail.db"
# Seconds a writer waits for another writer's lock before giving up.
LOCK_TIMEOUT_SECONDS = 30

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class StoreConfig:
    kind: str  # "sqlite" or "postgresql"
    env: dict[str, str]
    display: str  # the URL with any password hidden

    @property
    def sqlite_path(self) -> Path | None:
        if self.kind != "sqlite":
            return None
        return Path(self.env["SQLITE_DBNAME"])


def redact(url: str) -> str:
    """The URL with any password replaced, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # The host starts after the last '@' before the path: passwords may hold '@'.
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{slash}{path}"


def parse_store_url(url: str) -> StoreConfig:
    display = redact(url)
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
            raise InputError(
                f"store {display!r}: write sqlite:///relative/path.db "
                "or sqlite:////absolute/path.db"
            )
        path = unquote(parts.path[1:])
        return StoreConfig(
            kind="sqlite",
            env={
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": path,
                "SQLITE_LOCK_TIMEOUT": str(LOCK_TIMEOUT_SECONDS),
            },
            display=display,
        )
    if parts.scheme in ("postgresql", "postgres"):
        database = unquote(parts.path.lstrip("/"))
        if not parts.hostname or not database:
            raise InputError(
                f"store {display!r}: write postgresql://user[:password]@host[:port]/db"
            )
        query = parse_qs(parts.query)
        unknown = set(query) - {"schema"}
        if unknown:
            raise InputError(
                f"store {display!r}: unknown option {sorted(unknown)[0]!r} "
                "(only 'schema' is understood)"
            )
        schema = query.get("schema", ["public"])[-1]
        if not _SCHEMA_NAME.match(schema):
            raise InputError(f"store {display!r}: schema must be a lower-case name")
        try:
            port = parts.port or 5432
        except ValueError:
            raise InputError(
                f"store {display!r}: the port must be a number from 0 to 65535"
            ) from None
        return StoreConfig(
            kind="postgresql",
            env={
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "APPLICATION_RECORDER_TOPIC": "engine.postgres:PostgresRecorder",
                "POSTGRES_DBNAME": database,
                "POSTGRES_HOST": parts.hostname,
                "POSTGRES_PORT": str(port),
                "POSTGRES_USER": unquote(parts.username or ""),
                "POSTGRES_PASSWORD": unquote(parts.password or ""),
                "POSTGRES_SCHEMA": schema,
                "POSTGRES_CONNECT_TIMEOUT": "10",
                "POSTGRES_LOCK_TIMEOUT": str(LOCK_TIMEOUT_SECONDS),
            },
            display=display,
        )
    raise InputError(
        f"store {display!r}: unknown kind; use sqlite:///file.db "
        "or postgresql://user@host/db"
    )

"""Store URLs -> eventsourcing persistence settings.

``sqlite:///relative.db`` and ``sqlite:////absolute.db`` name an SQLite file
(the embedded default); ``postgresql://user[:password]@host[:port]/db`` names
a PostgreSQL database, with an optional ``?schema=name``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from engine.errors import InputError, StoreError, quoted

DEFAULT_STORE = "sqlite:///dealtrail.db"
# Seconds a writer waits for another writer's lock before giving up; the
# environment variable DEALTRAIL_LOCK_TIMEOUT (whole seconds) overrides it.
LOCK_TIMEOUT_SECONDS = 30
# PostgreSQL's lock_timeout is a 32-bit count of milliseconds.
MAX_LOCK_TIMEOUT_SECONDS = 2_147_483


def lock_timeout() -> int:
    """The lock timeout in seconds: DEALTRAIL_LOCK_TIMEOUT, or the default."""
    value = os.environ.get("DEALTRAIL_LOCK_TIMEOUT", "").strip()
    if not value:
        return LOCK_TIMEOUT_SECONDS
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise InputError(
            f"DEALTRAIL_LOCK_TIMEOUT {quoted(value)}: write a whole number of seconds"
            " (1 or more)"
        )
    if int(value) > MAX_LOCK_TIMEOUT_SECONDS:
        raise InputError(
            f"DEALTRAIL_LOCK_TIMEOUT {quoted(value)}: at most "
            f"{MAX_LOCK_TIMEOUT_SECONDS} seconds (about 24 days)"
        )
    return int(value)


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

    @property
    def lock_timeout(self) -> int:
        """Seconds a writer waits for another writer's lock."""
        kind = "SQLITE" if self.kind == "sqlite" else "POSTGRES"
        return int(self.env[f"{kind}_LOCK_TIMEOUT"])


def redact(url: str) -> str:
    """The URL with any password replaced, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep or rest.startswith("/"):
        return url
    # The password ends at the last '@': it may itself hold '@', '/' or '?'.
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def _quote_userinfo(url: str) -> str:
    """The URL with its user and password percent-encoded, so that a
    password holding '/', '?' or '#' cannot pass for the host or path."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or rest.startswith("/") or not at:
        return url
    return f"{scheme}://{quote(userinfo, safe=':%')}@{host}"


def parse_store_url(url: str) -> StoreConfig:
    display = redact(url)
    try:
        parts = urlsplit(_quote_userinfo(url))
    except ValueError as e:
        raise InputError(f"store {quoted(display)}: not a valid URL ({e})") from None
    if parts.scheme == "sqlite":
        if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
            raise InputError(
                f"store {quoted(display)}: write sqlite:///relative/path.db "
                "or sqlite:////absolute/path.db"
            )
        path = unquote(parts.path[1:])
        return StoreConfig(
            kind="sqlite",
            env={
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "APPLICATION_RECORDER_TOPIC": "engine.sqlite:SQLiteRecorder",
                "SQLITE_DBNAME": path,
                "SQLITE_LOCK_TIMEOUT": str(lock_timeout()),
            },
            display=display,
        )
    if parts.scheme in ("postgresql", "postgres"):
        database = unquote(parts.path.lstrip("/"))
        if not parts.hostname or not database:
            raise InputError(
                f"store {quoted(display)}: write postgresql://user[:password]@host[:port]/db"
            )
        query = parse_qs(parts.query)
        unknown = set(query) - {"schema"}
        if unknown:
            raise InputError(
                f"store {quoted(display)}: unknown option {quoted(sorted(unknown)[0])} "
                "(only 'schema' is understood)"
            )
        schema = query.get("schema", ["public"])[-1]
        if not _SCHEMA_NAME.match(schema):
            raise InputError(
                f"store {quoted(display)}: schema must be a lower-case name"
            )
        try:
            port = parts.port or 5432
        except ValueError:
            raise InputError(
                f"store {quoted(display)}: the port must be a number from 0 to 65535"
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
                "POSTGRES_LOCK_TIMEOUT": str(lock_timeout()),
            },
            display=display,
        )
    raise InputError(
        f"store {quoted(display)}: unknown kind; use sqlite:///file.db "
        "or postgresql://user@host/db"
    )


def create_private_file(path: Path) -> None:
    """Create an empty SQLite store file that only its owner may read.

    SQLite gives its journal files the same permissions.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError as e:
        raise StoreError(f"cannot create store file {path}: {e.strerror}") from e

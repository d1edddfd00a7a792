"""Personal data: encryption at rest and crypto-shredding of contacts.

With a master key configured (``DEALTRAIL_KEY``, base64 of 32 bytes, or
``DEALTRAIL_KEY_FILE`` naming a file holding it), each personal field of an
event is replaced, before it is stored, by an envelope string
``dt1:LABEL:BASE64`` (AES-GCM, a fresh nonce per field, the deal and field
name as associated data). LABEL names the key:

* a contact's own random data key (its 16-hex key id) for the contact itself
  and the text that belongs to them (a stakeholder's name, title, priority);
* several key ids joined by ``+`` for a touchpoint summary: a key derived from
  every participant's data key, so forgetting any of them erases it;
* ``store`` for deal-level free text tied to nobody (a key derived from the
  master key: encrypted at rest, never shredded).

Data keys live in the store's ``dealtrail_contact_keys`` table, wrapped with
the master key, under an HMAC of the contact (the table lists no emails).
Stored events carry only the random key ids, which the table links to a
contact until ``forget`` deletes the row: the contact then reads as the
stable pseudonym ``erased-KEYID`` and their text as ``[erased]``, while
times, channels, directions, roles and the deal key stay as they were.

Without a master key nothing here runs: events are stored as before, and a
store that holds contact keys is refused with a one-line error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engine.errors import InputError, StoreError
from engine.events import Event, normalise_contact

if TYPE_CHECKING:
    from eventsourcing.postgres import PostgresDatastore
    from eventsourcing.sqlite import SQLiteDatastore

    from engine.application import DealTrail
    from engine.importing.native import ImportItem
    from engine.rules import RuleSet

KEY_ENV = "DEALTRAIL_KEY"
KEY_FILE_ENV = "DEALTRAIL_KEY_FILE"
TABLE = "dealtrail_contact_keys"
ERASED_TEXT = "[erased]"
ERASED_PREFIX = "erased-"
# Top-level key marking a stored event whose personal fields are envelopes.
SEALED = "sealed"
_ENVELOPE = "dt1"
_STORE_LABEL = "store"
# The row that proves which master key sealed the store (not an HMAC: no clash).
_CHECK_REF = "-"
_CHECK_PLAINTEXT = b"dealtrail master key check"
_NONCE = 12
# Deals whose touchpoints' participant keys are remembered, for corrections.
_MEMO_DEALS = 4096
_LOOKUP_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Fields:
    """Where an event type keeps personal data."""

    owner: str | None = None  # the contact field whose key seals ``owned``
    owned: tuple[str, ...] = ()
    participants: bool = False  # participants and a summary sealed under them
    store: tuple[str, ...] = ()  # free text tied to no contact


# The exact list of personal fields (docs/security.md, "Personal data").
PERSONAL: dict[str, Fields] = {
    "StakeholderJoined": Fields(owner="contact", owned=("name", "title")),
    "StakeholderRoleChanged": Fields(owner="contact"),
    "StakeholderLeft": Fields(owner="contact", owned=("reason",)),
    "StakeholderPriorityNoted": Fields(owner="contact", owned=("priority",)),
    "FollowUpRequested": Fields(owner="by", owned=("note",)),
    "TouchpointLogged": Fields(participants=True),
    "TouchpointCorrected": Fields(participants=True),
    "TouchpointRetracted": Fields(store=("reason",)),
    "NextStepSet": Fields(store=("description",)),
    "NextStepCleared": Fields(store=("reason",)),
    "FollowUpPromised": Fields(store=("promise",)),
    "CoachingNoteAdded": Fields(store=("note",)),
    "DealWon": Fields(store=("note",)),
    "DealLost": Fields(store=("reason", "note")),
    "DealReopened": Fields(store=("reason",)),
}


# Master key


def master_key_from_env(environ: Mapping[str, str]) -> bytes | None:
    """The master key the environment names, or None when it names none."""
    text = environ.get(KEY_ENV, "").strip()
    path = environ.get(KEY_FILE_ENV, "").strip()
    if text and path:
        raise InputError(f"set {KEY_ENV} or {KEY_FILE_ENV}, not both")
    if path:
        try:
            text = Path(path).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) else "not a text file"
            raise InputError(f"{KEY_FILE_ENV}: cannot read {path}: {reason}") from None
        return _decode_key(text, f"{KEY_FILE_ENV} {path}")
    return _decode_key(text, KEY_ENV) if text else None


def exposed_key_file(environ: Mapping[str, str]) -> str | None:
    """What is wrong with the key file the environment names when its group
    or others may use it (read, or write: put their own key in), as one
    line; None when it names none, it cannot be read or it is private.

    Such a key is still used: the caller warns (docs/security.md, Hygiene).
    """
    import shlex
    import stat

    path = environ.get(KEY_FILE_ENV, "").strip()
    if not path or environ.get(KEY_ENV, "").strip() or os.name == "nt":
        return None  # none, refused (both set), or no POSIX modes
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None  # reading it reports the problem
    if not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        access = "readable by others"
    elif mode & (stat.S_IWGRP | stat.S_IWOTH):
        access = "writable by others"
    else:
        access = "open to others"
    return (
        f"key file {path} is {access} (mode {mode:03o}); "
        f"run: chmod 600 {shlex.quote(path)}"
    )


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise InputError(
            f"{where}: a key is base64 of 32 random bytes, e.g. the output of "
            "'openssl rand -base64 32'"
        )
    return key


def new_master_key() -> str:
    """A fresh master key, as the environment takes it."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


# The key table, on either store


class KeyTable(Protocol):
    def exists(self) -> bool: ...

    def create(self) -> None: ...

    def by_refs(self, refs: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        """contact_ref -> (key id, wrapped key) of the refs that have a key."""
        ...

    def by_key_id(self, key_id: str) -> bytes | None: ...

    def insert(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        """Add (contact_ref, key id, wrapped key) rows; existing refs win."""
        ...

    def delete(self, ref: str) -> bool:
        """Delete a row and scrub its bytes from the store's files; False
        when a concurrent reader kept an old copy in them for now."""
        ...


class SQLiteKeyTable:
    def __init__(self, datastore: SQLiteDatastore) -> None:
        self.datastore = datastore

    def exists(self) -> bool:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                (TABLE,),
            )
            return cursor.fetchone() is not None

    def create(self) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (contact_ref TEXT PRIMARY KEY, "
                "key_id TEXT NOT NULL UNIQUE, wrapped_key BLOB NOT NULL)"
            )

    def by_refs(self, refs: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        found: dict[str, tuple[str, bytes]] = {}
        with self.datastore.transaction(commit=False) as cursor:
            for start in range(0, len(refs), _LOOKUP_CHUNK):
                chunk = refs[start : start + _LOOKUP_CHUNK]
                marks = ", ".join("?" * len(chunk))
                cursor.execute(
                    f"SELECT contact_ref, key_id, wrapped_key FROM {TABLE} "
                    f"WHERE contact_ref IN ({marks})",
                    tuple(chunk),
                )
                for ref, key_id, wrapped in cursor.fetchall():
                    found[ref] = (key_id, bytes(wrapped))
        return found

    def by_key_id(self, key_id: str) -> bytes | None:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                f"SELECT wrapped_key FROM {TABLE} WHERE key_id = ?", (key_id,)
            )
            row = cursor.fetchone()
            return None if row is None else bytes(row[0])

    def insert(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.executemany(
                f"INSERT INTO {TABLE} (contact_ref, key_id, wrapped_key) "
                "VALUES (?, ?, ?) ON CONFLICT (contact_ref) DO NOTHING",
                rows,
            )

    def delete(self, ref: str) -> bool:
        """Delete a row and its bytes: ``secure_delete`` zeroes the freed
        space, and the checkpoint copies the zeroed pages into the file and
        empties the -wal, which still held the row's earlier page images."""
        with self.datastore.get_connection(commit=True) as conn:
            with conn.cursor() as raw:
                was = raw.execute("PRAGMA secure_delete").fetchone()[0]
                raw.execute("PRAGMA secure_delete=ON")
            try:
                with conn.transaction(commit=True) as cursor:
                    cursor.execute(f"DELETE FROM {TABLE} WHERE contact_ref = ?", (ref,))
                with conn.cursor() as raw:
                    # (busy, wal pages, pages checkpointed): busy when a
                    # reader kept the checkpoint from finishing.
                    busy = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            finally:
                with conn.cursor() as raw:
                    raw.execute(f"PRAGMA secure_delete={int(was)}")
        return not busy


class PostgresKeyTable:
    # An arbitrary constant naming the lock held while the table is created.
    _CREATE_LOCK = 0x6474_6B65_7973

    def __init__(self, datastore: PostgresDatastore) -> None:
        from psycopg.sql import SQL, Identifier

        self.datastore = datastore
        self._name = SQL("{}.{}").format(
            Identifier(datastore.schema), Identifier(TABLE)
        )
        self._sql = SQL

    def _q(self, text: str) -> Any:
        return self._sql(text).format(table=self._name)

    def exists(self) -> bool:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                "SELECT to_regclass(%s) IS NOT NULL AS found",
                (f"{self.datastore.schema}.{TABLE}",),
            )
            row = curs.fetchone()
            return bool(row and row["found"])

    def create(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            # Concurrent CREATE statements race in PostgreSQL; serialise them.
            curs.execute("SELECT pg_advisory_xact_lock(%s)", (self._CREATE_LOCK,))
            curs.execute(
                self._q(
                    "CREATE TABLE IF NOT EXISTS {table} (contact_ref TEXT PRIMARY KEY,"
                    " key_id TEXT NOT NULL UNIQUE, wrapped_key BYTEA NOT NULL)"
                )
            )

    def by_refs(self, refs: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        found: dict[str, tuple[str, bytes]] = {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                self._q(
                    "SELECT contact_ref, key_id, wrapped_key FROM {table} "
                    "WHERE contact_ref = ANY(%s)"
                ),
                (list(refs),),
            )
            for row in curs.fetchall():
                found[row["contact_ref"]] = (row["key_id"], bytes(row["wrapped_key"]))
        return found

    def by_key_id(self, key_id: str) -> bytes | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                self._q("SELECT wrapped_key FROM {table} WHERE key_id = %s"), (key_id,)
            )
            row = curs.fetchone()
            return None if row is None else bytes(row["wrapped_key"])

    def insert(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.executemany(
                self._q(
                    "INSERT INTO {table} (contact_ref, key_id, wrapped_key) "
                    "VALUES (%s, %s, %s) ON CONFLICT (contact_ref) DO NOTHING"
                ),
                rows,
            )

    def delete(self, ref: str) -> bool:
        """Delete a row, then rewrite the table's file without it.

        A plain VACUUM leaves a removed row's bytes in its page's free space,
        so the table is rewritten (VACUUM FULL). A rewrite still copies the
        row while a transaction that began before the delete is open, so it
        waits up to the lock timeout for those to end first.
        """
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._q("DELETE FROM {table} WHERE contact_ref = %s"), (ref,))
            # The 32-bit form of the delete's transaction id, as xmin is shown.
            curs.execute("SELECT mod(txid_current(), 4294967296)::text AS xid")
            row = curs.fetchone()
            assert row is not None
            xid = row["xid"]
        from psycopg.errors import LockNotAvailable

        deadline = time.monotonic() + self.datastore.lock_timeout
        # VACUUM cannot run in a transaction: the pool's connections are in
        # autocommit mode outside ``transaction``.
        with self.datastore.get_connection() as conn:
            clear = self._older_readers_gone(conn, xid, deadline)
            # The key is already gone: waiting longer for the rewrite's lock
            # than the lock timeout in all is reported, not failed.
            left = max(1, round((deadline - time.monotonic()) * 1000))
            conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{left}ms",))
            try:
                conn.execute(self._q("VACUUM FULL {table}"))
            except LockNotAvailable:
                return False
            finally:
                conn.execute("RESET lock_timeout")
        return clear

    @staticmethod
    def _older_readers_gone(conn: Any, xid: str, deadline: float) -> bool:
        """Wait until no session, prepared transaction or replication slot
        of this database may still see rows deleted by transaction ``xid``."""
        query = """
            SELECT EXISTS (
                SELECT 1 FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()
                  AND age(backend_xmin) >= age(%(xid)s::xid)
                UNION ALL
                SELECT 1 FROM pg_prepared_xacts
                WHERE database = current_database()
                  AND age(transaction) >= age(%(xid)s::xid)
                UNION ALL
                SELECT 1 FROM pg_replication_slots
                WHERE age(xmin) >= age(%(xid)s::xid)
            ) AS waiting
        """
        while True:
            row = conn.execute(query, {"xid": xid}).fetchone()
            if not row["waiting"]:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def key_table(app: DealTrail) -> KeyTable:
    datastore = getattr(app.recorder, "datastore")  # noqa: B009
    if app.config.kind == "postgresql":
        return PostgresKeyTable(datastore)
    return SQLiteKeyTable(datastore)


# Sealing and opening events


class Erased(Exception):
    """A field's key has been destroyed."""


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"dealtrail " + purpose
    ).derive(master)


@dataclass(frozen=True, slots=True)
class _DataKey:
    key_id: str
    raw: bytes
    aead: AESGCM


class Privacy:
    """Seals personal fields on the way into the store and opens them on the
    way out, with each contact's own key; ``forget`` destroys a key."""

    def __init__(self, master: bytes, table: KeyTable, display: str) -> None:
        self.table = table
        self.display = display
        self._ref_key = _derive(master, b"contact ref")
        self._wrap = AESGCM(_derive(master, b"key wrap"))
        self._store = AESGCM(_derive(master, b"store text"))
        self._by_contact: dict[str, _DataKey] = {}
        # None: the key was destroyed (key ids are random and never reused).
        self._by_id: dict[str, _DataKey | None] = {}
        self._shared: dict[str, AESGCM | None] = {}
        self._noted: set[str] = set()
        self._scratch: dict[str, _DataKey] | None = None
        self._locked = False
        # deal -> touchpoint -> key ids of everyone ever on it.
        self._memo: OrderedDict[str, dict[str, set[str]]] = OrderedDict()
        self.read_deal: Callable[[str], object] | None = None
        # Whether the key table exists and holds this master key's check.
        self.started = False

    # Keys

    def check(self) -> None:
        """Refuse another master key than the store's. A store without a
        key table is left as it is until its first write (``start``), so
        reading a plain store with a key set leaves it plain."""
        if self.table.exists():
            self.start()

    def start(self) -> None:
        """Create the key table with its check value if needed (encryption
        is then on for good), and refuse another master key."""
        if self.started:
            return
        self.table.create()
        found = self.table.by_refs([_CHECK_REF])
        if _CHECK_REF not in found:
            self.table.insert(
                [(_CHECK_REF, _CHECK_REF, self._wrap_key(_CHECK_REF, _CHECK_PLAINTEXT))]
            )
            found = self.table.by_refs([_CHECK_REF])
        try:
            self._unwrap(_CHECK_REF, found[_CHECK_REF][1])
        except InvalidTag:
            raise StoreError(
                f"store {self.display} is encrypted with another key than the one "
                f"{KEY_ENV} or {KEY_FILE_ENV} gives"
            ) from None
        self.started = True

    def stored_key(self, contact: str) -> tuple[str, bytes] | None:
        """A contact's (key id, wrapped key), or None when it has none."""
        if not self.started:
            return None
        ref = self.ref(contact)
        return self.table.by_refs([ref]).get(ref)

    def ref(self, contact: str) -> str:
        """The key table's name for a (normalised) contact."""
        return hmac.new(self._ref_key, contact.encode(), hashlib.sha256).hexdigest()

    def _wrap_key(self, key_id: str, raw: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._wrap.encrypt(nonce, raw, b"key " + key_id.encode())

    def _unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        return self._wrap.decrypt(
            wrapped[:_NONCE], wrapped[_NONCE:], b"key " + key_id.encode()
        )

    def _remember(self, contact: str | None, key_id: str, wrapped: bytes) -> _DataKey:
        try:
            raw = self._unwrap(key_id, wrapped)
        except InvalidTag:
            raise StoreError(
                f"store {self.display}: contact key {key_id} is damaged"
            ) from None
        key = _DataKey(key_id, raw, AESGCM(raw))
        self._by_id[key_id] = key
        if contact is not None:
            self._by_contact[contact] = key
        return key

    def ensure(self, contacts: Iterable[str]) -> None:
        """Make sure every contact has a stored key (one for each new one)."""
        refs = {self.ref(c): c for c in contacts if c not in self._by_contact}
        if not refs:
            return
        self.start()
        found = self.table.by_refs(list(refs))
        missing = [ref for ref in refs if ref not in found]
        if missing:
            rows = []
            for ref in missing:
                key_id = secrets.token_hex(8)
                rows.append((ref, key_id, self._wrap_key(key_id, os.urandom(32))))
            self.table.insert(rows)
            # Another writer may have stored a key for the same contact first.
            found |= self.table.by_refs(missing)
        for ref, (key_id, wrapped) in found.items():
            self._remember(refs[ref], key_id, wrapped)

    def _contact_key(self, contact: str) -> _DataKey:
        key = self._by_contact.get(contact)
        if key is not None:
            return key
        if self._scratch is not None:
            # A dry run: look, but store nothing.
            found = self.stored_key(contact)
            if found is not None:
                return self._remember(contact, *found)
            return self._scratch.setdefault(
                contact, _DataKey("0" * 16, b"", AESGCM(os.urandom(32)))
            )
        if self._locked:
            # Writing a key now would wait on the import's own write lock.
            raise RuntimeError("no key prepared for a contact of this import")
        self.ensure([contact])
        return self._by_contact[contact]

    def _key_by_id(self, key_id: str) -> _DataKey | None:
        if key_id in self._by_id:
            return self._by_id[key_id]
        wrapped = self.table.by_key_id(key_id) if self.started else None
        if wrapped is None:
            self._by_id[key_id] = None
            return None
        return self._remember(None, key_id, wrapped)

    def _shared_key(self, key_ids: Sequence[str]) -> AESGCM | None:
        label = "+".join(key_ids)
        if label in self._shared:
            return self._shared[label]
        keys = [self._key_by_id(k) for k in key_ids]
        aead = None
        if all(k is not None for k in keys):
            material = b"".join(k.raw for k in keys if k is not None)
            aead = AESGCM(_derive(material, b"shared text"))
        self._shared[label] = aead
        return aead

    def forget_key(self, contact: str) -> tuple[str | None, bool]:
        """Destroy a contact's key: its key id (None when it had none) and
        whether the store's files hold no copy of it any more. The files
        are scrubbed even when there was no key, so running this again
        clears a copy that a concurrent reader kept the last time."""
        found = self.stored_key(contact)
        scrubbed = self.table.delete(self.ref(contact)) if self.started else True
        if found is None:
            return None, scrubbed
        key_id = found[0]
        self._by_contact.pop(contact, None)
        self._by_id[key_id] = None
        for label in [lb for lb in self._shared if key_id in lb.split("+")]:
            self._shared[label] = None
        return key_id, scrubbed

    # Imports: every key is written before the store's write lock is taken.

    def noting(self, items: Iterable[ImportItem]) -> Iterator[ImportItem]:
        """Pass import items through, noting the contacts they name."""
        from engine.importing.native import Located

        noted = self._noted
        for item in items:
            if isinstance(item, Located):
                noted.update(_contacts(item.event))
            yield item

    @contextmanager
    def batch(self, dry_run: bool) -> Iterator[None]:
        """Around an import's write: keys of the noted contacts are stored
        first; a dry run keeps keys for new contacts in memory only."""
        noted, self._noted = self._noted, set()
        if dry_run:
            self._scratch = {}
        else:
            # Before the write lock: the key table is written on its own.
            self.start()
            self.ensure(noted)
            self._locked = True
        try:
            yield
        finally:
            self._scratch = None
            self._locked = False

    # Events

    def seal(self, event: Event) -> bytes:
        """The stored bytes of an event, its personal fields sealed."""
        state: bytes = event.__pydantic_serializer__.to_json(event, exclude_none=True)
        fields = PERSONAL.get(event.type)
        if fields is None:
            return state
        if self._scratch is None:
            # Sealed bytes need the key table that marks the store encrypted.
            self.start()
        data: dict[str, Any] = orjson.loads(state)
        deal = _context(data)
        if fields.owner is not None:
            key = self._contact_key(data[fields.owner])
            for name in (fields.owner, *fields.owned):
                if name in data:
                    data[name] = _seal(key.aead, key.key_id, data[name], deal, name)
        if fields.participants:
            self._seal_touchpoint(data, deal)
        for name in fields.store:
            if name in data:
                data[name] = _seal(self._store, _STORE_LABEL, data[name], deal, name)
        data[SEALED] = 1
        return orjson.dumps(data)

    def _seal_touchpoint(self, data: dict[str, Any], deal: str) -> None:
        key_ids: list[str] = []
        if "participants" in data:
            sealed = []
            for contact in data["participants"]:
                key = self._contact_key(contact)
                key_ids.append(key.key_id)
                sealed.append(
                    _seal(key.aead, key.key_id, contact, deal, "participants")
                )
            data["participants"] = sealed
        everyone = self._touchpoint_keys(
            data["deal"],
            data["touchpoint"],
            key_ids,
            logged=data["type"] == "TouchpointLogged",
            fetch=True,
        )
        if "summary" not in data:
            return
        # Only keys that still exist: a correction after a forget is new data.
        live = sorted(k for k in everyone if self._key_by_id(k) is not None)
        aead = self._shared_key(live) if live else self._store
        if aead is None:
            raise RuntimeError("a live key could not be read")
        label = "+".join(live) if live else _STORE_LABEL
        data["summary"] = _seal(aead, label, data["summary"], deal, "summary")

    def _touchpoint_keys(
        self,
        deal: str,
        touchpoint: str,
        key_ids: Iterable[str],
        *,
        logged: bool,
        fetch: bool,
    ) -> set[str]:
        """Everyone ever on a touchpoint (a correction's summary is theirs).

        ``fetch``: on a miss, read the deal (sealing a correction only).
        """
        touchpoints = self._memo.get(deal)
        if touchpoints is None or (not logged and touchpoint not in touchpoints):
            if fetch and not logged and self.read_deal is not None:
                # Reading the deal fills the memo as its events are opened.
                self.read_deal(deal)
            touchpoints = self._memo.setdefault(deal, {})
        self._memo.move_to_end(deal)
        while len(self._memo) > _MEMO_DEALS:
            self._memo.popitem(last=False)
        if logged:
            touchpoints[touchpoint] = set(key_ids)
        else:
            touchpoints.setdefault(touchpoint, set()).update(key_ids)
        return touchpoints[touchpoint]

    def open(self, cls: type[Event], state: bytes) -> Event:
        """The event of stored bytes; erased fields read as placeholders."""
        data: dict[str, Any] = orjson.loads(state)
        if data.pop(SEALED, None) is None:
            return cls.model_validate_json(state)
        fields = PERSONAL.get(data.get("type", ""), Fields())
        deal = _context(data)
        if fields.owner is not None:
            data[fields.owner] = self._open_contact(
                data[fields.owner], deal, fields.owner
            )
            for name in fields.owned:
                if name in data:
                    data[name] = self._open_text(data[name], deal, name)
        if fields.participants:
            if "participants" in data:
                envelopes = data["participants"]
                data["participants"] = [
                    self._open_contact(e, deal, "participants") for e in envelopes
                ]
                ids = [_label(e) for e in envelopes]
            else:
                ids = []
            self._touchpoint_keys(
                data["deal"],
                data["touchpoint"],
                ids,
                logged=data["type"] == "TouchpointLogged",
                fetch=False,
            )
            if "summary" in data:
                data["summary"] = self._open_text(data["summary"], deal, "summary")
        for name in fields.store:
            if name in data:
                data[name] = self._open_text(data[name], deal, name)
        return cls.model_validate_json(orjson.dumps(data))

    def _open_contact(self, envelope: str, deal: str, name: str) -> str:
        try:
            return self._open(envelope, deal, name)
        except Erased:
            return ERASED_PREFIX + _label(envelope)

    def _open_text(self, envelope: str, deal: str, name: str) -> str:
        try:
            return self._open(envelope, deal, name)
        except Erased:
            return ERASED_TEXT

    def _open(self, envelope: str, deal: str, name: str) -> str:
        label = _label(envelope)
        aead: AESGCM | None
        if label == _STORE_LABEL:
            aead = self._store
        elif name == "summary":
            aead = self._shared_key(label.split("+"))
        else:
            key = self._key_by_id(label)
            aead = None if key is None else key.aead
        if aead is None:
            raise Erased
        try:
            blob = base64.b64decode(envelope.rsplit(":", 1)[1])
            plain = aead.decrypt(blob[:_NONCE], blob[_NONCE:], _aad(deal, name))
        except (InvalidTag, ValueError, binascii.Error):
            raise StoreError(
                f"store {self.display}: the {name} of an event of deal "
                f"{deal.split(chr(0))[0]!r} "
                "cannot be decrypted (damaged)"
            ) from None
        return plain.decode()


def _context(data: dict[str, Any]) -> str:
    """What a sealed field is bound to besides its name: moving it to another
    event or deal makes it undecryptable."""
    return f"{data['deal']}\x00{data['type']}\x00{data['occurred_at']}"


def _aad(deal: str, name: str) -> bytes:
    return f"{deal}\x00{name}".encode()


def _seal(aead: AESGCM, label: str, value: str, deal: str, name: str) -> str:
    nonce = os.urandom(_NONCE)
    blob = nonce + aead.encrypt(nonce, value.encode(), _aad(deal, name))
    return f"{_ENVELOPE}:{label}:{base64.b64encode(blob).decode()}"


def _label(envelope: str) -> str:
    parts = envelope.split(":", 2)
    if len(parts) != 3 or parts[0] != _ENVELOPE:
        raise StoreError(f"a stored personal field is not an envelope: {envelope!r}")
    return parts[1]


def _contacts(event: Event) -> list[str]:
    found = [getattr(event, name, None) for name in ("contact", "by")]
    contacts = [c for c in found if isinstance(c, str)]
    participants = getattr(event, "participants", None)
    if participants:
        contacts += participants
    return contacts


# The application's side


def attach(
    app: DealTrail, environ: Mapping[str, str] | None = None, *, keyless: bool = False
) -> None:
    """Turn on encryption at rest for ``app`` when a master key is configured;
    refuse an encrypted store when none is, or with ``keyless`` open it for
    reading stored bytes only (its events then cannot be read)."""
    master = master_key_from_env(os.environ if environ is None else environ)
    table = key_table(app)
    if master is None:
        if table.exists():
            refusal = (
                f"store {app.config.display} is encrypted; set {KEY_ENV} or "
                f"{KEY_FILE_ENV} to its key"
            )
            if not keyless:
                raise StoreError(refusal)
            app.event_mapper.sealed = refusal
        return
    privacy = Privacy(master, table, app.config.display)
    privacy.check()
    privacy.read_deal = lambda key: list(app._history(key))
    app.event_mapper.privacy = privacy


@dataclass(frozen=True, slots=True)
class Forgotten:
    contact: str
    key_id: str | None  # None: there was no key to destroy
    events: int  # events whose fields now read as erased
    plaintext: int  # events recorded before encryption that still name them
    # False when a concurrent reader kept an old copy of the key's bytes in
    # the store's files; forgetting again after it ends clears it.
    scrubbed: bool = True


def forget(app: DealTrail, contact: str, rules: RuleSet) -> Forgotten:
    """Destroy ``contact``'s key and rebuild the views without their data."""
    # Imported here: the application module imports this one.
    from engine.application import _translating

    # The key table's reads and writes fail as the application's own do.
    return _translating(_forget)(app, contact, rules)


def _forget(app: DealTrail, contact: str, rules: RuleSet) -> Forgotten:
    try:
        contact = normalise_contact(contact)
    except ValueError as e:
        raise InputError(f"contact: {e}") from None
    privacy = app.event_mapper.privacy
    if privacy is None:
        raise InputError(
            f"forget needs encryption at rest: set {KEY_ENV} or {KEY_FILE_ENV}"
        )
    found = privacy.stored_key(contact)
    key_id = None if found is None else found[0]
    events, plaintext = _count_mentions(app, contact, key_id)
    _, scrubbed = privacy.forget_key(contact)
    app.update_views(rules, rebuild=True)
    return Forgotten(contact, key_id, events, plaintext, scrubbed)


def _count_mentions(
    app: DealTrail, contact: str, key_id: str | None
) -> tuple[int, int]:
    """Sealed events using ``key_id``, and unsealed events naming ``contact``."""
    needle = None if key_id is None else key_id.encode()
    name = contact.encode()
    sealed = plain = 0
    start = 1
    while True:
        page = app.recorder.select_notifications(start=start, limit=1000)
        for n in page:
            state = n.state
            if needle is not None and needle in state:
                data = orjson.loads(state)
                if data.get(SEALED) and key_id in _labels(data):
                    sealed += 1
            elif name in state:
                event = app.event_mapper.decode(n.topic, state)
                if contact in _contacts(event):
                    plain += 1
        if len(page) < 1000:
            return sealed, plain
        start = page[-1].id + 1


def _labels(data: dict[str, Any]) -> set[str]:
    labels: set[str] = set()
    for value in data.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item.startswith(_ENVELOPE + ":"):
                labels.update(_label(item).split("+"))
    return labels

"""Tamper evidence: a hash chain over each deal's stored events.

Every stored event gets a digest linking it to the one before it in its
deal::

    digest_0 = BLAKE2b-256("dealtrail chain v1" NUL || deal id (16 bytes))
    digest_n = BLAKE2b-256(digest_{n-1} || n (8 bytes, big-endian)
                           || len(topic) (4 bytes) || topic || state)

where ``state`` is the event's stored bytes (which hold its recording time)
and ``topic`` its type. The digests sit beside the events and each deal's
last one, its chain head, in a table of heads, all written in the
transaction that writes the events. Recomputing the chains then shows an
event changed, deleted, reordered or inserted behind the store's back, and
a deal cut short (its head is beyond its last event). Notification ids (the
store's order) are not covered: verification only checks that each deal's
follow its positions.

Events recorded before the store had chains have no digests: the store
remembers the last notification id it held when the chain tables were made,
and events up to it are *unchained*, reported but not counted as broken. A
deal that was continued after that starts its chain at its first new event
(from ``digest_0``); its earlier events are not covered.

This module is pure: the recorders read and write, and hand rows here.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Generic, TypeVar
from uuid import UUID

from engine.deal import deal_id
from engine.errors import quoted

DIGEST_SIZE = 32
_GENESIS = b"dealtrail chain v1\x00"
_STORE = b"dealtrail store head v1\x00"

K = TypeVar("K", bound=Hashable)


def genesis(originator: UUID | str) -> bytes:
    """The digest a deal's chain starts from."""
    uuid = originator if isinstance(originator, UUID) else UUID(originator)
    return blake2b(_GENESIS + uuid.bytes, digest_size=DIGEST_SIZE).digest()


def link(previous: bytes, version: int, topic: str, state: bytes) -> bytes:
    """The digest of the event at ``version`` following ``previous``."""
    digest = blake2b(previous, digest_size=DIGEST_SIZE)
    name = topic.encode()
    digest.update(version.to_bytes(8, "big"))
    digest.update(len(name).to_bytes(4, "big"))
    digest.update(name)
    digest.update(state)
    return digest.digest()


@dataclass(frozen=True, slots=True)
class Head:
    """A deal's chain head: its last chained position and that digest."""

    version: int
    digest: bytes


class ChainWriter(Generic[K]):
    """Links new events to their deals' chains within one transaction.

    ``read_heads`` fetches the stored heads of deals a batch of events
    continues (one read per batch); ``drain`` hands over the heads the batch
    advanced, to be written in the same transaction, and forgets them, so
    memory holds one batch's deals however many a transaction writes.
    """

    def __init__(self, read_heads: Callable[[Sequence[K]], Mapping[K, Head]]) -> None:
        self._read_heads = read_heads
        self._heads: dict[K, Head | None] = {}
        self._touched: dict[K, Head] = {}

    def drain(self) -> list[tuple[K, Head]]:
        """The heads advanced since the last drain; written, they are read
        back from the store when a later batch continues their deals."""
        touched = list(self._touched.items())
        self._heads.clear()
        self._touched.clear()
        return touched

    def link(
        self, events: Iterable[tuple[K, int, str, bytes]]
    ) -> list[tuple[K, int, bytes]]:
        """(originator, version, digest) of each event, in the order given;
        each deal's events must come in ascending version order."""
        events = list(events)
        unseen = list(dict.fromkeys(e[0] for e in events if e[0] not in self._heads))
        if unseen:
            found = self._read_heads(unseen)
            for originator in unseen:
                self._heads[originator] = found.get(originator)
        links = []
        for originator, version, topic, state in events:
            head = self._heads[originator]
            previous = genesis(str(originator)) if head is None else head.digest
            digest = link(previous, version, topic, state)
            self._heads[originator] = self._touched[originator] = Head(version, digest)
            links.append((originator, version, digest))
        return links


def store_digest(heads: Iterable[tuple[UUID | str, Head]]) -> tuple[int, bytes]:
    """The number of heads and one digest over them all, taken in the order
    given (deal id order): the store's head."""
    digest = blake2b(_STORE, digest_size=DIGEST_SIZE)
    count = 0
    for originator, head in heads:
        uuid = originator if isinstance(originator, UUID) else UUID(originator)
        digest.update(uuid.bytes)
        digest.update(head.version.to_bytes(8, "big"))
        digest.update(head.digest)
        count += 1
    return count, digest.digest()


# Verification


@dataclass(frozen=True, slots=True)
class ChainRow:
    """One stored event as verification reads it."""

    originator: str  # the deal id, as 32 hex digits
    notification: int
    version: int
    topic: str
    state: bytes | None  # None: set to NULL outside dealtrail
    digest: bytes | None


@dataclass(frozen=True, slots=True)
class ChainSnapshot:
    """What a recorder reads, in one consistent snapshot, to verify."""

    # Events up to this notification id were recorded before chains.
    chained_after: int
    heads: Mapping[str, Head]
    # Digests whose event is gone: deal id -> positions.
    orphans: Mapping[str, Sequence[int]]
    # Every event, ordered by deal id and version.
    rows: Iterable[ChainRow]


@dataclass(frozen=True, slots=True)
class Break:
    """The first broken link of a deal."""

    deal: str  # the deal's key (its id when no event names it)
    position: int
    problem: str

    def __str__(self) -> str:
        return f"{self.deal}: position {self.position}: {self.problem}"


@dataclass(frozen=True, slots=True)
class DealAnchor:
    """A deal's chain head as of a store position."""

    deal: str
    version: int
    digest: str  # hex


@dataclass(frozen=True, slots=True)
class StoreAnchor:
    """The store's head (a digest over every deal's chain head) as of a
    store position."""

    deals: int
    digest: str  # hex


@dataclass(slots=True)
class ChainReport:
    deals: int = 0
    events: int = 0
    chained_deals: int = 0
    chained_events: int = 0
    # Events recorded before the store had chains, and the deals they are in.
    unchained_deals: int = 0
    unchained_events: int = 0
    breaks: list[Break] = field(default_factory=list)
    # Deal key -> its chain head as of ``at`` (recomputed, not read).
    anchors: dict[str, DealAnchor] = field(default_factory=dict)
    # Every deal key met.
    keys: set[str] = field(default_factory=set)
    store: StoreAnchor | None = None

    @property
    def intact(self) -> bool:
        return not self.breaks


def verify(
    snapshot: ChainSnapshot,
    deal_of: Callable[[str, bytes], str],
    *,
    at: int | None = None,
) -> ChainReport:
    """Recompute every chain in ``snapshot``; report the first broken link of
    each deal and the heads as of store position ``at`` (default: all)."""
    report = ChainReport()
    store_heads: list[tuple[str, Head]] = []
    seen: set[str] = set()
    for originator, rows in _by_deal(snapshot.rows):
        seen.add(originator)
        _verify_deal(originator, rows, snapshot, deal_of, at, report, store_heads)
    for originator in sorted(set(snapshot.heads) - seen):
        # Every event of a chained deal is gone.
        report.deals += 1
        report.chained_deals += 1
        head = snapshot.heads[originator]
        report.breaks.append(
            Break(
                f"deal id {originator}",
                1,
                f"every event is missing (its chain head is at position "
                f"{head.version})",
            )
        )
    for originator in sorted(set(snapshot.orphans) - seen - set(snapshot.heads)):
        # Every event and the head are gone, but digests remain.
        orphans = sorted(snapshot.orphans[originator])
        report.deals += 1
        report.chained_deals += 1
        report.breaks.append(
            Break(
                f"deal id {originator}",
                orphans[0],
                f"every event is missing (its digests are still stored, up to "
                f"position {orphans[-1]})",
            )
        )
    if store_heads:
        count, digest = store_digest(store_heads)
        report.store = StoreAnchor(count, digest.hex())
    return report


def _by_deal(rows: Iterable[ChainRow]) -> Iterator[tuple[str, list[ChainRow]]]:
    current: list[ChainRow] = []
    for row in rows:
        if current and row.originator != current[0].originator:
            yield current[0].originator, current
            current = []
        current.append(row)
    if current:
        yield current[0].originator, current


def _verify_deal(
    originator: str,
    rows: list[ChainRow],
    snapshot: ChainSnapshot,
    deal_of: Callable[[str, bytes], str],
    at: int | None,
    report: ChainReport,
    store_heads: list[tuple[str, Head]],
) -> None:
    report.deals += 1
    report.events += len(rows)
    try:
        uuid = UUID(originator)
    except ValueError:
        # Only SQLite's text column can hold such an id.
        report.chained_deals += 1
        report.breaks.append(
            Break(
                f"deal id {quoted(originator)}",
                1,
                "not a deal id (events stored outside dealtrail)",
            )
        )
        return
    key = _key(uuid, rows, deal_of)
    report.keys.add(key)
    previous: bytes | None = None  # None until the chain starts
    anchor: Head | None = None
    problem: Break | None = None
    expected = 1
    unchained = 0
    last = 0  # the notification id of the deal's previous event
    for row in rows:
        if row.version != expected:
            problem = Break(
                key,
                expected,
                f"event missing (the next stored event is at position {row.version})",
            )
            break
        expected += 1
        if row.notification < 1:
            # The store numbers events from 1: an id below that was rewritten,
            # perhaps to make a chained event pass as one from before chains.
            problem = Break(
                key,
                row.version,
                f"notification id {row.notification} is below 1 "
                "(renumbered outside dealtrail)",
            )
            break
        if row.notification < last:
            # The store numbers a deal's events in the order it writes them.
            problem = Break(
                key,
                row.version,
                f"notification id {row.notification} is below the previous "
                f"event's, {last} (renumbered outside dealtrail)",
            )
            break
        last = row.notification
        legacy = row.notification <= snapshot.chained_after
        if previous is None and legacy and row.digest is None:
            unchained += 1
            continue
        if row.state is None:
            problem = Break(
                key, row.version, "payload missing (the stored state is NULL)"
            )
            break
        if row.digest is None:
            problem = _broken(
                key,
                uuid,
                row,
                deal_of,
                "digest missing (an event was "
                "inserted, or its digest deleted, outside dealtrail)",
            )
            break
        digest = link(
            genesis(uuid) if previous is None else previous,
            row.version,
            row.topic,
            row.state,
        )
        if digest != row.digest:
            problem = _broken(
                key, uuid, row, deal_of, _mismatch(uuid, row, row.state, rows)
            )
            break
        previous = digest
        report.chained_events += 1
        if at is None or row.notification <= at:
            anchor = Head(row.version, digest)
    head = snapshot.heads.get(originator)
    if problem is None:
        problem = _check_head(key, rows[-1].version, previous, head)
    if problem is None:
        orphans = sorted(snapshot.orphans.get(originator, ()))
        if orphans:
            problem = Break(
                key, orphans[0], "event missing (its digest is still stored)"
            )
    if unchained:
        report.unchained_deals += 1
        report.unchained_events += unchained
    if previous is None and head is None and problem is None:
        return
    report.chained_deals += 1
    if problem is not None:
        report.breaks.append(problem)
        return
    if anchor is not None:
        report.anchors[key] = DealAnchor(key, anchor.version, anchor.digest.hex())
        store_heads.append((originator, anchor))


def _check_head(
    key: str, last: int, previous: bytes | None, head: Head | None
) -> Break | None:
    if previous is None:
        if head is None:
            return None
        return Break(
            key, head.version, "chain head stored but the events have no digests"
        )
    if head is None:
        return Break(key, last, "chain head missing")
    if head.version > last:
        return Break(
            key,
            last + 1,
            f"event missing (the chain head is at position {head.version}, "
            f"the last event at {last})",
        )
    if head.version < last:
        return Break(
            key,
            head.version + 1,
            f"event beyond the chain head (at position {head.version}): "
            "inserted outside dealtrail",
        )
    if head.digest != previous:
        return Break(key, last, "chain head does not match the last event's digest")
    return None


def _broken(
    key: str,
    originator: UUID,
    row: ChainRow,
    deal_of: Callable[[str, bytes], str],
    problem: str,
) -> Break:
    """The break at ``row``; an event naming another deal than the one it is
    stored under was copied or moved there, whatever its digest says."""
    named = _named(row, deal_of)
    if named is not None and _deal_id(named) != originator:
        problem = (
            f"event of deal {quoted(named)} stored under this deal's id "
            "(inserted or moved outside dealtrail)"
        )
    return Break(key, row.version, problem)


def _mismatch(
    originator: UUID, row: ChainRow, state: bytes, rows: Sequence[ChainRow]
) -> str:
    """Why an event (``row``, its stored bytes ``state``) does not match its
    digest: moved from another position, or changed."""
    stored = {r.version: r.digest for r in rows}
    for position, digest in stored.items():
        if position == row.version or digest is None:
            continue
        before = stored.get(position - 1) or genesis(originator)
        if link(before, position, row.topic, state) == digest:
            return f"event reordered (it was recorded at position {position})"
    return (
        "payload or recording time changed, or an event inserted "
        "(the event does not match its digest)"
    )


def _key(
    originator: UUID, rows: Sequence[ChainRow], deal_of: Callable[[str, bytes], str]
) -> str:
    """The deal's key: the first one its payloads name that maps to its id (an
    event copied in from another deal names that deal, not this one)."""
    for row in rows:
        named = _named(row, deal_of)
        if named is not None and _deal_id(named) == originator:
            return named
    return f"deal id {originator.hex}"


def _named(row: ChainRow, deal_of: Callable[[str, bytes], str]) -> str | None:
    """The deal key a stored payload names; None when it names none."""
    if row.state is None:
        return None
    try:
        return deal_of(row.topic, row.state)
    except Exception:
        return None  # a damaged payload names no deal


def _deal_id(key: str) -> UUID | None:
    try:
        return deal_id(key)
    except UnicodeError:
        return None  # a lone surrogate: no deal's key

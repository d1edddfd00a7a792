"""The one public entry point: commands that record events, and queries."""

from __future__ import annotations

import random
import sqlite3
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import wraps
from pathlib import Path
from typing import Any, Generic, ParamSpec, TypeVar, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    IntegrityError,
    Notification,
    PersistenceError,
    RecordConflictError,
    StoredEvent,
    Tracking,
)

from engine.chain import (
    ChainReport,
    DealAnchor,
    StoreAnchor,
    store_digest,
)
from engine.chain import verify as recompute_chains
from engine.deal import Deal, deal_id
from engine.errors import (
    ConflictError,
    DealtrailError,
    DomainError,
    ImportRefused,
    InputError,
    StoreError,
    UnknownDealError,
)
from engine.events import (
    DealOpened,
    Event,
)
from engine.importing.native import (
    MAX_REPORTED_ERRORS,
    ImportItem,
    LineError,
    Located,
    iter_lines,
)
from engine.importing.spool import Spool
from engine.persistence import EventMapper, Recorded
from engine.privacy import attach as attach_privacy
from engine.projections.accounts import AccountsReport, accounts
from engine.projections.audit import Audit, audit, default_evaluation_time
from engine.projections.backtest import Backtest, backtest
from engine.projections.deal_state import deal_state
from engine.projections.findings import AccountContext
from engine.projections.prepare import DealTimeline, prepare, timeline_key
from engine.projections.replay import Replay, replay
from engine.projections.summary import DealSummary, summarise
from engine.rules import RuleSet
from engine.sqlite import BulkInsert, BulkRecorder
from engine.store import (
    DEFAULT_STORE,
    StoreConfig,
    create_private_file,
    parse_store_url,
)
from engine.views import (
    VIEW,
    Progress,
    SQLiteViews,
    ViewRow,
    ViewStatus,
    ViewStore,
    postgres_views_class,
)

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class Analysis(Generic[M]):
    """A projection's result and the store position it was computed at."""

    result: M
    position: int


# Optimistic-concurrency retries: a conflicting writer means re-reading the
# deal and deciding again; the budget covers heavy contention on one deal.
MAX_ATTEMPTS = 50
# Stored events handed to the database at a time during an import.
WRITE_BATCH = 1000
PROGRESS_EVERY = 10_000
# How decoding fails on stored bytes changed outside dealtrail (privacy's
# own StoreError for a damaged sealed field passes through).
UNDECODABLE = (ValueError, TypeError, KeyError, AttributeError, AssertionError)


def _translating(method: Callable[P, R]) -> Callable[P, R]:
    """Turn storage failures into StoreError naming the (redacted) store."""

    @wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except DealtrailError:
            raise
        except (PersistenceError, OSError, sqlite3.Error) as e:
            app = args[0]
            assert isinstance(app, DealTrail)
            if _is_lock_timeout(e):
                raise _lock_timeout_error(app.config) from e
            raise StoreError(f"store {app.config.display}: {_first_line(e)}") from e

    return wrapper


def _is_lock_timeout(error: BaseException) -> bool:
    """SQLite's and PostgreSQL's ways of saying the lock wait ran out."""
    text = str(error).lower()
    return "database is locked" in text or "lock timeout" in text


def _lock_timeout_error(config: StoreConfig) -> StoreError:
    return StoreError(
        f"store {config.display}: another writer held the lock longer than "
        f"the lock timeout ({config.lock_timeout} s); try again"
    )


def _first_line(error: BaseException) -> str:
    """Driver messages can span lines; the CLI promises one."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@dataclass(frozen=True, slots=True)
class StoreHealth:
    kind: str
    display: str
    size_bytes: int
    file_mode: int | None  # SQLite only
    events: int
    deals: int
    views: ViewStatus


@dataclass(frozen=True, slots=True)
class BatchError:
    source: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.message}" if self.source else self.message


@dataclass(slots=True)
class BatchResult:
    """What a batch of events did (or, on a dry run, would do) to the store."""

    recorded: Counter[str] = field(default_factory=Counter)
    unchanged: int = 0
    # Restated facts kept as first recorded, by what could not be carried.
    kept: Counter[str] = field(default_factory=Counter)
    new_deals: set[str] = field(default_factory=set)
    existing_deals: set[str] = field(default_factory=set)
    errors: list[BatchError] = field(default_factory=list)
    error_count: int = 0

    @property
    def total_recorded(self) -> int:
        return sum(self.recorded.values())


class DealTrail(Application[UUID]):
    name = "dealtrail"

    def __init__(
        self,
        store: str | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        keyless: bool = False,
    ) -> None:
        """Open (or create) the store. ``keyless`` opens an encrypted store
        without its key for what reads only stored bytes, such as the hash
        chains: reading or writing its events then fails in one line."""
        self.config: StoreConfig = parse_store_url(store or DEFAULT_STORE)
        self._views: ViewStore | None = None
        self._views_lock = threading.Lock()
        self._clock = clock or (lambda: datetime.now(UTC))
        path = self.config.sqlite_path
        if path is not None and not path.exists():
            # Before the library opens it: a new file would follow the umask.
            create_private_file(path)
        try:
            if self.config.kind == "postgresql":
                # Concurrent CREATE statements race in PostgreSQL ("tuple
                # concurrently updated"): create tables under a lock instead.
                with _postgres_setup_lock(self.config):
                    super().__init__(env=self.config.env)
            else:
                super().__init__(env=self.config.env)
        except DealtrailError:
            raise
        except Exception as e:
            if _is_lock_timeout(e):
                raise _lock_timeout_error(self.config) from e
            raise StoreError(
                f"cannot open store {self.config.display}: {_first_line(e)}"
            ) from e
        # Personal data: encryption at rest when a master key is configured
        # (engine/privacy.py); an encrypted store is refused without one.
        try:
            # The key table is written here (on first use): translate a lock
            # timeout or a storage failure as every command does.
            _translating(attach_privacy)(self, keyless=keyless)
        except BaseException:
            self.close()
            raise

    def construct_mapper(self) -> EventMapper:
        self.event_mapper = EventMapper(
            compressor=self.factory.compressor(), cipher=self.factory.cipher()
        )
        return self.event_mapper

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the clock must return aware datetimes")
        return now

    # Commands

    @_translating
    def record(self, event: Event) -> Event | None:
        """Record one event. Returns it as stored, or None if it was already."""
        for attempt in range(MAX_ATTEMPTS):
            deal = self._load(event.deal)
            stored = deal.decide(event, self._now())
            if stored is None:
                return None
            if self._try_save([deal], attempt):
                return stored
        raise self._conflict([event.deal])

    @_translating
    def record_many(
        self,
        events: Sequence[Event],
        *,
        locations: Sequence[str] | None = None,
        dry_run: bool = False,
    ) -> BatchResult:
        """Record a batch atomically: all events, or none when any is refused.

        The whole batch is decided before anything is written, and written
        in one transaction covering every deal it touches.
        """
        by_deal: dict[str, list[tuple[str, Event]]] = {}
        for index, event in enumerate(events):
            where = (
                locations[index]
                if locations is not None and index < len(locations)
                else event.source or ""
            )
            by_deal.setdefault(event.deal, []).append((where, event))
        for entries in by_deal.values():
            # Stable: file order, but a deal's opening first.
            entries.sort(key=lambda entry: not isinstance(entry[1], DealOpened))
        for attempt in range(MAX_ATTEMPTS):
            result = BatchResult()
            recorded_at = self._now()
            deals = [
                self._decide_deal(key, by_deal[key], result, recorded_at)
                for key in sorted(by_deal)
            ]
            if result.error_count or dry_run:
                return result
            if self._try_save([d for d in deals if d.pending], attempt):
                return result
        raise self._conflict(sorted(by_deal))

    def import_native(
        self, sources: Iterable[tuple[str, Iterable[bytes]]], *, dry_run: bool = False
    ) -> BatchResult:
        """Import native line files, all or nothing (see ``import_items``)."""
        return self.import_items(
            (item for name, lines in sources for item in iter_lines(lines, name)),
            dry_run=dry_run,
        )

    def import_events(
        self,
        events: Sequence[Event],
        *,
        locations: Sequence[str] | None = None,
        dry_run: bool = False,
    ) -> BatchResult:
        """Import validated events, all or nothing (see ``import_items``)."""
        return self.import_items(
            (
                Located(event, locations[i] if locations else event.source or "")
                for i, event in enumerate(events)
            ),
            dry_run=dry_run,
        )

    @_translating
    def import_items(
        self,
        items: Iterable[ImportItem],
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> BatchResult:
        """Import what a reader yields: every event, or nothing.

        Every item is read (and bad lines counted) before anything is
        decided; then deals are decided one at a time, a deal's opening
        first and then its events in the order given, and written in one
        transaction. Memory holds one deal, not the input. Raises
        ImportRefused listing bad lines or refused events (up to a limit,
        each by its location).
        """
        if self.event_mapper.privacy is not None:
            # Personal data: contacts' keys are written before the write lock.
            items = self.event_mapper.privacy.noting(items)
        with Spool() as spool:
            errors: list[str] = []
            bad = 0
            for item in items:
                if isinstance(item, LineError):
                    bad += 1
                    if len(errors) < MAX_REPORTED_ERRORS:
                        errors.append(str(item))
                    continue
                spool.add(item)
                if progress is not None and spool.count % PROGRESS_EVERY == 0:
                    progress(spool.count, 0)
            if bad:
                raise ImportRefused(errors, bad, "bad line")
            return self._import_spooled(spool, dry_run, progress)

    def _import_spooled(
        self, spool: Spool, dry_run: bool, progress: Progress | None
    ) -> BatchResult:
        result = BatchResult()
        with self._bulk_insert(dry_run) as insert:
            # Read the clock once the write lock is held: recording times
            # then follow the store's order.
            recorded_at = self._now()
            pending: list[StoredEvent] = []
            decided = 0
            for key, entries in spool.deals():
                deal = self._decide_deal(key, entries, result, recorded_at)
                if not result.error_count:
                    pending += map(self.mapper.to_stored_event, deal.collect_events())
                    if len(pending) >= WRITE_BATCH:
                        insert(pending)
                        pending = []
                decided += len(entries)
                if progress is not None and decided % PROGRESS_EVERY < len(entries):
                    progress(decided, spool.count)
            if result.error_count:
                problems = [str(e) for e in result.errors]
                # Raised inside the block: the transaction rolls back.
                raise ImportRefused(problems, result.error_count, "refused event")
            insert(pending)
        return result

    @contextmanager
    def _bulk_insert(self, dry_run: bool) -> Iterator[BulkInsert]:
        privacy = self.event_mapper.privacy
        # Personal data: the noted contacts' keys are stored before the lock.
        with privacy.batch(dry_run) if privacy is not None else nullcontext():
            if dry_run:
                yield lambda stored_events: None
                return
            with self._bulk_recorder.bulk_insert() as insert:
                yield insert

    @property
    def _bulk_recorder(self) -> BulkRecorder:
        # The store URL always selects one of dealtrail's recorders.
        return cast(BulkRecorder, self.recorder)

    def _decide_deal(
        self,
        key: str,
        entries: Iterable[tuple[str, Event]],
        result: BatchResult,
        recorded_at: datetime,
    ) -> Deal:
        """Decide one deal's events in the order given, counting into result."""
        deal = self._load(key)
        existed = deal.opened is not None
        for where, event in entries:
            # A synced source's later export: edits become corrections.
            restated = deal.restate(event, recorded_at)
            if restated is None:
                decided: list[Event] = [event]
            else:
                decided = restated.events
                if restated.kept is not None:
                    result.kept[restated.kept] += 1
                elif not decided:
                    result.unchanged += 1
            for one in decided:
                try:
                    stored = deal.decide(one, recorded_at)
                except DomainError as e:
                    result.error_count += 1
                    if len(result.errors) < MAX_REPORTED_ERRORS:
                        result.errors.append(BatchError(where, str(e)))
                    break
                if stored is None:
                    result.unchanged += 1
                else:
                    result.recorded[stored.type] += 1
        if existed:
            result.existing_deals.add(key)
        elif deal.opened is not None:
            result.new_deals.add(key)
        return deal

    def _try_save(self, deals: Sequence[Deal], attempt: int) -> bool:
        try:
            self.save(*deals)
        except (IntegrityError, RecordConflictError):
            pass
        else:
            return True
        # Spread retrying writers apart so they stop colliding.
        time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))
        return False

    def _conflict(self, keys: list[str]) -> ConflictError:
        shown = ", ".join(keys[:3]) + (" ..." if len(keys) > 3 else "")
        return ConflictError(
            f"gave up after {MAX_ATTEMPTS} attempts: other writers kept changing "
            f"{shown} at the same time; try again"
        )

    def _load(self, key: str) -> Deal:
        return Deal.replay(key, self._history(key))

    def _history(self, key: str) -> Iterator[Recorded]:
        for stored in self.recorder.select_events(deal_id(key)):
            try:
                recorded = self.mapper.to_domain_event(stored)
            except UNDECODABLE:
                raise self._undecodable(stored.originator_version, repr(key)) from None
            assert isinstance(recorded, Recorded)
            yield recorded

    def _undecodable(self, version: int | None, deal: str) -> StoreError:
        return StoreError(
            f"store {self.config.display}: the stored event at position {version} "
            f"of deal {deal} cannot be decoded (damaged or changed outside "
            "dealtrail); run: dealtrail verify"
        )

    def _notified(self, notification: Notification) -> Recorded:
        """A notification's event, or StoreError when it cannot be decoded."""
        try:
            recorded = self.event_mapper.to_domain_event(notification)
        except UNDECODABLE:
            deal = f"id {UUID(str(notification.originator_id)).hex}"
            raise self._undecodable(notification.originator_version, deal) from None
        assert isinstance(recorded, Recorded)
        return recorded

    # Queries

    @_translating
    def history(self, key: str) -> list[Recorded]:
        """A deal's events in recording order."""
        history = list(self._history(key))
        if not history:
            raise UnknownDealError(key)
        return history

    @_translating
    def timeline(
        self,
        key: str,
        *,
        as_of: datetime | None = None,
        as_known_at: datetime | None = None,
        recording_order: bool = False,
    ) -> list[Recorded]:
        """A deal's events in occurred order, as of a business time and/or as
        known at a time (known-at is ``logged_at`` when given, else recorded).

        ``recording_order`` keeps the order the events were decided in, which
        an import must follow to decide them again the same way.
        """
        return filter_timeline(
            self.history(key),
            as_of=as_of,
            as_known_at=as_known_at,
            sort=not recording_order,
        )

    @_translating
    def deal_keys(self) -> list[str]:
        """Every opened deal's key, sorted."""
        return sorted(opened.deal for opened in self._opened_events())

    def _opened_events(self) -> Iterator[Event]:
        start = 1
        page = 1000
        while True:
            notifications = self.recorder.select_notifications(
                start=start, limit=page, topics=["DealOpened"]
            )
            for n in notifications:
                yield self._notified(n).event
            if len(notifications) < page:
                return
            start = notifications[-1].id + 1

    # Projections

    @_translating
    def analyse(
        self,
        key: str,
        projection: Callable[[DealTimeline, RuleSet, datetime], M],
        *,
        rules: RuleSet,
        at: datetime | None = None,
        as_of: datetime | None = None,
        as_known_at: datetime | None = None,
    ) -> Analysis[M]:
        """Run a pure projection over one deal, as of/as known at a time.

        The evaluation time defaults to ``as_of`` when given, else now.
        """
        position = self.position()
        timeline = self._timeline(key, as_of=as_of, as_known_at=as_known_at)
        evaluated_at = at or as_of or self._now()
        try:
            return Analysis(projection(timeline, rules, evaluated_at), position)
        except ValueError as e:
            # A projection refuses an evaluation time before the deal opened.
            raise InputError(str(e)) from None

    # Audits, replays, accounts and backtests

    def _timeline(
        self,
        key: str,
        *,
        as_of: datetime | None = None,
        as_known_at: datetime | None = None,
    ) -> DealTimeline:
        try:
            return prepare(self.history(key), as_of=as_of, as_known_at=as_known_at)
        except ValueError:
            raise InputError(f"deal {key!r} had not been opened at that time") from None

    def _account_context(
        self, key: str, account: str, as_known_at: datetime | None, rules: RuleSet
    ) -> AccountContext:
        """The other deals of ``account``: their wins and their touches."""
        if not self.views.load(status="won", account=account):
            # Neglect needs a won deal; without one, skip reading the others.
            return AccountContext(won=(), touch_times=())
        others = []
        for other in self.views.load_keys(account=account):
            if other == key:
                continue
            try:
                others.append(self._timeline(other, as_known_at=as_known_at))
            except InputError:
                continue  # not yet known at that time
        return _context(key, [_account_facts(t, rules) for t in others])

    @_translating
    def audit(
        self,
        key: str,
        rules: RuleSet,
        *,
        at: datetime | None = None,
        as_known_at: datetime | None = None,
    ) -> Analysis[Audit]:
        """The loss audit of one deal (a pre-mortem for an open one).

        A closed deal is audited at its close unless ``at`` says otherwise;
        an open one at ``at``, by default now.
        """
        # The account context reads the views; bring them up to date once.
        self.update_views(rules)
        return Analysis(self._audit(key, rules, at, as_known_at), self.position())

    def _audit(
        self,
        key: str,
        rules: RuleSet,
        at: datetime | None,
        as_known_at: datetime | None,
        now: datetime | None = None,
    ) -> Audit:
        timeline = self._timeline(key, as_known_at=as_known_at)
        evaluated_at = at or default_evaluation_time(timeline, now or self._now())
        context = self._account_context(
            key, timeline.opened.account, as_known_at, rules
        )
        try:
            return audit(timeline, rules, evaluated_at, context)
        except ValueError as e:
            raise InputError(str(e)) from None

    @_translating
    def audits(
        self,
        rules: RuleSet,
        *,
        status: str | None = "lost",
        since: date | None = None,
        owner: str | None = None,
        account: str | None = None,
        at: datetime | None = None,
        as_known_at: datetime | None = None,
    ) -> Analysis[list[Audit]]:
        """Audits of every deal matching the filters, by deal key, each as
        ``audit`` gives it; open deals are audited at one ``now``. A deal not
        yet opened at ``at``, or as known at ``as_known_at``, is left out."""
        listed = self.summaries(rules, status=status, owner=owner, account=account)
        now = self._now()
        audits = []
        for summary in listed.result:
            closed = summary.closed_at
            if since is not None and (closed is None or closed.date() < since):
                continue
            try:
                audits.append(self._audit(summary.deal, rules, at, as_known_at, now))
            except InputError:
                if as_known_at is None and at is None:
                    raise
                # Not yet opened in that view of the record, as other
                # whole-store queries leave such deals out.
                continue
        return Analysis(audits, listed.position)

    @_translating
    def replay(
        self,
        key: str,
        rules: RuleSet,
        *,
        until: datetime | None = None,
        as_known_at: datetime | None = None,
    ) -> Analysis[Replay]:
        self.update_views(rules)
        position = self.position()
        timeline = self._timeline(key, as_known_at=as_known_at)
        context = self._account_context(
            key, timeline.opened.account, as_known_at, rules
        )
        try:
            return Analysis(replay(timeline, rules, until, context), position)
        except ValueError as e:
            raise InputError(str(e)) from None

    @_translating
    def accounts(
        self, rules: RuleSet, *, at: datetime | None = None
    ) -> Analysis[AccountsReport]:
        listed = self.summaries(rules)
        latest = max(
            (s.last_touch_at for s in listed.result if s.last_touch_at), default=None
        )
        # By default, now; or the latest touch, if one is planned for later.
        now = self._now()
        evaluated_at = at or (now if latest is None else max(now, latest))
        if latest is not None and evaluated_at < latest:
            raise InputError(
                f"accounts are judged on everything recorded, so the evaluation "
                f"time may not precede the latest touch ({latest.isoformat()})"
            )
        return Analysis(accounts(listed.result, rules, evaluated_at), listed.position)

    @_translating
    def backtest(
        self, rules: RuleSet, *, since: date | None = None
    ) -> Analysis[Backtest]:
        self.update_views(rules)
        position = self.position()
        timelines = [self._timeline(key) for key in self.deal_keys()]
        by_account: dict[str, list[_AccountFacts]] = {}
        for t in timelines:
            by_account.setdefault(t.opened.account, []).append(_account_facts(t, rules))
        contexts = {
            t.deal: _context(t.deal, by_account[t.opened.account]) for t in timelines
        }
        try:
            return Analysis(backtest(timelines, rules, since, contexts), position)
        except ValueError as e:
            raise InputError(str(e)) from None

    # Views

    @property
    def views(self) -> ViewStore:
        if self._views is not None:
            return self._views
        with self._views_lock:
            if self._views is None:
                self._views = self._construct_views()
            return self._views

    def _construct_views(self) -> ViewStore:
        if self.config.kind == "postgresql":
            cls: type[Any] = postgres_views_class()
        else:
            cls = SQLiteViews
        try:
            return cast(ViewStore, self.factory.tracking_recorder(cls))
        except IntegrityError:
            # Another process created the tables at the same moment: use them.
            return cast(ViewStore, self.factory.tracking_recorder(cls))

    @_translating
    def view_status(self) -> ViewStatus:
        return ViewStatus(
            position=self.views.position(),
            head=self.position(),
            rules_hash=self.views.rules_hash(),
        )

    @_translating
    def start_encryption(self) -> bool:
        """With a master key set, turn encryption at rest on for the store
        now rather than at its first write; whether it is on."""
        privacy = self.event_mapper.privacy
        if privacy is not None:
            privacy.start()
        return privacy is not None

    @_translating
    def health(self) -> StoreHealth:
        """What ``doctor`` reports about the store itself."""
        path = self.config.sqlite_path
        if path is not None:
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
            size = sum(f.stat().st_size for f in files if f.exists())
            mode = stat.S_IMODE(path.stat().st_mode)
        else:
            size, mode = self._postgres_bytes(), None
        return StoreHealth(
            kind=self.config.kind,
            display=self.config.display,
            size_bytes=size,
            file_mode=mode,
            **self._counts(),
            views=self.view_status(),
        )

    def _counts(self) -> dict[str, int]:
        # Counted, not decoded: doctor must work on a store whose payloads
        # were tampered with. (The head is not a count: PostgreSQL's
        # sequence skips the ids of rolled-back inserts.)
        recorder = cast(Any, self.recorder)
        table = recorder.events_table_name
        statement = (
            "SELECT count(*) AS events, count(DISTINCT originator_id) AS deals FROM {}"
        )
        if self.config.kind == "postgresql":
            from psycopg import sql

            query: Any = sql.SQL(statement).format(
                sql.Identifier(self.config.env["POSTGRES_SCHEMA"], table)
            )
            with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(query)
                row = curs.fetchone()
                return {"events": int(row["events"]), "deals": int(row["deals"])}
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement.format(table))
            events, deals = cursor.fetchone()
            return {"events": int(events), "deals": int(deals)}

    def _postgres_bytes(self) -> int:
        from psycopg import sql

        datastore = cast(Any, self.recorder).datastore
        with datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                sql.SQL(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) AS size "
                    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relkind = 'r'"
                ),
                (self.config.env["POSTGRES_SCHEMA"],),
            )
            row = curs.fetchone()
            return int(row["size"]) if row else 0

    @_translating
    def update_views(
        self,
        rules: RuleSet,
        *,
        rebuild: bool = False,
        batch_size: int = 1000,
        progress: Progress | None = None,
    ) -> ViewStatus:
        """Bring the deal summaries up to the head of the log.

        A different rule set than the views were built with, or ``rebuild``,
        starts them again from the beginning of the log.
        """
        views = self.views
        stale = rebuild or views.rules_hash() != rules.rules_hash
        position = 0 if stale else views.position()
        head = self.position()
        if position == 0:
            position = self._build_views(rules, head, progress)
            head = max(head, position)
        while True:
            notifications = self.recorder.select_notifications(
                start=position + 1, limit=batch_size
            )
            if not notifications:
                break
            named = set()
            for n in notifications:
                try:
                    named.add(self.event_mapper.deal_of(n.topic, n.state))
                except UNDECODABLE:
                    deal = f"id {UUID(str(n.originator_id)).hex}"
                    raise self._undecodable(n.originator_version, deal) from None
            keys = sorted(named)
            rows = [self._summary_row(self.history(key), rules) for key in keys]
            try:
                views.save(
                    rows,
                    Tracking(VIEW, notifications[-1].id),
                    after=position,
                    rules_hash=rules.rules_hash,
                )
            except IntegrityError:
                # Another runner moved the views meanwhile: go on from where
                # they are now, or build them again if that runner changed
                # their rules.
                if views.rules_hash() != rules.rules_hash:
                    return self.update_views(
                        rules, batch_size=batch_size, progress=progress
                    )
                position = views.position()
                continue
            position = notifications[-1].id
            head = max(head, position)
            if progress is not None:
                progress(position, head)
        return ViewStatus(position=position, head=head, rules_hash=rules.rules_hash)

    def _build_views(self, rules: RuleSet, head: int, progress: Progress | None) -> int:
        """Build the views from nothing up to ``head``: one ordered scan that
        decodes every event once and summarises each deal once.

        The rows, the position and the rules replace the old ones in one
        transaction, so the views are whole at every moment; of two runners
        building at once, the later commit wins, and is whole too.
        """
        rows = []
        done = 0
        for history in self._histories(head):
            rows.append(self._summary_row(history, rules))
            done += len(history)
            if progress is not None and done % PROGRESS_EVERY < len(history):
                progress(done, head)
        if progress is not None:
            progress(done, head)
        self.views.replace(
            rows, Tracking(VIEW, head) if head else None, rules.rules_hash
        )
        return head

    def _histories(self, head: int) -> Iterator[list[Recorded]]:
        """Every deal's history up to ``head``, one deal at a time."""
        decode = self.event_mapper.decode
        history: list[Recorded] = []
        current = None
        for originator, version, topic, state in self._bulk_recorder.scan_by_originator(
            head
        ):
            if originator != current:
                if history:
                    yield history
                history, current = [], originator
            try:
                event = decode(topic, state)
            except UNDECODABLE:
                deal = (
                    repr(history[0].event.deal)
                    if history
                    else f"id {UUID(originator).hex}"
                )
                raise self._undecodable(version, deal) from None
            history.append(Recorded(UUID(originator), version, event))
        if history:
            yield history

    def _summary_row(self, history: Sequence[Recorded], rules: RuleSet) -> ViewRow:
        summary = summarise(history, rules)
        return ViewRow(
            deal=summary.deal,
            account=summary.account,
            owner=summary.owner,
            status=summary.status,
            document=summary.model_dump_json().encode(),
        )

    @_translating
    def summaries(
        self,
        rules: RuleSet,
        *,
        status: str | None = None,
        owner: str | None = None,
        account: str | None = None,
    ) -> Analysis[list[DealSummary]]:
        """Every deal's summary from the views, brought up to date first."""
        view = self.update_views(rules)
        documents = self.views.load(status=status, owner=owner, account=account)
        found = [DealSummary.model_validate_json(d) for d in documents]
        return Analysis(found, view.position)

    @_translating
    def follow_views(
        self,
        rules: RuleSet,
        stop: threading.Event,
        *,
        poll_seconds: float = 1.0,
        progress: Progress | None = None,
    ) -> None:
        """Keep the views current until ``stop`` is set.

        PostgreSQL wakes the runner through the library's subscription
        (LISTEN/NOTIFY); SQLite has none, so the runner polls.
        """
        self.update_views(rules, progress=progress)
        if self.config.kind != "postgresql":
            while not stop.wait(poll_seconds):
                self.update_views(rules, progress=progress)
            return
        with self.recorder.subscribe(gt=self.views.position()) as subscription:

            def stop_when_asked() -> None:
                stop.wait()
                subscription.stop()

            watcher = threading.Thread(target=stop_when_asked, daemon=True)
            watcher.start()
            for _ in subscription:
                if stop.is_set():
                    break
                self.update_views(rules, progress=progress)

    @_translating
    def position(self) -> int:
        """The store's head: the id of the last recorded event (0 when empty)."""
        return self.recorder.max_notification_id() or 0

    def now(self) -> datetime:
        """The application's clock: the default evaluation time."""
        return self._now()

    def stored_events(
        self, *, until: int | None = None, page_size: int = 1000
    ) -> Iterator[Recorded]:
        """Every stored event in store order, up to position ``until`` (by
        default the head): read a page at a time, so memory stays flat."""
        start = 1
        while True:
            page = self._stored_page(start, page_size, until)
            yield from (recorded for _, recorded in page)
            if len(page) < page_size:
                return
            start = page[-1][0] + 1

    @_translating
    def _stored_page(
        self, start: int, limit: int, stop: int | None
    ) -> list[tuple[int, Recorded]]:
        notifications = self.recorder.select_notifications(
            start=start, limit=limit, stop=stop
        )
        return [(n.id, self._notified(n)) for n in notifications]

    @_translating
    def account_context(
        self, key: str, rules: RuleSet, *, as_known_at: datetime | None = None
    ) -> AccountContext:
        """The account context ``audit`` gives deal ``key`` (the wins and
        touches of the account's other deals), for callers that run the pure
        projections themselves, such as the timeline report."""
        self.update_views(rules)
        timeline = self._timeline(key, as_known_at=as_known_at)
        return self._account_context(key, timeline.opened.account, as_known_at, rules)

    # Tamper evidence

    @_translating
    def verify_chains(self, *, at: int | None = None) -> ChainReport:
        """Recompute every deal's hash chain (engine/chain.py); the report
        names each deal's first broken link, and the heads as of store
        position ``at`` (default: the head)."""
        with self._bulk_recorder.read_chains() as snapshot:
            return recompute_chains(snapshot, self.event_mapper.deal_of, at=at)

    @_translating
    def chain_head(
        self, key: str | None = None, *, at: int | None = None
    ) -> DealAnchor | StoreAnchor | None:
        """Deal ``key``'s chain head, or the store's (over every deal's), as
        stored at position ``at`` (default: the head); None when unchained."""
        position = self.position() if at is None else at
        if key is None:
            heads = list(self._bulk_recorder.stored_heads(position))
            if not heads:
                return None
            count, digest = store_digest(heads)
            return StoreAnchor(count, digest.hex())
        for _, head in self._bulk_recorder.stored_heads(position, deal_id(key)):
            return DealAnchor(key, head.version, head.digest.hex())
        return None


def filter_timeline(
    history: Iterable[Recorded],
    *,
    as_of: datetime | None = None,
    as_known_at: datetime | None = None,
    sort: bool = True,
) -> list[Recorded]:
    selected = [
        r
        for r in history
        if (as_of is None or r.event.occurred_at <= as_of)
        and (as_known_at is None or r.event.known_at <= as_known_at)
    ]
    if sort:
        selected.sort(key=lambda r: timeline_key(r.event, r.originator_version))
    return selected


@contextmanager
def _postgres_setup_lock(config: StoreConfig) -> Iterator[None]:
    """Create the configured schema, and hold a lock while tables are created."""
    import psycopg
    from psycopg import sql

    env = config.env
    with psycopg.connect(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=int(env["POSTGRES_PORT"]),
        user=env["POSTGRES_USER"] or None,
        password=env["POSTGRES_PASSWORD"] or None,
        connect_timeout=int(env["POSTGRES_CONNECT_TIMEOUT"]),
        autocommit=True,
    ) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_SETUP_LOCK,))
        try:
            schema = sql.Identifier(env["POSTGRES_SCHEMA"])
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))


# An arbitrary constant naming dealtrail's set-up lock among advisory locks.
_SETUP_LOCK = 0x6465616C74726169


@dataclass(frozen=True, slots=True)
class _AccountFacts:
    """What one deal tells about its account: when it was won, its touches."""

    deal: str
    won_at: datetime | None
    touch_times: tuple[datetime, ...]


def _account_facts(timeline: DealTimeline, rules: RuleSet) -> _AccountFacts:
    state = deal_state(timeline, rules, _end_of(timeline))
    won_at = state.closed_at if state.status == "won" else None
    return _AccountFacts(timeline.deal, won_at, tuple(t.at for t in timeline.touches))


def _context(key: str, deals: Sequence[_AccountFacts]) -> AccountContext:
    """The account context of deal ``key``: every other deal's facts."""
    others = [d for d in deals if d.deal != key]
    return AccountContext(
        won=tuple(sorted((d.deal, d.won_at) for d in others if d.won_at)),
        touch_times=tuple(sorted(t for d in others for t in d.touch_times)),
    )


def _end_of(timeline: DealTimeline) -> datetime:
    """The latest occurred time in a timeline."""
    times = [e.event.occurred_at for e in timeline.entries]
    times += [t.at for t in timeline.touches]
    return max(times)

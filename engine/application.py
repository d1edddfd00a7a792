"""The one public entry point: commands that record events, and queries."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import wraps
from typing import Any, Generic, ParamSpec, TypeVar, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    IntegrityError,
    OperationalError,
    PersistenceError,
    RecordConflictError,
    Tracking,
)

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
from engine.importing.native import MAX_REPORTED_ERRORS, parse_sources
from engine.persistence import EventMapper, Recorded
from engine.projections.accounts import AccountsReport, accounts
from engine.projections.audit import Audit, audit, default_evaluation_time
from engine.projections.backtest import Backtest, backtest
from engine.projections.deal_state import deal_state
from engine.projections.findings import AccountContext
from engine.projections.prepare import DealTimeline, prepare, timeline_key
from engine.projections.replay import Replay, replay
from engine.projections.summary import DealSummary, summarise
from engine.rules import RuleSet
from engine.store import DEFAULT_STORE, StoreConfig, parse_store_url
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


def _translating(method: Callable[P, R]) -> Callable[P, R]:
    """Turn storage failures into StoreError naming the (redacted) store."""

    @wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except DealtrailError:
            raise
        except (PersistenceError, OSError) as e:
            app = args[0]
            assert isinstance(app, DealTrail)
            raise StoreError(f"store {app.config.display}: {_first_line(e)}") from e

    return wrapper


def _first_line(error: BaseException) -> str:
    """Driver messages can span lines; the CLI promises one."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


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
    new_deals: set[str] = field(default_factory=set)
    existing_deals: set[str] = field(default_factory=set)
    errors: list[BatchError] = field(default_factory=list)
    error_count: int = 0

    @property
    def total_recorded(self) -> int:
        return sum(self.recorded.values())


def _decision_order(event: Event, index: int) -> tuple[int, int]:
    # Events are decided in the order given (an export lists them in the
    # order they were first decided, so a re-import gives every event its
    # old place in the sequence), except that a deal opens first wherever
    # its DealOpened stands.
    return (0 if isinstance(event, DealOpened) else 1), index


class DealTrail(Application[UUID]):
    name = "dealtrail"

    def __init__(
        self,
        store: str | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config: StoreConfig = parse_store_url(store or DEFAULT_STORE)
        self._views: ViewStore | None = None
        self._views_lock = threading.Lock()
        self._clock = clock or (lambda: datetime.now(UTC))
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
            raise StoreError(
                f"cannot open store {self.config.display}: {_first_line(e)}"
            ) from e

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
        by_deal: dict[str, list[tuple[int, Event]]] = {}
        for index, event in enumerate(events):
            by_deal.setdefault(event.deal, []).append((index, event))
        for attempt in range(MAX_ATTEMPTS):
            result = BatchResult()
            deals = self._decide_batch(by_deal, result, locations)
            if result.error_count or dry_run:
                return result
            if self._try_save(deals, attempt):
                return result
        raise self._conflict(sorted(by_deal))

    def import_native(
        self, sources: Iterable[tuple[str, Iterable[bytes]]], *, dry_run: bool = False
    ) -> BatchResult:
        """Import native line files, all or nothing (see ``import_events``).

        Every line of every source is validated before anything is decided.
        """
        parsed = parse_sources(sources)
        return self.import_events(
            parsed.events, locations=parsed.locations, dry_run=dry_run
        )

    def import_events(
        self,
        events: Sequence[Event],
        *,
        locations: Sequence[str] | None = None,
        dry_run: bool = False,
    ) -> BatchResult:
        """Record validated events all or nothing; raise ImportRefused listing
        the refused events (up to a limit, each by its location or else its
        source) when any is refused."""
        result = self.record_many(events, locations=locations, dry_run=dry_run)
        if result.error_count:
            problems = [str(e) for e in result.errors]
            raise ImportRefused(problems, result.error_count, "refused event")
        return result

    def _decide_batch(
        self,
        by_deal: dict[str, list[tuple[int, Event]]],
        result: BatchResult,
        locations: Sequence[str] | None,
    ) -> list[Deal]:
        recorded_at = self._now()
        deals = []
        for key in sorted(by_deal):
            deal = self._load(key)
            existed = deal.opened is not None
            ordered = sorted(
                by_deal[key], key=lambda item: _decision_order(item[1], item[0])
            )
            for index, event in ordered:
                try:
                    stored = deal.decide(event, recorded_at)
                except DomainError as e:
                    result.error_count += 1
                    if len(result.errors) < MAX_REPORTED_ERRORS:
                        where = locations[index] if locations else event.source
                        result.errors.append(BatchError(where or "", str(e)))
                    continue
                if stored is None:
                    result.unchanged += 1
                else:
                    result.recorded[stored.type] += 1
            if existed:
                result.existing_deals.add(key)
            elif deal.opened is not None:
                result.new_deals.add(key)
            if deal.pending:
                deals.append(deal)
        return deals

    def _try_save(self, deals: Sequence[Deal], attempt: int) -> bool:
        try:
            self.save(*deals)
        except (IntegrityError, RecordConflictError):
            pass
        except OperationalError as e:
            # SQLite reports a writer that held the lock too long this way.
            if "locked" not in str(e).lower():
                raise
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
        for recorded in self.events.get(deal_id(key)):
            assert isinstance(recorded, Recorded)
            yield recorded

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
                yield self.event_mapper.to_domain_event(n).event
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
    ) -> Audit:
        timeline = self._timeline(key, as_known_at=as_known_at)
        evaluated_at = at or default_evaluation_time(timeline, self._now())
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
        as_known_at: datetime | None = None,
    ) -> Analysis[list[Audit]]:
        """Audits of every deal matching the filters, by deal key."""
        listed = self.summaries(rules, status=status, owner=owner, account=account)
        audits = []
        for summary in listed.result:
            closed = summary.closed_at
            if since is not None and (closed is None or closed.date() < since):
                continue
            audits.append(self._audit(summary.deal, rules, None, as_known_at))
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
        if rebuild or views.rules_hash() != rules.rules_hash:
            views.reset(rules.rules_hash)
        position = views.position()
        head = self.position()
        while True:
            notifications = self.recorder.select_notifications(
                start=position + 1, limit=batch_size
            )
            if not notifications:
                break
            keys = sorted(
                {self.event_mapper.decode(n.topic, n.state).deal for n in notifications}
            )
            rows = [self._summary_row(key, rules) for key in keys]
            try:
                views.save(rows, Tracking(VIEW, notifications[-1].id))
            except IntegrityError:
                # Another runner recorded this batch first: carry on after it.
                position = views.position()
                continue
            position = notifications[-1].id
            head = max(head, position)
            if progress is not None:
                progress(position, head)
        return ViewStatus(position=position, head=head, rules_hash=rules.rules_hash)

    def _summary_row(self, key: str, rules: RuleSet) -> ViewRow:
        history = self.history(key)
        summary = summarise(history, rules)
        return ViewRow(
            deal=key,
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

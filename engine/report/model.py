"""The data of a deal's timeline report, ready to draw.

A pure function of a deal's recorded history, the rules and an evaluation
time ``at`` (optionally cut at an as-known-at time, and with the account's
other deals for account neglect); no clock, no store. It reuses the
projections: ``deal_state``, ``follow_up_gaps``, ``stakeholder_involvement``,
``findings``, ``audit`` and ``replay``.

What it builds:

- an **axis** over business time, from the first event to ``at`` (or the
  latest promise due date, if later), with day ticks and non-working days;
- **lanes**, top to bottom: warning signs, the deal itself (stages, slips,
  closes), one lane per buyer-side contact grouped by role (decision roles
  first), the seller side (internal touches, touches naming no contact,
  notes pinned to nothing), promises and next steps, follow-ups owed;
- **marks** (points: touches, notes, flags, due dates, deal and stakeholder
  events), **spans** (obligations, promises, buyer-requested pauses, dark
  periods) and stage **bands**;
- the deal's state at every **step** of a replay, on two clocks:
  ``occurred`` (one step per event, in the order things happened) and
  ``known`` (one step per moment the store learned something: ``logged_at``
  when given, else the recording time).

Every mark and span carries the time it happened (``occurred``) and the time
it became known (``known``), so a page can fade what lies after a step on
either clock. Horizontal positions are fractions of the axis (0 at its start,
1 at its end); the renderers turn them into pixels. Text is fixed English,
times are the deal's local times, and every list has a stable order, so the
same input gives the same report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from engine.business_time import BusinessCalendar
from engine.events import (
    CORRECTABLE,
    CoachingNoteAdded,
    DealLost,
    DealOpened,
    DealReopened,
    DealWon,
    NextStepCleared,
    StageChanged,
    StakeholderJoined,
    StakeholderLeft,
    StakeholderPriorityNoted,
    StakeholderRoleChanged,
    TouchpointCorrected,
    TouchpointLogged,
    TouchpointRetracted,
)
from engine.persistence import Recorded
from engine.privacy import ERASED_TEXT
from engine.projections.audit import audit
from engine.projections.deal_state import (
    DealState,
    deal_state,
    lifecycle,
    roster,
    start,
)
from engine.projections.findings import AccountContext, date_text, findings
from engine.projections.gaps import Obligation, Promise, follow_up_gaps
from engine.projections.prepare import (
    UNANSWERED_OUTCOMES,
    DealTimeline,
    Entry,
    Touch,
    prepare,
)
from engine.projections.replay import replay
from engine.projections.stakeholders import stakeholder_involvement
from engine.rules import RuleSet

__all__ = [
    "CLOCKS",
    "ROLE_ORDER",
    "Axis",
    "Band",
    "Clock",
    "FindingItem",
    "Lane",
    "Mark",
    "Moment",
    "Report",
    "Span",
    "Step",
    "StepFinding",
    "Tick",
    "build_report",
]

Clock = Literal["occurred", "known"]
CLOCKS: tuple[Clock, ...] = ("occurred", "known")

#: Contact lanes top to bottom by the role they hold (or last held).
ROLE_ORDER: tuple[str, ...] = (
    "decision_maker",
    "economic_buyer",
    "champion",
    "influencer",
    "technical_evaluator",
    "user",
    "procurement",
    "legal",
    "gatekeeper",
    "blocker",
    "other",
)
NO_ROLE = "no role recorded"

# Horizontal room (as a share of the axis) a flag or a span label needs, so
# that neighbours go to separate rows instead of overlapping.
_FLAG_ROOM = 0.035
_SPAN_GAP = 0.01
_LABEL_ROOM = 0.11
_PAD = 0.02
_ROUND = 5
_MAX_LABEL = 160

LaneKind = Literal["findings", "deal", "contact", "seller", "promises", "obligations"]
MarkKind = Literal["touch", "note", "flag", "due", "deal", "stakeholder", "cleared"]
SpanKind = Literal["obligation", "promise", "pause", "dark"]


# -- the model -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tick:
    """A day on the axis; ``label`` is empty for a minor tick."""

    at: datetime
    fraction: float
    label: str


@dataclass(frozen=True, slots=True)
class Axis:
    """Business time from ``start`` to ``end`` in the deal's zone."""

    start: datetime
    end: datetime
    timezone: str
    ticks: tuple[Tick, ...]
    closed_days: tuple[tuple[float, float], ...]
    """Weekends and holidays (only drawn on axes of four months or less)."""
    evaluated: float
    """Where the evaluation time falls."""

    def fraction(self, moment: datetime) -> float:
        return _fraction(self.start, self.end, moment)


@dataclass(frozen=True, slots=True)
class Lane:
    id: str
    kind: LaneKind
    label: str
    detail: str
    """A second line: role and title, or the seller-side people."""
    title: str
    """The full description, for hover."""
    group: str
    """Contact lanes: the role group, so renderers can separate groups."""
    rows: int


@dataclass(frozen=True, slots=True)
class Mark:
    """Something that happened at one moment, drawn in one or more lanes.

    ``symbol`` and ``style`` by kind: a touch's channel and direction; a
    flag's ``flag`` and severity; a due date's promise status (twice); a deal
    event (``opened``, ``stage``, ``slip``, ``amount``, ``won``, ``lost``,
    ``reopened``) or stakeholder event (``joined``, ``role``, ``left``,
    ``priority``) with an empty style; ``note`` for coaching notes.
    """

    id: str
    kind: MarkKind
    lanes: tuple[str, ...]
    row: int
    fraction: float
    occurred: datetime
    known: datetime
    symbol: str
    style: str
    crossed: bool
    """An outbound attempt nobody answered."""
    text: str
    """Drawn beside the mark: a flag's number, a slip's days."""
    label: str
    details: tuple[str, ...]
    evidence: tuple[str, ...]
    """Flags: the ids of the marks and spans their evidence names."""


@dataclass(frozen=True, slots=True)
class Span:
    """Something that lasted: from ``start`` to ``end`` (fractions).

    ``style``: an obligation's ``met``, ``breached`` or ``open``; a promise's
    status; ``pause`` and ``dark`` for the other kinds.
    """

    id: str
    kind: SpanKind
    lane: str
    row: int
    start: float
    end: float
    deadline: float | None
    """Where the time allowed ran out (obligations, promises)."""
    occurred: datetime
    known: datetime
    style: str
    open: bool
    """Still running at the evaluation time."""
    text: str
    label: str
    details: tuple[str, ...]
    focusable: bool
    """False when a mark already carries the details (a promise's due date)."""


@dataclass(frozen=True, slots=True)
class Band:
    """A stage visit, or a closed period, behind every lane."""

    stage: str
    start: float
    end: float
    shade: int
    """Alternates 0 and 1 between neighbouring stage visits."""
    closed: bool
    label: str
    occurred: datetime
    known: datetime


@dataclass(frozen=True, slots=True)
class FindingItem:
    """A warning sign as the page lists it, numbered as its flag."""

    number: int
    mark: str
    rule: str
    severity: str
    visible: str
    sentence: str
    evidence: tuple[tuple[str, str | None], ...]
    """(ref, the id of the mark or span drawing it, if any)."""


@dataclass(frozen=True, slots=True)
class StepFinding:
    number: int | None
    """Its flag's number, if it still stands at the evaluation time."""
    severity: str
    sentence: str


@dataclass(frozen=True, slots=True)
class Moment:
    """The deal's state at one step of the replay, as text ready to show."""

    stage: str
    status: str
    next_step: str | None
    obligations: tuple[str, ...]
    """Follow-ups owed and not yet given."""
    promises: tuple[str, ...]
    """Promises and next steps not yet kept."""
    engaged: tuple[str, ...]
    """Each current stakeholder, with when they were last engaged."""
    findings: tuple[StepFinding, ...]
    """The warning signs visible then."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the replay on one clock."""

    at: datetime
    fraction: float
    when: str
    event: str
    """What happened (occurred clock) or became known (known clock)."""
    mark: str | None
    """The mark of that event, if it is drawn."""
    changes: tuple[str, ...]
    notes: tuple[str, ...]
    unknown: int
    """Events that had happened by then but were not known yet."""
    state: Moment | None
    absent: str
    """Why there is no state: the deal was not opened or not known yet."""


@dataclass(frozen=True, slots=True)
class Report:
    deal: str
    name: str
    account: str
    owner: str
    status: str
    stage: str
    outcome: str
    """One line: open, or won/lost on a day (to a competitor)."""
    amount: str | None
    loss_reason: str | None
    timezone: str
    evaluated_at: datetime
    evaluated: str
    as_known_at: datetime | None
    rules_version: str
    rules_hash: str
    lesson: str | None
    summary: str
    top: tuple[int, ...]
    """The numbers of the verdict's most serious findings."""
    axis: Axis
    lanes: tuple[Lane, ...]
    bands: tuple[Band, ...]
    spans: tuple[Span, ...]
    marks: tuple[Mark, ...]
    """In time order, so keyboard focus walks the deal forwards."""
    findings: tuple[FindingItem, ...]
    steps: dict[Clock, tuple[Step, ...]]


# -- helpers -------------------------------------------------------------------


def _fraction(first: datetime, last: datetime, moment: datetime) -> float:
    total = (last - first).total_seconds()
    share = (moment - first).total_seconds() / total if total > 0 else 0.0
    return round(min(max(share, 0.0), 1.0), _ROUND)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _duration(hours: float, per_day: float) -> str:
    """Business time as a coach says it: whole days, or hours under a day."""
    if hours < per_day:
        return _plural(max(math.floor(hours + 0.5), 1), "business hour")
    return _plural(math.floor(hours / per_day + 0.5), "business day")


def _role(role: str | None) -> str:
    return role.replace("_", " ") if role else NO_ROLE


def _line(text: str, limit: int = _MAX_LABEL) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _pack(intervals: Sequence[tuple[float, float]], gap: float) -> list[int]:
    """Greedy rows for intervals in the order given: the first row whose
    last interval ends ``gap`` before this one starts."""
    ends: list[float] = []
    rows: list[int] = []
    for first, last in intervals:
        for row, end in enumerate(ends):
            if first >= end + gap:
                ends[row] = last
                rows.append(row)
                break
        else:
            ends.append(last)
            rows.append(len(ends) - 1)
    return rows


def _day_end(day: date, cal: BusinessCalendar) -> datetime:
    """Local midnight after ``day``: when a promise due that day is late."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=cal.zone)


# -- building ------------------------------------------------------------------


def build_report(
    history: Sequence[Recorded],
    rules: RuleSet,
    at: datetime,
    *,
    as_known_at: datetime | None = None,
    account: AccountContext | None = None,
) -> Report:
    """The report of a deal's ``history`` evaluated at ``at``.

    ``as_known_at`` leaves out what the store did not know then; ``account``
    (the account's other deals) lets account neglect appear. Raises
    ValueError, as the projections do, if the deal had not opened by ``at``
    or was not known at ``as_known_at``.
    """
    known = [
        r for r in history if as_known_at is None or r.event.known_at <= as_known_at
    ]
    timeline = prepare(known, as_known_at=as_known_at)
    return _Builder(known, timeline, rules, at, as_known_at, account).build()


@dataclass(frozen=True, slots=True)
class _Point:
    """How one deal or stakeholder event is drawn."""

    lane: str
    kind: MarkKind
    symbol: str
    label: str
    details: tuple[str, ...] = ()
    text: str = ""


class _Builder:
    """Builds one report; holds what every part reads."""

    def __init__(
        self,
        history: list[Recorded],
        timeline: DealTimeline,
        rules: RuleSet,
        at: datetime,
        as_known_at: datetime | None,
        account: AccountContext | None,
    ) -> None:
        self.history = history
        self.timeline = timeline
        self.cut = start(timeline, at)
        self.rules = rules
        self.at = at
        self.as_known_at = as_known_at
        self.account = account
        self.cal = rules.calendar_for(timeline.timezone)
        self.state = deal_state(timeline, rules, at)
        self.gaps = follow_up_gaps(timeline, rules, at)
        self.audit = audit(timeline, rules, at, account)
        self.people = roster(self.cut)
        self.entries = {e.ref: e for e in timeline.entries}
        self.known_touch: dict[str, datetime] = {}
        self.known_version: dict[int, datetime] = {}
        self.corrections: dict[str, list[TouchpointCorrected]] = {}
        for r in history:
            event = r.event
            self.known_version[r.originator_version] = event.known_at
            if isinstance(event, TouchpointLogged):
                self.known_touch.setdefault(event.touchpoint, event.known_at)
            elif isinstance(event, TouchpointCorrected):
                self.corrections.setdefault(event.touchpoint, []).append(event)
        self.contacts = self._contacts()
        self.axis = self._axis()
        self.marks: list[Mark] = []
        self.spans: list[Span] = []
        self.bands: list[Band] = []
        self.by_ref: dict[str, str] = {}
        self.touch_marks: dict[str, Mark] = {}
        self.numbers = {f.key: i for i, f in enumerate(self.audit.findings, 1)}

    # -- small helpers --

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.cal.zone)

    def when(self, moment: datetime) -> str:
        """'Tue 13 Jan 2026 11:02' in the deal's zone."""
        t = self.local(moment)
        return f"{date_text(t.date())} {t.year} {t:%H:%M}"

    def day(self, day: date) -> str:
        return f"{date_text(day)} {day.year}"

    def who(self, contact: str) -> str:
        person = self.people.get(contact)
        return _name(person.name if person is not None else None, contact)

    def role_of(self, contact: str) -> str | None:
        """The role a contact holds at the evaluation time, else last held."""
        person = self.people.get(contact)
        if person is None or not person.periods:
            return None
        return person.periods[-1].role

    def known_of(self, ref: str, fallback: datetime) -> datetime:
        """When the event ``ref`` (a touchpoint id or ``#version``) became known."""
        if ref.startswith("#") and ref[1:].isdigit():
            return self.known_version.get(int(ref[1:]), fallback)
        return self.known_touch.get(ref, fallback)

    def x(self, moment: datetime) -> float:
        return self.axis.fraction(moment)

    def _next_id(self) -> str:
        return f"m{len(self.marks) + len(self.spans) + 1}"

    def add_mark(
        self,
        ref: str | None,
        *,
        kind: MarkKind,
        lanes: tuple[str, ...],
        occurred: datetime,
        known: datetime,
        symbol: str,
        label: str,
        details: tuple[str, ...],
        moment: datetime | None = None,
        row: int = 0,
        style: str = "",
        crossed: bool = False,
        text: str = "",
        evidence: tuple[str, ...] = (),
    ) -> Mark:
        mark = Mark(
            id=self._next_id(),
            kind=kind,
            lanes=lanes,
            row=row,
            fraction=self.x(moment or occurred),
            occurred=self.local(occurred),
            known=self.local(known),
            symbol=symbol,
            style=style,
            crossed=crossed,
            text=text,
            label=_line(label),
            details=details,
            evidence=evidence,
        )
        self.marks.append(mark)
        if ref is not None:
            self.by_ref.setdefault(ref, mark.id)
        return mark

    def add_span(
        self,
        ref: str | None,
        *,
        kind: SpanKind,
        lane: str,
        begin: datetime,
        end: datetime,
        known: datetime,
        style: str,
        label: str,
        details: tuple[str, ...],
        row: int = 0,
        deadline: datetime | None = None,
        is_open: bool = False,
        text: str = "",
        focusable: bool = True,
    ) -> Span:
        span = Span(
            id=self._next_id(),
            kind=kind,
            lane=lane,
            row=row,
            start=self.x(begin),
            end=self.x(max(begin, end)),
            deadline=None if deadline is None else self.x(deadline),
            occurred=self.local(begin),
            known=self.local(known),
            style=style,
            open=is_open,
            text=text,
            label=_line(label),
            details=details,
            focusable=focusable,
        )
        self.spans.append(span)
        if ref is not None:
            self.by_ref.setdefault(ref, span.id)
        return span

    # -- the axis --

    def _axis(self) -> Axis:
        times = [self.timeline.opened.occurred_at, self.at]
        times += [e.event.occurred_at for e in self.cut.entries]
        times += [t.at for t in self.cut.touches]
        times += [_day_end(p.due, self.cal) for p in self.gaps.promises]
        first, last = min(times), max(times)
        pad = max((last - first) * _PAD, timedelta(hours=1))
        first, last = first - pad, last + pad
        return Axis(
            start=self.local(first),
            end=self.local(last),
            timezone=self.cal.timezone,
            ticks=self._ticks(first, last),
            closed_days=self._closed_days(first, last),
            evaluated=_fraction(first, last, self.at),
        )

    def _midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self.cal.zone)

    def _ticks(self, first: datetime, last: datetime) -> tuple[Tick, ...]:
        """Day ticks scaled to the axis: every day labelled on a short one;
        Mondays labelled (other days unlabelled up to 45 days) on a medium
        one; months labelled (Mondays unlabelled up to 400 days) on a long
        one."""
        length = (last - first) / timedelta(days=1)
        ticks = []
        day = self.local(first).date()
        while (midnight := self._midnight(day)) <= last:
            month = date_text(day)[-3:]
            label: str | None = None
            if length <= 16:
                label = f"{day.day} {month}"
            elif length <= 120:
                if day.weekday() == 0:
                    label = f"{day.day} {month}"
                elif length <= 45:
                    label = ""
            elif day.day == 1:
                label = f"{month} {day.year}"
            elif day.weekday() == 0 and length <= 400:
                label = ""
            if midnight >= first and label is not None:
                fraction = _fraction(first, last, midnight)
                ticks.append(Tick(self.local(midnight), fraction, label))
            day += timedelta(days=1)
        return tuple(ticks)

    def _closed_days(
        self, first: datetime, last: datetime
    ) -> tuple[tuple[float, float], ...]:
        if last - first > timedelta(days=122):
            return ()
        closed = []
        day = self.local(first).date()
        while (begin := self._midnight(day)) < last:
            if not self.cal.is_business_day(day):
                end = self._midnight(day + timedelta(days=1))
                closed.append(
                    (_fraction(first, last, begin), _fraction(first, last, end))
                )
            day += timedelta(days=1)
        return tuple(closed)

    # -- lanes --

    def _contacts(self) -> list[str]:
        """Every contact named by a stakeholder event or a buyer-facing touch,
        in lane order: role group, first appearance, contact."""
        first: dict[str, datetime] = {}
        for contact, person in self.people.items():
            times = [p.since for p in person.periods]
            times += [q.at for q in person.priorities]
            if person.left_at is not None:
                times.append(person.left_at)
            if times:
                first[contact] = min(times)
        for touch in self.cut.touches:
            if touch.direction == "internal":
                continue
            for contact in touch.participants:
                first[contact] = min(first.get(contact, touch.at), touch.at)
        rank = {role: i for i, role in enumerate(ROLE_ORDER)}

        def order(contact: str) -> tuple[int, datetime, str]:
            role = self.role_of(contact)
            group = len(ROLE_ORDER) if role is None else rank.get(role, len(rank))
            return group, first[contact], contact

        return sorted(first, key=order)

    def touch_lanes(self, touch: Touch) -> tuple[str, ...]:
        if touch.direction == "internal" or not touch.participants:
            return ("seller",)
        order = {c: i for i, c in enumerate(self.contacts)}
        named = sorted(touch.participants, key=lambda c: (order.get(c, len(order)), c))
        return tuple(f"contact:{c}" for c in named)

    def _lanes(self, rows: dict[str, int]) -> tuple[Lane, ...]:
        def lane(lid: str, kind: LaneKind, label: str, detail: str, title: str) -> Lane:
            return Lane(lid, kind, label, detail, title, "", rows.get(lid, 1))

        lanes = [
            lane(
                "findings",
                "findings",
                "Warning signs",
                "when each became visible",
                "Warning signs, each at the time it first became visible",
            ),
            lane(
                "deal",
                "deal",
                "Deal",
                "stages, close date, outcome",
                "The deal: stage changes, close-date slips, dark periods, outcome",
            ),
        ]
        for contact in self.contacts:
            person = self.people.get(contact)
            role = self.role_of(contact)
            parts = [_role(role)]
            if person is not None and person.title:
                parts.append(person.title)
            if person is not None and person.current is None and person.left_at:
                parts.append(f"left {date_text(self.local(person.left_at).date())}")
            lid = f"contact:{contact}"
            lanes.append(
                Lane(
                    id=lid,
                    kind="contact",
                    label=self.who(contact),
                    detail=" · ".join(parts),
                    title=f"{_named(self.who(contact), contact)}: {', '.join(parts)}",
                    group=_role(role),
                    rows=rows.get(lid, 1),
                )
            )
        owner = self.state.owner
        reps = sorted({t.rep for t in self.cut.touches if t.rep} - {owner})
        people = f"owner {owner}" + (f"; {', '.join(reps)}" if reps else "")
        lanes += [
            lane(
                "seller",
                "seller",
                "Seller side",
                people,
                f"Seller side ({people}): internal touches, touches naming no "
                "buyer contact, notes pinned to no touch",
            ),
            lane(
                "promises",
                "promises",
                "Promises",
                "follow-ups promised, next steps",
                "Follow-ups promised and next steps, from when they were made "
                "to their due date",
            ),
            lane(
                "obligations",
                "obligations",
                "Follow-ups owed",
                "from the buyer's move to the reply",
                "Follow-ups owed after a buyer-initiated touch or a meeting "
                "held, from the trigger to the reply",
            ),
        ]
        return tuple(lanes)

    # -- the whole report --

    def build(self) -> Report:
        self._bands()
        for touch in self.cut.touches:
            self._touch(touch)
        self._entries()
        rows = {
            "promises": self._promises(self.gaps.promises),
            "obligations": self._obligations(self.gaps.obligations),
        }
        self._pauses()
        self._dark_periods()
        self._notes()
        occurred_steps = self._occurred_steps()
        known_steps, first_known = self._known_steps()
        last_known = known_steps[-1].at if known_steps else self.at
        items, rows["findings"] = self._flags(first_known, last_known)
        rank = {"deal": 0, "stakeholder": 1, "touch": 2, "note": 3, "cleared": 4}
        marks = sorted(
            self.marks,
            key=lambda m: (m.fraction, rank.get(m.kind, 5), int(m.id[1:])),
        )
        state = self.state
        amount = None
        if state.amount is not None:
            amount = f"{state.amount:,} {state.currency or ''}".strip()
        return Report(
            deal=self.timeline.deal,
            name=state.name,
            account=state.account,
            owner=state.owner,
            status=state.status,
            stage=state.stage,
            outcome=self._outcome(state),
            amount=amount,
            loss_reason=state.loss_reason,
            timezone=self.cal.timezone,
            evaluated_at=self.local(self.at),
            evaluated=self.when(self.at),
            as_known_at=self.as_known_at,
            rules_version=self.rules.version,
            rules_hash=self.rules.rules_hash,
            lesson=self.audit.verdict.lesson,
            summary=self.audit.verdict.summary,
            top=tuple(
                self.numbers[f.key]
                for f in self.audit.verdict.top
                if f.key in self.numbers
            ),
            axis=self.axis,
            lanes=self._lanes(rows),
            bands=tuple(self.bands),
            spans=tuple(sorted(self.spans, key=lambda s: (s.start, int(s.id[1:])))),
            marks=tuple(marks),
            findings=items,
            steps={"occurred": occurred_steps, "known": known_steps},
        )

    def _outcome(self, state: DealState) -> str:
        if state.closed_at is None:
            return f"open, in {_role(state.stage)}"
        rival = f" to {state.competitor}" if state.competitor else ""
        return f"{state.status} on {self.when(state.closed_at)}{rival}"

    # -- bands --

    def _bands(self) -> None:
        for i, visit in enumerate(self.state.stage_visits):
            end = visit.left_at or self.at
            self.bands.append(
                Band(
                    stage=visit.stage,
                    start=self.x(visit.entered_at),
                    end=self.x(end),
                    shade=i % 2,
                    closed=False,
                    label=f"{_role(visit.stage)}: {visit.business_days:g} "
                    "business days",
                    occurred=self.local(visit.entered_at),
                    known=self.local(self.known_of(visit.ref, visit.entered_at)),
                )
            )
        closes = [
            e for e in self.cut.entries if isinstance(e.event, DealWon | DealLost)
        ]
        for closed, reopened in lifecycle(self.cut).closures:
            entry = next(e for e in closes if e.event.occurred_at == closed)
            status = "won" if isinstance(entry.event, DealWon) else "lost"
            self.bands.append(
                Band(
                    stage=status,
                    start=self.x(closed),
                    end=self.x(reopened or self.axis.end),
                    shade=0,
                    closed=True,
                    label=f"{status} from {self.when(closed)}",
                    occurred=self.local(closed),
                    known=self.local(self.known_of(entry.ref, closed)),
                )
            )

    # -- touches --

    def _touch(self, touch: Touch) -> None:
        named = [
            f"{self.who(c)} ({_role(self.role_of(c))})" for c in touch.participants
        ]
        whom = ", ".join(self.who(c) for c in touch.participants)
        preposition = {"inbound": "from", "outbound": "to"}.get(touch.direction, "with")
        label = f"{touch.direction} {touch.channel}".capitalize()
        if whom:
            label += f" {preposition} {whom}"
        label += f", {self.when(touch.at)}"
        outcome = touch.outcome.replace("_", " ") if touch.outcome else None
        if outcome:
            label += f", {outcome}"
        details = ["With: " + (", ".join(named) if named else "no buyer contact")]
        if touch.rep:
            details.append(f"Rep: {touch.rep}")
        facts = [f"outcome {outcome}"] if outcome else []
        if touch.duration_minutes is not None:
            facts.append(f"{touch.duration_minutes} min")
        if facts:
            details.append("; ".join(facts).capitalize())
        if touch.summary:
            details.append(_line(touch.summary, 600))
        known = self.known_touch.get(touch.id, touch.at)
        if touch.logged_at is not None:
            details.append(f"Logged {self.when(touch.logged_at)}")
        else:
            details.append(f"Recorded {self.when(known)}")
        for fix in self.corrections.get(touch.id, []):
            changed = [
                "time" if name == "touchpoint_occurred_at" else name.replace("_", " ")
                for name in CORRECTABLE
                if getattr(fix, name) is not None
            ]
            details.append(
                f"Corrected {self.when(fix.occurred_at)}: {', '.join(changed)}"
            )
        details.append(f"Touchpoint {touch.id}")
        mark = self.add_mark(
            touch.id,
            kind="touch",
            lanes=self.touch_lanes(touch),
            occurred=touch.at,
            known=known,
            symbol=touch.channel,
            style=touch.direction,
            crossed=touch.outbound and touch.outcome in UNANSWERED_OUTCOMES,
            label=label,
            details=tuple(details),
        )
        self.touch_marks[touch.id] = mark

    # -- deal and stakeholder events --

    def _entries(self) -> None:
        for entry in self.cut.entries:
            point = self._deal_point(entry) or self._stakeholder_point(entry)
            if point is None:
                continue
            event = entry.event
            self.add_mark(
                entry.ref,
                kind=point.kind,
                lanes=(point.lane,),
                occurred=event.occurred_at,
                known=self.known_of(entry.ref, event.occurred_at),
                symbol=point.symbol,
                text=point.text,
                label=f"{point.label}, {self.when(event.occurred_at)}",
                details=(*point.details, f"Event {entry.ref}"),
            )

    def _deal_point(self, entry: Entry) -> _Point | None:
        event = entry.event
        slips = {s.ref: s for s in self.state.close_slips}
        amounts = {a.ref: a for a in self.state.amount_changes}
        stages = {v.ref for v in self.state.stage_visits}
        match event:
            case DealOpened():
                close = event.expected_close
                return _Point(
                    "deal",
                    "deal",
                    "opened",
                    f"Deal opened in {_role(event.stage)}",
                    (f"Owner {event.owner}",)
                    + ((f"Expected close {self.day(close)}",) if close else ()),
                )
            case StageChanged() if entry.ref in stages:
                return _Point(
                    "deal", "deal", "stage", f"Stage changed to {_role(event.stage)}"
                )
            case DealWon() | DealLost():
                status = "won" if isinstance(event, DealWon) else "lost"
                details = []
                if isinstance(event, DealLost):
                    details.append(f"Reason: {_line(event.reason, 600)}")
                    if event.competitor:
                        details.append(f"Competitor: {event.competitor}")
                if event.note:
                    details.append(_line(event.note, 600))
                return _Point("deal", "deal", status, f"Deal {status}", tuple(details))
            case DealReopened():
                return _Point(
                    "deal", "deal", "reopened", "Deal reopened", _reason(event.reason)
                )
            case NextStepCleared():
                return _Point(
                    "promises",
                    "cleared",
                    "cleared",
                    "Next step cleared",
                    _reason(event.reason),
                )
            case _:
                pass
        if entry.ref in slips:
            slip = slips[entry.ref]
            return _Point(
                "deal",
                "deal",
                "slip",
                f"Close date slipped {slip.days} days",
                (
                    f"Expected close moved from {self.day(slip.from_date)} "
                    f"to {self.day(slip.to_date)}",
                ),
                text=f"+{slip.days}d",
            )
        if entry.ref in amounts:
            change = amounts[entry.ref]
            before = "none" if change.from_amount is None else f"{change.from_amount:,}"
            return _Point(
                "deal",
                "deal",
                "amount",
                "Amount changed",
                (f"From {before} to {change.to_amount:,}",),
            )
        return None

    def _stakeholder_point(self, entry: Entry) -> _Point | None:
        event = entry.event
        match event:
            case StakeholderJoined():
                title = f", {event.title}" if event.title else ""
                return _Point(
                    f"contact:{event.contact}",
                    "stakeholder",
                    "joined",
                    f"{self.who(event.contact)} joined as {_role(event.role)}{title}",
                )
            case StakeholderRoleChanged():
                return _Point(
                    f"contact:{event.contact}",
                    "stakeholder",
                    "role",
                    f"{self.who(event.contact)} is now {_role(event.role)}",
                )
            case StakeholderLeft():
                return _Point(
                    f"contact:{event.contact}",
                    "stakeholder",
                    "left",
                    f"{self.who(event.contact)} left the deal",
                    _reason(event.reason),
                )
            case StakeholderPriorityNoted():
                return _Point(
                    f"contact:{event.contact}",
                    "stakeholder",
                    "priority",
                    f"Priority noted for {self.who(event.contact)}",
                    (_line(event.priority, 600),),
                )
            case _:
                return None

    # -- promises and obligations --

    def _promises(self, promises: Sequence[Promise]) -> int:
        ends = []
        for p in promises:
            due = _day_end(p.due, self.cal)
            end = max(due, p.discharged_at) if p.discharged_at else due
            ends.append((self.x(p.made_at), self.x(end)))
        rows = _pack(ends, _SPAN_GAP)
        for p, row in zip(promises, rows, strict=True):
            due = _day_end(p.due, self.cal)
            entry = self.entries.get(p.ref)
            what = "Next step" if p.kind == "next_step" else "Follow-up promised"
            about = None
            if entry is not None:
                about = getattr(entry.event, "description", None) or getattr(
                    entry.event, "promise", None
                )
            days = _plural(p.business_days_late or 0, "business day")
            status = {
                "kept": "kept",
                "late": f"kept late, {days} after the due date",
                "missed": f"missed, {days} past the due date"
                if p.business_days_late
                else "missed",
                "renegotiated": "renegotiated (replaced before it was due)",
                "pending": "not due yet",
            }[p.status]
            details = [f"Made {self.when(p.made_at)}, due {self.day(p.due)}"]
            if about:
                details.append(_line(about, 600))
            details.append(f"Status: {status}")
            if p.discharged_by and p.discharged_at:
                details.append(
                    f"Done by {p.discharged_by}, {self.when(p.discharged_at)}"
                )
            details.append(f"Event {p.ref}")
            known = self.known_of(p.ref, p.made_at)
            end = max(due, p.discharged_at) if p.discharged_at else due
            self.add_span(
                None,
                kind="promise",
                lane="promises",
                row=row,
                begin=p.made_at,
                end=end,
                deadline=due,
                known=known,
                style=p.status,
                label=f"{what} due {self.day(p.due)}: {status}",
                details=tuple(details),
                focusable=False,
            )
            self.add_mark(
                p.ref,
                kind="due",
                lanes=("promises",),
                row=row,
                moment=due,
                occurred=p.made_at,
                known=known,
                symbol=p.status,
                style=p.status,
                label=f"{what} due {self.day(p.due)}: {status}",
                details=tuple(details),
            )
        return max(rows, default=0) + 1

    def _trigger_text(self, touch: Touch | None, trigger: str, moment: datetime) -> str:
        if touch is None:
            return f"touch {trigger} of {self.when(moment)}"
        whom = ", ".join(self.who(c) for c in touch.participants)
        if touch.inbound:
            return f"{whom or 'the buyer'}'s {touch.channel} of {self.when(moment)}"
        return f"the {touch.channel} with {whom or 'the buyer'} of {self.when(moment)}"

    def _obligations(self, obligations: Sequence[Obligation]) -> int:
        per_day = self.cal.hours_per_day
        horizon = self.state.closed_at or self.at
        touches = {t.id: t for t in self.cut.touches}
        spans = []
        for o in obligations:
            end = o.discharged_at or max(horizon, o.trigger_at)
            text = _duration(o.latency_business_hours, per_day) if o.breached else ""
            spans.append((o, end, text))
        rows = _pack(
            [
                (self.x(o.trigger_at), self.x(end) + (_LABEL_ROOM if text else 0.0))
                for o, end, text in spans
            ],
            _SPAN_GAP,
        )
        sla = _duration(self.rules.follow_up.sla_business_hours, per_day)
        for (o, end, text), row in zip(spans, rows, strict=True):
            trigger = self._trigger_text(
                touches.get(o.trigger), o.trigger, o.trigger_at
            )
            latency = _duration(o.latency_business_hours, per_day)
            style = "breached" if o.breached else ("open" if o.open else "met")
            details = [
                f"Owed for {trigger}",
                f"Due by {self.when(o.deadline)} (within {sla})",
            ]
            if o.discharged_by and o.discharged_at:
                details.append(
                    f"Answered {self.when(o.discharged_at)} by {o.discharged_by}, "
                    f"after {latency} ({o.latency_business_hours:g} business hours)"
                )
            else:
                details.append(
                    f"Not answered by {self.when(end)}: {latency} so far "
                    f"({o.latency_business_hours:g} business hours)"
                )
            if o.breached:
                details.append(
                    f"Breached: {o.over_sla_business_hours:g} business hours over"
                )
            verdict = {"breached": f"breached, {latency}", "open": "open", "met": "met"}
            self.add_span(
                None,
                kind="obligation",
                lane="obligations",
                row=row,
                begin=o.trigger_at,
                end=end,
                deadline=o.deadline,
                known=self.known_of(o.trigger, o.trigger_at),
                style=style,
                is_open=o.open,
                text=text,
                label=f"Follow-up owed for {trigger}: {verdict[style]}",
                details=tuple(details),
            )
        return max(rows, default=0) + 1

    # -- pauses, dark periods, notes --

    def _pauses(self) -> None:
        for timing in self.gaps.requested_timing:
            lane = f"contact:{timing.contact}"
            if timing.contact not in self.contacts:
                lane = "seller"
            who = self.who(timing.contact)
            details = [
                f"Asked {self.when(timing.requested_at)} to be contacted from "
                f"{self.when(timing.not_before)}"
            ]
            if timing.early:
                details.append(
                    f"{_plural(len(timing.early), 'touch')} before that: "
                    + ", ".join(timing.early)
                )
            if timing.answered_by and timing.answered_at:
                details.append(
                    f"Contacted {self.when(timing.answered_at)} by {timing.answered_by}"
                )
            details.append(f"Status: {timing.status.replace('_', ' ')}")
            details.append(f"Event {timing.ref}")
            self.add_span(
                timing.ref,
                kind="pause",
                lane=lane,
                begin=timing.requested_at,
                end=timing.not_before,
                known=self.known_of(timing.ref, timing.requested_at),
                style="pause",
                label=f"{who} asked not to be contacted before "
                f"{self.when(timing.not_before)}",
                details=tuple(details),
            )

    def _dark_periods(self) -> None:
        for dark in self.gaps.dark_periods:
            days = f"{dark.business_days:g} business days"
            self.add_span(
                None,
                kind="dark",
                lane="deal",
                begin=dark.start,
                end=dark.end,
                known=self.known_of(dark.start_ref, dark.start),
                style="dark",
                is_open=dark.ongoing,
                label=f"Dark period: no touch for {days}",
                details=(
                    f"From {self.when(dark.start)} ({dark.start_ref})",
                    f"To {self.when(dark.end)}"
                    + (f" ({dark.end_ref})" if dark.end_ref else ", still going"),
                    "Time inside a pause the buyer asked for does not count",
                ),
            )

    def _notes(self) -> None:
        pinned: dict[str, int] = {}
        for entry in self.timeline.entries:
            note = entry.event
            if not isinstance(note, CoachingNoteAdded):
                continue
            touch = self.touch_marks.get(note.about) if note.about else None
            if touch is None and note.occurred_at > self.at:
                continue  # written after the report's time, about nothing shown
            details = [
                f"Written {self.when(note.occurred_at)} by {note.author}",
                _line(note.note, 2000),
            ]
            if touch is not None:
                details.append(f"Pinned to touchpoint {note.about}")
            details.append(f"Event {entry.ref}")
            count = pinned.get(note.about or "", 0)
            if touch is not None and note.about:
                pinned[note.about] = count + 1
            self.add_mark(
                entry.ref,
                kind="note",
                lanes=touch.lanes[:1] if touch else ("seller",),
                row=count if touch else 0,
                moment=touch.occurred if touch else None,
                occurred=touch.occurred if touch else note.occurred_at,
                known=self.known_of(entry.ref, note.occurred_at),
                symbol="note",
                label=f"Coaching note by {note.author}: {note.note}",
                details=tuple(details),
            )

    # -- flags --

    def _flags(
        self, first_known: dict[str, datetime], last_known: datetime
    ) -> tuple[tuple[FindingItem, ...], int]:
        """Flags and list items for the findings at the evaluation time;
        each is known from the first known-clock step that shows it."""
        found = self.audit.findings
        rows = _pack(
            [(self.x(f.visible_at), self.x(f.visible_at) + _FLAG_ROOM) for f in found],
            0.0,
        )
        items = []
        for number, (f, row) in enumerate(zip(found, rows, strict=True), 1):
            evidence = tuple((ref, self.by_ref.get(ref)) for ref in f.evidence)
            rule = f.rule.replace("_", " ")
            mark = self.add_mark(
                None,
                kind="flag",
                lanes=("findings",),
                row=row,
                occurred=f.visible_at,
                known=first_known.get(f.key, last_known),
                symbol="flag",
                style=f.severity,
                text=str(number),
                label=f"Warning {number}, {f.severity}: {rule}, visible "
                f"{self.when(f.visible_at)}",
                details=(
                    f.sentence,
                    "Evidence: " + ", ".join(f.evidence),
                    f"Rule {f.rule}",
                ),
                evidence=tuple(i for _, i in evidence if i is not None),
            )
            items.append(
                FindingItem(
                    number=number,
                    mark=mark.id,
                    rule=f.rule,
                    severity=f.severity,
                    visible=self.when(f.visible_at),
                    sentence=f.sentence,
                    evidence=evidence,
                )
            )
        return tuple(items), max(rows, default=0) + 1

    # -- the replay --

    def _moment(
        self, timeline: DealTimeline, at: datetime
    ) -> tuple[Moment, tuple[str, ...]]:
        """The deal's state at ``at`` on ``timeline``, as text, and the keys
        of the findings visible then."""
        state = deal_state(timeline, self.rules, at)
        gaps = follow_up_gaps(timeline, self.rules, at)
        involvement = stakeholder_involvement(timeline, self.rules, at)
        found = findings(timeline, self.rules, at, self.account)
        per_day = self.cal.hours_per_day
        touches = {t.id: t for t in timeline.touches}
        entries = {e.ref: e for e in timeline.entries}
        step = state.next_step
        next_step = None
        if step is not None:
            owner = f", owner {step.owner}" if step.owner else ""
            overdue = "; overdue" if step.overdue else ""
            next_step = (
                f"{_line(step.description).rstrip('.')} "
                f"(due {self.day(step.due)}{owner}{overdue})"
            )
        owed = []
        for o in gaps.obligations:
            if not o.open:
                continue
            trigger = self._trigger_text(
                touches.get(o.trigger), o.trigger, o.trigger_at
            )
            if o.breached:
                latency = _duration(o.latency_business_hours, per_day)
                owed.append(f"{trigger}: breached, {latency} without a reply")
            else:
                owed.append(f"{trigger}: due by {self.when(o.deadline)}")
        promised = []
        for p in gaps.promises:
            if p.status not in ("pending", "missed"):
                continue
            entry = entries.get(p.ref)
            about = ""
            if entry is not None:
                text = getattr(entry.event, "description", None) or getattr(
                    entry.event, "promise", None
                )
                about = f": {_line(text)}" if text else ""
            what = "Next step" if p.kind == "next_step" else "Follow-up"
            status = "missed" if p.status == "missed" else "not due yet"
            promised.append(f"{what} due {self.day(p.due)}, {status}{about}")
        contacts = {c.contact: c for c in involvement.contacts}
        engaged = []
        for person in state.stakeholders:
            name = _name(person.name, person.contact)
            seen = contacts.get(person.contact)
            last = seen.last_engaged if seen is not None else None
            since = (
                f"last engaged {self.day(self.local(last.at).date())}"
                if last is not None
                else "not engaged yet"
            )
            engaged.append(f"{name} ({_role(person.role)}): {since}")
        status = state.status
        if state.closed_at is not None:
            status += f" since {self.day(self.local(state.closed_at).date())}"
        return Moment(
            stage=_role(state.stage),
            status=status,
            next_step=next_step,
            obligations=tuple(owed),
            promises=tuple(promised),
            engaged=tuple(engaged),
            findings=tuple(
                StepFinding(self.numbers.get(f.key), f.severity, f.sentence)
                for f in found
            ),
        ), tuple(f.key for f in found)

    def _occurred_steps(self) -> tuple[Step, ...]:
        """One step per event, in the order things happened, and a last one
        at the evaluation time if it comes later."""
        walk = replay(self.timeline, self.rules, until=self.at, account=self.account)
        steps = []
        for s in walk.steps:
            moment = None
            absent = "The deal had not been opened yet."
            if s.at >= self.timeline.opened.occurred_at:
                moment, _ = self._moment(self.timeline, s.at)
                absent = ""
            steps.append(
                Step(
                    at=self.local(s.at),
                    fraction=self.x(s.at),
                    when=self.when(s.at),
                    event=s.description,
                    mark=self.by_ref.get(s.ref),
                    changes=tuple(
                        _change(c.field, c.before, c.after)
                        for c in s.changes
                        if c.field != "last_touch"
                    ),
                    notes=tuple(f"{n.author}: {n.note}" for n in s.notes),
                    unknown=0,
                    state=moment,
                    absent=absent,
                )
            )
        if not steps or steps[-1].at < self.at:
            steps.append(self._final_step(self.timeline))
        return tuple(steps)

    def _final_step(self, timeline: DealTimeline) -> Step:
        moment, _ = self._moment(timeline, self.at)
        return Step(
            at=self.local(self.at),
            fraction=self.x(self.at),
            when=self.when(self.at),
            event="Evaluation time: the deal as the report judges it",
            mark=None,
            changes=(),
            notes=(),
            unknown=0,
            state=moment,
            absent="",
        )

    def _known_steps(self) -> tuple[tuple[Step, ...], dict[str, datetime]]:
        """One step per moment the store learned something about the deal
        (what it knew then about what had happened by then, or by the
        evaluation time if that is earlier), and a last one at the
        evaluation time if it comes later. Also, for each finding key, the
        first such moment that showed it."""
        described = self._descriptions()
        by_time: dict[datetime, list[Recorded]] = {}
        for r in self.history:
            by_time.setdefault(r.event.known_at, []).append(r)
        steps = []
        first: dict[str, datetime] = {}
        for moment_at in sorted(by_time):
            learned = by_time[moment_at]
            texts = [described[r.originator_version] for r in learned]
            event = "Became known: " + "; ".join(texts[:3])
            if len(texts) > 3:
                event += f"; and {len(texts) - 3} more"
            judged = min(moment_at, self.at)
            unknown = sum(
                r.event.occurred_at <= judged and r.event.known_at > moment_at
                for r in self.history
            )
            marks = [self.by_ref.get(_ref(r)) for r in learned]
            state, absent = None, "The store did not know this deal yet."
            try:
                timeline = prepare(self.history, as_known_at=moment_at)
            except ValueError:
                timeline = None
            if timeline is not None and judged < timeline.opened.occurred_at:
                absent = "The deal had not been opened yet."
            elif timeline is not None:
                state, keys = self._moment(timeline, judged)
                absent = ""
                for key in keys:
                    first.setdefault(key, moment_at)
            steps.append(
                Step(
                    at=self.local(moment_at),
                    fraction=self.x(moment_at),
                    when=self.when(moment_at),
                    event=event,
                    mark=next((m for m in marks if m is not None), None),
                    changes=(),
                    notes=(),
                    unknown=unknown,
                    state=state,
                    absent=absent,
                )
            )
        if not steps or steps[-1].at < self.at:
            final = self._final_step(self.timeline)
            steps.append(final)
            if final.state is not None:
                for f in self.audit.findings:
                    first.setdefault(f.key, self.at)
        return tuple(steps), first

    def _descriptions(self) -> dict[int, str]:
        """A short text for every recorded event, by version."""
        walk = replay(self.timeline, self.rules)
        by_ref = {s.ref: s.description for s in walk.steps}
        texts = {}
        for r in self.history:
            event = r.event
            ref = _ref(r)
            match event:
                case TouchpointCorrected():
                    text = f"correction of touchpoint {event.touchpoint}"
                case TouchpointRetracted():
                    text = f"retraction of touchpoint {event.touchpoint}"
                case CoachingNoteAdded():
                    text = f"coaching note by {event.author}"
                case TouchpointLogged() if ref not in by_ref:
                    text = f"touchpoint {event.touchpoint} (later retracted)"
                case _:
                    text = by_ref.get(ref, event.type)
            texts[r.originator_version] = _line(text, 90)
        return texts


def _name(name: str | None, contact: str) -> str:
    """What a person is called: their name, else their contact. A forgotten
    contact's name reads ``[erased]`` for everyone, so they are called by
    their contact, the stable ``erased-KEYID``, which tells them apart."""
    return name if name and name != ERASED_TEXT else contact


def _named(who: str, contact: str) -> str:
    """``Name <contact>``, or the contact alone when it is all there is."""
    return contact if who == contact else f"{who} <{contact}>"


def _ref(recorded: Recorded) -> str:
    event = recorded.event
    if isinstance(event, TouchpointLogged):
        return event.touchpoint
    return f"#{recorded.originator_version}"


def _reason(reason: str | None) -> tuple[str, ...]:
    return (f"Reason: {_line(reason, 600)}",) if reason else ()


def _change(field: str, before: str | None, after: str | None) -> str:
    name = field.replace("_", " ")
    return f"{name}: {before or 'none'} → {after or 'none'}"

"""Follow-up gaps: how fast, how often and how reliably the rep followed up.

A pure projection of a prepared timeline, rules and an evaluation time
``at``: only what had happened by ``at`` counts, business time is measured
in the deal's calendar (``rules.calendar_for(timeline.timezone)``), and the
clock is never read. Every finding cites its evidence by touchpoint id or by
``Entry.ref`` (``#version``) for other events.

Output conventions (so the same input gives byte-identical JSON):

- times are expressed in the deal's time zone;
- floats are rounded to 2 decimals;
- lists are in timeline order (oldest first) unless a field says otherwise.

Choices where the domain leaves room, made here once:

- *Breach.* An obligation is breached when more business time than the SLA
  has passed before its discharge, or, while open, before ``at``. Its
  ``deadline`` is the earliest instant the SLA is used up; an open one is
  not breached *at* its deadline, nor over the non-working time right after
  it (a Monday 09:00 reply to a Friday 09:00 inbound is 0 business hours
  late, so Saturday is not a breach yet).
- *Kind.* An inbound meeting is ``buyer_initiated`` (the buyer's move comes
  first); meetings and demos held count whatever the outcome except the
  unanswered ones (``Touch.engaged``).
- *Engagement in streaks.* Besides an inbound touch and an outbound one that
  ``connected``/``replied``, a meeting or demo held (as for obligations)
  also shows the buyer engaged. Internal touches neither add to nor reset a
  streak.
- *Requested timing.* Answering the buyer who wrote (or met) during a
  requested pause is not early; a request replaced by the same contact's
  next request before anyone answered it is ``superseded``.
- *Next-step clarity.* A next step counts from its NextStepSet (with an
  owner) until cleared or replaced, and only through the end of its due
  date: an overdue next step is not a clear next step.
- *Obligations* come from every touch up to ``at``, whatever the deal's
  status: a customer writing after a win is still owed an answer. One still
  open when the deal closed stops its clock at the close.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Literal

from pydantic import BaseModel, ConfigDict

from engine.business_time import BusinessCalendar
from engine.events import (
    DealLost,
    DealOpened,
    DealReopened,
    DealWon,
    FollowUpPromised,
    FollowUpRequested,
    NextStepCleared,
    NextStepSet,
)
from engine.projections.prepare import DealTimeline, Entry, ProjectionMeta, Touch
from engine.rules import RuleSet

__all__ = [
    "ClearSpan",
    "ContactStreaks",
    "DarkPeriod",
    "FollowUpGaps",
    "GapsSummary",
    "GaveUpEarly",
    "NextStepClarity",
    "Obligation",
    "Promise",
    "PromiseCounts",
    "RequestedTiming",
    "Streak",
    "follow_up_gaps",
]

ObligationKind = Literal["buyer_initiated", "meeting_held"]
PromiseKind = Literal["follow_up", "next_step"]
PromiseStatus = Literal["kept", "late", "missed", "renegotiated", "pending"]
TimingStatus = Literal["on_time", "late", "pending", "superseded"]
DealStatus = Literal["open", "won", "lost"]

_HOUR = timedelta(hours=1)
_MEETINGS = frozenset({"meeting", "demo"})
# An outbound attempt with one of these outcomes reached the buyer.
_ANSWERED = frozenset({"connected", "replied"})


# -- output models -----------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", use_attribute_docstrings=True
    )


class Obligation(_Model):
    """A follow-up owed after a buyer-initiated touch or a meeting held."""

    trigger: str
    """The touchpoint that created it."""
    trigger_at: datetime
    kind: ObligationKind
    deadline: datetime
    """``trigger_at`` plus the SLA in business hours."""
    discharged_by: str | None
    """The first outbound touch with a participant strictly after the trigger."""
    discharged_at: datetime | None
    latency_business_hours: float
    """Trigger to discharge, or to ``at`` while open."""
    over_sla_business_hours: float
    breached: bool
    open: bool


class Promise(_Model):
    """A follow-up promised by a date, or a next step with a due date."""

    ref: str
    """The FollowUpPromised or NextStepSet entry."""
    kind: PromiseKind
    made_at: datetime
    due: date
    status: PromiseStatus
    discharged_by: str | None
    """The first outbound touch with a participant after the promise."""
    discharged_at: datetime | None
    superseded_by: str | None
    """For ``renegotiated``: the promise that replaced it."""
    business_days_late: int | None
    """Business days after ``due`` up to the discharge (``late``) or up to
    ``at`` (``missed``); None otherwise."""


class RequestedTiming(_Model):
    """How the rep honoured a buyer's "contact me at or after" request."""

    ref: str
    """The FollowUpRequested entry."""
    contact: str
    requested_at: datetime
    not_before: datetime
    deadline: datetime
    """``not_before`` plus the late threshold in business hours."""
    scope: Literal["contact", "deal"]
    """Whose touches were judged: the requester's, or (when no touch after
    the request included them) every outbound touch of the deal."""
    early: tuple[str, ...]
    """Outbound touches before ``not_before`` (pushy), oldest first."""
    answered_by: str | None
    """The first outbound touch at or after ``not_before``."""
    answered_at: datetime | None
    latency_business_hours: float | None
    """``not_before`` to the answer."""
    status: TimingStatus


class Streak(_Model):
    """Outbound attempts in a row that the buyer did not answer."""

    contact: str | None
    """The contact, or None for the deal as a whole (any contact)."""
    length: int
    touches: tuple[str, ...]
    """The attempts, oldest first."""
    first_at: datetime
    last_at: datetime
    running: bool
    """Still unanswered at ``at``."""
    ended_by: str | None
    """The touch that showed the buyer engaged."""
    variety: float | None
    """Share of attempts after the first whose channel or time-of-day
    bucket differs from the previous attempt; None for a single attempt."""
    pushy: bool


class ContactStreaks(_Model):
    """The unanswered streaks of one contact (or of the deal)."""

    contact: str | None
    longest: Streak
    """The longest streak (the earliest of equals)."""
    current: Streak | None
    """The streak still running at ``at``, if any."""
    streaks: tuple[Streak, ...]
    """Every streak of two attempts or more, oldest first."""


class GaveUpEarly(_Model):
    """A lost deal the rep stopped chasing after few unanswered attempts."""

    attempts: int
    touches: tuple[str, ...]
    last_attempt_at: datetime
    lost_ref: str
    lost_at: datetime


class DarkPeriod(_Model):
    """No touch of any kind for too long while the deal was open."""

    start: datetime
    start_ref: str
    """The last touch before the silence, or the DealOpened/DealReopened."""
    end: datetime
    end_ref: str | None
    """The next touch or the DealWon/DealLost; None when ongoing at ``at``."""
    business_days: float
    """Length in business days, time inside buyer-requested pauses excluded."""
    ongoing: bool


class ClearSpan(_Model):
    """Open time during which a next step with owner and due date existed."""

    ref: str
    """The NextStepSet entry."""
    start: datetime
    end: datetime


class NextStepClarity(_Model):
    """Share of the deal's open life with a clear next step.

    A next step is clear from its NextStepSet (with an owner) until it is
    cleared or replaced, and at most until the end of its due date in the
    deal's time zone: an overdue next step is not a clear next step.
    """

    share: float | None
    """``clear / open`` business hours; None when no open business time."""
    open_business_hours: float
    clear_business_hours: float
    spans: tuple[ClearSpan, ...]


class PromiseCounts(_Model):
    kept: int = 0
    late: int = 0
    missed: int = 0
    renegotiated: int = 0
    pending: int = 0


class GapsSummary(_Model):
    """The headline numbers of the follow-up gaps."""

    obligations: int
    breaches: int
    open_obligations: int
    median_latency_business_hours: float | None
    """Median (``statistics.median``) latency of discharged obligations."""
    p90_latency_business_hours: float | None
    """90th percentile (nearest rank) latency of discharged obligations."""
    promises: PromiseCounts
    max_unanswered_streak: int
    pushy: bool
    gave_up_early: bool
    dark_periods: int
    dark_from: datetime | None
    next_breach_at: datetime | None
    """Earliest deadline among obligations open and not breached at ``at``."""
    next_step_clarity: float | None


class FollowUpGaps(_Model):
    """Every follow-up finding of one deal at evaluation time ``meta.evaluated_at``.

    ``streaks`` lists the deal (contact None) first, then contacts in
    alphabetical order; every other list is oldest first.
    """

    meta: ProjectionMeta
    status: DealStatus
    obligations: tuple[Obligation, ...]
    promises: tuple[Promise, ...]
    requested_timing: tuple[RequestedTiming, ...]
    streaks: tuple[ContactStreaks, ...]
    gave_up_early: GaveUpEarly | None
    dark_periods: tuple[DarkPeriod, ...]
    dark_from: datetime | None
    """For an open deal: when the current silence becomes (or became) a dark
    period if no touch comes; None once closed."""
    next_step_clarity: NextStepClarity
    summary: GapsSummary


# -- the projection ----------------------------------------------------------


def follow_up_gaps(
    timeline: DealTimeline, rules: RuleSet, at: datetime
) -> FollowUpGaps:
    """The follow-up gaps of ``timeline`` as they stand at ``at``.

    Raises ValueError if the deal had not been opened by ``at``.
    """
    timeline = timeline.up_to(at)
    ctx = _Context(rules.calendar_for(timeline.timezone), rules, at)
    spans, status, closing = _open_spans(timeline.entries)
    closed_at = closing.event.occurred_at if closing and status != "open" else None
    obligations = _obligations(timeline.touches, ctx, closed_at)
    promises = _promises(timeline.entries, timeline.touches, ctx)
    timing = _requested_timing(timeline.entries, timeline.touches, obligations, ctx)
    streaks = _all_streaks(timeline.touches, ctx)
    gave_up = _gave_up_early(timeline.touches, status, closing, ctx)
    pauses = buyer_pauses(timeline.entries)
    dark, dark_from = _dark_periods(spans, timeline.touches, pauses, ctx)
    clarity = _next_step_clarity(timeline.entries, spans, ctx)

    discharged = sorted(o.latency for o in obligations if o.discharge is not None)
    counts = {
        s: sum(p.status == s for p in promises) for s in PromiseCounts.model_fields
    }
    # An obligation whose clock stopped at the close will never breach.
    deadlines = [
        o.deadline
        for o in obligations
        if o.discharge is None
        and not o.breached
        and (closed_at is None or o.trigger.at > closed_at)
    ]
    longest = max((s.longest.length for s in streaks), default=0)
    summary = GapsSummary(
        obligations=len(obligations),
        breaches=sum(o.breached for o in obligations),
        open_obligations=sum(o.discharge is None for o in obligations),
        median_latency_business_hours=(
            _round(statistics.median(discharged)) if discharged else None
        ),
        p90_latency_business_hours=(
            _round(_nearest_rank(discharged, 0.9)) if discharged else None
        ),
        promises=PromiseCounts(**counts),
        max_unanswered_streak=longest,
        pushy=longest >= rules.streaks.pushy_min_unanswered,
        gave_up_early=gave_up is not None,
        dark_periods=len(dark),
        dark_from=dark_from,
        next_breach_at=ctx.local(min(deadlines)) if deadlines else None,
        next_step_clarity=clarity.share,
    )
    return FollowUpGaps(
        meta=ProjectionMeta.of(timeline, rules, at),
        status=status,
        obligations=tuple(o.model(ctx) for o in obligations),
        promises=tuple(promises),
        requested_timing=tuple(timing),
        streaks=tuple(streaks),
        gave_up_early=gave_up,
        dark_periods=tuple(dark),
        dark_from=dark_from,
        next_step_clarity=clarity,
        summary=summary,
    )


# -- shared helpers ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Context:
    cal: BusinessCalendar
    rules: RuleSet
    at: datetime

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.cal.zone)

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.cal.zone).date()

    def span(self, start: datetime, end: datetime) -> timedelta:
        return self.cal.business_time_between(start, end)


def _round(value: float) -> float:
    # Adding 0.0 turns a rounded -0.0 into 0.0, which keeps the JSON stable.
    return round(value, 2) + 0.0


def _nearest_rank(ordered: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of an ascending, non-empty sequence."""
    return ordered[max(math.ceil(share * len(ordered)), 1) - 1]


def _meeting_held(touch: Touch) -> bool:
    return (
        touch.channel in _MEETINGS and touch.direction != "internal" and touch.engaged
    )


def _keeps(kind: PromiseKind, touch: Touch) -> bool:
    """Whether ``touch`` does what a promise of ``kind`` said would happen."""
    if kind == "next_step" and _meeting_held(touch):
        return bool(touch.participants)
    return _discharges(touch)


def _discharges(touch: Touch) -> bool:
    """An outbound touch reaching at least one buyer contact."""
    return touch.outbound and bool(touch.participants)


def _buyer_engaged(touch: Touch) -> bool:
    return (
        touch.inbound
        or (touch.outbound and touch.outcome in _ANSWERED)
        or _meeting_held(touch)
    )


@dataclass(frozen=True, slots=True)
class _Span:
    """A stretch of time during which the deal was open."""

    start: datetime
    start_ref: str
    end: datetime | None  # None: still open at ``at``
    end_ref: str | None


def _open_spans(
    entries: Sequence[Entry],
) -> tuple[list[_Span], DealStatus, Entry | None]:
    """Open spans, the status at the end, and the entry that closed it last."""
    spans: list[_Span] = []
    status: DealStatus = "open"
    start: Entry | None = None
    closing: Entry | None = None
    opened = False
    for entry in entries:
        match entry.event:
            case DealOpened() if not opened:
                opened, start = True, entry
            case DealWon() | DealLost() if start is not None:
                spans.append(
                    _Span(
                        start.event.occurred_at,
                        start.ref,
                        entry.event.occurred_at,
                        entry.ref,
                    )
                )
                start, closing = None, entry
                status = "won" if isinstance(entry.event, DealWon) else "lost"
            case DealReopened() if opened and start is None:
                start, status = entry, "open"
            case _:
                pass
    if not opened:
        raise ValueError("the deal had not been opened at the evaluation time")
    if start is not None:
        spans.append(_Span(start.event.occurred_at, start.ref, None, None))
    return spans, status, closing


# -- 1. follow-up obligations --------------------------------------------------


@dataclass(slots=True)
class _Obligation:
    trigger: Touch
    kind: ObligationKind
    deadline: datetime
    discharge: Touch | None = None
    latency: float = 0.0
    breached: bool = False

    def model(self, ctx: _Context) -> Obligation:
        return Obligation(
            trigger=self.trigger.id,
            trigger_at=ctx.local(self.trigger.at),
            kind=self.kind,
            deadline=ctx.local(self.deadline),
            discharged_by=self.discharge.id if self.discharge else None,
            discharged_at=ctx.local(self.discharge.at) if self.discharge else None,
            latency_business_hours=_round(self.latency),
            over_sla_business_hours=_round(
                max(0.0, self.latency - ctx.rules.follow_up.sla_business_hours)
            ),
            breached=self.breached,
            open=self.discharge is None,
        )


def _obligations(
    touches: Sequence[Touch], ctx: _Context, closed_at: datetime | None
) -> list[_Obligation]:
    sla = ctx.rules.follow_up.sla_business_hours
    found: list[_Obligation] = []
    waiting: list[_Obligation] = []
    for touch in touches:
        # Discharge before triggering: a touch never answers itself, and one
        # at the same instant as a trigger does not answer it either.
        if _discharges(touch):
            still: list[_Obligation] = []
            for owed in waiting:
                if owed.trigger.at < touch.at:
                    owed.discharge = touch
                else:
                    still.append(owed)
            waiting = still
        kind: ObligationKind | None = None
        if touch.inbound:
            kind = "buyer_initiated"
        elif _meeting_held(touch):
            kind = "meeting_held"
        if kind is not None:
            owed = _Obligation(touch, kind, ctx.cal.add_business_hours(touch.at, sla))
            found.append(owed)
            waiting.append(owed)
    limit = timedelta(hours=sla)
    for owed in found:
        end = owed.discharge.at if owed.discharge else ctx.at
        if (
            owed.discharge is None
            and closed_at is not None
            and owed.trigger.at <= closed_at
        ):
            # The deal closed while it was owed: the clock stops there, or a
            # lost deal's last "we went elsewhere" would breach for ever.
            end = closed_at
        elapsed = ctx.span(owed.trigger.at, end)
        owed.latency = elapsed / _HOUR
        # Compared exactly: rounding must not decide a breach.
        owed.breached = elapsed > limit
    return found


# -- 2. promise ledger -------------------------------------------------------


def _promises(
    entries: Sequence[Entry], touches: Sequence[Touch], ctx: _Context
) -> list[Promise]:
    """Promises in the order made.

    A promise is discharged by the first outbound touch with a participant
    strictly after it was made; a next step is also done by a meeting or
    demo held with the buyer, whoever booked it. It is renegotiated when a
    promise of the same kind is made before that discharge and no later than
    its due date; one re-promised only after its due date stays late or
    missed.
    """
    made: list[tuple[Entry, PromiseKind, date]] = []
    for entry in entries:
        match entry.event:
            case FollowUpPromised(due=due):
                made.append((entry, "follow_up", due))
            case NextStepSet(due=due):
                made.append((entry, "next_step", due))
            case _:
                pass
    today = ctx.local_date(ctx.at)
    ledger: list[Promise] = []
    for i, (entry, kind, due) in enumerate(made):
        at = entry.event.occurred_at
        discharge = next((t for t in touches if t.at > at and _keeps(kind, t)), None)
        successor = next((e for e, k, _ in made[i + 1 :] if k == kind), None)
        status: PromiseStatus
        late: int | None = None
        superseded: str | None = None
        if (
            successor is not None
            and ctx.local_date(successor.event.occurred_at) <= due
            and (discharge is None or discharge.at > successor.event.occurred_at)
        ):
            status, superseded, discharge = "renegotiated", successor.ref, None
        elif discharge is not None:
            done = ctx.local_date(discharge.at)
            status = "kept" if done <= due else "late"
            if status == "late":
                late = _days_after(ctx.cal, due, done)
        elif today > due:
            status, late = "missed", _days_after(ctx.cal, due, today)
        else:
            status = "pending"
        ledger.append(
            Promise(
                ref=entry.ref,
                kind=kind,
                made_at=ctx.local(at),
                due=due,
                status=status,
                discharged_by=discharge.id if discharge else None,
                discharged_at=ctx.local(discharge.at) if discharge else None,
                superseded_by=superseded,
                business_days_late=late,
            )
        )
    return ledger


def _days_after(cal: BusinessCalendar, due: date, day: date) -> int:
    """Business days ``d`` with ``due < d <= day``."""
    one = timedelta(days=1)
    return cal.business_day_count(due + one, day + one)


# -- 3. buyer-requested timing -----------------------------------------------


def _requested_timing(
    entries: Sequence[Entry],
    touches: Sequence[Touch],
    obligations: Sequence[_Obligation],
    ctx: _Context,
) -> list[RequestedTiming]:
    """Each request judges the outbound touches after it was made and before
    the same contact's next request (which supersedes it).

    A touch answering a follow-up owed since the request (the buyer wrote,
    or a meeting was held) is a reply, not an early touch.
    """
    requests: list[tuple[Entry, FollowUpRequested]] = []
    for entry in entries:
        if isinstance(entry.event, FollowUpRequested):
            requests.append((entry, entry.event))
    threshold = ctx.rules.requested_timing_late_business_hours
    limit = timedelta(hours=threshold)
    found: list[RequestedTiming] = []
    for i, (entry, request) in enumerate(requests):
        made = request.occurred_at
        successor = next(
            (r.occurred_at for _, r in requests[i + 1 :] if r.by == request.by), None
        )
        window = [
            t
            for t in touches
            if t.outbound and made < t.at and (successor is None or t.at < successor)
        ]
        targeted = [t for t in window if request.by in t.participants]
        pool = targeted or window
        replies = {
            o.discharge.id
            for o in obligations
            if o.discharge is not None and o.trigger.at > made
        }
        early = tuple(
            t.id for t in pool if t.at < request.not_before and t.id not in replies
        )
        answer = next((t for t in pool if t.at >= request.not_before), None)
        status: TimingStatus
        latency: float | None = None
        if answer is not None:
            elapsed = ctx.span(request.not_before, answer.at)
            latency = _round(elapsed / _HOUR)
            status = "on_time" if elapsed <= limit else "late"
        else:
            end = ctx.at if successor is None else successor
            if ctx.span(request.not_before, end) > limit:
                status = "late"
            else:
                status = "pending" if successor is None else "superseded"
        found.append(
            RequestedTiming(
                ref=entry.ref,
                contact=request.by,
                requested_at=ctx.local(made),
                not_before=ctx.local(request.not_before),
                deadline=ctx.cal.add_business_hours(request.not_before, threshold),
                scope="contact" if targeted else "deal",
                early=early,
                answered_by=answer.id if answer else None,
                answered_at=ctx.local(answer.at) if answer else None,
                latency_business_hours=latency,
                status=status,
            )
        )
    return found


# -- 4. unanswered streaks ---------------------------------------------------


@dataclass(slots=True)
class _Run:
    attempts: list[Touch] = field(default_factory=list)
    ended_by: Touch | None = None


def _runs(touches: Iterable[Touch], contact: str | None) -> list[_Run]:
    """Unanswered runs to ``contact`` (None: to the deal), oldest first."""
    runs: list[_Run] = []
    current = _Run()
    for touch in touches:
        if touch.direction == "internal":
            continue
        if contact is not None and contact not in touch.participants:
            continue
        if _buyer_engaged(touch):
            if current.attempts:
                current.ended_by = touch
                runs.append(current)
                current = _Run()
        elif touch.outbound:
            current.attempts.append(touch)
    if current.attempts:
        runs.append(current)
    return runs


def _bucket(ctx: _Context, touch: Touch) -> int:
    local = ctx.local(touch.at).time()
    return bisect_right(ctx.rules.streaks.time_of_day_boundaries, local)


def _streak(run: _Run, contact: str | None, ctx: _Context) -> Streak:
    attempts = run.attempts
    changes = sum(
        prev.channel != cur.channel or _bucket(ctx, prev) != _bucket(ctx, cur)
        for prev, cur in pairwise(attempts)
    )
    return Streak(
        contact=contact,
        length=len(attempts),
        touches=tuple(t.id for t in attempts),
        first_at=ctx.local(attempts[0].at),
        last_at=ctx.local(attempts[-1].at),
        running=run.ended_by is None,
        ended_by=run.ended_by.id if run.ended_by else None,
        variety=_round(changes / (len(attempts) - 1)) if len(attempts) > 1 else None,
        pushy=len(attempts) >= ctx.rules.streaks.pushy_min_unanswered,
    )


def _all_streaks(touches: Sequence[Touch], ctx: _Context) -> list[ContactStreaks]:
    contacts = sorted({c for t in touches if t.outbound for c in t.participants})
    found: list[ContactStreaks] = []
    for contact in [None, *contacts]:
        streaks = [_streak(run, contact, ctx) for run in _runs(touches, contact)]
        if not streaks:
            continue
        # max() keeps the first of equals: the earliest longest streak.
        longest = max(streaks, key=lambda s: s.length)
        found.append(
            ContactStreaks(
                contact=contact,
                longest=longest,
                current=streaks[-1] if streaks[-1].running else None,
                streaks=tuple(s for s in streaks if s.length >= 2),
            )
        )
    return found


# -- 5. gave up early --------------------------------------------------------


def _gave_up_early(
    touches: Sequence[Touch],
    status: DealStatus,
    closing: Entry | None,
    ctx: _Context,
) -> GaveUpEarly | None:
    """A lost deal whose last touch before the loss ended a running streak of
    at most ``gave_up_max_unanswered`` attempts. Touches after the loss (a
    post-mortem call) do not change the story of how it was lost."""
    if status != "lost" or closing is None:
        return None
    lost_at = closing.event.occurred_at
    before = [t for t in touches if t.at <= lost_at]
    runs = _runs(before, None)
    if not before or not runs or runs[-1].ended_by is not None:
        return None
    attempts = runs[-1].attempts
    if before[-1].id != attempts[-1].id:
        return None  # an internal touch came after the last attempt
    if len(attempts) > ctx.rules.streaks.gave_up_max_unanswered:
        return None
    return GaveUpEarly(
        attempts=len(attempts),
        touches=tuple(t.id for t in attempts),
        last_attempt_at=ctx.local(attempts[-1].at),
        lost_ref=closing.ref,
        lost_at=ctx.local(lost_at),
    )


# -- 6. dark periods ---------------------------------------------------------


def buyer_pauses(entries: Sequence[Entry]) -> list[tuple[datetime, datetime]]:
    """Buyer-requested pauses (request made until ``not_before``), merged."""
    raw = sorted(
        (e.event.occurred_at, e.event.not_before)
        for e in entries
        if isinstance(e.event, FollowUpRequested)
        and e.event.not_before > e.event.occurred_at
    )
    merged: list[tuple[datetime, datetime]] = []
    for start, end in raw:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _quiet_time(
    start: datetime,
    end: datetime,
    pauses: Sequence[tuple[datetime, datetime]],
    ctx: _Context,
) -> timedelta:
    """Business time from ``start`` to ``end`` outside the pauses."""
    total = ctx.span(start, end)
    for p_start, p_end in pauses:
        lo, hi = max(start, p_start), min(end, p_end)
        if lo < hi:
            total -= ctx.span(lo, hi)
    return total


def quiet_until(
    calendar: BusinessCalendar,
    start: datetime,
    needed: timedelta,
    pauses: Sequence[tuple[datetime, datetime]],
) -> datetime:
    """The earliest instant with ``needed`` business time after ``start``
    outside the pauses."""
    moment, remaining = start, needed
    for p_start, p_end in pauses:
        if p_end <= moment:
            continue
        reached = calendar.add_business_time(moment, remaining)
        if reached <= p_start:
            return reached
        if p_start > moment:
            remaining -= calendar.business_time_between(moment, p_start)
        moment = p_end
    return calendar.add_business_time(moment, remaining)


def _dark_periods(
    spans: Sequence[_Span],
    touches: Sequence[Touch],
    pauses: Sequence[tuple[datetime, datetime]],
    ctx: _Context,
) -> tuple[list[DarkPeriod], datetime | None]:
    needed = timedelta(
        hours=ctx.rules.dark_period.business_days * ctx.cal.hours_per_day
    )
    found: list[DarkPeriod] = []
    dark_from: datetime | None = None
    for span in spans:
        end = ctx.at if span.end is None else span.end
        # Marks are the instants that break a silence: the span's start, every
        # touch inside it, and its end (ref None: ``at`` on a still open deal).
        marks: list[tuple[datetime, str | None]] = [(span.start, span.start_ref)]
        marks += [(t.at, t.id) for t in touches if span.start <= t.at <= end]
        marks.append((end, span.end_ref))
        for (a, a_ref), (b, b_ref) in pairwise(marks):
            quiet = _quiet_time(a, b, pauses, ctx)
            if quiet >= needed:
                found.append(
                    DarkPeriod(
                        start=ctx.local(a),
                        start_ref=a_ref or "",
                        end=ctx.local(b),
                        end_ref=b_ref,
                        business_days=_round(quiet / _HOUR / ctx.cal.hours_per_day),
                        ongoing=b_ref is None,
                    )
                )
        if span.end is None:
            last = marks[-2][0]
            dark_from = ctx.local(quiet_until(ctx.cal, last, needed, pauses))
    return found, dark_from


# -- 7. next-step clarity ----------------------------------------------------


def _next_step_clarity(
    entries: Sequence[Entry], spans: Sequence[_Span], ctx: _Context
) -> NextStepClarity:
    # (NextStepSet ref, since, until): the clear next steps, before clipping
    # to the open spans.
    clear: list[tuple[str, datetime, datetime]] = []
    current: tuple[str, datetime, datetime] | None = None  # ref, since, due end
    for entry in entries:
        event = entry.event
        if not isinstance(event, NextStepSet | NextStepCleared):
            continue
        if current is not None:
            ref, since, due_end = current
            clear.append((ref, since, min(event.occurred_at, due_end)))
        current = None
        if isinstance(event, NextStepSet) and event.owner is not None:
            # Clear through the end of the due date, local time.
            due_end = datetime.combine(
                event.due + timedelta(days=1), time(0), tzinfo=ctx.cal.zone
            )
            current = (entry.ref, event.occurred_at, due_end)
    if current is not None:
        ref, since, due_end = current
        clear.append((ref, since, min(ctx.at, due_end)))

    open_time = timedelta(0)
    clear_time = timedelta(0)
    pieces: list[ClearSpan] = []
    for span in spans:
        span_end = ctx.at if span.end is None else span.end
        open_time += ctx.span(span.start, span_end)
        for ref, since, until in clear:
            lo, hi = max(since, span.start), min(until, span_end)
            if lo < hi:
                clear_time += ctx.span(lo, hi)
                pieces.append(
                    ClearSpan(ref=ref, start=ctx.local(lo), end=ctx.local(hi))
                )
    pieces.sort(key=lambda p: (p.start, p.end, p.ref))
    return NextStepClarity(
        share=_round(clear_time / open_time) if open_time > timedelta(0) else None,
        open_business_hours=_round(open_time / _HOUR),
        clear_business_hours=_round(clear_time / _HOUR),
        spans=tuple(pieces),
    )

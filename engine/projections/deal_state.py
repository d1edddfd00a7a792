"""A deal's state at an evaluation time.

The headline facts, who is on the deal in which role, the last touches, the
current next step, open promises, time in each stage (business days),
close-date slips and amount changes, as of ``at``.

The folds this module shares with ``stakeholders`` (lifecycle, roster, stage
visits) live here too, so both projections agree on what a stage visit or a
role at a time is.

Conventions
- Only what occurred at or before ``at`` counts.
- Half-open intervals: a role or a stage visit covers ``[since, until)``, so a
  touch at the very instant of a stage change belongs to the new stage.
- Business days are working time in the deal's calendar divided by the length
  of a working day, rounded to 2 decimals.
- Lists are in timeline order unless a field says otherwise; stakeholders are
  sorted by contact.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from engine.business_time import BusinessCalendar
from engine.events import (
    DealLost,
    DealOpened,
    DealReopened,
    DealUpdated,
    DealWon,
    FollowUpPromised,
    NextStepCleared,
    NextStepSet,
    StageChanged,
    StakeholderJoined,
    StakeholderLeft,
    StakeholderPriorityNoted,
    StakeholderRoleChanged,
)
from engine.projections.prepare import DealTimeline, Entry, ProjectionMeta, Touch
from engine.rules import RuleSet

__all__ = [
    "AmountChange",
    "CloseSlip",
    "DealState",
    "FormerStakeholder",
    "Lifecycle",
    "NextStep",
    "OpenPromise",
    "Person",
    "PriorityNote",
    "RolePeriod",
    "StageTime",
    "StageVisit",
    "Stakeholder",
    "Status",
    "TouchMark",
    "deal_state",
    "lifecycle",
    "roster",
    "stage_sort_key",
    "stage_visits",
    "start",
    "visit_index_at",
]

Status = Literal["open", "won", "lost"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- output models -----------------------------------------------------------


class TouchMark(_Model):
    """A touch cited by when it happened and its touchpoint id."""

    at: datetime
    touch: str


class RolePeriod(_Model):
    """A role a contact held over ``[since, until)``; ``until`` None: still."""

    role: str
    since: datetime
    until: datetime | None
    ref: str  # the StakeholderJoined / StakeholderRoleChanged that began it


class PriorityNote(_Model):
    """What a stakeholder is measured on, as noted."""

    priority: str
    at: datetime
    ref: str


class Stakeholder(_Model):
    """A contact currently on the deal, with the role they hold now."""

    contact: str
    name: str | None
    title: str | None
    role: str
    since: datetime  # when they took this role
    ref: str


class FormerStakeholder(_Model):
    """A contact who left the deal (and has not rejoined)."""

    contact: str
    name: str | None
    title: str | None
    last_role: str | None
    left_at: datetime
    reason: str | None
    ref: str  # the StakeholderLeft


class CloseSlip(_Model):
    """The expected close moved later than the previous expected close."""

    from_date: date
    to_date: date
    days: int  # calendar days pushed
    at: datetime
    ref: str


class AmountChange(_Model):
    """The amount changed (by DealUpdated, or by DealWon naming an amount)."""

    from_amount: Decimal | None
    to_amount: Decimal
    at: datetime
    ref: str


class NextStep(_Model):
    """The current next step (the latest NextStepSet not cleared since)."""

    description: str
    due: date
    owner: str | None
    set_at: datetime
    ref: str
    overdue: bool  # the due date has passed in the deal's time zone at ``at``


class OpenPromise(_Model):
    """A promised follow-up not yet discharged by an outbound touch."""

    due: date
    promise: str | None
    promised_at: datetime
    ref: str
    overdue: bool  # the due date has passed in the deal's time zone at ``at``


class StageVisit(_Model):
    """One stay in a stage. ``left_at`` None: the deal is still there.

    An open visit counts business days up to ``at``, or up to the close if
    the deal is closed (time after a loss is not time in the stage).
    """

    stage: str
    entered_at: datetime
    left_at: datetime | None
    business_days: float
    ref: str  # the DealOpened / StageChanged that entered it


class StageTime(_Model):
    """Total time in one stage over all its visits."""

    stage: str
    visits: int
    business_days: float  # the sum of the visits' (rounded) business days


class DealState(_Model):
    """A deal as it stood at ``meta.evaluated_at``.

    ``stakeholders`` and ``former`` are sorted by contact; ``time_in_stage``
    follows the pipeline order of the rules (stages it does not list come
    last, in order of first visit); every other list is in timeline order.
    """

    meta: ProjectionMeta
    name: str
    account: str
    owner: str
    timezone: str
    stage: str
    status: Status
    amount: Decimal | None
    currency: str | None
    expected_close: date | None
    close_slip_count: int
    close_days_pushed: int
    close_slips: list[CloseSlip]
    opened_at: datetime
    closed_at: datetime | None
    loss_reason: str | None
    competitor: str | None
    reopen_count: int
    stakeholders: list[Stakeholder]
    former: list[FormerStakeholder]
    last_touch: TouchMark | None
    last_buyer_touch: TouchMark | None
    next_step: NextStep | None
    open_promises: list[OpenPromise]
    stage_visits: list[StageVisit]
    time_in_stage: list[StageTime]
    amount_changes: list[AmountChange]


# -- folds shared with the other projections ---------------------------------


def start(timeline: DealTimeline, at: datetime) -> DealTimeline:
    """``timeline`` cut at ``at``, after checking ``at`` is usable."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive evaluation time {at.isoformat()}; give a UTC offset")
    if timeline.opened.occurred_at > at:
        raise ValueError(
            f"deal {timeline.deal!r} had not opened by {at.isoformat()} "
            f"(it opened {timeline.opened.occurred_at.isoformat()})"
        )
    return timeline.up_to(at)


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """Open/won/lost over time, from DealWon, DealLost and DealReopened."""

    status: Status
    closed_at: datetime | None
    loss_reason: str | None
    competitor: str | None
    reopen_count: int
    last_reopened_at: datetime | None
    closures: tuple[tuple[datetime, datetime | None], ...]
    """``[closed, reopened)`` intervals; the last may still be open-ended."""

    def is_open(self, moment: datetime) -> bool:
        """Whether the deal was open at ``moment`` (closed from the close
        instant, open again from the reopen instant)."""
        return not any(
            closed <= moment and (reopened is None or moment < reopened)
            for closed, reopened in self.closures
        )

    def horizon(self, at: datetime) -> datetime:
        """Where open-deal clocks stop: ``at``, or the close if closed then."""
        return at if self.closed_at is None else self.closed_at


def lifecycle(timeline: DealTimeline) -> Lifecycle:
    """Fold the closes and reopens of ``timeline`` in timeline order."""
    status: Status = "open"
    closed_at: datetime | None = None
    loss_reason = competitor = None
    reopens = 0
    last_reopened: datetime | None = None
    closures: list[tuple[datetime, datetime | None]] = []
    for entry in timeline.entries:
        event = entry.event
        match event:
            case DealWon() | DealLost():
                # Timeline order may differ from recording order; a second
                # close without a reopen in between keeps the first close.
                if status == "open":
                    closures.append((event.occurred_at, None))
                status = "won" if isinstance(event, DealWon) else "lost"
                closed_at = closed_at or event.occurred_at
                if isinstance(event, DealLost):
                    loss_reason, competitor = event.reason, event.competitor
                else:
                    loss_reason = competitor = None
            case DealReopened():
                reopens += 1
                last_reopened = event.occurred_at
                if status != "open":
                    closures[-1] = (closures[-1][0], event.occurred_at)
                status, closed_at = "open", None
                loss_reason = competitor = None
            case _:
                pass
    return Lifecycle(
        status=status,
        closed_at=closed_at,
        loss_reason=loss_reason,
        competitor=competitor,
        reopen_count=reopens,
        last_reopened_at=last_reopened,
        closures=tuple(closures),
    )


@dataclass(slots=True)
class Person:
    """A contact as the stakeholder events describe them."""

    contact: str
    name: str | None = None
    title: str | None = None
    periods: list[RolePeriod] = field(default_factory=list)
    left_at: datetime | None = None
    left_reason: str | None = None
    left_ref: str | None = None
    priorities: list[PriorityNote] = field(default_factory=list)

    @property
    def current(self) -> RolePeriod | None:
        """The role period still running, if they are on the deal."""
        if self.periods and self.periods[-1].until is None:
            return self.periods[-1]
        return None

    def role_at(self, moment: datetime) -> str | None:
        """Their role at ``moment``.

        A moment before they first joined counts with the role they joined
        with: reps often add a stakeholder only after first meeting them.
        """
        for period in self.periods:
            if period.since <= moment and (
                period.until is None or moment < period.until
            ):
                return period.role
        if self.periods and moment < self.periods[0].since:
            return self.periods[0].role
        return None

    def take_role(self, role: str, moment: datetime, ref: str) -> None:
        """Begin holding ``role`` at ``moment`` (ending any other role)."""
        running = self.current
        if running is not None:
            if running.role == role:
                return
            self.periods[-1] = running.model_copy(update={"until": moment})
        self.periods.append(RolePeriod(role=role, since=moment, until=None, ref=ref))
        self.left_at = self.left_reason = self.left_ref = None


def roster(timeline: DealTimeline) -> dict[str, Person]:
    """Everyone the stakeholder events name, keyed by contact."""
    people: dict[str, Person] = {}
    for entry in timeline.entries:
        event = entry.event
        match event:
            case StakeholderJoined():
                person = people.setdefault(event.contact, Person(event.contact))
                # A rejoin without a name or title keeps what was known.
                person.name = event.name or person.name
                person.title = event.title or person.title
                person.take_role(event.role, event.occurred_at, entry.ref)
            case StakeholderRoleChanged():
                person = people.setdefault(event.contact, Person(event.contact))
                person.take_role(event.role, event.occurred_at, entry.ref)
            case StakeholderLeft():
                person = people.setdefault(event.contact, Person(event.contact))
                running = person.current
                if running is not None:
                    person.periods[-1] = running.model_copy(
                        update={"until": event.occurred_at}
                    )
                person.left_at = event.occurred_at
                person.left_reason = event.reason
                person.left_ref = entry.ref
            case StakeholderPriorityNoted():
                person = people.setdefault(event.contact, Person(event.contact))
                person.priorities.append(
                    PriorityNote(
                        priority=event.priority, at=event.occurred_at, ref=entry.ref
                    )
                )
            case _:
                pass
    return people


def stage_visits(
    timeline: DealTimeline, calendar: BusinessCalendar, horizon: datetime
) -> list[StageVisit]:
    """The stages the deal went through, in order, with business days.

    A StageChanged to the stage the deal is already in is not a new visit.
    The open visit counts up to ``horizon`` (see ``Lifecycle.horizon``).
    """
    opened = timeline.opened
    opening = next(
        (e.ref for e in timeline.entries if isinstance(e.event, DealOpened)), "#1"
    )
    raw: list[tuple[str, datetime, str]] = [(opened.stage, opened.occurred_at, opening)]
    for entry in timeline.entries:
        event = entry.event
        if isinstance(event, StageChanged) and event.stage != raw[-1][0]:
            # A change dated before the previous one (e.g. before the deal
            # opened) takes effect then, so no stay is negative.
            raw.append((event.stage, max(event.occurred_at, raw[-1][1]), entry.ref))
    visits: list[StageVisit] = []
    for i, (stage, entered, ref) in enumerate(raw):
        left = raw[i + 1][1] if i + 1 < len(raw) else None
        end = left if left is not None else max(horizon, entered)
        days = calendar.business_days_between(entered, end)
        visits.append(
            StageVisit(
                stage=stage,
                entered_at=entered,
                left_at=left,
                business_days=round(days, 2),
                ref=ref,
            )
        )
    return visits


def visit_index_at(visits: Sequence[StageVisit], moment: datetime) -> int:
    """The visit ``moment`` falls in; before the deal opened: the first."""
    starts = [v.entered_at for v in visits]
    return max(bisect_right(starts, moment) - 1, 0)


def stage_sort_key(
    rules: RuleSet, visits: Sequence[StageVisit]
) -> dict[str, tuple[int, int]]:
    """Pipeline order of the visited stages; unlisted stages after the
    listed ones, in order of first visit."""
    first_seen: dict[str, int] = {}
    for i, visit in enumerate(visits):
        first_seen.setdefault(visit.stage, i)
    unlisted = len(rules.stages.order)
    return {
        stage: (
            rank if (rank := rules.stage_rank(stage)) is not None else unlisted,
            seen,
        )
        for stage, seen in first_seen.items()
    }


# -- the projection ----------------------------------------------------------


def _mark(touch: Touch | None) -> TouchMark | None:
    return None if touch is None else TouchMark(at=touch.at, touch=touch.id)


def _open_promises(
    promise: Entry | None, touches: Sequence[Touch], today: date
) -> list[OpenPromise]:
    # Only the latest promise can be open: a later one supersedes it.
    if promise is None or not isinstance(promise.event, FollowUpPromised):
        return []
    event = promise.event
    kept = any(
        t.outbound and t.participants and t.at > event.occurred_at for t in touches
    )
    if kept:
        return []
    return [
        OpenPromise(
            due=event.due,
            promise=event.promise,
            promised_at=event.occurred_at,
            ref=promise.ref,
            overdue=today > event.due,
        )
    ]


def deal_state(timeline: DealTimeline, rules: RuleSet, at: datetime) -> DealState:
    """The deal as it stood at ``at`` (pure: no clock, no store)."""
    meta = ProjectionMeta.of(timeline, rules, at)
    timeline = start(timeline, at)
    calendar = rules.calendar_for(timeline.timezone)
    today = at.astimezone(calendar.zone).date()
    life = lifecycle(timeline)
    opened = timeline.opened

    name, owner = opened.name, opened.owner
    amount, currency = opened.amount, opened.currency
    expected_close = opened.expected_close
    slips: list[CloseSlip] = []
    amounts: list[AmountChange] = []
    next_step: NextStep | None = None
    promise: Entry | None = None

    def change_amount(new: Decimal, entry: Entry) -> None:
        nonlocal amount
        if new != amount:
            amounts.append(
                AmountChange(
                    from_amount=amount,
                    to_amount=new,
                    at=entry.event.occurred_at,
                    ref=entry.ref,
                )
            )
            amount = new

    for entry in timeline.entries:
        event = entry.event
        match event:
            case DealUpdated():
                name = event.name or name
                owner = event.owner or owner
                currency = event.currency or currency
                if event.amount is not None:
                    change_amount(event.amount, entry)
                new_close = event.expected_close
                if new_close is not None:
                    # A slip is a move later than the close date just before
                    # it; pulling a date in and pushing it out again slips.
                    if expected_close is not None and new_close > expected_close:
                        slips.append(
                            CloseSlip(
                                from_date=expected_close,
                                to_date=new_close,
                                days=(new_close - expected_close).days,
                                at=event.occurred_at,
                                ref=entry.ref,
                            )
                        )
                    expected_close = new_close
            case DealWon(amount=Decimal() as won):
                change_amount(won, entry)
            case NextStepSet():
                next_step = NextStep(
                    description=event.description,
                    due=event.due,
                    owner=event.owner,
                    set_at=event.occurred_at,
                    ref=entry.ref,
                    overdue=today > event.due,
                )
            case NextStepCleared():
                next_step = None
            case FollowUpPromised():
                promise = entry
            case _:
                pass

    people = roster(timeline)
    current: list[Stakeholder] = []
    former: list[FormerStakeholder] = []
    for contact in sorted(people):
        person = people[contact]
        running = person.current
        if running is not None:
            current.append(
                Stakeholder(
                    contact=contact,
                    name=person.name,
                    title=person.title,
                    role=running.role,
                    since=running.since,
                    ref=running.ref,
                )
            )
        elif person.left_at is not None and person.left_ref is not None:
            former.append(
                FormerStakeholder(
                    contact=contact,
                    name=person.name,
                    title=person.title,
                    last_role=person.periods[-1].role if person.periods else None,
                    left_at=person.left_at,
                    reason=person.left_reason,
                    ref=person.left_ref,
                )
            )

    visits = stage_visits(timeline, calendar, life.horizon(at))
    totals: dict[str, tuple[int, float]] = {}
    for visit in visits:
        count, days = totals.get(visit.stage, (0, 0.0))
        totals[visit.stage] = (count + 1, days + visit.business_days)
    order = stage_sort_key(rules, visits)

    touches = timeline.touches
    return DealState(
        meta=meta,
        name=name,
        account=opened.account,
        owner=owner,
        timezone=calendar.timezone,
        stage=visits[-1].stage,
        status=life.status,
        amount=amount,
        currency=currency,
        expected_close=expected_close,
        close_slip_count=len(slips),
        close_days_pushed=sum(s.days for s in slips),
        close_slips=slips,
        opened_at=opened.occurred_at,
        closed_at=life.closed_at,
        loss_reason=life.loss_reason,
        competitor=life.competitor,
        reopen_count=life.reopen_count,
        stakeholders=current,
        former=former,
        last_touch=_mark(touches[-1] if touches else None),
        last_buyer_touch=_mark(next((t for t in reversed(touches) if t.inbound), None)),
        next_step=next_step,
        open_promises=_open_promises(promise, touches, today),
        stage_visits=visits,
        time_in_stage=[
            StageTime(stage=stage, visits=count, business_days=round(days, 2))
            for stage, (count, days) in sorted(
                totals.items(), key=lambda item: order[item[0]]
            )
        ],
        amount_changes=amounts,
    )

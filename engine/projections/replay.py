"""Coaching replay: a deal's timeline walked step by step.

One step per event, in the order things happened: touchpoints by their
(corrected) time, other events by occurred time, ties by sequence version.
Corrections and retractions are already applied, so they are not steps, and
retracted touches do not appear. Coaching notes are not steps either: a note
pinned to a touchpoint (``about``) is shown on that touch's step; any other
note on the step at or just before the time it was written (the first step
if it predates them all).

Each step says what changed in the deal's headline facts (the deal state
after exactly the events up to and including this step, against the state
before it), which findings appeared and which cleared (the findings at this
step's time against those at the previous step's), and the notes.

``until`` cuts the walk: only events that occurred at or before it are
steps. A note pinned to a touch shown in the walk is shown whenever it was
written (coaches annotate after the fact); an unpinned note written after
``until`` is left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from engine.events import (
    CoachingNoteAdded,
    DealLost,
    DealOpened,
    DealReopened,
    DealUpdated,
    DealWon,
    FollowUpPromised,
    FollowUpRequested,
    NextStepCleared,
    NextStepSet,
    StageChanged,
    StakeholderJoined,
    StakeholderLeft,
    StakeholderPriorityNoted,
    StakeholderRoleChanged,
)
from engine.projections.deal_state import DealState, deal_state
from engine.projections.findings import AccountContext, Finding, findings
from engine.projections.prepare import DealTimeline, Entry, ProjectionMeta, Touch
from engine.rules import RuleSet

__all__ = ["Change", "CoachingNote", "Replay", "ReplayStep", "replay"]

# The headline fields a step reports changes of, in this order.
HEADLINE_FIELDS = (
    "stage",
    "status",
    "owner",
    "amount",
    "expected_close",
    "next_step",
    "stakeholders",
    "last_touch",
)
_MAX_TEXT = 120
TOUCH_KIND = "TouchpointLogged"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Change(_Model):
    """One headline fact before and after a step, as short text.

    ``stakeholders`` changes come one per contact, as ``contact: role``
    (``before`` None: they joined; ``after`` None: they left).
    """

    field: str
    before: str | None
    after: str | None


class CoachingNote(_Model):
    """A coach's note shown on a step."""

    author: str
    note: str
    at: datetime
    ref: str


class ReplayStep(_Model):
    """One event of the walk (``index`` counts from 1).

    ``appeared`` and ``cleared`` are sorted by (visible_at, rule, key);
    ``cleared`` shows each finding as it last stood; ``notes`` are in
    timeline order.
    """

    index: int
    at: datetime
    ref: str
    kind: str
    description: str
    changes: list[Change]
    appeared: list[Finding]
    cleared: list[Finding]
    notes: list[CoachingNote]


class Replay(_Model):
    """The walk; ``meta.evaluated_at`` is ``until``, else the last step's
    time (the opening if there is none)."""

    meta: ProjectionMeta
    until: datetime | None
    steps: list[ReplayStep]


# -- the walk ----------------------------------------------------------------

_Item = Entry | Touch


def _at(item: _Item) -> datetime:
    return item.at if isinstance(item, Touch) else item.event.occurred_at


def _walk(timeline: DealTimeline) -> Iterator[_Item]:
    """Entries (notes excluded) and touches merged by (time, version).

    Each list keeps its own timeline order, so same-time entries stay in
    the order ``prepare`` gave them.
    """
    entries = [
        e for e in timeline.entries if not isinstance(e.event, CoachingNoteAdded)
    ]
    touches = list(timeline.touches)
    i = j = 0
    while i < len(entries) or j < len(touches):
        take_entry = j == len(touches) or (
            i < len(entries)
            and (entries[i].event.occurred_at, entries[i].version)
            <= (touches[j].at, touches[j].version)
        )
        if take_entry:
            yield entries[i]
            i += 1
        else:
            yield touches[j]
            j += 1


def replay(
    timeline: DealTimeline,
    rules: RuleSet,
    until: datetime | None = None,
    account: AccountContext | None = None,
) -> Replay:
    """Walk ``timeline`` step by step up to ``until`` (default: all of it).

    ``account`` (the account's other deals) lets account neglect appear.
    """
    if until is not None and (until.tzinfo is None or until.utcoffset() is None):
        raise ValueError(f"naive replay time {until.isoformat()}; give a UTC offset")
    items = [item for item in _walk(timeline) if until is None or _at(item) <= until]
    found = _FindingsAt(timeline, rules, account)
    seen_entries: list[Entry] = []
    seen_touches: list[Touch] = []
    before: dict[str, list[str]] = {}
    previous: dict[str, Finding] = {}
    steps: list[ReplayStep] = []
    for index, item in enumerate(items, 1):
        at = _at(item)
        if isinstance(item, Touch):
            seen_touches.append(item)
        else:
            seen_entries.append(item)
        partial = replace(
            timeline, entries=tuple(seen_entries), touches=tuple(seen_touches)
        )
        after = _headline(partial, rules, at)
        current = found(at)
        steps.append(
            ReplayStep(
                index=index,
                at=at,
                ref=item.id if isinstance(item, Touch) else item.ref,
                kind=TOUCH_KIND if isinstance(item, Touch) else item.event.type,
                description=_describe(item),
                changes=_changes(before, after),
                appeared=_ordered(v for k, v in current.items() if k not in previous),
                cleared=_ordered(v for k, v in previous.items() if k not in current),
                notes=[],
            )
        )
        before, previous = after, current
    steps = _with_notes(timeline, steps, until)
    evaluated = until or (steps[-1].at if steps else timeline.opened.occurred_at)
    return Replay(
        meta=ProjectionMeta.of(timeline, rules, evaluated), until=until, steps=steps
    )


class _FindingsAt:
    """``findings`` keyed by finding key, cached per evaluation time."""

    def __init__(
        self, timeline: DealTimeline, rules: RuleSet, account: AccountContext | None
    ) -> None:
        self._timeline, self._rules, self._account = timeline, rules, account
        self._cache: dict[datetime, dict[str, Finding]] = {}

    def __call__(self, at: datetime) -> dict[str, Finding]:
        if at < self._timeline.opened.occurred_at:
            return {}  # nothing can be visible before the deal exists
        if at not in self._cache:
            self._cache[at] = {
                f.key: f
                for f in findings(self._timeline, self._rules, at, self._account)
            }
        return self._cache[at]


def _ordered(items: Iterator[Finding]) -> list[Finding]:
    return sorted(items, key=lambda f: (f.visible_at, f.rule, f.key))


# -- headline facts ----------------------------------------------------------


def _headline(
    partial: DealTimeline, rules: RuleSet, at: datetime
) -> dict[str, list[str]]:
    """The headline facts after the events in ``partial``, as text lists.

    Before the deal opened only the last touch is known.
    """
    touches = partial.touches
    last = [f"{touches[-1].id} ({touches[-1].at.isoformat()})"] if touches else []
    if at < partial.opened.occurred_at:
        return {"last_touch": last}
    state: DealState = deal_state(partial, rules, at)
    amount = []
    if state.amount is not None:
        amount = [
            f"{state.amount} {state.currency}" if state.currency else str(state.amount)
        ]
    step = state.next_step
    next_step = []
    if step is not None:
        owner = f", owner {step.owner}" if step.owner else ""
        next_step = [f"{_line(step.description)} (due {step.due.isoformat()}{owner})"]
    return {
        "stage": [state.stage],
        "status": [state.status],
        "owner": [state.owner],
        "amount": amount,
        "expected_close": (
            [state.expected_close.isoformat()] if state.expected_close else []
        ),
        "next_step": next_step,
        "stakeholders": [f"{s.contact}: {s.role}" for s in state.stakeholders],
        "last_touch": last,
    }


def _changes(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[Change]:
    changes: list[Change] = []
    for name in HEADLINE_FIELDS:
        old, new = before.get(name, []), after.get(name, [])
        if old == new:
            continue
        if name != "stakeholders":
            changes.append(
                Change(
                    field=name,
                    before=old[0] if old else None,
                    after=new[0] if new else None,
                )
            )
            continue
        olds = {v.split(": ", 1)[0]: v for v in old}
        news = {v.split(": ", 1)[0]: v for v in new}
        for contact in sorted(olds.keys() | news.keys()):
            if olds.get(contact) != news.get(contact):
                changes.append(
                    Change(
                        field=name, before=olds.get(contact), after=news.get(contact)
                    )
                )
    return changes


# -- notes ---------------------------------------------------------------------


def _with_notes(
    timeline: DealTimeline, steps: list[ReplayStep], until: datetime | None
) -> list[ReplayStep]:
    """Attach each coaching note to its step (see the module docstring)."""
    if not steps:
        return steps
    by_touch = {s.ref: i for i, s in enumerate(steps) if s.kind == TOUCH_KIND}
    notes: list[list[CoachingNote]] = [[] for _ in steps]
    for entry in timeline.entries:
        event = entry.event
        if not isinstance(event, CoachingNoteAdded):
            continue
        place = by_touch.get(event.about) if event.about is not None else None
        if place is None:
            if until is not None and event.occurred_at > until:
                continue
            earlier = [i for i, s in enumerate(steps) if s.at <= event.occurred_at]
            place = earlier[-1] if earlier else 0
        notes[place].append(
            CoachingNote(
                author=event.author,
                note=event.note,
                at=event.occurred_at,
                ref=entry.ref,
            )
        )
    return [
        s.model_copy(update={"notes": n}) if n else s
        for s, n in zip(steps, notes, strict=True)
    ]


# -- descriptions --------------------------------------------------------------


def _line(text: str) -> str:
    """``text`` on one line, cut to a readable length."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_TEXT else flat[: _MAX_TEXT - 1] + "…"


def _suffix(text: str | None, sep: str = ": ") -> str:
    return f"{sep}{_line(text)}" if text else ""


def _describe_touch(t: Touch) -> str:
    who = ", ".join(t.participants) or "no buyer contact"
    rep = f" by {t.rep}" if t.rep else ""
    outcome = f" ({t.outcome})" if t.outcome else ""
    return f"{t.direction.capitalize()} {t.channel}{rep} with {who}{outcome}" + _suffix(
        t.summary
    )


def _describe(item: _Item) -> str:
    if isinstance(item, Touch):
        return _describe_touch(item)
    event = item.event
    match event:
        case DealOpened():
            return (
                f"Deal opened: {event.name} for {event.account}, "
                f"owner {event.owner}, stage {event.stage}"
            )
        case DealUpdated():
            parts = [
                f"{name.replace('_', ' ')} {value}"
                for name in ("name", "owner", "amount", "currency", "expected_close")
                if (value := getattr(event, name)) is not None
            ]
            return "Deal updated: " + ", ".join(parts)
        case StageChanged():
            return f"Stage changed to {event.stage}"
        case StakeholderJoined():
            name = f" ({event.name})" if event.name else ""
            return f"{event.contact}{name} joined as {event.role}"
        case StakeholderRoleChanged():
            return f"{event.contact} is now {event.role}"
        case StakeholderLeft():
            return f"{event.contact} left" + _suffix(event.reason)
        case StakeholderPriorityNoted():
            return f"{event.contact} priority" + _suffix(event.priority)
        case NextStepSet():
            owner = f", owner {event.owner}" if event.owner else ""
            return f"Next step: {_line(event.description)} (due {event.due}{owner})"
        case NextStepCleared():
            return "Next step cleared" + _suffix(event.reason)
        case FollowUpPromised():
            return f"Follow-up promised by {event.due}" + _suffix(event.promise)
        case FollowUpRequested():
            return (
                f"{event.by} asked to be contacted from "
                f"{event.not_before.isoformat()}" + _suffix(event.note)
            )
        case DealWon():
            return "Deal won" + (f" at {event.amount}" if event.amount else "")
        case DealLost():
            rival = f" (to {event.competitor})" if event.competitor else ""
            return f"Deal lost{rival}" + _suffix(event.reason)
        case DealReopened():
            return "Deal reopened" + _suffix(event.reason)
        case _:
            return event.type

"""A deal's history made ready for the analyses.

Every projection starts here: the events a query may see (as of a business
time, as known at a time), in timeline order, with touchpoints as they
finally stand after corrections and retractions, sorted by when they
happened. A call logged three days late lands where it happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from engine.events import (
    DealOpened,
    Event,
    TouchpointCorrected,
    TouchpointLogged,
    TouchpointRetracted,
)
from engine.persistence import Recorded
from engine.rules import RuleSet

# Outcomes that mean the buyer did not engage with an outbound attempt.
UNANSWERED_OUTCOMES = frozenset({"no_answer", "voicemail", "bounced"})


@dataclass(frozen=True, slots=True)
class Touch:
    """A touchpoint as it finally stands (corrections applied)."""

    id: str
    at: datetime
    channel: str
    direction: str
    participants: tuple[str, ...]
    rep: str | None
    summary: str | None
    outcome: str | None
    duration_minutes: int | None
    logged_at: datetime | None
    version: int  # the TouchpointLogged's place in the deal's sequence

    @property
    def inbound(self) -> bool:
        """Buyer-initiated: the buyer reached out."""
        return self.direction == "inbound"

    @property
    def outbound(self) -> bool:
        return self.direction == "outbound"

    @property
    def engaged(self) -> bool:
        """The buyer side took part: anything but an unanswered attempt."""
        return self.outcome not in UNANSWERED_OUTCOMES


@dataclass(frozen=True, slots=True)
class Entry:
    """One visible event with its place in the deal's sequence."""

    version: int
    event: Event

    @property
    def ref(self) -> str:
        """How findings cite it: a touchpoint id, else ``#version``."""
        if isinstance(self.event, TouchpointLogged):
            return self.event.touchpoint
        return f"#{self.version}"


@dataclass(frozen=True, slots=True)
class DealTimeline:
    deal: str
    opened: DealOpened
    entries: tuple[Entry, ...]
    """Every visible event except touchpoint logs, corrections and
    retractions, in timeline order."""
    touches: tuple[Touch, ...]
    """Effective touchpoints, by when they happened (ties: sequence)."""
    as_of: datetime | None = None
    as_known_at: datetime | None = None

    @property
    def timezone(self) -> str | None:
        return self.opened.timezone

    def up_to(self, at: datetime) -> DealTimeline:
        """Only what had happened by ``at`` (the evaluation time)."""
        return replace(
            self,
            entries=tuple(e for e in self.entries if e.event.occurred_at <= at),
            touches=tuple(t for t in self.touches if t.at <= at),
        )


class ProjectionMeta(BaseModel):
    """What every projection output carries, so it can be reproduced."""

    model_config = ConfigDict(frozen=True)

    deal: str
    rules_version: str
    rules_hash: str
    evaluated_at: datetime
    as_of: datetime | None = None
    as_known_at: datetime | None = None

    @classmethod
    def of(
        cls,
        timeline: DealTimeline,
        rules: RuleSet,
        at: datetime,
    ) -> ProjectionMeta:
        return cls(
            deal=timeline.deal,
            rules_version=rules.version,
            rules_hash=rules.rules_hash,
            evaluated_at=at,
            as_of=timeline.as_of,
            as_known_at=timeline.as_known_at,
        )


def timeline_key(event: Event, version: int) -> tuple[datetime, datetime, int]:
    """Timeline order: occurred order; ties by known-at, then recording order."""
    known = event.logged_at or event.recorded_at or event.occurred_at
    return event.occurred_at, known, version


def _order(entry: Entry) -> tuple[datetime, datetime, int]:
    return timeline_key(entry.event, entry.version)


def prepare(
    history: Iterable[Recorded],
    *,
    as_of: datetime | None = None,
    as_known_at: datetime | None = None,
) -> DealTimeline:
    """Build the timeline a query sees.

    ``as_known_at`` hides everything not yet known then, corrections
    included. ``as_of`` hides what had not happened yet; a correction or
    retraction known by then applies whatever its own date, since it states
    what really happened at the touchpoint.
    """
    known = [
        Entry(r.originator_version, r.event)
        for r in history
        if as_known_at is None or r.event.known_at <= as_known_at
    ]
    return replace(from_entries(known, as_of=as_of), as_known_at=as_known_at)


def from_entries(
    known: Sequence[Entry], *, as_of: datetime | None = None
) -> DealTimeline:
    """Build a timeline from entries in recording order (all known)."""
    opened: DealOpened | None = None
    logged: dict[str, Touch] = {}
    retracted: set[str] = set()
    others: list[Entry] = []
    for entry in known:
        event = entry.event
        match event:
            case TouchpointLogged():
                logged[event.touchpoint] = _touch(entry.version, event)
            case TouchpointCorrected():
                if event.touchpoint in logged:
                    logged[event.touchpoint] = _corrected(
                        logged[event.touchpoint], event
                    )
            case TouchpointRetracted():
                retracted.add(event.touchpoint)
            case DealOpened():
                opened = event
                others.append(entry)
            case _:
                others.append(entry)
    if opened is None or (as_of is not None and opened.occurred_at > as_of):
        raise ValueError("the deal had not been opened in that view of its history")
    touches = sorted(
        (t for t in logged.values() if t.id not in retracted),
        key=lambda t: (t.at, t.version),
    )
    entries = sorted(others, key=_order)
    if as_of is not None:
        touches = [t for t in touches if t.at <= as_of]
        entries = [e for e in entries if e.event.occurred_at <= as_of]
    return DealTimeline(
        deal=opened.deal,
        opened=opened,
        entries=tuple(entries),
        touches=tuple(touches),
        as_of=as_of,
    )


def _touch(version: int, event: TouchpointLogged) -> Touch:
    return Touch(
        id=event.touchpoint,
        at=event.occurred_at,
        channel=event.channel,
        direction=event.direction,
        participants=tuple(event.participants),
        rep=event.rep,
        summary=event.summary,
        outcome=event.outcome,
        duration_minutes=event.duration_minutes,
        logged_at=event.logged_at,
        version=version,
    )


def _corrected(touch: Touch, fix: TouchpointCorrected) -> Touch:
    changes = fix.changes()
    if "occurred_at" in changes:
        changes["at"] = changes.pop("occurred_at")
    if "participants" in changes:
        changes["participants"] = tuple(changes["participants"])
    return replace(touch, **changes)

"""The Deal aggregate: decides whether a new event may be recorded.

It keeps only what its invariants need. What a deal *looks like* (stage,
status, stakeholders...) is the business of the projections, which read the
events in occurred order; the aggregate sees them in recording order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from engine.errors import DomainError, UnknownDealError
from engine.events import (
    CoachingNoteAdded,
    DealLost,
    DealOpened,
    DealReopened,
    DealWon,
    Event,
    StakeholderJoined,
    StakeholderLeft,
    StakeholderPriorityNoted,
    StakeholderRoleChanged,
    TouchpointCorrected,
    TouchpointLogged,
    TouchpointRetracted,
)
from engine.persistence import Recorded

_DEAL_NAMESPACE = uuid5(NAMESPACE_URL, "https://dealtrail.invalid/deal")


def deal_id(key: str) -> UUID:
    """The aggregate id of a deal key; the same key always maps to the same id."""
    return uuid5(_DEAL_NAMESPACE, key)


def _digest(event: Event) -> bytes:
    return hashlib.blake2b(event.fingerprint(), digest_size=16).digest()


@dataclass(slots=True)
class _Touchpoint:
    digest: bytes
    logged: TouchpointLogged
    retracted: bool = False


@dataclass(slots=True)
class Deal:
    key: str
    id: UUID
    version: int = 0
    opened: DealOpened | None = None
    # (occurred_at, version, "won" | "lost" | "reopened"), in recording order.
    closings: list[tuple[datetime, int, str]] = field(default_factory=list)
    touchpoints: dict[str, _Touchpoint] = field(default_factory=dict)
    # Contact -> whether they are currently on the deal.
    stakeholders: dict[str, bool] = field(default_factory=dict)
    digests: set[bytes] = field(default_factory=set)
    pending: list[Recorded] = field(default_factory=list)

    @classmethod
    def new(cls, key: str) -> Deal:
        return cls(key=key, id=deal_id(key))

    @classmethod
    def replay(cls, key: str, history: Iterable[Recorded]) -> Deal:
        deal = cls.new(key)
        for recorded in history:
            deal.version = recorded.originator_version
            deal._apply(recorded.event)
        return deal

    def decide(self, event: Event, recorded_at: datetime) -> Event | None:
        """Record ``event`` if the history allows it.

        Returns the event as stored (with ``recorded_at``), or None when the
        same fact is already recorded (re-recording is a no-op). Raises
        DomainError when the event contradicts the history.
        """
        if event.deal != self.key:
            raise DomainError(f"event for deal {event.deal!r} sent to {self.key!r}")
        digest = _digest(event)
        if digest in self.digests:
            return None
        if event.logged_at is not None and event.logged_at > recorded_at:
            raise DomainError(
                f"logged_at {event.logged_at.isoformat()} is in the future; "
                "it is when the event was first logged"
            )
        self._check(event)
        stored = event.model_copy(update={"recorded_at": recorded_at})
        self.version += 1
        self.pending.append(Recorded(self.id, self.version, stored))
        self._apply(stored, digest)
        return stored

    def collect_events(self) -> list[Recorded]:
        collected, self.pending = self.pending, []
        return collected

    def _check(self, event: Event) -> None:
        if isinstance(event, DealOpened):
            if self.opened is not None:
                raise DomainError(f"deal {self.key!r} is already open")
            return
        if self.opened is None:
            raise UnknownDealError(self.key)
        match event:
            case TouchpointLogged():
                known = self.touchpoints.get(event.touchpoint)
                if known is not None:
                    raise DomainError(
                        f"touchpoint {event.touchpoint!r} is already recorded with "
                        f"other details ({_differences(known.logged, event)}); "
                        "record a correction instead"
                    )
            case TouchpointCorrected() | TouchpointRetracted():
                tp = self._touchpoint(event.touchpoint)
                if tp.retracted:
                    raise DomainError(
                        f"touchpoint {event.touchpoint!r} is already retracted"
                    )
            case CoachingNoteAdded(about=str(about)):
                self._touchpoint(about)
            case StakeholderJoined():
                if self.stakeholders.get(event.contact):
                    raise DomainError(
                        f"{event.contact} is already a stakeholder; "
                        "change their role instead"
                    )
            case StakeholderRoleChanged() | StakeholderLeft():
                if not self.stakeholders.get(event.contact):
                    raise DomainError(f"{event.contact} is not a stakeholder")
            case StakeholderPriorityNoted():
                if event.contact not in self.stakeholders:
                    raise DomainError(f"{event.contact} has never been a stakeholder")
            case DealWon() | DealLost() | DealReopened():
                self._check_closing(event)
            case _:
                pass

    def _check_closing(self, event: Event) -> None:
        """Wins, losses and reopenings must alternate in occurred order, after
        the deal opened, wherever a backfilled one lands in the history."""
        assert self.opened is not None
        kind = _closing(event)
        when = event.occurred_at
        if when < self.opened.occurred_at:
            raise DomainError(
                f"deal {self.key!r} opened on {self.opened.occurred_at.isoformat()}; "
                f"it cannot be {kind} before that"
            )
        ordered = sorted([*self.closings, (when, self.version + 1, kind)])
        status, since = "open", self.opened.occurred_at
        for at, version, step in ordered:
            if (step == "reopened") == (status == "open"):
                if version != self.version + 1:
                    problem = (
                        f"would leave its {step} of {at.isoformat()} out of order "
                        "(wins, losses and reopenings must alternate)"
                    )
                elif step == "reopened":
                    problem = f"was open at {at.isoformat()}, not closed"
                else:
                    problem = (
                        f"was already {status} (on {since.isoformat()}); "
                        "reopen it first"
                    )
                raise DomainError(f"deal {self.key!r} {problem}")
            status = "open" if step == "reopened" else step
            since = at

    def _touchpoint(self, touchpoint: str) -> _Touchpoint:
        try:
            return self.touchpoints[touchpoint]
        except KeyError:
            raise DomainError(
                f"deal {self.key!r} has no touchpoint {touchpoint!r}"
            ) from None

    def _apply(self, event: Event, digest: bytes | None = None) -> None:
        digest = digest if digest is not None else _digest(event)
        self.digests.add(digest)
        match event:
            case DealOpened():
                self.opened = event
            case TouchpointLogged():
                self.touchpoints[event.touchpoint] = _Touchpoint(digest, event)
            case TouchpointRetracted():
                self.touchpoints[event.touchpoint].retracted = True
            case StakeholderJoined():
                self.stakeholders[event.contact] = True
            case StakeholderLeft():
                self.stakeholders[event.contact] = False
            case DealWon() | DealLost() | DealReopened():
                self.closings.append((event.occurred_at, self.version, _closing(event)))
            case _:
                pass


def _differences(old: TouchpointLogged, new: TouchpointLogged) -> str:
    fields = [
        name
        for name in type(new).model_fields
        if name not in Event.PROVENANCE and getattr(old, name) != getattr(new, name)
    ]
    return "differs in " + ", ".join(fields)


def _closing(event: Event) -> str:
    if isinstance(event, DealWon):
        return "won"
    if isinstance(event, DealLost):
        return "lost"
    return "reopened"

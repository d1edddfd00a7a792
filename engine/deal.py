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
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from engine.errors import DomainError, UnknownDealError
from engine.events import (
    CORRECTABLE,
    CoachingNoteAdded,
    DealLost,
    DealOpened,
    DealReopened,
    DealUpdated,
    DealWon,
    Event,
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

_DEAL_NAMESPACE = uuid5(NAMESPACE_URL, "https://dealtrail.invalid/deal")

# Sources whose later exports restate the facts of earlier ones, edits
# included (see Deal.restate).
SYNCED_SOURCES = ("salesforce:",)
# DealOpened fields that a DealUpdated can carry forward.
_UPDATABLE = ("name", "owner", "currency")
REOPENED_IN_SOURCE = "Worked on again in the source after its close"


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
    # As it now stands, corrections applied.
    current: TouchpointLogged | None = None


@dataclass(frozen=True, slots=True)
class Restated:
    """How a restated fact is carried: the events to record instead (none
    when it matches what stands) and, when some of it cannot be carried,
    why it was kept as first recorded."""

    events: list[Event]
    kept: str | None = None


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
    roles: dict[str, str] = field(default_factory=dict)
    # Role events by source: (contact, role) each source last stated, and
    # the source that set each contact's current role.
    _stated: dict[str, tuple[str, str]] = field(default_factory=dict)
    _role_set_by: dict[str, str | None] = field(default_factory=dict)
    # A contact's new key (its email changed in the source) -> its old one.
    _aliases: dict[str, str] = field(default_factory=dict)
    # The deal's current name, owner and currency (DealUpdated applied).
    details: dict[str, str | None] = field(default_factory=dict)
    _joined: dict[str, StakeholderJoined] = field(default_factory=dict)
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

    def restate(self, event: Event, recorded_at: datetime) -> Restated | None:
        """A synced source's later export restating a known fact with other
        details, as the events the catalogue has for the change; None for
        anything else, which ``decide`` judges as usual.

        Edits made in the source after the facts were first imported become
        a TouchpointCorrected, a DealUpdated (name, owner, currency) or a
        StakeholderRoleChanged, dated when they became known (the import's
        recording time); each is judged against the fact as it stands now,
        so an edit undone in the source is undone here. A closed deal whose
        stage changes after its close is reopened at that change. Details
        the catalogue cannot change (an account's or a contact's name, a
        contact's title or key, the opening values, a closing's reason, a
        role row overtaken by a later one) are kept as first recorded.
        """
        source = event.source or ""
        if self.opened is None or not source.startswith(SYNCED_SOURCES):
            return None
        known = {"deal": self.key, "occurred_at": recorded_at, "source": source}
        # Compared with what stands now, even when identical to what was
        # first imported: an edit may have been made and then undone.
        match event:
            case DealOpened():
                return self._restated_opening(event, known)
            case TouchpointLogged() if event.touchpoint in self.touchpoints:
                return self._restated_touchpoint(event, known)
            case StakeholderJoined() | StakeholderRoleChanged() if (
                source in self._stated
            ):
                return self._restated_role(event, known)
            case StakeholderJoined() if self.stakeholders.get(event.contact):
                # A present contact's join from a row not seen before (the
                # row they joined by was deleted): their role as it stands.
                changes: list[Event] = []
                if event.role != self.roles.get(event.contact):
                    changes.append(
                        StakeholderRoleChanged(
                            **known, contact=event.contact, role=event.role
                        )
                    )
                return Restated(changes)
        if _digest(event) in self.digests:
            return None
        match event:
            case DealWon() | DealLost():
                status, since = self._status()
                if status == _closing(event):
                    return Restated([], "closings restated with other details")
                if status != "open" and since < event.occurred_at:
                    return Restated([self._reopened(event), event])
            case StageChanged():
                if any(
                    at == event.occurred_at and step != "reopened"
                    for at, _, step in self.closings
                ):
                    # The move into the closed stage, now that a later row
                    # reopens the deal: the close recorded says it already.
                    return Restated([])
                status, since = self._status()
                if status != "open" and since < event.occurred_at:
                    return Restated([self._reopened(event), event])
        return None

    def _status(self) -> tuple[str, datetime]:
        """Open, won or lost after the last closing step, and since when."""
        assert self.opened is not None
        if not self.closings:
            return "open", self.opened.occurred_at
        at, _, step = max(self.closings)
        return ("open" if step == "reopened" else step), at

    def _reopened(self, by: Event) -> DealReopened:
        return DealReopened(
            deal=self.key,
            occurred_at=by.occurred_at,
            logged_at=by.logged_at,
            source=by.source,
            reason=REOPENED_IN_SOURCE,
        )

    def _restated_role(
        self, event: StakeholderJoined | StakeholderRoleChanged, known: dict[str, Any]
    ) -> Restated:
        """A contact role row restated: its role edited in place is a role
        change if that row still sets the contact's role; its contact's
        details are kept as first recorded."""
        source = known["source"]
        contact, role = self._stated[source]
        if event.contact != contact:
            # The row now names another contact key (an email added or
            # changed): a new stakeholder would duplicate the old one. The
            # contact keeps the old key, in the touches restated after this
            # too (an export's roles come before its activities).
            self._aliases[event.contact] = contact
            return Restated([], "contact roles whose contact's email changed")
        kept = None
        joined = self._joined.get(contact)
        if (
            isinstance(event, StakeholderJoined)
            and joined is not None
            and (event.name, event.title) != (joined.name, joined.title)
        ):
            kept = "contacts' names or titles changed since they joined"
        if event.role == role:
            return Restated([], kept)
        if self._role_set_by.get(contact) != source or not self.stakeholders.get(
            contact
        ):
            # A later row has set the role since: this one is history.
            return Restated(
                [], kept or "contact roles edited before a later role change"
            )
        change = StakeholderRoleChanged(**known, contact=contact, role=event.role)
        return Restated([change], kept)

    def _restated_opening(self, event: DealOpened, known: dict[str, Any]) -> Restated:
        assert self.opened is not None
        changes = {
            name: getattr(event, name)
            for name in _UPDATABLE
            if getattr(event, name) is not None
            and getattr(event, name) != self.details.get(name)
        }
        fixed = {*DealOpened.model_fields} - {*_UPDATABLE, *Event.PROVENANCE}
        kept = None
        if any(getattr(event, f) != getattr(self.opened, f) for f in fixed):
            kept = "deals' accounts or opening values changed since they opened"
        events: list[Event] = [DealUpdated(**known, **changes)] if changes else []
        return Restated(events, kept)

    def _restated_touchpoint(
        self, event: TouchpointLogged, known: dict[str, Any]
    ) -> Restated:
        tp = self.touchpoints[event.touchpoint]
        if tp.retracted:
            return Restated([], "edits of retracted touchpoints")
        now = tp.current or tp.logged
        changes: dict[str, Any] = {}
        if event.occurred_at != now.occurred_at:
            changes["touchpoint_occurred_at"] = event.occurred_at
        emptied = False
        for name in CORRECTABLE[1:]:
            value, was = getattr(event, name), getattr(now, name)
            if name == "participants":
                value = sorted({self._aliases.get(c, c) for c in value})
            if value in (None, []):
                # A correction cannot empty a field: the value stays.
                emptied = emptied or was not in (None, [])
            elif value != was:
                changes[name] = value
        fixes: list[Event] = []
        if changes:
            fixes.append(
                TouchpointCorrected(**known, touchpoint=event.touchpoint, **changes)
            )
        return Restated(fixes, "touchpoints' fields emptied" if emptied else None)

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
                self.details = {name: getattr(event, name) for name in _UPDATABLE}
            case DealUpdated():
                for name in _UPDATABLE:
                    if getattr(event, name) is not None:
                        self.details[name] = getattr(event, name)
            case TouchpointLogged():
                self.touchpoints[event.touchpoint] = _Touchpoint(digest, event)
            case TouchpointCorrected():
                tp = self.touchpoints[event.touchpoint]
                tp.current = (tp.current or tp.logged).model_copy(
                    update=event.changes()
                )
            case TouchpointRetracted():
                self.touchpoints[event.touchpoint].retracted = True
            case StakeholderJoined() | StakeholderRoleChanged():
                if isinstance(event, StakeholderJoined):
                    self.stakeholders[event.contact] = True
                    self._joined.setdefault(event.contact, event)
                self.roles[event.contact] = event.role
                self._role_set_by[event.contact] = event.source
                if event.source is not None:
                    self._stated[event.source] = (event.contact, event.role)
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

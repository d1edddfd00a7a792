"""Small builders for events in tests; every field can be overridden."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.deal import deal_id
from engine.events import (
    DealLost,
    DealOpened,
    Event,
    StageChanged,
    StakeholderJoined,
    TouchpointLogged,
)
from engine.persistence import Recorded
from engine.projections.prepare import DealTimeline, prepare

if TYPE_CHECKING:
    from engine.application import DealTrail

EXAMPLES = Path(__file__).parent.parent / "examples"
RECORDING = datetime(2026, 6, 1, tzinfo=UTC)


def opened(deal: str = "ACME-1", **fields: Any) -> DealOpened:
    values: dict[str, Any] = {
        "deal": deal,
        "occurred_at": "2026-03-02T09:00:00+01:00",
        "name": "ACME platform",
        "account": "ACME",
        "owner": "sam",
        "stage": "discovery",
        "timezone": "Europe/Paris",
    }
    return DealOpened.model_validate(values | fields)


def touch(touchpoint: str, deal: str = "ACME-1", **fields: Any) -> TouchpointLogged:
    values: dict[str, Any] = {
        "deal": deal,
        "touchpoint": touchpoint,
        "occurred_at": "2026-03-02T10:00:00+01:00",
        "channel": "call",
        "direction": "outbound",
        "participants": ["dana@acme.example"],
    }
    return TouchpointLogged.model_validate(values | fields)


def stage(name: str, deal: str = "ACME-1", **fields: Any) -> StageChanged:
    values: dict[str, Any] = {
        "deal": deal,
        "occurred_at": "2026-03-05T10:00:00+01:00",
        "stage": name,
    }
    return StageChanged.model_validate(values | fields)


def joined(
    contact: str, role: str, deal: str = "ACME-1", **fields: Any
) -> StakeholderJoined:
    values: dict[str, Any] = {
        "deal": deal,
        "occurred_at": "2026-03-02T09:30:00+01:00",
        "contact": contact,
        "role": role,
    }
    return StakeholderJoined.model_validate(values | fields)


def lost(deal: str = "ACME-1", **fields: Any) -> DealLost:
    values: dict[str, Any] = {
        "deal": deal,
        "occurred_at": "2026-04-01T10:00:00+02:00",
        "reason": "chose a competitor",
        "competitor": "Initech",
    }
    return DealLost.model_validate(values | fields)


def at(text: str) -> datetime:
    """A Paris wall-clock time in 2026, e.g. ``at("03-02 09:00")``."""
    return datetime.fromisoformat(f"2026-{text}:00+01:00")


def iso(text: str) -> str:
    return at(text).isoformat()


def recorded(events: Sequence[Event], deal: str = "ACME-1") -> list[Recorded]:
    """Events recorded one minute apart, in the order given (versions 1..n)."""
    return [
        Recorded(
            deal_id(deal),
            version,
            event.model_copy(
                update={"recorded_at": RECORDING + timedelta(minutes=version)}
            ),
        )
        for version, event in enumerate(events, 1)
    ]


def timeline(*events: Event) -> DealTimeline:
    return prepare(recorded(events))


def import_examples(app: DealTrail) -> None:
    """Import every example story, as ``examples/NAME`` sources."""
    files = sorted(EXAMPLES.glob("*.jsonl"))
    streams = [(f"examples/{f.name}", f.open("rb")) for f in files]
    try:
        app.import_native(streams)
    finally:
        for _, stream in streams:
            stream.close()

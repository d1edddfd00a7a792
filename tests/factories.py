"""Small builders for events in tests; every field can be overridden."""

from __future__ import annotations

from typing import Any

from engine.events import (
    DealLost,
    DealOpened,
    StageChanged,
    StakeholderJoined,
    TouchpointLogged,
)


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

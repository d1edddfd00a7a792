"""A deal's headline: the facts a list or a header shows, as of its events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from engine.events import (
    DealLost,
    DealOpened,
    DealReopened,
    DealUpdated,
    DealWon,
    Event,
    StageChanged,
    StakeholderJoined,
    StakeholderLeft,
    StakeholderRoleChanged,
    TouchpointCorrected,
    TouchpointLogged,
    TouchpointRetracted,
)


class Headline(BaseModel):
    model_config = ConfigDict(frozen=True)

    deal: str
    name: str
    account: str
    owner: str
    stage: str
    status: Literal["open", "won", "lost"]
    amount: Decimal | None
    currency: str | None
    expected_close: date | None
    timezone: str | None
    opened_at: datetime
    closed_at: datetime | None
    loss_reason: str | None
    competitor: str | None
    events: int
    touchpoints: int
    last_touch_at: datetime | None
    stakeholders: dict[str, str]


def headline(events: Sequence[Event]) -> Headline:
    """Fold a deal's events, given in occurred (timeline) order."""
    opened = next((e for e in events if isinstance(e, DealOpened)), None)
    if opened is None:
        raise ValueError("a headline needs the deal's DealOpened event")
    fields = {
        "name": opened.name,
        "owner": opened.owner,
        "amount": opened.amount,
        "currency": opened.currency,
        "expected_close": opened.expected_close,
    }
    stage = opened.stage
    status: Literal["open", "won", "lost"] = "open"
    closed_at: datetime | None = None
    loss_reason = competitor = None
    touch_times: dict[str, datetime] = {}
    stakeholders: dict[str, str] = {}
    for event in events:
        match event:
            case DealUpdated():
                fields.update(event.model_dump(include=set(fields), exclude_none=True))
            case StageChanged():
                stage = event.stage
            case StakeholderJoined() | StakeholderRoleChanged():
                stakeholders[event.contact] = event.role
            case StakeholderLeft():
                stakeholders.pop(event.contact, None)
            case TouchpointLogged():
                touch_times[event.touchpoint] = event.occurred_at
            case TouchpointCorrected(touchpoint_occurred_at=datetime() as moved):
                if event.touchpoint in touch_times:
                    touch_times[event.touchpoint] = moved
            case TouchpointRetracted():
                touch_times.pop(event.touchpoint, None)
            case DealWon():
                status, closed_at = "won", event.occurred_at
                if event.amount is not None:
                    fields["amount"] = event.amount
            case DealLost():
                status, closed_at = "lost", event.occurred_at
                loss_reason, competitor = event.reason, event.competitor
            case DealReopened():
                status, closed_at = "open", None
                loss_reason = competitor = None
            case _:
                pass
    return Headline(
        deal=opened.deal,
        account=opened.account,
        stage=stage,
        status=status,
        timezone=opened.timezone,
        opened_at=opened.occurred_at,
        closed_at=closed_at,
        loss_reason=loss_reason,
        competitor=competitor,
        events=len(events),
        touchpoints=len(touch_times),
        last_touch_at=max(touch_times.values(), default=None),
        stakeholders=dict(sorted(stakeholders.items())),
        **fields,
    )

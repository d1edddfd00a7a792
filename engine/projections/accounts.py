"""Account neglect: existing customers nobody has touched lately.

An account is *neglected* at ``at`` when it has a won deal and its last touch,
over all its deals, is ``rules.accounts.neglect_calendar_days`` or more
calendar days before ``at``; an account with a won deal and no touch at all
is neglected too. An account without a won deal is never neglected.

Works on the per-deal summaries (``DealSummary``): a won deal is one whose
status is ``won`` and whose ``closed_at`` (the won time) is at or before
``at``. Calendar days are local dates in the rules' default time zone
(summaries do not carry the deal's zone): a touch on 1 January is 60 days
before 2 March. Summaries describe each deal up to its latest event, so
``at`` should be no earlier than those.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from engine.projections.summary import DealSummary
from engine.rules import RuleSet

__all__ = ["AccountNeglect", "AccountsReport", "accounts"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AccountNeglect(_Model):
    """One account; ``deals`` and ``won_deals`` are sorted deal keys.

    ``last_touch_deal`` is the deal of the last touch (the smallest key on a
    tie); ``days_since_touch`` is None when no deal has a touch.
    """

    account: str
    deals: list[str]
    won_deals: list[str]
    last_touch_at: datetime | None
    last_touch_deal: str | None
    days_since_touch: int | None
    neglected: bool


class AccountsReport(_Model):
    """Every account, sorted by name, with the rules that judged them."""

    rules_version: str
    rules_hash: str
    evaluated_at: datetime
    timezone: str
    neglect_calendar_days: int
    neglected_count: int
    accounts: list[AccountNeglect]


def accounts(
    summaries: Sequence[DealSummary], rules: RuleSet, at: datetime
) -> AccountsReport:
    """Per account: its deals, won deals, last touch and neglect at ``at``."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive evaluation time {at.isoformat()}; give a UTC offset")
    zone = rules.calendar_for(None).zone
    threshold = rules.accounts.neglect_calendar_days
    today = at.astimezone(zone).date()
    grouped: dict[str, list[DealSummary]] = {}
    for summary in summaries:
        grouped.setdefault(summary.account, []).append(summary)
    rows: list[AccountNeglect] = []
    for name in sorted(grouped):
        deals = sorted(grouped[name], key=lambda s: s.deal)
        won = [
            s.deal
            for s in deals
            if s.status == "won" and s.closed_at is not None and s.closed_at <= at
        ]
        touched = [s for s in deals if s.last_touch_at is not None]
        last = max(touched, key=lambda s: s.last_touch_at or at, default=None)
        last_at = None if last is None else last.last_touch_at
        days = (
            None if last_at is None else (today - last_at.astimezone(zone).date()).days
        )
        rows.append(
            AccountNeglect(
                account=name,
                deals=[s.deal for s in deals],
                won_deals=won,
                last_touch_at=last_at,
                last_touch_deal=None if last is None else last.deal,
                days_since_touch=days,
                neglected=bool(won) and (days is None or days >= threshold),
            )
        )
    return AccountsReport(
        rules_version=rules.version,
        rules_hash=rules.rules_hash,
        evaluated_at=at,
        timezone=rules.calendar_for(None).timezone,
        neglect_calendar_days=threshold,
        neglected_count=sum(r.neglected for r in rows),
        accounts=rows,
    )

"""The per-deal summary the materialised views keep for cross-deal queries.

A summary is a pure function of a deal's events and the rule set, evaluated
at the deal's own latest occurred time, so the view never depends on when
it was updated. What changes with the clock alone (an open obligation that
breaches at its deadline, a silence that turns into a dark period) is kept
as the time it happens, and ``flags_at`` answers for any evaluation time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from engine.persistence import Recorded
from engine.projections.deal_state import deal_state
from engine.projections.gaps import FollowUpGaps, follow_up_gaps
from engine.projections.prepare import prepare
from engine.projections.stakeholders import stakeholder_involvement
from engine.rules import RuleSet

FLAGS = ("breach", "dark", "pushy", "rubber-stamp")


class DealSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    deal: str
    name: str
    account: str
    owner: str
    stage: str
    status: str
    amount: Decimal | None
    currency: str | None
    expected_close: date | None
    close_date_slips: int
    closed_at: datetime | None
    last_touch_at: datetime | None
    evaluated_at: datetime
    rules_hash: str
    breaches: int
    next_breach_at: datetime | None
    dark_periods: int
    dark_from: datetime | None
    max_unanswered_streak: int
    pushy: bool
    gave_up_early: bool
    next_step_clarity: float | None
    distinct_contacts: int
    rubber_stamp_risk: bool
    champion_gone_dark: bool

    def flags_at(self, at: datetime) -> list[str]:
        """The warnings this deal shows at evaluation time ``at``."""
        is_open = self.status == "open"
        flags = []
        if self.breaches or (
            is_open and self.next_breach_at is not None and at >= self.next_breach_at
        ):
            flags.append("breach")
        if self.dark_periods or (
            is_open and self.dark_from is not None and at >= self.dark_from
        ):
            flags.append("dark")
        if self.pushy:
            flags.append("pushy")
        if self.rubber_stamp_risk:
            flags.append("rubber-stamp")
        return flags


def summarise(history: Sequence[Recorded], rules: RuleSet) -> DealSummary:
    """Summarise a deal's whole history (in any order)."""
    timeline = prepare(history)
    at = max(r.event.occurred_at for r in history)
    state = deal_state(timeline, rules, at)
    follow = follow_up_gaps(timeline, rules, at)
    gaps = follow.summary
    people = stakeholder_involvement(timeline, rules, at)
    return DealSummary(
        deal=timeline.deal,
        name=state.name,
        account=state.account,
        owner=state.owner,
        stage=state.stage,
        status=state.status,
        amount=state.amount,
        currency=state.currency,
        expected_close=state.expected_close,
        close_date_slips=state.close_slip_count,
        closed_at=state.closed_at,
        last_touch_at=state.last_touch.at if state.last_touch else None,
        evaluated_at=at,
        rules_hash=rules.rules_hash,
        breaches=gaps.breaches,
        next_breach_at=_first_breach(follow, rules, timeline.timezone),
        dark_periods=gaps.dark_periods,
        dark_from=gaps.dark_from,
        max_unanswered_streak=gaps.max_unanswered_streak,
        pushy=gaps.pushy,
        gave_up_early=gaps.gave_up_early,
        next_step_clarity=gaps.next_step_clarity,
        distinct_contacts=people.distinct_contacts_engaged,
        rubber_stamp_risk=people.rubber_stamp_risk is not None,
        champion_gone_dark=bool(people.champions_gone_dark),
    )


def _first_breach(
    follow: FollowUpGaps, rules: RuleSet, timezone: str | None
) -> datetime | None:
    """When the first still-open obligation will count as breached: the first
    instant after more business time than the SLA has passed."""
    calendar = rules.calendar_for(timezone)
    sla = timedelta(hours=rules.follow_up.sla_business_hours)
    moments = [
        calendar.add_business_time(o.trigger_at, sla + _INSTANT)
        for o in follow.obligations
        if o.open and not o.breached
    ]
    return min(moments, default=None)


_INSTANT = timedelta(microseconds=1)

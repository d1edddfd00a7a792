"""Rule backtest: how each warning did on the deals already closed.

Every deal whose status at the end of its timeline is won or lost (closed
on or after ``since``, a local date in the deal's time zone, if given) is
evaluated at its close (``default_evaluation_time``). Per rule id, in
``RULE_IDS`` order, rules that never fired included:

- ``fired_on_lost`` / ``fired_on_won``: deals where it fired at least once;
- ``precision``: fired_on_lost / (fired_on_lost + fired_on_won), None if it
  never fired;
- ``recall``: fired_on_lost / lost_total, None if no deal was lost;
- ``median_lead_business_days``: per deal where it fired, business days
  (the deal's calendar) from its first firing to the close; the median of
  those, None if it never fired.

Ratios and days are rounded to 2 decimals. The result does not depend on
the order of ``deals``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from statistics import median

from pydantic import BaseModel, ConfigDict

from engine.projections.audit import default_evaluation_time
from engine.projections.deal_state import lifecycle
from engine.projections.findings import RULE_IDS, AccountContext, findings
from engine.projections.prepare import DealTimeline
from engine.rules import RuleSet

__all__ = ["Backtest", "RuleBacktest", "backtest"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RuleBacktest(_Model):
    """How one rule did (see the module docstring)."""

    rule: str
    fired_on_lost: int
    fired_on_won: int
    lost_total: int
    won_total: int
    precision: float | None
    recall: float | None
    median_lead_business_days: float | None


class Backtest(_Model):
    """Per-rule figures over the closed deals considered."""

    rules_version: str
    rules_hash: str
    since: date | None
    deals_considered: int
    lost_total: int
    won_total: int
    open_excluded: int
    before_since_excluded: int
    rules: list[RuleBacktest]


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 2)


def backtest(
    deals: Sequence[DealTimeline],
    rules: RuleSet,
    since: date | None = None,
    accounts: Mapping[str, AccountContext] | None = None,
) -> Backtest:
    """Run ``rules`` over the closed deals in ``deals``.

    ``accounts`` gives each deal (by key) its account's other deals, so that
    account neglect can fire as it does in the audit.
    """
    lost = won = open_excluded = early_excluded = 0
    fired: dict[str, dict[str, int]] = {r: {"lost": 0, "won": 0} for r in RULE_IDS}
    leads: dict[str, list[float]] = {r: [] for r in RULE_IDS}
    for timeline in deals:
        life = lifecycle(timeline)
        if life.status == "open" or life.closed_at is None:
            open_excluded += 1
            continue
        close: datetime = default_evaluation_time(timeline, life.closed_at)
        calendar = rules.calendar_for(timeline.timezone)
        if since is not None and close.astimezone(calendar.zone).date() < since:
            early_excluded += 1
            continue
        if life.status == "lost":
            lost += 1
        else:
            won += 1
        first: dict[str, datetime] = {}
        context = accounts.get(timeline.deal) if accounts else None
        for finding in findings(timeline, rules, close, context):
            seen = first.get(finding.rule)
            if seen is None or finding.visible_at < seen:
                first[finding.rule] = finding.visible_at
        for rule, moment in first.items():
            if rule not in fired:
                continue  # not a rule id this backtest reports
            fired[rule][life.status] += 1
            leads[rule].append(calendar.business_days_between(moment, close))
    return Backtest(
        rules_version=rules.version,
        rules_hash=rules.rules_hash,
        since=since,
        deals_considered=lost + won,
        lost_total=lost,
        won_total=won,
        open_excluded=open_excluded,
        before_since_excluded=early_excluded,
        rules=[
            RuleBacktest(
                rule=rule,
                fired_on_lost=fired[rule]["lost"],
                fired_on_won=fired[rule]["won"],
                lost_total=lost,
                won_total=won,
                precision=_ratio(
                    fired[rule]["lost"], fired[rule]["lost"] + fired[rule]["won"]
                ),
                recall=_ratio(fired[rule]["lost"], lost),
                median_lead_business_days=(
                    round(median(leads[rule]), 2) if leads[rule] else None
                ),
            )
            for rule in RULE_IDS
        ],
    )

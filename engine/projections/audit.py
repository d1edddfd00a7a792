"""Loss audit: what went wrong on a deal, and the lesson it teaches.

For a lost deal, every finding (see ``findings``) with the loss reason and
competitor as recorded; for an open deal the same is a pre-mortem, with the
evaluation time as the cut-off.

The verdict:

- ``top``: at most three findings, by severity, then ``visible_at``, then
  rule id and key (so ties are stable);
- ``lesson``: the lesson (``LESSONS``) of the high-severity findings; when
  several rules have one, the rule first in ``RULE_IDS`` (the priority
  order: root causes before symptoms) decides. None without a high-severity
  finding: a lesson is claimed only on strong evidence, so a clean win
  teaches none;
- ``summary``: the lesson and the top findings in two plain sentences.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from engine.events import DealLost, DealWon
from engine.projections.deal_state import deal_state, lifecycle
from engine.projections.findings import (
    LESSONS,
    RULE_IDS,
    SEVERITY_ORDER,
    AccountContext,
    Finding,
    date_text,
    findings,
)
from engine.projections.prepare import DealTimeline, ProjectionMeta
from engine.rules import RuleSet

__all__ = ["Audit", "Verdict", "audit", "default_evaluation_time"]

TOP = 3
_PRIORITY = {rule: i for i, rule in enumerate(RULE_IDS)}
# How the summary names each rule.
_LABELS = {
    "logging_lag": "logging lag",
    "account_neglect": "account neglect",
    "rubber_stamp": "rubber-stamp risk",
    "champion_gone_dark": "champion gone dark",
    "gave_up_early": "gave up early",
    "pushy_streak": "pushy unanswered streak",
    "requested_timing_early": "contact before the buyer's requested time",
    "requested_timing_ignored": "buyer's requested time ignored",
    "slow_follow_up": "slow follow-up",
    "promise_missed": "missed promise",
    "promise_late": "late promise",
    "low_next_step_clarity": "low next-step clarity",
    "dark_period": "dark period",
    "single_threaded": "single-threaded",
    "stage_stall": "stage stall",
    "close_date_slips": "close-date slip",
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Verdict(_Model):
    """The lesson of the deal and its most serious findings."""

    lesson: str | None
    top: list[Finding]
    summary: str


class Audit(_Model):
    """A deal's findings as of ``meta.evaluated_at``, with its outcome."""

    meta: ProjectionMeta
    deal: str
    name: str
    account: str
    owner: str
    stage: str
    status: str
    closed_at: datetime | None
    loss_reason: str | None
    competitor: str | None
    findings: list[Finding]
    """In timeline order, as ``findings`` returns them."""
    verdict: Verdict


def default_evaluation_time(timeline: DealTimeline, now: datetime) -> datetime:
    """When to audit a deal: a closed one at its close (its last DealWon or
    DealLost, so a corrected loss reason counts), an open or reopened one at
    ``now``."""
    if lifecycle(timeline).status == "open":
        return now
    return max(
        e.event.occurred_at
        for e in timeline.entries
        if isinstance(e.event, DealWon | DealLost)
    )


def audit(
    timeline: DealTimeline,
    rules: RuleSet,
    at: datetime,
    account: AccountContext | None = None,
) -> Audit:
    """The audit of ``timeline`` at ``at`` (pure)."""
    state = deal_state(timeline, rules, at)
    found = findings(timeline, rules, at, account)
    zone = rules.calendar_for(timeline.timezone).zone
    return Audit(
        meta=ProjectionMeta.of(timeline, rules, at),
        deal=timeline.deal,
        name=state.name,
        account=state.account,
        owner=state.owner,
        stage=state.stage,
        status=state.status,
        closed_at=state.closed_at,
        loss_reason=state.loss_reason,
        competitor=state.competitor,
        findings=found,
        verdict=_verdict(found, at.astimezone(zone).date()),
    )


def _verdict(found: list[Finding], day: date) -> Verdict:
    """The verdict on ``found``; ``day`` names the evaluation day when
    nothing fired."""
    if not found:
        return Verdict(
            lesson=None,
            top=[],
            summary=f"No warning sign had fired by {date_text(day)}.",
        )
    ranked = sorted(
        found,
        key=lambda f: (SEVERITY_ORDER[f.severity], f.visible_at, f.rule, f.key),
    )
    top = ranked[:TOP]
    high = [f.rule for f in found if f.severity == "high"]
    lesson = LESSONS[min(high, key=_PRIORITY.__getitem__)] if high else None
    counts = [
        f"{n} {severity}"
        for severity in SEVERITY_ORDER
        if (n := sum(f.severity == severity for f in found))
    ]
    named = [
        f"{_LABELS[f.rule]} ({f.severity}, {date_text(f.visible_at.date())})"
        for f in top
    ]
    return Verdict(
        lesson=lesson,
        top=top,
        summary=(
            f"{lesson or 'No high-severity finding'}: {_join(counts)} "
            f"{'finding' if len(found) == 1 else 'findings'}. "
            f"Most serious: {_join(named)}."
        ),
    )


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]

"""The rule backtest on a handful of handcrafted closed deals.

Deals are in Europe/Paris (UTC+01:00 in March 2026) with the built-in rules;
2 March 2026 is a Monday. Each deal is short and well followed up (outbound
emails that got replies, a clear next step, two contacts), so the rule it is
built to test is the one that matters: rubber-stamp risk fires when the deal
reaches ``proposal`` before a decision maker was engaged, and first becomes
visible when it enters that stage.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import orjson

from engine.deal import deal_id
from engine.events import DealWon, Event, NextStepSet
from engine.persistence import Recorded
from engine.projections.backtest import Backtest, backtest
from engine.projections.findings import RULE_IDS
from engine.projections.prepare import DealTimeline, prepare
from engine.rules import RuleSet
from tests.factories import joined, lost, opened, stage, touch

RULES = RuleSet()
RECORDING = datetime(2026, 6, 1, tzinfo=UTC)
RUBBER_STAMP = "rubber_stamp"


def at(text: str) -> datetime:
    """A Paris wall-clock time in March 2026, e.g. ``at("03-02 09:00")``."""
    return datetime.fromisoformat(f"2026-{text}:00+01:00")


def history(key: str, events: list[Event]) -> DealTimeline:
    return prepare(
        [
            Recorded(
                deal_id(key),
                version,
                event.model_copy(
                    update={"recorded_at": RECORDING + timedelta(minutes=version)}
                ),
            )
            for version, event in enumerate(events, 1)
        ]
    )


def deal(
    key: str,
    *,
    proposal: str,
    close: str | None,
    outcome: str = "lost",
    decision_maker_first: bool = False,
) -> DealTimeline:
    """A deal that reaches proposal at ``proposal`` and closes at ``close``.

    With ``decision_maker_first`` eve is the decision maker and is engaged
    (an answered email) before the proposal, so no rubber-stamp risk.
    """
    people = ["dana@acme.example", "eve@acme.example"]
    events: list[Event] = [
        opened(key),
        joined(people[0], "user", deal=key),
        joined(
            people[1],
            "decision_maker" if decision_maker_first else "technical_evaluator",
            deal=key,
        ),
        NextStepSet(
            deal=key,
            occurred_at=at("03-02 09:30"),
            description="Workshop",
            due=date(2026, 3, 31),
            owner="sam",
        ),
    ]
    for i, day in enumerate(("03-02", "03-04", "03-06", "03-09")):
        events.append(
            touch(
                f"{key}-t{i}",
                deal=key,
                occurred_at=at(f"{day} 10:00").isoformat(),
                channel="email",
                outcome="replied",
                participants=people,
            )
        )
    events.append(stage("proposal", deal=key, occurred_at=at(proposal).isoformat()))
    if close is not None:
        if outcome == "lost":
            events.append(lost(key, occurred_at=at(close).isoformat()))
        else:
            events.append(DealWon(deal=key, occurred_at=at(close)))
    return history(key, events)


def deals() -> list[DealTimeline]:
    return [
        # Rubber stamp fires on two of the three lost deals and one of the won.
        deal("L1", proposal="03-05 09:00", close="03-09 17:00"),  # lead 3.0
        deal("L2", proposal="03-06 09:00", close="03-09 17:00"),  # lead 2.0
        deal(
            "L3", proposal="03-05 09:00", close="03-09 17:00", decision_maker_first=True
        ),
        deal(
            "W1", proposal="03-05 13:00", close="03-09 17:00", outcome="won"
        ),  # lead 2.5
        deal(
            "W2",
            proposal="03-05 09:00",
            close="03-09 17:00",
            outcome="won",
            decision_maker_first=True,
        ),
    ]


def row(result: Backtest, rule: str) -> dict[str, object]:
    """One rule's figures as they appear in the JSON."""
    return next(r.model_dump(mode="json") for r in result.rules if r.rule == rule)


def test_rubber_stamp_figures_by_hand() -> None:
    result = backtest(deals(), RULES)
    assert (result.deals_considered, result.lost_total, result.won_total) == (5, 3, 2)
    assert row(result, RUBBER_STAMP) == {
        "rule": RUBBER_STAMP,
        "fired_on_lost": 2,
        "fired_on_won": 1,
        "lost_total": 3,
        "won_total": 2,
        "precision": 0.67,  # 2 / (2 + 1)
        "recall": 0.67,  # 2 / 3
        "median_lead_business_days": 2.5,  # median of 3.0, 2.0 and 2.5
    }


def test_every_rule_is_reported_in_rule_id_order_with_consistent_figures() -> None:
    result = backtest(deals(), RULES)
    assert [r.rule for r in result.rules] == list(RULE_IDS)
    assert RUBBER_STAMP in RULE_IDS
    for r in result.rules:
        assert (r.lost_total, r.won_total) == (3, 2)
        assert 0 <= r.fired_on_lost <= 3
        assert 0 <= r.fired_on_won <= 2
        fired = r.fired_on_lost + r.fired_on_won
        if fired == 0:
            assert (r.precision, r.median_lead_business_days) == (None, None)
        else:
            assert r.precision == round(r.fired_on_lost / fired, 2)
            assert r.median_lead_business_days is not None
        assert r.recall == round(r.fired_on_lost / 3, 2)


def test_open_deals_and_deals_closed_before_since_are_left_out() -> None:
    more = [
        *deals(),
        deal("O1", proposal="03-05 09:00", close=None),
        # Lost at 00:30 in Paris on 10 March (still 9 March in UTC): counts.
        deal("L4", proposal="03-05 09:00", close="03-10 00:30"),
    ]
    result = backtest(more, RULES, since=date(2026, 3, 10))
    assert result.since == date(2026, 3, 10)
    assert (result.deals_considered, result.lost_total, result.won_total) == (1, 1, 0)
    assert (result.open_excluded, result.before_since_excluded) == (1, 5)
    stamp = row(result, RUBBER_STAMP)
    assert (stamp["fired_on_lost"], stamp["recall"], stamp["precision"]) == (
        1,
        1.0,
        1.0,
    )

    everything = backtest(more, RULES)
    assert (everything.deals_considered, everything.open_excluded) == (6, 1)


def test_with_no_closed_deal_every_ratio_is_none() -> None:
    result = backtest([deal("O1", proposal="03-05 09:00", close=None)], RULES)
    assert result.deals_considered == 0
    assert all(
        (r.precision, r.recall, r.median_lead_business_days) == (None, None, None)
        for r in result.rules
    )


def test_a_won_only_set_has_no_recall() -> None:
    won = [deal("W1", proposal="03-05 13:00", close="03-09 17:00", outcome="won")]
    stamp = row(backtest(won, RULES), RUBBER_STAMP)
    assert (stamp["fired_on_won"], stamp["precision"], stamp["recall"]) == (
        1,
        0.0,
        None,
    )


def test_the_rules_identity_is_carried_and_the_json_is_order_independent() -> None:
    rules = RuleSet(version="team-a")
    first = backtest(deals(), rules)
    assert (first.rules_version, first.rules_hash) == ("team-a", rules.rules_hash)
    assert orjson.dumps(first.model_dump(mode="json")) == orjson.dumps(
        backtest(deals()[::-1], rules).model_dump(mode="json")
    )


def test_a_rule_that_no_longer_fires_is_still_listed() -> None:
    rules = RuleSet.model_validate({"rubber_stamp": {"late_stage": "negotiation"}})
    stamp = row(backtest(deals(), rules), RUBBER_STAMP)
    assert (stamp["fired_on_lost"], stamp["fired_on_won"]) == (0, 0)
    assert (stamp["precision"], stamp["median_lead_business_days"]) == (None, None)
    assert stamp["recall"] == 0.0

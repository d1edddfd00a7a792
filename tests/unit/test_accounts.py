"""Account neglect over deal summaries (built-in rules: 60 calendar days, UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from engine.projections.accounts import accounts
from engine.projections.summary import DealSummary
from engine.rules import RuleSet

RULES = RuleSet()
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def summary(deal: str, account: str, **fields: Any) -> DealSummary:
    values: dict[str, Any] = {
        "deal": deal,
        "name": deal,
        "account": account,
        "owner": "sam",
        "stage": "negotiation",
        "status": "open",
        "amount": None,
        "currency": None,
        "expected_close": None,
        "close_date_slips": 0,
        "closed_at": None,
        "last_touch_at": None,
        "evaluated_at": NOW - timedelta(days=100),
        "rules_hash": RULES.rules_hash,
        "breaches": 0,
        "next_breach_at": None,
        "dark_periods": 0,
        "dark_from": None,
        "max_unanswered_streak": 0,
        "pushy": False,
        "gave_up_early": False,
        "next_step_clarity": None,
        "distinct_contacts": 1,
        "rubber_stamp_risk": False,
        "champion_gone_dark": False,
    }
    return DealSummary.model_validate(values | fields)


def won(deal: str, account: str, last_touch: datetime) -> DealSummary:
    return summary(
        deal,
        account,
        status="won",
        closed_at=NOW - timedelta(days=200),
        last_touch_at=last_touch,
    )


def test_sixty_calendar_days_without_a_touch_is_neglect_fifty_nine_is_not() -> None:
    report = accounts(
        [
            won("A-1", "Acme", NOW - timedelta(days=60)),
            # Late on the day 59 days before: still 59 calendar days.
            won("B-1", "Bolt", datetime(2026, 4, 3, 23, 59, tzinfo=UTC)),
        ],
        RULES,
        NOW,
    )
    acme, bolt = report.accounts
    assert (acme.account, acme.days_since_touch, acme.neglected) == ("Acme", 60, True)
    assert (bolt.account, bolt.days_since_touch, bolt.neglected) == ("Bolt", 59, False)
    assert report.neglected_count == 1
    assert report.neglect_calendar_days == 60


def test_calendar_days_count_dates_not_elapsed_hours() -> None:
    # 59 days and 13 hours elapsed, but 60 calendar dates apart.
    late = datetime(2026, 4, 2, 23, 0, tzinfo=UTC)
    (row,) = accounts([won("A-1", "Acme", late)], RULES, NOW).accounts
    assert (row.days_since_touch, row.neglected) == (60, True)


def test_an_account_without_a_won_deal_is_never_neglected() -> None:
    report = accounts(
        [
            summary(
                "L-1",
                "Lost Co",
                status="lost",
                closed_at=NOW - timedelta(400),
                last_touch_at=NOW - timedelta(days=400),
            ),
            summary("O-1", "Open Co", last_touch_at=NOW - timedelta(days=300)),
            summary("Q-1", "Quiet Co"),
        ],
        RULES,
        NOW,
    )
    assert [(r.account, r.won_deals, r.neglected) for r in report.accounts] == [
        ("Lost Co", [], False),
        ("Open Co", [], False),
        ("Quiet Co", [], False),
    ]
    assert report.accounts[2].days_since_touch is None


def test_the_last_touch_is_the_latest_over_all_the_accounts_deals() -> None:
    report = accounts(
        [
            won("A-2", "Acme", NOW - timedelta(days=90)),
            summary("A-3", "Acme", last_touch_at=NOW - timedelta(days=5)),
            summary(
                "A-1",
                "Acme",
                status="lost",
                closed_at=NOW - timedelta(50),
                last_touch_at=NOW - timedelta(days=70),
            ),
        ],
        RULES,
        NOW,
    )
    (acme,) = report.accounts
    assert acme.deals == ["A-1", "A-2", "A-3"]
    assert acme.won_deals == ["A-2"]
    assert (acme.last_touch_deal, acme.days_since_touch) == ("A-3", 5)
    assert acme.last_touch_at == NOW - timedelta(days=5)
    assert not acme.neglected


def test_a_won_deal_closing_after_the_evaluation_time_does_not_count_yet() -> None:
    later = summary(
        "A-1",
        "Acme",
        status="won",
        closed_at=NOW + timedelta(days=1),
        last_touch_at=NOW - timedelta(days=80),
    )
    (row,) = accounts([later], RULES, NOW).accounts
    assert (row.won_deals, row.neglected) == ([], False)


def test_a_customer_never_touched_is_neglected() -> None:
    never = summary("A-1", "Acme", status="won", closed_at=NOW - timedelta(days=1))
    (row,) = accounts([never], RULES, NOW).accounts
    assert (row.days_since_touch, row.neglected) == (None, True)


def test_the_threshold_and_rules_identity_come_from_the_rules() -> None:
    rules = RuleSet.model_validate(
        {"version": "t", "accounts": {"neglect_calendar_days": 30}}
    )
    report = accounts([won("A-1", "Acme", NOW - timedelta(days=30))], rules, NOW)
    assert report.accounts[0].neglected
    assert (report.rules_version, report.rules_hash) == ("t", rules.rules_hash)
    assert report.evaluated_at == NOW


def test_the_report_is_deterministic_whatever_the_input_order() -> None:
    rows = [
        won("B-1", "Bolt", NOW - timedelta(days=61)),
        won("A-1", "Acme", NOW - timedelta(days=3)),
        summary("A-2", "Acme", last_touch_at=NOW - timedelta(days=3)),
    ]
    first = orjson.dumps(accounts(rows, RULES, NOW).model_dump(mode="json"))
    again = orjson.dumps(accounts(rows[::-1], RULES, NOW).model_dump(mode="json"))
    assert first == again
    # Same last-touch time on two deals: the smaller key is named.
    assert accounts(rows[::-1], RULES, NOW).accounts[0].last_touch_deal == "A-1"


def test_a_naive_evaluation_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        accounts([], RULES, datetime(2026, 6, 1))

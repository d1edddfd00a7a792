"""The deal-state projection, on small hand-built histories.

Deals are in Europe/Paris (UTC+01:00 in March 2026) with the built-in rules:
09:00-17:00, Saturday and Sunday off, no public holidays. 2 March 2026 is a
Monday.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from engine.events import (
    DealReopened,
    DealUpdated,
    DealWon,
    Event,
    FollowUpPromised,
    NextStepCleared,
    NextStepSet,
    StakeholderLeft,
    StakeholderRoleChanged,
    TouchpointRetracted,
)
from engine.projections.deal_state import DealState, deal_state
from engine.rules import RuleSet
from tests.factories import (
    at,
    iso,
    joined,
    lost,
    opened,
    stage,
    timeline,
    touch,
)

RULES = RuleSet()
DEAL = "ACME-1"


def state(when: str, *events: Event) -> DealState:
    return deal_state(timeline(*events), RULES, at(when))


def test_a_new_deal_shows_its_opening_facts() -> None:
    s = state(
        "03-02 13:00",
        opened(amount="1000", currency="EUR", expected_close="2026-03-31"),
    )
    assert (s.name, s.account, s.owner, s.stage) == (
        "ACME platform",
        "ACME",
        "sam",
        "discovery",
    )
    assert (s.status, s.amount, s.currency) == ("open", Decimal("1000"), "EUR")
    assert s.expected_close == date(2026, 3, 31)
    assert s.timezone == "Europe/Paris"
    assert s.opened_at == at("03-02 09:00")
    assert (s.closed_at, s.loss_reason, s.competitor, s.reopen_count) == (
        None,
        None,
        None,
        0,
    )
    assert s.close_slip_count == s.close_days_pushed == 0
    assert s.stakeholders == []
    assert s.former == []
    assert s.amount_changes == []
    assert s.open_promises == []
    assert s.last_touch is None
    assert s.last_buyer_touch is None
    assert s.next_step is None
    # 09:00 to 13:00 on a Monday is half a business day.
    assert [(v.stage, v.left_at, v.business_days, v.ref) for v in s.stage_visits] == [
        ("discovery", None, 0.5, "#1")
    ]
    assert s.meta.deal == DEAL
    assert s.meta.evaluated_at == at("03-02 13:00")
    assert s.meta.rules_hash == RULES.rules_hash


def test_close_date_slips_are_counted_with_the_days_pushed() -> None:
    s = state(
        "03-20 12:00",
        opened(expected_close="2026-03-31"),
        DealUpdated(
            deal=DEAL, occurred_at=iso("03-10 10:00"), expected_close=date(2026, 4, 30)
        ),
        # Pulled in: not a slip, but the next push is measured from here.
        DealUpdated(
            deal=DEAL, occurred_at=iso("03-12 10:00"), expected_close=date(2026, 4, 15)
        ),
        DealUpdated(
            deal=DEAL, occurred_at=iso("03-16 10:00"), expected_close=date(2026, 5, 15)
        ),
        DealUpdated(deal=DEAL, occurred_at=iso("03-17 10:00"), name="ACME platform v2"),
    )
    assert s.expected_close == date(2026, 5, 15)
    assert s.name == "ACME platform v2"
    assert s.close_slip_count == 2
    assert s.close_days_pushed == 30 + 30
    assert [(x.from_date, x.to_date, x.days, x.at, x.ref) for x in s.close_slips] == [
        (date(2026, 3, 31), date(2026, 4, 30), 30, at("03-10 10:00"), "#2"),
        (date(2026, 4, 15), date(2026, 5, 15), 30, at("03-16 10:00"), "#4"),
    ]


def test_setting_a_first_close_date_is_not_a_slip() -> None:
    s = state(
        "03-20 12:00",
        opened(),
        DealUpdated(
            deal=DEAL, occurred_at=iso("03-10 10:00"), expected_close=date(2026, 4, 30)
        ),
    )
    assert s.expected_close == date(2026, 4, 30)
    assert s.close_slip_count == 0


def test_time_in_stage_counts_business_days_across_a_weekend() -> None:
    s = state(
        "03-10 11:00",
        opened(),  # discovery from Monday 2 March 09:00
        stage("proposal", occurred_at=iso("03-06 15:00")),  # Friday
    )
    # Discovery: Monday to Thursday (32 h) and Friday 09:00-15:00 (6 h).
    # Proposal: Friday 15:00-17:00, the weekend counts nothing, Monday 8 h
    # and Tuesday 09:00-11:00: 12 h.
    assert [
        (v.stage, v.entered_at, v.left_at, v.business_days, v.ref)
        for v in s.stage_visits
    ] == [
        ("discovery", at("03-02 09:00"), at("03-06 15:00"), 4.75, "#1"),
        ("proposal", at("03-06 15:00"), None, 1.5, "#2"),
    ]
    assert s.stage == "proposal"


def test_a_stage_visited_twice_is_totalled_in_pipeline_order() -> None:
    s = state(
        "03-05 13:00",
        opened(stage="proposal"),
        stage("discovery", occurred_at=iso("03-03 09:00")),
        stage("proposal", occurred_at=iso("03-04 09:00")),
        stage("Proposal", occurred_at=iso("03-04 10:00")),  # same stage: no visit
    )
    assert [(v.stage, v.business_days) for v in s.stage_visits] == [
        ("proposal", 1.0),
        ("discovery", 1.0),
        ("proposal", 1.5),
    ]
    assert [(t.stage, t.visits, t.business_days) for t in s.time_in_stage] == [
        ("discovery", 1, 1.0),
        ("proposal", 2, 2.5),
    ]


def test_time_in_the_last_stage_stops_when_the_deal_closes() -> None:
    s = state(
        "03-20 12:00",
        opened(),
        lost(occurred_at=iso("03-03 13:00")),
    )
    # Monday 8 h and Tuesday 09:00-13:00; nothing after the loss.
    assert [(v.left_at, v.business_days) for v in s.stage_visits] == [(None, 1.5)]


def test_amount_changes_include_the_amount_a_deal_was_won_at() -> None:
    s = state(
        "03-20 12:00",
        opened(amount="1000", currency="EUR"),
        DealUpdated(deal=DEAL, occurred_at=iso("03-03 10:00"), amount=Decimal("1200")),
        DealUpdated(
            deal=DEAL, occurred_at=iso("03-04 10:00"), amount=Decimal("1200.00")
        ),
        DealWon(deal=DEAL, occurred_at=iso("03-05 10:00"), amount=Decimal("1100")),
    )
    assert [(c.from_amount, c.to_amount, c.at, c.ref) for c in s.amount_changes] == [
        (Decimal("1000"), Decimal("1200"), at("03-03 10:00"), "#2"),
        (Decimal("1200"), Decimal("1100"), at("03-05 10:00"), "#4"),
    ]
    assert (s.amount, s.status, s.closed_at) == (
        Decimal("1100"),
        "won",
        at("03-05 10:00"),
    )


def test_a_loss_keeps_reason_and_competitor_until_the_deal_reopens() -> None:
    events: list[Event] = [
        opened(),
        lost(occurred_at=iso("03-05 10:00"), reason="price", competitor="Initech"),
    ]
    s = state("03-06 10:00", *events)
    assert (s.status, s.closed_at, s.loss_reason, s.competitor) == (
        "lost",
        at("03-05 10:00"),
        "price",
        "Initech",
    )
    events.append(DealReopened(deal=DEAL, occurred_at=iso("03-09 10:00")))
    s = state("03-10 10:00", *events)
    assert (s.status, s.closed_at, s.loss_reason, s.competitor) == (
        "open",
        None,
        None,
        None,
    )
    assert s.reopen_count == 1


def test_a_stakeholder_who_left_is_not_current() -> None:
    s = state(
        "03-10 10:00",
        opened(),
        joined("dana@acme.example", "champion", name="Dana", title="Ops lead"),
        joined("lee@acme.example", "decision_maker", occurred_at=iso("03-02 10:00")),
        StakeholderRoleChanged(
            deal=DEAL,
            occurred_at=iso("03-03 10:00"),
            contact="dana@acme.example",
            role="influencer",
        ),
        StakeholderLeft(
            deal=DEAL,
            occurred_at=iso("03-04 10:00"),
            contact="lee@acme.example",
            reason="moved to another company",
        ),
    )
    assert [
        (x.contact, x.name, x.title, x.role, x.since, x.ref) for x in s.stakeholders
    ] == [
        ("dana@acme.example", "Dana", "Ops lead", "influencer", at("03-03 10:00"), "#4")
    ]
    assert [(x.contact, x.last_role, x.left_at, x.reason, x.ref) for x in s.former] == [
        (
            "lee@acme.example",
            "decision_maker",
            at("03-04 10:00"),
            "moved to another company",
            "#5",
        )
    ]


def test_a_stakeholder_who_rejoins_is_current_again() -> None:
    s = state(
        "03-10 10:00",
        opened(),
        joined("lee@acme.example", "user"),
        StakeholderLeft(
            deal=DEAL, occurred_at=iso("03-03 10:00"), contact="lee@acme.example"
        ),
        joined("lee@acme.example", "legal", occurred_at=iso("03-05 10:00")),
    )
    assert [(x.contact, x.role, x.since) for x in s.stakeholders] == [
        ("lee@acme.example", "legal", at("03-05 10:00"))
    ]
    assert s.former == []


def test_the_last_touch_and_the_last_buyer_initiated_touch_are_reported() -> None:
    s = state(
        "03-10 10:00",
        opened(),
        touch("t1", occurred_at=iso("03-02 10:00")),
        touch("t2", occurred_at=iso("03-03 10:00"), direction="inbound"),
        touch("t3", occurred_at=iso("03-04 10:00"), outcome="no_answer"),
    )
    assert s.last_touch is not None
    assert s.last_buyer_touch is not None
    assert (s.last_touch.touch, s.last_touch.at) == ("t3", at("03-04 10:00"))
    assert (s.last_buyer_touch.touch, s.last_buyer_touch.at) == (
        "t2",
        at("03-03 10:00"),
    )


def test_a_retracted_touch_is_not_counted() -> None:
    s = state(
        "03-10 10:00",
        opened(),
        touch("t1", occurred_at=iso("03-02 10:00"), direction="inbound"),
        touch("t2", occurred_at=iso("03-03 10:00"), direction="inbound"),
        TouchpointRetracted(
            deal=DEAL,
            occurred_at=iso("03-04 10:00"),
            touchpoint="t2",
            reason="wrong deal",
        ),
    )
    assert s.last_touch is not None
    assert s.last_buyer_touch is not None
    assert s.last_touch.touch == s.last_buyer_touch.touch == "t1"


def test_the_next_step_is_overdue_only_after_its_due_date() -> None:
    events: list[Event] = [
        opened(),
        NextStepSet(
            deal=DEAL,
            occurred_at=iso("03-02 11:00"),
            description="Send the pilot plan",
            due=date(2026, 3, 5),
            owner="sam",
        ),
    ]
    due_day = state("03-05 16:59", *events)
    assert due_day.next_step is not None
    assert (
        due_day.next_step.description,
        due_day.next_step.due,
        due_day.next_step.owner,
        due_day.next_step.set_at,
        due_day.next_step.ref,
        due_day.next_step.overdue,
    ) == (
        "Send the pilot plan",
        date(2026, 3, 5),
        "sam",
        at("03-02 11:00"),
        "#2",
        False,
    )
    day_after = state("03-06 09:00", *events)
    assert day_after.next_step is not None
    assert day_after.next_step.overdue
    events.append(NextStepCleared(deal=DEAL, occurred_at=iso("03-06 10:00")))
    assert state("03-06 11:00", *events).next_step is None


def test_a_promise_stays_open_until_an_outbound_touch_reaches_a_buyer() -> None:
    events: list[Event] = [
        opened(),
        FollowUpPromised(
            deal=DEAL,
            occurred_at=iso("03-03 10:00"),
            due=date(2026, 3, 5),
            promise="pricing by Thursday",
        ),
        # Neither discharges it: the buyer writing in, or a touch with no buyer.
        touch("in", occurred_at=iso("03-04 10:00"), direction="inbound"),
        touch("nobody", occurred_at=iso("03-04 11:00"), participants=[]),
    ]
    s = state("03-06 09:00", *events)
    assert [
        (p.due, p.promise, p.promised_at, p.ref, p.overdue) for p in s.open_promises
    ] == [(date(2026, 3, 5), "pricing by Thursday", at("03-03 10:00"), "#2", True)]
    assert not state("03-05 12:00", *events).open_promises[0].overdue
    events.append(touch("kept", occurred_at=iso("03-06 10:00"), channel="email"))
    assert state("03-06 11:00", *events).open_promises == []


def test_a_touch_before_the_promise_does_not_discharge_it() -> None:
    s = state(
        "03-04 10:00",
        opened(),
        touch("before", occurred_at=iso("03-03 09:00")),
        FollowUpPromised(
            deal=DEAL, occurred_at=iso("03-03 10:00"), due=date(2026, 3, 5)
        ),
    )
    assert [p.ref for p in s.open_promises] == ["#3"]


def test_a_later_promise_supersedes_an_earlier_one() -> None:
    s = state(
        "03-10 10:00",
        opened(),
        FollowUpPromised(
            deal=DEAL, occurred_at=iso("03-03 10:00"), due=date(2026, 3, 5)
        ),
        FollowUpPromised(
            deal=DEAL, occurred_at=iso("03-04 10:00"), due=date(2026, 3, 12)
        ),
    )
    assert [(p.ref, p.due, p.overdue) for p in s.open_promises] == [
        ("#3", date(2026, 3, 12), False)
    ]


def test_a_call_logged_three_days_late_gives_the_same_state_as_on_time() -> None:
    base = [
        opened(),
        joined("dana@acme.example", "champion"),
        FollowUpPromised(
            deal=DEAL, occurred_at=iso("03-02 10:00"), due=date(2026, 3, 4)
        ),
    ]
    call = touch("call", occurred_at=iso("03-03 10:00"), outcome="connected")
    reply = touch("reply", occurred_at=iso("03-04 10:00"), direction="inbound")
    # On time: recorded right after it happened. Late: recorded after the
    # reply that followed it, with a CRM log time three days after the call.
    late_call = call.model_copy(update={"logged_at": at("03-06 10:00")})
    when = at("03-09 10:00")
    on_time = deal_state(timeline(*base, call, reply), RULES, when)
    late = deal_state(timeline(*base, reply, late_call), RULES, when)
    assert late == on_time
    assert late.model_dump_json() == on_time.model_dump_json()
    # The call kept the promise, and the reply is still the latest touch.
    assert late.open_promises == []
    assert late.last_touch is not None
    assert late.last_touch.touch == "reply"


def test_only_what_occurred_by_the_evaluation_time_counts() -> None:
    s = state(
        "03-04 12:00",
        opened(),
        touch("t1", occurred_at=iso("03-03 10:00")),
        stage("proposal", occurred_at=iso("03-05 10:00")),
        touch("t2", occurred_at=iso("03-05 11:00")),
        lost(occurred_at=iso("03-06 10:00")),
    )
    assert (s.stage, s.status) == ("discovery", "open")
    assert s.last_touch is not None
    assert s.last_touch.touch == "t1"


def test_the_same_inputs_give_byte_identical_json() -> None:
    events = (
        opened(amount="10", currency="EUR"),
        joined("b@acme.example", "user"),
        joined("a@acme.example", "champion"),
        touch("t1", occurred_at=iso("03-03 10:00")),
        stage("proposal", occurred_at=iso("03-04 10:00")),
    )
    first = state("03-06 10:00", *events).model_dump_json()
    assert state("03-06 10:00", *events).model_dump_json() == first
    # Stakeholders come sorted by contact whatever the joining order.
    assert first.index('"a@acme.example"') < first.index('"b@acme.example"')


def test_an_evaluation_time_without_offset_or_before_the_opening_is_refused() -> None:
    history = timeline(opened())
    with pytest.raises(ValueError, match="naive"):
        deal_state(history, RULES, datetime(2026, 3, 3, 10, 0))
    with pytest.raises(ValueError, match="had not opened"):
        deal_state(history, RULES, at("03-01 10:00"))

"""The stakeholder-involvement projection, on small hand-built histories.

Deals are in Europe/Paris (UTC+01:00 in March 2026) with the built-in rules:
09:00-17:00, Saturday and Sunday off, no public holidays; late stages from
proposal; a champion is dark after 3 unanswered touches or 10 business days
without an answer. 2 March 2026 is a Monday.
"""

from __future__ import annotations

import pytest

from engine.events import (
    Event,
    StakeholderLeft,
    StakeholderPriorityNoted,
    StakeholderRoleChanged,
    TouchpointCorrected,
    TouchpointRetracted,
)
from engine.projections.stakeholders import (
    ContactInvolvement,
    StakeholderInvolvement,
    stakeholder_involvement,
)
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
GWEN = "gwen@acme.example"  # the champion
MARTIN = "martin@acme.example"  # the decision maker
TASHA = "tasha@acme.example"
TOM = "tom@acme.example"


def involvement(when: str, *events: Event) -> StakeholderInvolvement:
    return stakeholder_involvement(timeline(*events), RULES, at(when))


def contact(result: StakeholderInvolvement, who: str) -> ContactInvolvement:
    return next(c for c in result.contacts if c.contact == who)


def champion_and_decision_maker() -> list[Event]:
    """Versions 1-3: the deal, Gwen (champion) and Martin (decision maker)."""
    return [
        opened(),
        joined(GWEN, "champion"),
        joined(MARTIN, "decision_maker"),
    ]


# -- rubber-stamp risk -------------------------------------------------------


def test_decision_maker_first_engaged_after_the_proposal_flags_rubber_stamp() -> None:
    result = involvement(
        "03-10 10:00",
        *champion_and_decision_maker(),
        touch("g1", occurred_at=iso("03-03 10:00"), participants=[GWEN]),
        stage("proposal", occurred_at=iso("03-05 10:00")),  # version 5
        touch(
            "dm",
            occurred_at=iso("03-09 10:00"),
            participants=[MARTIN],
            outcome="connected",
        ),
    )
    risk = result.rubber_stamp_risk
    assert risk is not None
    assert (risk.since, risk.reason, risk.late_stage, risk.evidence) == (
        at("03-05 10:00"),
        "engaged_after_late_stage",
        "proposal",
        ["#5", "dm"],
    )
    first = result.decision_maker_first_engaged
    assert first is not None
    assert (first.contact, first.role, first.at, first.touch, first.stage) == (
        MARTIN,
        "decision_maker",
        at("03-09 10:00"),
        "dm",
        "proposal",
    )


def test_a_decision_maker_never_engaged_flags_never_engaged() -> None:
    result = involvement(
        "03-10 10:00",
        *champion_and_decision_maker(),
        # A voicemail is an attempt, not engagement.
        touch(
            "vm",
            occurred_at=iso("03-03 10:00"),
            participants=[MARTIN],
            outcome="voicemail",
        ),
        stage("proposal", occurred_at=iso("03-05 10:00")),
    )
    risk = result.rubber_stamp_risk
    assert risk is not None
    assert (risk.since, risk.reason, risk.evidence) == (
        at("03-05 10:00"),
        "never_engaged",
        ["#5"],
    )
    assert result.decision_maker_first_engaged is None


@pytest.mark.parametrize("role", ["decision_maker", "economic_buyer"])
def test_a_decision_maker_engaged_before_the_proposal_does_not_flag(
    role: str,
) -> None:
    result = involvement(
        "03-10 10:00",
        opened(),
        joined(MARTIN, role),
        touch(
            "dm",
            occurred_at=iso("03-04 10:00"),
            channel="meeting",
            participants=[MARTIN],
            outcome="connected",
        ),
        stage("proposal", occurred_at=iso("03-05 10:00")),
    )
    assert result.rubber_stamp_risk is None
    first = result.decision_maker_first_engaged
    assert first is not None
    assert (first.contact, first.role, first.touch, first.stage) == (
        MARTIN,
        role,
        "dm",
        "discovery",
    )


def test_a_decision_maker_engaged_as_the_deal_reaches_proposal_does_not_flag() -> None:
    result = involvement(
        "03-10 10:00",
        *champion_and_decision_maker(),
        stage("proposal", occurred_at=iso("03-05 10:00")),
        # Only engagement strictly after the late stage was reached is late.
        touch(
            "dm",
            occurred_at=iso("03-05 10:00"),
            participants=[MARTIN],
            outcome="connected",
        ),
    )
    assert result.rubber_stamp_risk is None


def test_a_deal_before_any_late_stage_has_no_rubber_stamp_risk() -> None:
    result = involvement("03-20 10:00", *champion_and_decision_maker())
    assert result.rubber_stamp_risk is None


def test_a_deal_opened_in_a_late_stage_is_at_risk_from_its_opening() -> None:
    result = involvement(
        "03-03 10:00", opened(stage="negotiation"), joined(MARTIN, "decision_maker")
    )
    risk = result.rubber_stamp_risk
    assert risk is not None
    assert (risk.since, risk.reason, risk.late_stage, risk.evidence) == (
        at("03-02 09:00"),
        "never_engaged",
        "negotiation",
        ["#1"],
    )


def test_a_touch_before_a_contact_joined_counts_with_the_role_they_joined_with() -> (
    None
):
    result = involvement(
        "03-10 10:00",
        opened(),
        touch(
            "met",
            occurred_at=iso("03-02 10:00"),
            channel="meeting",
            participants=[MARTIN],
            outcome="connected",
        ),
        joined(MARTIN, "decision_maker", occurred_at=iso("03-02 14:00")),
        stage("proposal", occurred_at=iso("03-05 10:00")),
    )
    assert result.rubber_stamp_risk is None
    assert result.stage_coverage[0].roles == ["decision_maker"]


def test_an_internal_touch_engages_nobody() -> None:
    result = involvement(
        "03-10 10:00",
        opened(),
        joined(MARTIN, "decision_maker"),
        touch(
            "review",
            occurred_at=iso("03-03 10:00"),
            direction="internal",
            participants=[MARTIN],
            outcome="connected",
        ),
        stage("proposal", occurred_at=iso("03-05 10:00")),
    )
    risk = result.rubber_stamp_risk
    assert risk is not None
    assert risk.reason == "never_engaged"
    martin = contact(result, MARTIN)
    assert (martin.touches, martin.engaged_touches) == (1, 0)
    assert result.distinct_contacts_engaged == 0


# -- champion gone dark ------------------------------------------------------


def unanswered_champion() -> list[Event]:
    """Gwen writes in on Monday, then three unanswered attempts follow."""
    return [
        opened(),
        joined(GWEN, "champion"),
        touch(
            "in",
            occurred_at=iso("03-02 10:00"),
            direction="inbound",
            participants=[GWEN],
        ),
        touch(
            "u1", occurred_at=iso("03-03 10:00"), channel="email", participants=[GWEN]
        ),
        touch(
            "u2",
            occurred_at=iso("03-04 10:00"),
            outcome="no_answer",
            participants=[GWEN],
        ),
        touch(
            "u3",
            occurred_at=iso("03-05 10:00"),
            outcome="voicemail",
            participants=[GWEN],
        ),
    ]


def test_a_champion_with_three_unanswered_touches_has_gone_dark() -> None:
    result = involvement("03-05 12:00", *unanswered_champion())
    assert [
        (d.contact, d.since, d.reason, d.unanswered_streak, d.last_answered_at)
        for d in result.champions_gone_dark
    ] == [(GWEN, at("03-05 10:00"), "unanswered_streak", 3, at("03-02 10:00"))]
    assert result.champions_gone_dark[0].evidence == ["u1", "u2", "u3"]


def test_a_champion_with_two_unanswered_touches_has_not_gone_dark() -> None:
    result = involvement("03-04 12:00", *unanswered_champion())
    assert result.champions_gone_dark == []
    assert contact(result, GWEN).unanswered_streak == 2


def test_a_connected_call_resets_the_champions_unanswered_streak() -> None:
    events = unanswered_champion()
    events.insert(
        -1,
        touch(
            "ok",
            occurred_at=iso("03-04 15:00"),
            outcome="connected",
            participants=[GWEN],
        ),
    )
    result = involvement("03-05 12:00", *events)
    assert result.champions_gone_dark == []
    assert contact(result, GWEN).unanswered_streak == 1


def test_a_demo_held_with_the_champion_resets_their_unanswered_streak() -> None:
    events = unanswered_champion()
    events.insert(
        -1,
        touch(
            "demo",
            occurred_at=iso("03-04 15:00"),
            channel="demo",
            participants=[GWEN],
        ),
    )
    result = involvement("03-05 12:00", *events)
    assert result.champions_gone_dark == []
    assert contact(result, GWEN).unanswered_streak == 1


def test_a_champion_with_no_answer_for_ten_business_days_has_gone_dark() -> None:
    events = [
        opened(),
        joined(GWEN, "champion"),
        touch(
            "in",
            occurred_at=iso("03-02 10:00"),
            direction="inbound",
            participants=[GWEN],
        ),
    ]
    # Monday 10:00 plus 80 working hours (two weekends skipped) is Monday
    # 16 March 10:00; Friday 13 March 10:00 is only nine business days.
    assert involvement("03-13 10:00", *events).champions_gone_dark == []
    dark = involvement("03-16 10:00", *events).champions_gone_dark
    assert [
        (d.contact, d.since, d.reason, d.unanswered_streak, d.evidence) for d in dark
    ] == [(GWEN, at("03-16 10:00"), "silence", 0, ["in"])]


def test_a_champion_never_heard_from_is_silent_from_when_they_became_champion() -> None:
    result = involvement("03-16 09:30", opened(), joined(GWEN, "champion"))
    assert [(d.since, d.reason, d.evidence) for d in result.champions_gone_dark] == [
        (at("03-16 09:30"), "silence", ["#2"])
    ]


def test_silence_after_the_deal_was_lost_is_not_a_champion_going_dark() -> None:
    result = involvement(
        "03-30 10:00",
        opened(),
        joined(GWEN, "champion"),
        touch(
            "in",
            occurred_at=iso("03-02 10:00"),
            direction="inbound",
            participants=[GWEN],
        ),
        lost(occurred_at=iso("03-06 10:00")),
    )
    assert result.champions_gone_dark == []


def test_a_contact_who_is_no_longer_champion_is_not_flagged() -> None:
    events = unanswered_champion()
    events.append(
        StakeholderRoleChanged(
            deal=DEAL, occurred_at=iso("03-05 11:00"), contact=GWEN, role="user"
        )
    )
    assert involvement("03-05 12:00", *events).champions_gone_dark == []


# -- corrections, retractions and late logging --------------------------------


def test_a_corrected_participant_list_changes_who_is_engaged() -> None:
    events = [
        *champion_and_decision_maker(),
        touch(
            "t1",
            occurred_at=iso("03-03 10:00"),
            channel="meeting",
            participants=[GWEN],
            outcome="connected",
        ),
        stage("proposal", occurred_at=iso("03-05 10:00")),
    ]
    before = involvement("03-10 10:00", *events)
    assert before.decision_maker_first_engaged is None
    assert before.rubber_stamp_risk is not None
    events.append(
        TouchpointCorrected(
            deal=DEAL,
            occurred_at=iso("03-06 10:00"),
            touchpoint="t1",
            participants=[MARTIN],
        )
    )
    after = involvement("03-10 10:00", *events)
    assert after.rubber_stamp_risk is None
    first = after.decision_maker_first_engaged
    assert first is not None
    assert (first.contact, first.touch) == (MARTIN, "t1")
    assert (contact(after, GWEN).touches, contact(after, MARTIN).engaged_touches) == (
        0,
        1,
    )


def test_a_retracted_touch_is_not_counted() -> None:
    result = involvement(
        "03-10 10:00",
        opened(),
        joined(MARTIN, "decision_maker"),
        touch(
            "t1",
            occurred_at=iso("03-03 10:00"),
            participants=[MARTIN],
            outcome="connected",
        ),
        TouchpointRetracted(
            deal=DEAL,
            occurred_at=iso("03-04 10:00"),
            touchpoint="t1",
            reason="wrong deal",
        ),
        stage("proposal", occurred_at=iso("03-05 10:00")),
    )
    risk = result.rubber_stamp_risk
    assert risk is not None
    assert risk.reason == "never_engaged"
    martin = contact(result, MARTIN)
    assert (martin.touches, martin.first_touched, martin.first_engaged) == (
        0,
        None,
        None,
    )
    assert result.distinct_contacts_engaged == 0


def test_a_call_logged_three_days_late_gives_the_same_result_as_on_time() -> None:
    base = [
        *champion_and_decision_maker(),
        stage("proposal", occurred_at=iso("03-05 10:00")),
    ]
    call = touch(
        "call",
        occurred_at=iso("03-03 10:00"),
        participants=[MARTIN],
        outcome="connected",
    )
    reply = touch(
        "reply",
        occurred_at=iso("03-04 10:00"),
        direction="inbound",
        participants=[GWEN],
    )
    # Late: recorded after the reply that followed it, logged three days on.
    late_call = call.model_copy(update={"logged_at": at("03-06 10:00")})
    when = at("03-10 10:00")
    on_time = stakeholder_involvement(timeline(*base, call, reply), RULES, when)
    late = stakeholder_involvement(timeline(*base, reply, late_call), RULES, when)
    assert late == on_time
    assert late.model_dump_json() == on_time.model_dump_json()
    # The call happened before the proposal, so the decision maker was in time.
    assert late.rubber_stamp_risk is None
    first = late.decision_maker_first_engaged
    assert first is not None
    assert (first.touch, first.stage) == ("call", "discovery")


# -- per contact -------------------------------------------------------------


def test_a_stakeholder_who_left_has_no_current_role_but_keeps_their_history() -> None:
    result = involvement(
        "03-10 10:00",
        opened(),
        joined(TASHA, "user", name="Tasha", title="Dispatcher"),  # 09:30
        StakeholderRoleChanged(
            deal=DEAL, occurred_at=iso("03-03 09:00"), contact=TASHA, role="champion"
        ),
        StakeholderLeft(deal=DEAL, occurred_at=iso("03-04 09:00"), contact=TASHA),
    )
    tasha = contact(result, TASHA)
    assert (tasha.name, tasha.title, tasha.current_role, tasha.left_at) == (
        "Tasha",
        "Dispatcher",
        None,
        at("03-04 09:00"),
    )
    assert [(p.role, p.since, p.until, p.ref) for p in tasha.role_history] == [
        ("user", at("03-02 09:30"), at("03-03 09:00"), "#2"),
        ("champion", at("03-03 09:00"), at("03-04 09:00"), "#3"),
    ]
    assert result.champions_gone_dark == []


def test_each_contact_reports_touches_engagement_stages_and_priorities() -> None:
    result = involvement(
        "03-09 10:00",
        opened(),
        joined(GWEN, "champion", name="Gwen", title="Office manager"),
        touch(
            "a",
            occurred_at=iso("03-02 10:00"),
            outcome="no_answer",
            participants=[GWEN],
        ),
        touch(
            "b",
            occurred_at=iso("03-03 10:00"),
            channel="email",
            direction="inbound",
            participants=[GWEN, TOM],
        ),
        StakeholderPriorityNoted(
            deal=DEAL,
            occurred_at=iso("03-03 11:00"),
            contact=GWEN,
            priority="no-show rate",
        ),  # version 5
        stage("proposal", occurred_at=iso("03-04 09:00")),
        touch(
            "c",
            occurred_at=iso("03-05 10:00"),
            channel="meeting",
            outcome="connected",
            participants=[GWEN],
        ),
        touch(
            "d",
            occurred_at=iso("03-06 10:00"),
            channel="email",
            direction="internal",
            participants=[GWEN],
        ),
    )
    assert [c.contact for c in result.contacts] == [GWEN, TOM]
    gwen = contact(result, GWEN)
    assert (gwen.name, gwen.title, gwen.current_role) == (
        "Gwen",
        "Office manager",
        "champion",
    )
    assert (gwen.touches, gwen.engaged_touches) == (4, 2)
    marks = (
        gwen.first_touched,
        gwen.last_touched,
        gwen.first_engaged,
        gwen.last_engaged,
        gwen.last_inbound,
        gwen.last_answered,
    )
    assert [m.touch if m else None for m in marks] == ["a", "d", "b", "c", "b", "c"]
    assert gwen.touches_by_channel == {"call": 1, "email": 2, "meeting": 1}
    assert list(gwen.touches_by_direction.items()) == [
        ("inbound", 1),
        ("internal", 1),
        ("outbound", 2),
    ]
    assert gwen.stages_engaged == ["discovery", "proposal"]
    assert [(p.priority, p.at, p.ref) for p in gwen.priorities] == [
        ("no-show rate", at("03-03 11:00"), "#5")
    ]
    assert (gwen.replied, gwen.unanswered_streak) == (True, 0)
    # Tom was copied on an email without ever joining the deal.
    tom = contact(result, TOM)
    assert (tom.name, tom.current_role, tom.role_history) == (None, None, [])
    assert (tom.touches, tom.engaged_touches, tom.stages_engaged, tom.replied) == (
        1,
        1,
        ["discovery"],
        True,
    )
    assert result.distinct_contacts_engaged == 2


def test_a_contact_only_ever_tried_has_not_replied() -> None:
    result = involvement(
        "03-09 10:00",
        opened(),
        touch(
            "a", occurred_at=iso("03-02 10:00"), outcome="no_answer", participants=[TOM]
        ),
        touch(
            "b", occurred_at=iso("03-03 10:00"), outcome="bounced", participants=[TOM]
        ),
    )
    tom = contact(result, TOM)
    assert (tom.replied, tom.unanswered_streak, tom.engaged_touches) == (False, 2, 0)
    assert tom.first_engaged is None
    assert tom.stages_engaged == []


def test_stages_engaged_follow_the_pipeline_order_not_the_visit_order() -> None:
    result = involvement(
        "03-09 10:00",
        opened(stage="proposal"),
        touch("p", occurred_at=iso("03-02 10:00"), participants=[GWEN]),
        stage("discovery", occurred_at=iso("03-03 09:00")),
        touch("d", occurred_at=iso("03-03 10:00"), participants=[GWEN]),
    )
    assert contact(result, GWEN).stages_engaged == ["discovery", "proposal"]


# -- per deal ----------------------------------------------------------------


def test_roles_covered_at_each_stage_count_only_engaged_contacts() -> None:
    result = involvement(
        "03-09 10:00",
        opened(),
        joined(GWEN, "champion"),
        joined(TASHA, "user"),
        joined(MARTIN, "decision_maker"),
        touch(
            "g",
            occurred_at=iso("03-02 11:00"),
            channel="meeting",
            outcome="connected",
            participants=[GWEN, TASHA],
        ),
        touch(
            "vm",
            occurred_at=iso("03-03 10:00"),
            outcome="voicemail",
            participants=[MARTIN],
        ),
        stage("proposal", occurred_at=iso("03-04 10:00")),
        # At the instant of the stage change: it belongs to the new stage.
        touch(
            "m",
            occurred_at=iso("03-04 10:00"),
            outcome="connected",
            participants=[MARTIN],
        ),
    )
    assert [
        (c.stage, c.entered_at, c.left_at, c.roles, c.contacts)
        for c in result.stage_coverage
    ] == [
        (
            "discovery",
            at("03-02 09:00"),
            at("03-04 10:00"),
            ["champion", "user"],
            [GWEN, TASHA],
        ),
        ("proposal", at("03-04 10:00"), None, ["decision_maker"], [MARTIN]),
    ]


def single_threaded_history() -> list[Event]:
    return [
        *champion_and_decision_maker(),
        touch(
            "g1", occurred_at=iso("03-02 10:00"), channel="email", participants=[GWEN]
        ),
        touch(
            "g2",
            occurred_at=iso("03-03 10:00"),
            direction="inbound",
            participants=[GWEN],
        ),
        # Unanswered: neither extends nor breaks Gwen's span.
        touch(
            "vm",
            occurred_at=iso("03-03 12:00"),
            outcome="voicemail",
            participants=[MARTIN],
        ),
        touch(
            "g3",
            occurred_at=iso("03-04 10:00"),
            outcome="connected",
            participants=[GWEN],
        ),
        touch(
            "both",
            occurred_at=iso("03-05 10:00"),
            channel="meeting",
            outcome="connected",
            participants=[GWEN, MARTIN],
        ),
        touch("g4", occurred_at=iso("03-06 10:00"), participants=[GWEN]),
        touch(
            "m1",
            occurred_at=iso("03-09 10:00"),
            outcome="connected",
            participants=[MARTIN],
        ),
        touch(
            "m2",
            occurred_at=iso("03-09 14:00"),
            direction="inbound",
            participants=[MARTIN],
        ),
    ]


def test_single_threaded_spans_are_runs_of_engaged_touches_with_one_contact() -> None:
    result = involvement("03-10 10:00", *single_threaded_history())
    assert [
        (s.contact, s.start, s.end, s.touches, s.business_days)
        for s in result.single_threaded_spans
    ] == [
        (GWEN, at("03-02 10:00"), at("03-04 10:00"), ["g1", "g2", "g3"], 2.0),
        (MARTIN, at("03-09 10:00"), at("03-09 14:00"), ["m1", "m2"], 0.5),
    ]
    assert result.distinct_contacts_engaged == 2


def test_touches_after_the_deal_closed_are_not_part_of_a_span() -> None:
    events = [*single_threaded_history(), lost(occurred_at=iso("03-09 12:00"))]
    result = involvement("03-10 10:00", *events)
    assert [s.touches for s in result.single_threaded_spans] == [["g1", "g2", "g3"]]


def test_the_same_inputs_give_byte_identical_json() -> None:
    events = single_threaded_history()
    first = involvement("03-10 10:00", *events).model_dump_json()
    assert involvement("03-10 10:00", *events).model_dump_json() == first
    assert '"meta":{"deal":"ACME-1"' in first

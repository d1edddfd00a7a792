"""Findings and the loss audit, on small hand-built histories.

Deals are in Europe/Paris with the built-in rules (09:00-17:00, Saturday and
Sunday off, no holidays, follow-up SLA 8 business hours). 2 March 2026 is a
Monday; summer time starts on Sunday 29 March. Every rule has a test that it
fires and one that it does not on a near miss.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from engine.deal import deal_id
from engine.events import (
    DealLost,
    DealReopened,
    DealUpdated,
    DealWon,
    Event,
    FollowUpPromised,
    FollowUpRequested,
    NextStepSet,
    TouchpointLogged,
)
from engine.persistence import Recorded
from engine.projections.audit import audit, default_evaluation_time
from engine.projections.findings import (
    LESSONS,
    RULE_IDS,
    SEVERITY_ORDER,
    AccountContext,
    Finding,
    findings,
)
from engine.projections.gaps import follow_up_gaps
from engine.projections.prepare import DealTimeline, prepare
from engine.rules import RuleSet
from tests.factories import joined, lost, opened, stage, touch

RULES = RuleSet()
DEAL = "ACME-1"
DANA = "dana@acme.example"
EVE = "eve@acme.example"
PARIS = ZoneInfo("Europe/Paris")
RECORDING = datetime(2026, 6, 1, tzinfo=UTC)


def t(text: str) -> datetime:
    """A Paris wall-clock time in 2026, e.g. ``t("03-02 09:00")``."""
    return datetime.strptime(f"2026-{text}", "%Y-%m-%d %H:%M").replace(tzinfo=PARIS)


def iso(text: str) -> str:
    return t(text).isoformat()


def timeline(*events: Event) -> DealTimeline:
    """Events recorded one minute apart in the order given (versions 1..n)."""
    return prepare(
        [
            Recorded(
                deal_id(DEAL),
                version,
                event.model_copy(
                    update={"recorded_at": RECORDING + timedelta(minutes=version)}
                ),
            )
            for version, event in enumerate(events, 1)
        ]
    )


def fired(
    rule: str,
    events: Sequence[Event],
    at: str,
    account: AccountContext | None = None,
) -> list[Finding]:
    assert rule in RULE_IDS
    found = findings(timeline(*events), RULES, t(at), account)
    return [f for f in found if f.rule == rule]


def call(tid: str, when: str, **fields: Any) -> TouchpointLogged:
    """An outbound call to Dana."""
    return touch(tid, occurred_at=iso(when), **fields)


def email_in(tid: str, when: str, **fields: Any) -> TouchpointLogged:
    """An email from Dana."""
    return touch(
        tid, occurred_at=iso(when), channel="email", direction="inbound", **fields
    )


def email_out(tid: str, when: str, **fields: Any) -> TouchpointLogged:
    """An email to Dana (no outcome: nobody knows yet if she will reply)."""
    return touch(tid, occurred_at=iso(when), channel="email", **fields)


def dana(role: str = "user") -> Event:
    return joined(DANA, role, name="Dana Reed")


def request(made: str, not_before: str) -> FollowUpRequested:
    return FollowUpRequested(
        deal=DEAL, occurred_at=t(made), by=DANA, not_before=t(not_before)
    )


def finding(
    rule: str,
    key: str,
    severity: str,
    visible_at: str,
    evidence: list[str],
    sentence: str,
) -> Finding:
    return Finding.model_validate(
        {
            "rule": rule,
            "key": f"{rule}:{key}" if key else rule,
            "severity": severity,
            "visible_at": t(visible_at),
            "evidence": evidence,
            "sentence": sentence,
        }
    )


# -- the catalogue ---------------------------------------------------------------


def test_every_rule_has_one_lesson_from_the_domain() -> None:
    assert len(set(RULE_IDS)) == len(RULE_IDS) == 16
    assert set(LESSONS) == set(RULE_IDS)
    assert set(LESSONS.values()) == {
        "Strike while the iron is hot",
        "Follow up just right",
        "Work the whole network, not only the signer",
        "Do not neglect current customers",
        "There is no rubber stamp",
        "The two clocks matter",
    }
    assert SEVERITY_ORDER == {"high": 0, "medium": 1, "low": 2}


# -- slow_follow_up --------------------------------------------------------------


def test_an_email_answered_five_business_days_later_is_a_high_slow_follow_up() -> None:
    # Tue 10:00 -> Tue 11:00 a week later: 7 + 3 * 8 + 8 + 2 = 41 business hours.
    events = [opened(), email_in("t1", "03-03 10:00"), email_out("t2", "03-10 11:00")]
    assert fired("slow_follow_up", events, "03-10 12:00") == [
        finding(
            "slow_follow_up",
            "t1",
            "high",
            "03-04 10:00",  # the SLA of 8 business hours ran out
            ["t1", "t2"],
            "The buyer's email of Tue 3 Mar was answered 5 business days later, "
            "on Tue 10 Mar.",
        )
    ]


def test_an_email_answered_exactly_at_the_sla_is_not_slow() -> None:
    events = [opened(), email_in("t1", "03-03 10:00"), email_out("t2", "03-04 10:00")]
    assert fired("slow_follow_up", events, "03-04 12:00") == []


def test_a_breach_under_three_business_days_is_medium() -> None:
    # 16 business hours: over the SLA, under the 24 that make it high.
    events = [opened(), email_in("t1", "03-03 10:00"), email_out("t2", "03-05 10:00")]
    (late,) = fired("slow_follow_up", events, "03-05 12:00")
    assert late.severity == "medium"
    assert late.sentence == (
        "The buyer's email of Tue 3 Mar was answered 2 business days later, "
        "on Thu 5 Mar."
    )


def test_an_unanswered_email_keeps_its_key_when_it_is_answered() -> None:
    # Tue 10:00 -> Fri 10:00 is 7 + 8 + 8 + 1 = 24 business hours: high.
    waiting = [opened(), email_in("t1", "03-03 10:00")]
    (open_,) = fired("slow_follow_up", waiting, "03-06 10:00")
    assert open_.sentence == (
        "The buyer's email of Tue 3 Mar has had no answer for 3 business days."
    )
    assert (open_.severity, open_.evidence) == ("high", ["t1"])
    (answered,) = fired(
        "slow_follow_up", [*waiting, email_out("t2", "03-09 10:00")], "03-09 12:00"
    )
    assert answered.key == open_.key == "slow_follow_up:t1"
    assert answered.visible_at == open_.visible_at == t("03-04 10:00")


def test_a_meeting_followed_up_a_week_later_is_a_slow_follow_up() -> None:
    events = [
        opened(),
        call("m1", "03-05 14:00", channel="meeting", outcome="connected"),
        email_out("t2", "03-12 10:00"),
    ]
    (late,) = fired("slow_follow_up", events, "03-12 12:00")
    assert late.sentence == (
        "The meeting of Thu 5 Mar was followed up 5 business days later, on Thu 12 Mar."
    )
    assert late.visible_at == t("03-06 14:00")


# -- promise_missed / promise_late -----------------------------------------------


def promised() -> FollowUpPromised:
    return FollowUpPromised(
        deal=DEAL, occurred_at=t("03-02 11:00"), due=date(2026, 3, 4)
    )


def test_a_promise_with_no_touch_after_its_due_date_is_missed() -> None:
    assert fired("promise_missed", [opened(), promised()], "03-06 12:00") == [
        finding(
            "promise_missed",
            "#2",
            "high",
            "03-05 00:00",  # the end of the due date
            ["#2"],
            "The follow-up promised on Mon 2 Mar for Wed 4 Mar was missed: no "
            "outbound touch followed, 2 business days past the due date by Fri 6 Mar.",
        )
    ]


def test_a_promise_kept_late_on_its_due_date_is_neither_missed_nor_late() -> None:
    events = [opened(), promised(), email_out("t1", "03-04 23:00")]
    assert fired("promise_missed", events, "03-06 12:00") == []
    assert fired("promise_late", events, "03-06 12:00") == []


def test_a_promise_kept_the_day_after_is_late_and_no_longer_missed() -> None:
    events = [opened(), promised(), email_out("t1", "03-05 10:00")]
    assert fired("promise_late", events, "03-05 12:00") == [
        finding(
            "promise_late",
            "#2",
            "medium",
            "03-05 00:00",
            ["#2", "t1"],
            "The follow-up promised on Mon 2 Mar for Wed 4 Mar was kept 1 business "
            "day late, on Thu 5 Mar.",
        )
    ]
    assert fired("promise_missed", events, "03-05 12:00") == []
    # Before the touch it was missed, visible since the same instant.
    (missed,) = fired("promise_missed", events, "03-05 08:00")
    assert missed.visible_at == t("03-05 00:00")


# -- requested_timing_early / requested_timing_ignored ---------------------------


def test_a_call_during_the_pause_the_buyer_asked_for_is_early() -> None:
    events = [
        opened(),
        dana(),
        request("03-02 11:00", "03-09 09:00"),
        call("t1", "03-06 10:00"),
    ]
    assert fired("requested_timing_early", events, "03-09 12:00") == [
        finding(
            "requested_timing_early",
            "#3",
            "high",
            "03-06 10:00",
            ["#3", "t1"],
            "Dana Reed asked on Mon 2 Mar to be contacted from Mon 9 Mar, but got "
            "1 touch before then, on Fri 6 Mar.",
        )
    ]


def test_a_call_at_the_very_time_the_buyer_asked_for_is_not_early() -> None:
    events = [
        opened(),
        dana(),
        request("03-02 11:00", "03-09 09:00"),
        call("t1", "03-09 09:00"),
    ]
    assert fired("requested_timing_early", events, "03-09 12:00") == []


def test_answering_the_email_that_carried_the_request_is_not_early() -> None:
    events = [
        opened(),
        dana(),
        email_in("t0", "03-02 10:55"),
        request("03-02 11:00", "03-09 09:00"),
        email_out("t1", "03-02 11:30"),
    ]
    # The gaps count the reply as early; the findings read it as an answer.
    tl = timeline(*events)
    assert follow_up_gaps(tl, RULES, t("03-09 12:00")).requested_timing[0].early == (
        "t1",
    )
    assert fired("requested_timing_early", events, "03-09 12:00") == []


def test_a_call_a_business_day_and_an_hour_after_the_requested_time_is_late() -> None:
    # Mon 09:00 -> Tue 10:00 is 9 business hours, over the 8-hour threshold.
    events = [
        opened(),
        dana(),
        request("03-02 11:00", "03-09 09:00"),
        call("t1", "03-10 10:00"),
    ]
    assert fired("requested_timing_ignored", events, "03-10 12:00") == [
        finding(
            "requested_timing_ignored",
            "#3",
            "medium",
            "03-09 17:00",
            ["#3", "t1"],
            "Dana Reed asked on Mon 2 Mar to be contacted from Mon 9 Mar, but the "
            "next touch came only on Tue 10 Mar, 1 business day later.",
        )
    ]


def test_a_call_exactly_a_business_day_after_the_requested_time_is_on_time() -> None:
    events = [
        opened(),
        dana(),
        request("03-02 11:00", "03-09 09:00"),
        call("t1", "03-10 09:00"),
    ]
    assert fired("requested_timing_ignored", events, "03-10 12:00") == []


# -- pushy_streak ----------------------------------------------------------------

DAYS = ["03-02", "03-03", "03-04", "03-05", "03-06", "03-09"]


def test_six_unanswered_calls_at_the_same_hour_are_a_high_pushy_streak() -> None:
    calls = [
        call(f"p{i}", f"{d} 10:00", outcome="no_answer") for i, d in enumerate(DAYS)
    ]
    assert fired("pushy_streak", [opened(), dana(), *calls], "03-09 12:00") == [
        finding(
            "pushy_streak",
            f"{DANA}:p0",
            "high",
            "03-09 10:00",  # the sixth attempt
            [f"p{i}" for i in range(6)],
            "Dana Reed got 6 attempts in a row without a reply, from Mon 2 Mar to "
            "Mon 9 Mar, all by call; none of the repeat attempts changed channel or "
            "time of day.",
        )
    ]


def test_five_unanswered_calls_are_not_pushy() -> None:
    calls = [
        call(f"p{i}", f"{d} 10:00", outcome="no_answer") for i, d in enumerate(DAYS[:5])
    ]
    assert fired("pushy_streak", [opened(), dana(), *calls], "03-09 12:00") == []


def test_a_varied_pushy_streak_is_medium() -> None:
    tries = [
        call(f"p{i}", f"{d} 10:00", outcome="no_answer")
        if i % 2 == 0
        else email_out(f"p{i}", f"{d} 15:00")
        for i, d in enumerate(DAYS)
    ]
    (streak,) = fired("pushy_streak", [opened(), dana(), *tries], "03-09 16:00")
    assert streak.severity == "medium"
    assert streak.sentence.endswith(
        "by call (3) and email (3); every repeat attempt changed channel or time "
        "of day."
    )


# -- gave_up_early ---------------------------------------------------------------


def chased(*attempts: Event) -> list[Event]:
    return [
        opened(),
        email_in("t1", "03-02 10:00"),
        email_out("t2", "03-02 11:00"),
        *attempts,
        lost(occurred_at=iso("03-20 10:00")),
    ]


def test_a_deal_lost_after_two_unanswered_attempts_was_given_up_early() -> None:
    events = chased(call("t3", "03-04 10:00", outcome="no_answer"))
    assert fired("gave_up_early", events, "03-20 10:00") == [
        finding(
            "gave_up_early",
            "#5",
            "high",
            "03-20 10:00",
            ["t2", "t3", "#5"],
            "The rep stopped after 2 unanswered attempts, the last on Wed 4 Mar, "
            "and the deal was lost on Fri 20 Mar, 12 business days later.",
        )
    ]


def test_a_deal_lost_after_three_unanswered_attempts_was_not_given_up_early() -> None:
    events = chased(
        call("t3", "03-04 10:00", outcome="no_answer"),
        call("t4", "03-05 10:00", outcome="no_answer"),
    )
    assert fired("gave_up_early", events, "03-20 10:00") == []


# -- dark_period -----------------------------------------------------------------


def test_ten_business_days_without_a_touch_is_a_dark_period() -> None:
    events = [opened(), call("t1", "03-02 10:00"), call("t2", "03-16 10:00")]
    assert fired("dark_period", events, "03-16 12:00") == [
        finding(
            "dark_period",
            "t1",
            "medium",
            "03-16 10:00",
            ["t1", "t2"],
            "No touch of any kind for 10 business days, from Mon 2 Mar to Mon 16 "
            "Mar, while the deal was open.",
        )
    ]


def test_nine_business_days_without_a_touch_is_not_dark() -> None:
    events = [opened(), call("t1", "03-02 10:00"), call("t2", "03-13 10:00")]
    assert fired("dark_period", events, "03-13 12:00") == []


def test_a_pause_the_buyer_asked_for_is_not_dark() -> None:
    # The two business days of the pause do not count: 8 days of silence.
    events = [
        opened(),
        call("t1", "03-02 10:00"),
        request("03-02 10:30", "03-04 10:30"),
        call("t2", "03-16 10:00"),
    ]
    assert fired("dark_period", events, "03-16 12:00") == []


def test_twenty_business_days_without_a_touch_is_a_high_dark_period() -> None:
    events = [opened(), call("t1", "03-02 10:00"), call("t2", "03-30 10:00")]
    (dark,) = fired("dark_period", events, "03-30 12:00")
    assert (dark.severity, dark.visible_at) == ("high", t("03-16 10:00"))


# -- low_next_step_clarity -------------------------------------------------------


def test_a_deal_open_five_business_days_without_a_next_step_has_low_clarity() -> None:
    assert fired("low_next_step_clarity", [opened()], "03-09 10:00") == [
        finding(
            "low_next_step_clarity",
            "",
            "medium",
            "03-06 17:00",  # five business days after opening
            ["#1"],
            "In 5 business days open, the deal never had a next step with an owner "
            "and a due date.",
        )
    ]


def test_a_deal_open_under_five_business_days_is_not_judged_on_clarity() -> None:
    assert fired("low_next_step_clarity", [opened()], "03-06 16:00") == []


def next_step() -> NextStepSet:
    # Clear from Mon 2 09:00 through the end of Fri 6: 40 business hours.
    return NextStepSet(
        deal=DEAL,
        occurred_at=t("03-02 09:00"),
        description="Workshop",
        due=date(2026, 3, 6),
        owner="sam",
    )


def test_clarity_of_exactly_half_is_not_low() -> None:
    # Open 80 business hours by Fri 13 17:00, clear 40: a share of 0.5.
    assert fired("low_next_step_clarity", [opened(), next_step()], "03-13 17:00") == []


def test_clarity_is_low_from_the_instant_the_share_fell_below_half() -> None:
    (low,) = fired("low_next_step_clarity", [opened(), next_step()], "03-16 10:00")
    assert low.visible_at == t("03-13 17:00")
    assert low.evidence == ["#2"]
    assert low.sentence == (
        "A next step with an owner and a due date existed for only 49% of the "
        "10 business days the deal was open, below 50%."
    )


# -- rubber_stamp ----------------------------------------------------------------


def shaped(*more: Event) -> list[Event]:
    return [
        opened(),
        dana(),
        joined(EVE, "decision_maker", name="Eve Park"),
        call("t1", "03-02 10:00", outcome="connected"),
        stage("proposal", occurred_at=iso("03-04 10:00")),
        *more,
    ]


def test_reaching_proposal_without_the_decision_maker_is_a_rubber_stamp() -> None:
    assert fired("rubber_stamp", shaped(), "03-04 12:00") == [
        finding(
            "rubber_stamp",
            "#5",
            "high",
            "03-04 10:00",
            ["#5"],
            "The deal reached proposal on Wed 4 Mar without anyone in a decision "
            "role engaged, and nobody in that role has been engaged since.",
        )
    ]


def test_the_decision_maker_engaged_at_the_minute_of_the_proposal_is_no_risk() -> None:
    events = shaped(call("t2", "03-04 10:00", outcome="connected", participants=[EVE]))
    assert fired("rubber_stamp", events, "03-04 12:00") == []


def test_a_decision_maker_engaged_after_the_proposal_is_still_a_rubber_stamp() -> None:
    events = shaped(call("t2", "03-06 10:00", outcome="connected", participants=[EVE]))
    (stamp,) = fired("rubber_stamp", events, "03-06 12:00")
    assert stamp.evidence == ["#5", "t2"]
    assert stamp.sentence == (
        "The deal reached proposal on Wed 4 Mar before anyone in a decision role "
        "was engaged; Eve Park (decision maker) was first engaged on Fri 6 Mar, "
        "2 business days later."
    )


# -- champion_gone_dark ----------------------------------------------------------


def courted(*more: Event) -> list[Event]:
    return [opened(), dana("champion"), email_in("t1", "03-02 10:00"), *more]


def test_a_champion_who_leaves_three_attempts_unanswered_has_gone_dark() -> None:
    events = courted(
        email_out("t2", "03-03 10:00"),
        email_out("t3", "03-04 10:00"),
        email_out("t4", "03-05 10:00"),
    )
    assert fired("champion_gone_dark", events, "03-05 12:00") == [
        finding(
            "champion_gone_dark",
            DANA,
            "high",
            "03-05 10:00",
            ["t2", "t3", "t4"],
            "Dana Reed, the champion, stopped answering: 3 attempts in a row got "
            "no reply after the last answer on Mon 2 Mar.",
        )
    ]


def test_a_champion_with_two_unanswered_attempts_has_not_gone_dark() -> None:
    events = courted(email_out("t2", "03-03 10:00"), email_out("t3", "03-04 10:00"))
    assert fired("champion_gone_dark", events, "03-05 12:00") == []


def test_a_champion_silent_for_ten_business_days_is_a_medium_finding() -> None:
    events = courted(email_out("t2", "03-02 11:00"))
    assert fired("champion_gone_dark", events, "03-16 09:59") == []
    (dark,) = fired("champion_gone_dark", events, "03-16 10:00")
    assert (dark.severity, dark.evidence) == ("medium", ["t1"])
    assert dark.sentence == (
        "Dana Reed, the champion, went 10 business days without answering "
        "after Mon 2 Mar."
    )


# -- single_threaded -------------------------------------------------------------


def test_ten_business_days_with_one_contact_only_is_single_threaded() -> None:
    events = [
        opened(),
        call("t1", "03-02 10:00", outcome="connected"),
        call("t2", "03-16 10:00", outcome="connected"),
    ]
    assert fired("single_threaded", events, "03-16 12:00") == [
        finding(
            "single_threaded",
            "t1",
            "medium",
            "03-16 10:00",
            ["t1", "t2"],
            f"{DANA} was the only buyer contact engaged for 10 business days, from "
            "Mon 2 Mar to Mon 16 Mar, over 2 touches.",
        )
    ]


def test_nine_business_days_with_one_contact_only_is_not_single_threaded() -> None:
    events = [
        opened(),
        call("t1", "03-02 10:00", outcome="connected"),
        call("t2", "03-13 10:00", outcome="connected"),
    ]
    assert fired("single_threaded", events, "03-13 12:00") == []


# -- close_date_slips ------------------------------------------------------------


def moved(when: str, to: date) -> DealUpdated:
    return DealUpdated(deal=DEAL, occurred_at=t(when), expected_close=to)


def test_a_close_date_pushed_a_month_is_a_slip() -> None:
    events = [
        opened(expected_close="2026-03-31"),
        moved("03-05 10:00", date(2026, 4, 30)),
    ]
    assert fired("close_date_slips", events, "03-05 12:00") == [
        finding(
            "close_date_slips",
            "#2",
            "low",
            "03-05 10:00",
            ["#2"],
            "On Thu 5 Mar the expected close moved from Tue 31 Mar to Thu 30 Apr, "
            "30 days later.",
        )
    ]


def test_a_close_date_pulled_in_is_not_a_slip() -> None:
    events = [
        opened(expected_close="2026-03-31"),
        moved("03-05 10:00", date(2026, 3, 20)),
    ]
    assert fired("close_date_slips", events, "03-05 12:00") == []


def test_a_second_slip_counts_the_days_pushed_in_all() -> None:
    events = [
        opened(expected_close="2026-03-31"),
        moved("03-05 10:00", date(2026, 4, 30)),
        moved("03-06 10:00", date(2026, 5, 31)),
    ]
    second = fired("close_date_slips", events, "03-06 12:00")[1]
    assert second.sentence.endswith("31 days later (slip 2, 61 days pushed in all).")


# -- stage_stall -----------------------------------------------------------------


def test_more_than_twenty_business_days_in_one_stage_is_a_stall() -> None:
    assert fired("stage_stall", [opened()], "03-30 10:00") == [
        finding(
            "stage_stall",
            "#1",
            "medium",
            "03-27 17:00",  # 20 business days after Mon 2 09:00
            ["#1"],
            "The deal has been in discovery for 20 business days, since Mon 2 Mar.",
        )
    ]


def test_exactly_twenty_business_days_in_one_stage_is_not_a_stall() -> None:
    assert fired("stage_stall", [opened()], "03-27 17:00") == []


# -- logging_lag -----------------------------------------------------------------


def test_a_call_logged_three_business_days_late_has_logging_lag() -> None:
    # Mon 10:00 -> Thu 11:00 is 7 + 8 + 8 + 2 = 25 business hours, over 16.
    events = [opened(), call("t1", "03-02 10:00", logged_at=iso("03-05 11:00"))]
    assert fired("logging_lag", events, "03-05 12:00") == [
        finding(
            "logging_lag",
            "t1",
            "low",
            "03-05 11:00",  # when it was logged
            ["t1"],
            "The call of Mon 2 Mar was logged 3 business days later, on Thu 5 Mar.",
        )
    ]


def test_a_call_logged_exactly_two_business_days_late_has_no_lag() -> None:
    events = [opened(), call("t1", "03-02 10:00", logged_at=iso("03-04 10:00"))]
    assert fired("logging_lag", events, "03-05 12:00") == []


def test_a_late_log_that_hid_a_slow_follow_up_is_high() -> None:
    events = [
        opened(),
        email_in("t1", "03-02 10:00", logged_at=iso("03-05 11:00")),
        email_out("t2", "03-05 12:00"),
    ]
    (lag,) = fired("logging_lag", events, "03-05 12:00")
    assert lag.severity == "high"
    assert lag.sentence == (
        "The buyer's email of Mon 2 Mar was logged 3 business days later, on Thu "
        "5 Mar, after the follow-up it called for was already overdue."
    )


# -- account_neglect -------------------------------------------------------------

WON_ON_NEW_YEAR = (("ACME-0", t("01-01 10:00")),)


def test_sixty_days_without_a_touch_on_a_won_account_is_neglect() -> None:
    account = AccountContext(won=WON_ON_NEW_YEAR, touch_times=(t("01-01 10:00"),))
    events = [opened(), call("t1", "03-02 10:00")]
    assert fired("account_neglect", events, "03-02 12:00", account) == [
        finding(
            "account_neglect",
            "2026-01-01T10:00:00+01:00",
            "high",
            "03-02 09:00",  # neglected since midnight, visible once this deal opened
            ["#1", "t1"],
            "ACME, a customer since ACME-0 was won on Thu 1 Jan, had no touch for "
            "60 days, from Thu 1 Jan to Mon 2 Mar.",
        )
    ]


def test_fifty_nine_days_without_a_touch_is_not_neglect() -> None:
    account = AccountContext(
        won=WON_ON_NEW_YEAR, touch_times=(t("01-01 10:00"), t("01-02 10:00"))
    )
    events = [opened(), call("t1", "03-02 10:00")]
    assert fired("account_neglect", events, "03-02 12:00", account) == []


def test_an_account_without_a_won_deal_is_never_neglected() -> None:
    account = AccountContext(won=(), touch_times=(t("01-01 10:00"),))
    assert fired("account_neglect", [opened()], "03-02 12:00", account) == []


# -- the evaluation time is a cut-off --------------------------------------------


def test_a_finding_not_yet_visible_at_the_evaluation_time_is_left_out() -> None:
    lagging = [opened(), call("t1", "03-02 10:00", logged_at=iso("03-05 11:00"))]
    assert fired("logging_lag", lagging, "03-05 10:59") == []
    waiting = [opened(), email_in("t1", "03-03 10:00")]
    assert fired("slow_follow_up", waiting, "03-04 09:59") == []
    assert [f.visible_at for f in fired("slow_follow_up", waiting, "03-04 10:30")] == [
        t("03-04 10:00")
    ]


def lost_deal() -> DealTimeline:
    """A slow answer (high), a slip (low), no next step (medium) and a
    proposal the decision maker never saw (high), then the loss."""
    return timeline(
        opened(expected_close="2026-03-31"),
        dana(),
        joined(EVE, "decision_maker", name="Eve Park"),
        email_in("t1", "03-02 10:00"),
        moved("03-04 10:00", date(2026, 4, 30)),
        email_out("t2", "03-06 10:00", outcome="replied"),
        stage("proposal", occurred_at=iso("03-09 10:00")),
        lost(occurred_at=iso("03-10 10:00")),
    )


def test_every_finding_listed_was_visible_by_the_evaluation_time() -> None:
    tl = lost_deal()
    for day in range(2, 12):
        at = t(f"03-{day:02d} 11:00")
        found = findings(tl, RULES, at)
        assert all(f.visible_at <= at for f in found)
        assert found == sorted(found, key=lambda f: (f.visible_at, f.rule, f.key))


# -- the audit -------------------------------------------------------------------


def test_the_audit_names_the_lesson_of_the_highest_priority_high_finding() -> None:
    result = audit(lost_deal(), RULES, t("03-10 10:00"))
    assert [(f.rule, f.severity) for f in result.findings] == [
        ("slow_follow_up", "high"),  # Tue 3 10:00
        ("close_date_slips", "low"),  # Wed 4 10:00
        ("low_next_step_clarity", "medium"),  # Fri 6 17:00
        ("rubber_stamp", "high"),  # Mon 9 10:00
    ]
    verdict = result.verdict
    # Both highs: the rubber stamp comes first in RULE_IDS, so it names the lesson;
    # the top list is by severity, then time.
    assert verdict.lesson == "There is no rubber stamp"
    assert [f.rule for f in verdict.top] == [
        "slow_follow_up",
        "rubber_stamp",
        "low_next_step_clarity",
    ]
    assert verdict.summary == (
        "There is no rubber stamp: 2 high, 1 medium and 1 low findings. Most "
        "serious: slow follow-up (high, Tue 3 Mar), rubber-stamp risk (high, Mon 9 "
        "Mar) and low next-step clarity (medium, Fri 6 Mar)."
    )
    assert (result.status, result.stage, result.closed_at) == (
        "lost",
        "proposal",
        t("03-10 10:00"),
    )
    assert (result.loss_reason, result.competitor) == ("chose a competitor", "Initech")


def test_without_a_high_finding_the_verdict_claims_no_lesson() -> None:
    result = audit(timeline(opened()), RULES, t("03-09 10:00"))
    assert [f.rule for f in result.findings] == ["low_next_step_clarity"]
    assert result.verdict.lesson is None
    assert result.verdict.summary.startswith("No high-severity finding: 1 medium")


def test_a_deal_with_no_finding_says_so() -> None:
    result = audit(timeline(opened()), RULES, t("03-02 12:00"))
    assert (result.findings, result.verdict.top) == ([], [])
    assert result.verdict.summary == "No warning sign had fired by Mon 2 Mar."


def test_the_audit_json_is_byte_identical_for_the_same_input() -> None:
    account = AccountContext(won=WON_ON_NEW_YEAR, touch_times=(t("01-01 10:00"),))
    first = audit(lost_deal(), RULES, t("03-10 10:00"), account).model_dump_json()
    again = audit(lost_deal(), RULES, t("03-10 10:00"), account).model_dump_json()
    assert first == again
    assert '"visible_at":"2026-03-03T10:00:00+01:00"' in first


# -- default_evaluation_time -----------------------------------------------------

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def test_an_open_deal_is_audited_now() -> None:
    assert default_evaluation_time(timeline(opened()), NOW) == NOW


def test_a_closed_deal_is_audited_at_its_last_close() -> None:
    once = timeline(opened(), lost(occurred_at=iso("03-10 10:00")))
    assert default_evaluation_time(once, NOW) == t("03-10 10:00")
    # A second DealLost (say, a corrected reason) moves the audit to it.
    twice = timeline(
        opened(),
        lost(occurred_at=iso("03-10 10:00")),
        lost(occurred_at=iso("03-11 10:00"), reason="budget cut"),
    )
    assert default_evaluation_time(twice, NOW) == t("03-11 10:00")


def test_a_reopened_deal_is_audited_now_until_it_closes_again() -> None:
    events: list[Event] = [
        opened(),
        lost(occurred_at=iso("03-10 10:00")),
        DealReopened(deal=DEAL, occurred_at=t("03-12 10:00")),
    ]
    assert default_evaluation_time(timeline(*events), NOW) == NOW
    won = DealWon(deal=DEAL, occurred_at=t("03-20 10:00"))
    assert default_evaluation_time(timeline(*events, won), NOW) == t("03-20 10:00")


def test_a_lost_event_carries_the_reason_the_audit_reports() -> None:
    later = DealLost(
        deal=DEAL, occurred_at=t("03-11 10:00"), reason="budget cut", competitor=None
    )
    tl = timeline(opened(), lost(occurred_at=iso("03-10 10:00")), later)
    result = audit(tl, RULES, default_evaluation_time(tl, NOW))
    assert (result.loss_reason, result.competitor) == ("budget cut", None)

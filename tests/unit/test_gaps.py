"""Follow-up gaps: obligations, promises, requested timing, streaks, silence.

The deal (``factories.opened``) opens on Monday 2 March 2026 at 09:00 in
Europe/Paris; business hours are 09:00-17:00, Monday to Friday, so one
business day is 8 hours. March 2026: Mon 2, 9, 16, 23; Fri 6, 13, 20, 27.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from engine.events import (
    DealReopened,
    Event,
    FollowUpPromised,
    FollowUpRequested,
    NextStepCleared,
    NextStepSet,
    TouchpointCorrected,
    TouchpointRetracted,
)
from engine.persistence import Recorded
from engine.projections.gaps import FollowUpGaps, follow_up_gaps
from engine.projections.prepare import prepare
from engine.rules import RuleSet, parse_rules
from tests.factories import lost, opened, touch

PARIS = ZoneInfo("Europe/Paris")
DEAL_ID = UUID("00000000-0000-0000-0000-00000000ac31")
RULES = RuleSet()
DANA = "dana@acme.example"
LEE = "lee@acme.example"


def t(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    """A local Paris time in 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=PARIS)


def history(*events: Event) -> list[Recorded]:
    """Events recorded in the order given (versions 1, 2, ...), each recorded
    when it was logged, else when it happened."""
    return [
        Recorded(
            DEAL_ID,
            version,
            e.model_copy(update={"recorded_at": e.logged_at or e.occurred_at}),
        )
        for version, e in enumerate(events, start=1)
    ]


def gaps(*events: Event, at: datetime, rules: RuleSet = RULES) -> FollowUpGaps:
    """The gaps of a deal opened Monday 09:00 followed by ``events``
    (recorded as versions 2, 3, ...)."""
    return follow_up_gaps(prepare(history(opened(), *events)), rules, at)


def out(tid: str, when: datetime, **fields: Any) -> Event:
    """An outbound touch to Dana (a call unless told)."""
    return touch(tid, occurred_at=when, **fields)


def inbound(tid: str, when: datetime, **fields: Any) -> Event:
    values: dict[str, Any] = {"channel": "email", "direction": "inbound"}
    return touch(tid, occurred_at=when, **(values | fields))


def promised(when: datetime, due: date) -> FollowUpPromised:
    return FollowUpPromised(deal="ACME-1", occurred_at=when, due=due)


def next_step(when: datetime, due: date, owner: str | None = "sam") -> NextStepSet:
    return NextStepSet(
        deal="ACME-1", occurred_at=when, due=due, owner=owner, description="Demo"
    )


def requested(when: datetime, not_before: datetime, by: str = DANA) -> Event:
    return FollowUpRequested(
        deal="ACME-1", occurred_at=when, by=by, not_before=not_before
    )


def no_answer_calls(days: list[int], to: str = DANA) -> list[Event]:
    return [
        out(f"call-{d}", t(d, 10), outcome="no_answer", participants=[to]) for d in days
    ]


# -- follow-up obligations ---------------------------------------------------


def test_a_friday_17_00_inbound_answered_monday_09_30_is_within_one_day_sla() -> None:
    result = gaps(inbound("in", t(6, 17)), out("reply", t(9, 9, 30)), at=t(9, 12))
    (owed,) = result.obligations
    assert owed.trigger == "in"
    assert owed.kind == "buyer_initiated"
    assert owed.discharged_by == "reply"
    assert owed.discharged_at == t(9, 9, 30)
    assert owed.latency_business_hours == 0.5
    assert owed.deadline == t(9, 17)
    assert (owed.breached, owed.open) == (False, False)
    assert result.summary.breaches == 0


def test_a_tuesday_meeting_answered_next_tuesday_is_four_business_days_late() -> None:
    meeting = out("meeting", t(3, 10), channel="meeting")
    result = gaps(meeting, out("recap", t(10, 10), channel="email"), at=t(10, 12))
    (owed,) = result.obligations
    assert (owed.trigger, owed.kind, owed.discharged_by) == (
        "meeting",
        "meeting_held",
        "recap",
    )
    # Tue 7 h + Wed, Thu, Fri, Mon 32 h + Tue 1 h.
    assert owed.latency_business_hours == 40.0
    assert owed.over_sla_business_hours == 32.0  # 4 business days of 8 hours
    assert owed.breached
    assert result.summary.breaches == 1


def test_a_holiday_between_the_meeting_and_the_answer_is_not_counted() -> None:
    rules = parse_rules("[calendar]\nextra_holidays = [2026-03-05]\n")
    meeting = out("meeting", t(3, 10), channel="meeting")
    result = gaps(meeting, out("recap", t(10, 10)), at=t(10, 12), rules=rules)
    (owed,) = result.obligations
    assert owed.latency_business_hours == 32.0  # Thursday 5 March is off
    assert owed.over_sla_business_hours == 24.0
    assert owed.deadline == t(4, 10)


def test_an_unanswered_meeting_attempt_creates_no_obligation() -> None:
    no_show = out("no-show", t(3, 10), channel="meeting", outcome="no_answer")
    internal = out("review", t(3, 11), channel="meeting", direction="internal")
    assert gaps(no_show, internal, at=t(10, 12)).obligations == ()


def test_an_open_obligation_past_the_sla_is_a_breach_but_not_before() -> None:
    question = inbound("question", t(2, 10))
    at_deadline = gaps(question, at=t(3, 10))
    (owed,) = at_deadline.obligations
    assert (owed.open, owed.breached, owed.latency_business_hours) == (
        True,
        False,
        8.0,
    )
    assert at_deadline.summary.breaches == 0
    assert at_deadline.summary.next_breach_at == t(3, 10)

    past = gaps(question, at=t(3, 10, 1))
    assert past.obligations[0].breached
    assert past.summary.breaches == 1
    assert past.summary.next_breach_at is None


def test_an_obligation_still_open_when_the_deal_was_lost_stops_its_clock_there() -> (
    None
):
    farewell = inbound("farewell", t(2, 10))
    closed = lost(occurred_at=t(2, 12))
    later = gaps(farewell, closed, at=t(30, 10))
    (owed,) = later.obligations
    assert (owed.open, owed.breached, owed.latency_business_hours) == (True, False, 2.0)
    assert later.summary.breaches == 0
    # Without the loss the same silence is a breach.
    assert gaps(farewell, at=t(30, 10)).summary.breaches == 1


def test_an_open_obligation_is_not_breached_over_the_weekend_after_deadline() -> None:
    # Friday 09:00 + 8 business hours is Friday 17:00, but no business time
    # passes before Monday 09:00, and a reply then is exactly on time.
    question = inbound("question", t(6, 9))
    saturday = gaps(question, at=t(7, 12))
    assert not saturday.obligations[0].breached
    assert saturday.obligations[0].deadline == t(6, 17)
    monday = gaps(question, out("reply", t(9, 9)), at=t(9, 12))
    assert monday.obligations[0].latency_business_hours == 8.0
    assert not monday.obligations[0].breached


def test_one_outbound_touch_discharges_every_open_obligation_before_it() -> None:
    result = gaps(
        inbound("email-in", t(2, 10)),
        inbound("call-in", t(2, 11), channel="call"),
        out("review", t(2, 12), direction="internal"),
        out("no-one", t(2, 13), participants=[]),
        out("reply", t(2, 15), channel="email"),
        at=t(3, 12),
    )
    assert [(o.trigger, o.discharged_by) for o in result.obligations] == [
        ("email-in", "reply"),
        ("call-in", "reply"),
    ]
    assert [o.latency_business_hours for o in result.obligations] == [5.0, 4.0]


def test_a_touch_at_the_same_instant_as_the_trigger_does_not_discharge_it() -> None:
    result = gaps(inbound("in", t(2, 10)), out("same", t(2, 10)), at=t(2, 12))
    assert result.obligations[0].open


def test_latency_summary_uses_the_median_and_the_nearest_rank_p90() -> None:
    result = gaps(
        inbound("in-1", t(2, 10)),
        out("re-1", t(2, 11)),
        inbound("in-2", t(3, 10)),
        out("re-2", t(3, 12)),
        inbound("in-3", t(4, 10)),
        out("re-3", t(4, 13)),
        inbound("in-4", t(5, 10)),
        out("re-4", t(6, 12)),
        inbound("in-5", t(9, 10)),
        at=t(9, 11),
    )
    summary = result.summary
    assert [o.latency_business_hours for o in result.obligations] == [
        1.0,
        2.0,
        3.0,
        10.0,
        1.0,
    ]
    assert (summary.obligations, summary.open_obligations, summary.breaches) == (
        5,
        1,
        1,
    )
    assert summary.median_latency_business_hours == 2.5  # open ones excluded
    assert summary.p90_latency_business_hours == 10.0  # rank ceil(0.9 * 4) = 4
    assert summary.next_breach_at == t(10, 10)


# -- promise ledger ----------------------------------------------------------


def test_a_promise_discharged_by_its_due_date_is_kept() -> None:
    result = gaps(
        promised(t(2, 11), date(2026, 3, 4)), out("email", t(4, 16)), at=t(5, 9)
    )
    (promise,) = result.promises
    assert (promise.ref, promise.kind, promise.status) == ("#2", "follow_up", "kept")
    assert promise.discharged_by == "email"
    assert promise.business_days_late is None


def test_a_next_step_done_by_a_meeting_the_buyer_booked_is_kept() -> None:
    demo = inbound("demo", t(4, 10), channel="demo")
    (step,) = gaps(next_step(t(2, 11), date(2026, 3, 4)), demo, at=t(5, 9)).promises
    assert (step.kind, step.status, step.discharged_by) == ("next_step", "kept", "demo")
    # A follow-up promise is still only kept by reaching out to the buyer.
    (follow,) = gaps(promised(t(2, 11), date(2026, 3, 4)), demo, at=t(5, 9)).promises
    assert follow.status == "missed"


def test_a_promise_discharged_after_its_due_date_is_late_by_business_days() -> None:
    result = gaps(
        promised(t(2, 11), date(2026, 3, 4)), out("email", t(6, 9)), at=t(9, 9)
    )
    (promise,) = result.promises
    assert (promise.status, promise.discharged_by) == ("late", "email")
    assert promise.business_days_late == 2  # Thursday and Friday


def test_a_promise_never_discharged_is_pending_until_due_then_missed() -> None:
    made = promised(t(2, 11), date(2026, 3, 4))
    touch_before = out("before", t(2, 10))  # before the promise: does not count
    pending = gaps(touch_before, made, at=t(4, 20))
    assert pending.promises[0].status == "pending"
    missed = gaps(touch_before, made, at=t(9, 10))
    assert missed.promises[0].status == "missed"
    assert missed.promises[0].business_days_late == 3  # Thu, Fri, Mon
    assert missed.summary.promises.missed == 1


def test_a_promise_replaced_before_it_was_due_is_renegotiated() -> None:
    result = gaps(
        promised(t(2, 11), date(2026, 3, 4)),
        promised(t(3, 11), date(2026, 3, 6)),
        out("email", t(5, 10)),
        at=t(9, 9),
    )
    first, second = result.promises
    assert (first.status, first.superseded_by, first.discharged_by) == (
        "renegotiated",
        "#3",
        None,
    )
    assert (second.ref, second.status, second.discharged_by) == ("#3", "kept", "email")
    counts = result.summary.promises
    assert (counts.renegotiated, counts.kept) == (1, 1)


def test_a_promise_replaced_only_after_its_due_date_stays_late() -> None:
    result = gaps(
        promised(t(2, 11), date(2026, 3, 3)),
        promised(t(5, 11), date(2026, 3, 6)),
        out("email", t(6, 10)),
        at=t(9, 9),
    )
    first, second = result.promises
    assert (first.status, first.business_days_late) == ("late", 3)
    assert second.status == "kept"


def test_a_next_step_with_a_due_date_is_a_promise_of_its_own_kind() -> None:
    result = gaps(
        next_step(t(2, 12), date(2026, 3, 3)),
        promised(t(3, 9), date(2026, 3, 9)),  # another kind: no renegotiation
        out("email", t(4, 10)),
        at=t(4, 12),
    )
    step, follow_up = result.promises
    assert (step.kind, step.status, step.business_days_late) == ("next_step", "late", 1)
    assert (follow_up.kind, follow_up.status) == ("follow_up", "kept")


# -- buyer-requested timing --------------------------------------------------


def test_a_touch_before_the_requested_time_is_early_and_the_next_one_on_time() -> None:
    result = gaps(
        requested(t(2, 11), t(9, 9)),
        out("pushy", t(4, 10)),
        out("right", t(9, 15), channel="email"),
        out("later", t(10, 10)),
        at=t(10, 12),
    )
    (timing,) = result.requested_timing
    assert (timing.ref, timing.contact, timing.scope) == ("#2", DANA, "contact")
    assert timing.early == ("pushy",)
    assert (timing.answered_by, timing.latency_business_hours) == ("right", 6.0)
    assert timing.status == "on_time"
    assert timing.deadline == t(9, 17)


def test_a_first_touch_beyond_the_threshold_after_the_requested_time_is_late() -> None:
    result = gaps(requested(t(2, 11), t(9, 9)), out("slow", t(10, 11)), at=t(10, 12))
    (timing,) = result.requested_timing
    assert (timing.status, timing.answered_by) == ("late", "slow")
    assert timing.latency_business_hours == 10.0
    assert timing.early == ()


def test_a_request_with_no_touch_yet_is_pending_then_late_once_ignored() -> None:
    request = requested(t(2, 11), t(9, 9))
    assert gaps(request, at=t(9, 17)).requested_timing[0].status == "pending"
    ignored = gaps(request, at=t(10, 9, 1)).requested_timing[0]
    assert (ignored.status, ignored.answered_by) == ("late", None)


def test_touches_to_the_deal_are_judged_when_none_reaches_the_requester() -> None:
    result = gaps(
        requested(t(2, 11), t(9, 9)),
        out("to-lee", t(3, 10), participants=[LEE]),
        out("to-lee-again", t(9, 10), participants=[LEE]),
        at=t(9, 12),
    )
    (timing,) = result.requested_timing
    assert timing.scope == "deal"
    assert (timing.early, timing.answered_by, timing.status) == (
        ("to-lee",),
        "to-lee-again",
        "on_time",
    )


def test_answering_the_buyer_who_wrote_during_the_pause_is_not_early() -> None:
    result = gaps(
        requested(t(2, 11), t(9, 9)),
        inbound("question", t(4, 10)),
        out("answer", t(4, 11), channel="email"),
        at=t(5, 12),
    )
    (timing,) = result.requested_timing
    assert (timing.early, timing.status) == ((), "pending")


def test_a_new_request_by_the_same_contact_supersedes_the_first() -> None:
    result = gaps(
        requested(t(2, 11), t(4, 9)),
        requested(t(3, 11), t(9, 9)),
        out("call", t(9, 10)),
        at=t(9, 12),
    )
    first, second = result.requested_timing
    assert (first.status, first.answered_by) == ("superseded", None)
    assert (second.status, second.answered_by) == ("on_time", "call")


# -- unanswered streaks ------------------------------------------------------


def test_six_unanswered_calls_in_a_row_are_pushy() -> None:
    result = gaps(*no_answer_calls([2, 3, 4, 5, 6, 9]), at=t(9, 12))
    deal, dana = result.streaks
    assert (deal.contact, dana.contact) == (None, DANA)
    assert dana.longest.length == 6
    assert dana.longest.pushy
    assert dana.current == dana.longest
    assert dana.longest.touches[0] == "call-2"
    assert (result.summary.max_unanswered_streak, result.summary.pushy) == (6, True)


def test_five_unanswered_calls_in_a_row_are_not_pushy() -> None:
    result = gaps(*no_answer_calls([2, 3, 4, 5, 6]), at=t(9, 12))
    assert result.streaks[1].longest.length == 5
    assert not result.streaks[1].longest.pushy
    assert (result.summary.max_unanswered_streak, result.summary.pushy) == (5, False)


def test_an_inbound_touch_or_a_connected_call_ends_a_streak() -> None:
    result = gaps(
        *no_answer_calls([2, 3]),
        inbound("reply", t(3, 15)),
        *no_answer_calls([4, 5, 6]),
        out("connected", t(9, 10), outcome="connected"),
        out("after", t(9, 15), channel="email"),
        at=t(10, 12),
    )
    dana = result.streaks[1]
    assert [(s.length, s.ended_by) for s in dana.streaks] == [
        (2, "reply"),
        (3, "connected"),
    ]
    assert dana.longest.touches == ("call-4", "call-5", "call-6")
    assert dana.current is not None
    assert (dana.current.touches, dana.current.running) == (("after",), True)


def test_the_deal_streak_counts_attempts_to_any_contact() -> None:
    result = gaps(
        *no_answer_calls([2, 4]),
        *no_answer_calls([3, 5], to=LEE),
        at=t(6, 12),
    )
    deal, dana, lee = result.streaks
    assert deal.longest.touches == ("call-2", "call-3", "call-4", "call-5")
    assert (dana.longest.length, lee.longest.length) == (2, 2)
    assert lee.contact == LEE


def test_variety_counts_changes_of_channel_or_time_of_day() -> None:
    result = gaps(
        out("mon", t(2, 10), outcome="no_answer"),
        out("tue", t(3, 10, 30), outcome="voicemail"),  # same channel, morning
        out("wed", t(4, 10), channel="email"),  # channel changes
        out("thu", t(5, 14), channel="email"),  # afternoon
        out("fri", t(6, 14, 30), channel="email"),  # same again
        out("mon2", t(9, 17, 30), channel="email"),  # evening
        at=t(10, 12),
    )
    assert result.streaks[1].longest.variety == 0.6  # 3 changes in 5


# -- gave up early -----------------------------------------------------------


def test_a_lost_deal_silent_after_two_unanswered_attempts_gave_up_early() -> None:
    result = gaps(
        inbound("hello", t(2, 10)),
        *no_answer_calls([3, 4]),
        lost(occurred_at=t(20, 10)),
        at=t(23, 10),
    )
    assert result.gave_up_early is not None
    assert result.gave_up_early.attempts == 2
    assert result.gave_up_early.touches == ("call-3", "call-4")
    assert (result.gave_up_early.lost_ref, result.gave_up_early.lost_at) == (
        "#5",
        t(20, 10),
    )
    assert result.summary.gave_up_early


def test_a_lost_deal_chased_three_times_did_not_give_up_early() -> None:
    result = gaps(
        inbound("hello", t(2, 10)),
        *no_answer_calls([3, 4, 5]),
        lost(occurred_at=t(20, 10)),
        at=t(23, 10),
    )
    assert result.gave_up_early is None
    assert not result.summary.gave_up_early


def test_an_open_deal_has_not_given_up_early() -> None:
    result = gaps(inbound("hello", t(2, 10)), *no_answer_calls([3, 4]), at=t(23, 10))
    assert result.gave_up_early is None


# -- dark periods ------------------------------------------------------------


def test_ten_business_days_without_a_touch_is_a_dark_period() -> None:
    result = gaps(out("a", t(2, 10)), out("b", t(16, 10)), at=t(17, 10))
    (dark,) = result.dark_periods
    assert (dark.start, dark.start_ref, dark.end, dark.end_ref) == (
        t(2, 10),
        "a",
        t(16, 10),
        "b",
    )
    assert (dark.business_days, dark.ongoing) == (10.0, False)
    assert result.summary.dark_periods == 1
    # The current silence started Monday 16 10:00; 10 business days later.
    assert result.dark_from == t(30, 10)


def test_nine_business_days_without_a_touch_is_not_dark() -> None:
    assert gaps(out("a", t(2, 10)), out("b", t(13, 10)), at=t(16, 9)).dark_periods == ()


def test_a_silence_still_running_at_evaluation_is_an_ongoing_dark_period() -> None:
    result = gaps(out("a", t(2, 10)), at=t(16, 12))
    (dark,) = result.dark_periods
    assert (dark.end, dark.end_ref, dark.ongoing) == (t(16, 12), None, True)
    assert dark.business_days == 10.25
    assert result.dark_from == t(16, 10)


def test_a_pause_the_buyer_asked_for_is_not_dark() -> None:
    pause = requested(t(2, 11), t(16, 10))
    result = gaps(out("a", t(2, 10)), pause, out("b", t(20, 10)), at=t(20, 12))
    # Outside the pause: Monday 2 10:00-11:00 and 16 to 20 March, 33 hours.
    assert result.dark_periods == ()
    silent = gaps(out("a", t(2, 10)), pause, at=t(16, 12))
    # 1 hour before the pause, then 79 more from Monday 16 10:00.
    assert silent.dark_from == t(27, 17)


def test_time_while_the_deal_was_closed_is_not_dark() -> None:
    reopened = DealReopened(deal="ACME-1", occurred_at=t(20, 10))
    result = gaps(
        out("a", t(2, 10)),
        lost(occurred_at=t(3, 10)),
        reopened,
        out("b", t(23, 10)),
        at=t(24, 10),
    )
    assert result.dark_periods == ()
    assert result.status == "open"
    closed = gaps(out("a", t(2, 10)), lost(occurred_at=t(3, 10)), at=t(24, 10))
    assert (closed.status, closed.dark_from) == ("lost", None)


# -- next-step clarity -------------------------------------------------------


def test_next_step_clarity_is_the_share_of_open_time_with_an_owned_step() -> None:
    result = gaps(
        next_step(t(2, 13), date(2026, 3, 4)),  # clear Mon 13:00 to end of Wed: 20 h
        next_step(t(5, 13), date(2026, 3, 10)),  # clear Thu 13:00 ...
        NextStepCleared(deal="ACME-1", occurred_at=t(6, 9)),  # ... to Fri 09:00: 4 h
        next_step(t(6, 11), date(2026, 3, 20), owner=None),  # no owner: not clear
        at=t(6, 17),
    )
    clarity = result.next_step_clarity
    assert (clarity.open_business_hours, clarity.clear_business_hours) == (40.0, 24.0)
    assert clarity.share == 0.6
    assert [(s.ref, s.start, s.end) for s in clarity.spans] == [
        ("#2", t(2, 13), t(5, 0)),
        ("#3", t(5, 13), t(6, 9)),
    ]
    assert result.summary.next_step_clarity == 0.6


# -- the timeline's own rules ------------------------------------------------


def test_a_call_logged_three_days_late_gives_the_same_gaps_as_on_time() -> None:
    question = inbound("question", t(2, 10))
    call = out("call", t(3, 10))
    email = out("email", t(4, 10), channel="email")
    late = call.model_copy(update={"logged_at": t(6, 10)})
    on_time = follow_up_gaps(
        prepare(history(opened(), question, call, email)), RULES, t(9, 12)
    )
    logged_late = follow_up_gaps(
        prepare(history(opened(), question, email, late)), RULES, t(9, 12)
    )
    assert on_time.obligations[0].discharged_by == "call"
    assert logged_late.model_dump_json() == on_time.model_dump_json()


def test_a_retracted_inbound_creates_no_obligation() -> None:
    retraction = TouchpointRetracted(
        deal="ACME-1", occurred_at=t(2, 12), touchpoint="question", reason="wrong deal"
    )
    result = gaps(inbound("question", t(2, 10)), retraction, at=t(9, 12))
    assert result.obligations == ()
    assert result.summary.breaches == 0


def test_a_corrected_direction_changes_the_obligation() -> None:
    logged = out("call", t(2, 10))
    assert gaps(logged, at=t(9, 12)).obligations == ()
    fix = TouchpointCorrected(
        deal="ACME-1", occurred_at=t(2, 12), touchpoint="call", direction="inbound"
    )
    (owed,) = gaps(logged, fix, at=t(9, 12)).obligations
    assert (owed.trigger, owed.kind, owed.open, owed.breached) == (
        "call",
        "buyer_initiated",
        True,
        True,
    )


def test_only_what_had_happened_by_the_evaluation_time_counts() -> None:
    result = gaps(inbound("question", t(2, 10)), out("reply", t(5, 10)), at=t(3, 12))
    (owed,) = result.obligations
    assert (owed.open, owed.latency_business_hours) == (True, 10.0)
    assert result.meta.evaluated_at == t(3, 12)


def test_a_deal_not_yet_opened_at_the_evaluation_time_is_refused() -> None:
    with pytest.raises(ValueError, match="not been opened"):
        gaps(at=t(1, 12))


def test_the_same_inputs_give_byte_identical_json() -> None:
    events = [
        inbound("question", t(2, 10)),
        promised(t(2, 11), date(2026, 3, 4)),
        requested(t(2, 12), t(9, 9)),
        *no_answer_calls([3, 4]),
        next_step(t(4, 12), date(2026, 3, 6)),
    ]
    first = gaps(*events, at=t(16, 12)).model_dump_json()
    assert gaps(*events, at=t(16, 12)).model_dump_json() == first
    assert '"evaluated_at":"2026-03-16T12:00:00+01:00"' in first

"""Findings: every warning sign of a deal, with when it first became visible.

A pure function of a prepared timeline, the rules, an evaluation time ``at``
and, for account neglect, the account's other deals. It reads the other
projections (``deal_state``, ``follow_up_gaps``, ``stakeholder_involvement``)
and turns what they found into findings a coach can read aloud: a rule id, a
severity, the occurred-clock time at which the finding first became visible,
the events that support it (touchpoint ids or ``#N``), and one sentence.

Only what occurred by ``at`` counts, and a finding is listed only if it had
become visible by ``at``. ``key`` (rule + primary evidence) stays the same
while a finding evolves (an unanswered email that is then answered late is
one finding), so replays can diff the findings of two steps.

Rules, in ``RULE_IDS`` order, with their severity and their ``visible_at``.
``RULE_IDS`` is also the verdict's priority (see ``audit``): root causes come
before the behaviour they explain, and behaviour before pipeline symptoms.

- ``logging_lag``: a touch whose ``logged_at`` is more than
  ``hygiene.logging_lag_business_days`` after it happened. High when the
  touch called for a follow-up that was breached and was logged only after
  that follow-up was due (the late log hid the breach); else low. Visible
  when it was logged. Touches without ``logged_at`` are never judged.
- ``account_neglect``: the account has a won deal (another one in
  ``AccountContext``, or this one) and no touch on any of its deals for
  ``accounts.neglect_calendar_days`` calendar days (local dates in this deal's
  zone). The silence is counted from the last touch or win; only silences
  still running when this deal opened, or later, are this deal's concern.
  High; visible when the days ran out, but not before this deal opened.
- ``rubber_stamp``: the deal reached a late stage before anyone in a decision
  role was engaged (``stakeholders``). High; visible on entering that stage.
- ``champion_gone_dark``: from ``stakeholders``. High for an unanswered
  streak (the rep kept trying), medium for silence; visible at ``since``.
- ``gave_up_early``: from the follow-up gaps. High; visible at the loss.
- ``pushy_streak``: an unanswered streak of ``streaks.pushy_min_unanswered``
  or more to one contact; a deal-wide streak only if it shares no touch with
  a contact's pushy streak. High when its variety is below
  ``streaks.varied_share``, else medium; visible at the attempt that reached
  the threshold.
- ``requested_timing_early``: outbound touches before the time the buyer
  asked to be contacted from. A touch that answered a follow-up owed (it
  discharged an obligation, e.g. the reply to the very message carrying the
  request) is an answer, not chasing, and does not count. High; visible at
  the first early touch.
- ``requested_timing_ignored``: the buyer's requested time passed by more
  than the late threshold without a touch. Medium; visible at the deadline.
- ``slow_follow_up``: a breached follow-up owed. High when the latency
  reaches ``follow_up.severe_latency_business_hours``, else medium; visible
  at the deadline (when the SLA was used up).
- ``promise_missed`` (high) and ``promise_late`` (medium): a promised
  follow-up or next step not discharged by its due date. Both are visible at
  the end of the due date (local midnight): a promise kept late was a missed
  one from then until it was kept.
- ``low_next_step_clarity``: the share of open business time with a clear
  next step is below ``next_step.low_clarity_share``, judged once the deal
  has been open ``next_step.min_open_business_days``. Medium. Visible from
  the instant the running share (clear time so far / open time so far) went
  below the threshold and stayed below it up to ``at``.
- ``dark_period``: from the follow-up gaps. High from
  ``dark_period.high_business_days``, else medium; visible when the silence
  reached ``dark_period.business_days`` (buyer-requested pauses excluded).
- ``single_threaded``: a single-threaded span (``stakeholders``) lasting
  ``single_threaded.business_days`` or more. Medium; visible at the touch
  that made it that long.
- ``stage_stall``: a stay in one stage longer than
  ``stages.stall_business_days``. Medium; visible when that time was used up.
- ``close_date_slips``: each move of the expected close to a later date.
  Low; visible when it moved.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Literal

from pydantic import BaseModel, ConfigDict

from engine.business_time import BusinessCalendar
from engine.events import (
    DealOpened,
    NextStepCleared,
    NextStepSet,
)
from engine.projections.deal_state import (
    DealState,
    Lifecycle,
    Person,
    deal_state,
    lifecycle,
    roster,
    start,
)
from engine.projections.gaps import (
    FollowUpGaps,
    Streak,
    buyer_pauses,
    follow_up_gaps,
    quiet_until,
)
from engine.projections.prepare import DealTimeline, Touch
from engine.projections.stakeholders import (
    StakeholderInvolvement,
    stakeholder_involvement,
)
from engine.rules import RuleSet

__all__ = [
    "LESSONS",
    "RULE_IDS",
    "SEVERITY_ORDER",
    "AccountContext",
    "Finding",
    "Severity",
    "date_text",
    "findings",
]

Severity = Literal["high", "medium", "low"]
SEVERITY_ORDER: dict[str, int] = {"high": 0, "medium": 1, "low": 2}

#: Every rule id, in priority order (see the module docstring).
RULE_IDS: tuple[str, ...] = (
    "logging_lag",
    "account_neglect",
    "rubber_stamp",
    "champion_gone_dark",
    "gave_up_early",
    "pushy_streak",
    "requested_timing_early",
    "requested_timing_ignored",
    "slow_follow_up",
    "promise_missed",
    "promise_late",
    "low_next_step_clarity",
    "dark_period",
    "single_threaded",
    "stage_stall",
    "close_date_slips",
)

STRIKE = "Strike while the iron is hot"
JUST_RIGHT = "Follow up just right"
NETWORK = "Work the whole network, not only the signer"
CUSTOMERS = "Do not neglect current customers"
RUBBER_STAMP = "There is no rubber stamp"
# Not one of DOMAIN.md's five lessons but its "two clocks" section, which the
# late-logged example story teaches.
CLOCKS = "The two clocks matter"

#: The lesson (DOMAIN.md) each rule illustrates. Stalls and slips are read
#: as lost momentum, hence "strike while the iron is hot".
LESSONS: dict[str, str] = {
    "logging_lag": CLOCKS,
    "account_neglect": CUSTOMERS,
    "rubber_stamp": RUBBER_STAMP,
    "champion_gone_dark": RUBBER_STAMP,
    "gave_up_early": JUST_RIGHT,
    "pushy_streak": JUST_RIGHT,
    "requested_timing_early": JUST_RIGHT,
    "requested_timing_ignored": JUST_RIGHT,
    "slow_follow_up": STRIKE,
    "promise_missed": STRIKE,
    "promise_late": STRIKE,
    "low_next_step_clarity": STRIKE,
    "dark_period": JUST_RIGHT,
    "single_threaded": NETWORK,
    "stage_stall": STRIKE,
    "close_date_slips": STRIKE,
}

_HOUR = timedelta(hours=1)
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
# How a touch is named in a sentence, by channel.
_NOUNS = {
    "email": "email",
    "call": "call",
    "meeting": "meeting",
    "demo": "demo",
    "message": "message",
    "proposal": "proposal",
    "social": "social message",
    "event": "event",
    "other": "message",
}


class Finding(BaseModel):
    """One warning sign (see the module docstring for each rule)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    key: str
    severity: Severity
    visible_at: datetime
    evidence: list[str]
    sentence: str


@dataclass(frozen=True)
class AccountContext:
    """The account's other deals, for account neglect."""

    won: tuple[tuple[str, datetime], ...]
    """(deal key, won_at) of the account's won deals."""
    touch_times: tuple[datetime, ...]
    """Occurred times of every touch on the account's other deals, sorted."""


# -- sentence helpers ----------------------------------------------------------


def _half_up(value: float) -> int:
    return math.floor(value + 0.5)


def _plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {many or word + 's'}"


def date_text(day: date) -> str:
    """'Tue 3 Mar': how sentences name a day (fixed English, any locale)."""
    return f"{_WEEKDAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def _role_text(role: str) -> str:
    return role.replace("_", " ")


def _noun(touch: Touch) -> str:
    noun = _NOUNS.get(touch.channel, "touch")
    return f"buyer's {noun}" if touch.inbound else noun


@dataclass(frozen=True, slots=True)
class _Ctx:
    """Everything the rules read, computed once per call."""

    timeline: DealTimeline  # cut at ``at``
    rules: RuleSet
    at: datetime
    cal: BusinessCalendar
    life: Lifecycle
    people: dict[str, Person]
    state: DealState
    gaps: FollowUpGaps
    involvement: StakeholderInvolvement
    touches: dict[str, Touch]
    order: dict[str, tuple[datetime, int]]
    opened_ref: str

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.cal.zone)

    def day(self, moment: datetime) -> str:
        """'Tue 3 Mar': the local date of ``moment`` in the deal's zone."""
        return date_text(self.local(moment).date())

    def span(self, a: datetime, b: datetime) -> timedelta:
        return self.cal.business_time_between(a, b)

    def duration(self, hours: float) -> str:
        """Business time as a coach says it: whole days, or hours under a day."""
        per_day = self.cal.hours_per_day
        if hours < per_day:
            return _plural(max(_half_up(hours), 1), "business hour")
        return _plural(_half_up(hours / per_day), "business day")

    def days(self, a: datetime, b: datetime) -> int:
        """Business days from ``a`` to ``b`` as a coach counts them on a
        calendar: those after ``a``'s date up to ``b``'s (Tue 3 Mar to Tue
        10 Mar is 5). Sentences that name both days use this count, so the
        reader can check it; thresholds use exact business time."""
        one = timedelta(days=1)
        return self.cal.business_day_count(
            self.local(a).date() + one, self.local(b).date() + one
        )

    def later(self, a: datetime, b: datetime) -> str:
        """'5 business days later' (see ``days``), or hours within a day."""
        days = self.days(a, b)
        if days > 0:
            return _plural(days, "business day") + " later"
        hours = _half_up(self.span(a, b) / _HOUR)
        return _plural(hours, "business hour") + " later" if hours else "soon after"

    def who(self, contact: str) -> str:
        person = self.people.get(contact)
        return person.name if person is not None and person.name else contact

    def evidence(self, refs: Iterable[str | None]) -> list[str]:
        """Distinct refs in timeline order (unknown ones last, by name)."""
        found = {r for r in refs if r}
        known = sorted((self.order[r], r) for r in found if r in self.order)
        return [r for _, r in known] + sorted(found - set(self.order))

    def finding(
        self,
        rule: str,
        key: str,
        severity: Severity,
        visible_at: datetime,
        evidence: Iterable[str | None],
        sentence: str,
    ) -> Finding:
        return Finding(
            rule=rule,
            key=f"{rule}:{key}" if key else rule,
            severity=severity,
            visible_at=self.local(visible_at),
            evidence=self.evidence(evidence),
            sentence=sentence,
        )


def _context(timeline: DealTimeline, rules: RuleSet, at: datetime) -> _Ctx:
    cut = start(timeline, at)
    order: dict[str, tuple[datetime, int]] = {}
    for entry in cut.entries:
        order[entry.ref] = (entry.event.occurred_at, entry.version)
    for touch in cut.touches:
        order[touch.id] = (touch.at, touch.version)
    opened_ref = next(
        (e.ref for e in cut.entries if isinstance(e.event, DealOpened)), "#1"
    )
    return _Ctx(
        timeline=cut,
        rules=rules,
        at=at,
        cal=rules.calendar_for(cut.timezone),
        life=lifecycle(cut),
        people=roster(cut),
        state=deal_state(timeline, rules, at),
        gaps=follow_up_gaps(timeline, rules, at),
        involvement=stakeholder_involvement(timeline, rules, at),
        touches={t.id: t for t in cut.touches},
        order=order,
        opened_ref=opened_ref,
    )


# -- the findings ----------------------------------------------------------------


def findings(
    timeline: DealTimeline,
    rules: RuleSet,
    at: datetime,
    account: AccountContext | None = None,
) -> list[Finding]:
    """Every finding visible at ``at``, sorted by (visible_at, rule, key).

    Pure: no clock, no store. Raises ValueError for a naive ``at`` or one
    before the deal opened.
    """
    ctx = _context(timeline, rules, at)
    found = [
        *_logging_lag(ctx),
        *_account_neglect(ctx, account),
        *_rubber_stamp(ctx),
        *_champions(ctx),
        *_gave_up_early(ctx),
        *_pushy(ctx),
        *_requested_timing(ctx),
        *_slow_follow_ups(ctx),
        *_promises(ctx),
        *_low_clarity(ctx),
        *_dark_periods(ctx),
        *_single_threaded(ctx),
        *_stage_stalls(ctx),
        *_close_date_slips(ctx),
    ]
    return sorted(
        (f for f in found if f.visible_at <= at),
        key=lambda f: (f.visible_at, f.rule, f.key),
    )


def _logging_lag(ctx: _Ctx) -> list[Finding]:
    limit = timedelta(
        hours=ctx.rules.hygiene.logging_lag_business_days * ctx.cal.hours_per_day
    )
    deadlines = {o.trigger: o.deadline for o in ctx.gaps.obligations if o.breached}
    found: list[Finding] = []
    for touch in ctx.timeline.touches:
        logged = touch.logged_at
        if logged is None:
            continue
        lag = ctx.span(touch.at, logged)
        if lag <= limit:
            continue
        due = deadlines.get(touch.id)
        hid_breach = due is not None and logged > due
        sentence = (
            f"The {_noun(touch)} of {ctx.day(touch.at)} was logged "
            f"{ctx.later(touch.at, logged)}, on {ctx.day(logged)}"
        )
        sentence += (
            ", after the follow-up it called for was already overdue."
            if hid_breach
            else "."
        )
        found.append(
            ctx.finding(
                "logging_lag",
                touch.id,
                "high" if hid_breach else "low",
                logged,
                [touch.id],
                sentence,
            )
        )
    return found


def _account_neglect(ctx: _Ctx, account: AccountContext | None) -> list[Finding]:
    at = ctx.at
    wins = [(won_at, key) for key, won_at in (account.won if account else ())]
    if ctx.life.status == "won" and ctx.life.closed_at is not None:
        wins.append((ctx.life.closed_at, ctx.timeline.deal))
    wins = sorted(w for w in wins if w[0] <= at)
    if not wins:
        return []
    first_win, first_key = wins[0]
    own = {t.at: t.id for t in ctx.timeline.touches}
    others = account.touch_times if account else ()
    # A win is a moment with the customer too: silence counts from it.
    anchors = sorted(
        {m for m in (*others, *own, *(w for w, _ in wins)) if first_win <= m <= at}
    )
    opened = ctx.timeline.opened.occurred_at
    days_needed = ctx.rules.accounts.neglect_calendar_days
    name = ctx.timeline.opened.account
    found: list[Finding] = []
    ends: list[datetime | None] = [*anchors[1:], None]
    for silent_from, until in zip(anchors, ends, strict=True):
        first_day = ctx.local(silent_from).date()
        neglected = datetime.combine(
            first_day + timedelta(days=days_needed), time(0), tzinfo=ctx.cal.zone
        )
        end = at if until is None else until
        if until is not None and (neglected >= until or until <= opened):
            continue
        if until is None and neglected > at:
            continue
        days = (ctx.local(end).date() - first_day).days
        since = f"{name}, a customer since {first_key} was won on {ctx.day(first_win)}"
        if until is None:
            sentence = (
                f"{since}, has had no touch for {_plural(days, 'day')}, "
                f"since {ctx.day(silent_from)}."
            )
        else:
            sentence = (
                f"{since}, had no touch for {_plural(days, 'day')}, "
                f"from {ctx.day(silent_from)} to {ctx.day(until)}."
            )
        found.append(
            ctx.finding(
                "account_neglect",
                silent_from.astimezone(ctx.cal.zone).isoformat(),
                "high",
                max(neglected, opened),
                [ctx.opened_ref, own.get(silent_from), own.get(end)],
                sentence,
            )
        )
    return found


def _rubber_stamp(ctx: _Ctx) -> list[Finding]:
    risk = ctx.involvement.rubber_stamp_risk
    if risk is None:
        return []
    stage = _role_text(risk.late_stage)
    first = ctx.involvement.decision_maker_first_engaged
    if risk.reason == "engaged_after_late_stage" and first is not None:
        sentence = (
            f"The deal reached {stage} on {ctx.day(risk.since)} before anyone in "
            f"a decision role was engaged; {ctx.who(first.contact)} "
            f"({_role_text(first.role)}) was first engaged on "
            f"{ctx.day(first.at)}, {ctx.later(risk.since, first.at)}."
        )
    else:
        sentence = (
            f"The deal reached {stage} on {ctx.day(risk.since)} without anyone "
            "in a decision role engaged, and nobody in that role has been "
            "engaged since."
        )
    return [
        ctx.finding(
            "rubber_stamp",
            risk.evidence[0],
            "high",
            risk.since,
            risk.evidence,
            sentence,
        )
    ]


def _champions(ctx: _Ctx) -> list[Finding]:
    found: list[Finding] = []
    for dark in ctx.involvement.champions_gone_dark:
        who = f"{ctx.who(dark.contact)}, the champion,"
        last = dark.last_answered_at
        severity: Severity
        if dark.reason == "unanswered_streak":
            severity = "high"
            sentence = (
                f"{who} stopped answering: {dark.unanswered_streak} attempts in "
                "a row got no reply"
            )
            sentence += f" after the last answer on {ctx.day(last)}." if last else "."
        else:
            severity = "medium"
            silence = ctx.rules.champion.silence_business_days * ctx.cal.hours_per_day
            sentence = f"{who} went {ctx.duration(silence)} without answering"
            sentence += f" after {ctx.day(last)}." if last else "."
        found.append(
            ctx.finding(
                "champion_gone_dark",
                dark.contact,
                severity,
                dark.since,
                dark.evidence,
                sentence,
            )
        )
    return found


def _gave_up_early(ctx: _Ctx) -> list[Finding]:
    gave_up = ctx.gaps.gave_up_early
    if gave_up is None:
        return []
    quiet = ctx.later(gave_up.last_attempt_at, gave_up.lost_at)
    sentence = (
        f"The rep stopped after {_plural(gave_up.attempts, 'unanswered attempt')}, "
        f"the last on {ctx.day(gave_up.last_attempt_at)}, and the deal was lost "
        f"on {ctx.day(gave_up.lost_at)}, {quiet}."
    )
    return [
        ctx.finding(
            "gave_up_early",
            gave_up.lost_ref,
            "high",
            gave_up.lost_at,
            [*gave_up.touches, gave_up.lost_ref],
            sentence,
        )
    ]


def _pushy(ctx: _Ctx) -> list[Finding]:
    need = ctx.rules.streaks.pushy_min_unanswered
    per_contact: list[Streak] = []
    deal_wide: list[Streak] = []
    for group in ctx.gaps.streaks:
        candidates = [*group.streaks, group.longest]
        if group.current is not None:
            candidates.append(group.current)
        unique = {s.touches: s for s in candidates if s.pushy}
        (deal_wide if group.contact is None else per_contact).extend(unique.values())
    covered = {t for s in per_contact for t in s.touches}
    chosen = per_contact + [s for s in deal_wide if not covered.intersection(s.touches)]
    return [_pushy_finding(ctx, streak, need) for streak in chosen]


def _bucket(ctx: _Ctx, touch: Touch) -> int:
    local = ctx.local(touch.at).time()
    return bisect_right(ctx.rules.streaks.time_of_day_boundaries, local)


def _pushy_finding(ctx: _Ctx, streak: Streak, need: int) -> Finding:
    attempts = [ctx.touches[t] for t in streak.touches]
    n = len(attempts)
    changes = sum(
        a.channel != b.channel or _bucket(ctx, a) != _bucket(ctx, b)
        for a, b in pairwise(attempts)
    )
    # Exact, not the 2-decimal variety the gaps report: rounding must not
    # decide a severity.
    varied = n > 1 and changes >= ctx.rules.streaks.varied_share * (n - 1)
    counts = Counter(a.channel for a in attempts)
    by_channel = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(by_channel) == 1:
        channels = f"all by {by_channel[0][0]}"
    else:
        parts = [f"{channel} ({count})" for channel, count in by_channel]
        channels = "by " + ", ".join(parts[:-1]) + " and " + parts[-1]
    if n == 1:
        variety = "a single attempt"
    elif changes == 0:
        variety = "none of the repeat attempts changed channel or time of day"
    elif changes == n - 1:
        variety = "every repeat attempt changed channel or time of day"
    else:
        variety = (
            f"{'' if varied else 'only '}{changes} of the {n - 1} repeat attempts "
            "changed channel or time of day"
        )
    who = (
        "The deal's buyer contacts"
        if streak.contact is None
        else ctx.who(streak.contact)
    )
    sentence = (
        f"{who} got {n} attempts in a row without a reply, from "
        f"{ctx.day(attempts[0].at)} to {ctx.day(attempts[-1].at)}, {channels}; "
        f"{variety}."
    )
    return ctx.finding(
        "pushy_streak",
        f"{streak.contact or 'deal'}:{streak.touches[0]}",
        "medium" if varied else "high",
        attempts[min(need, n) - 1].at,
        streak.touches,
        sentence,
    )


def _requested_timing(ctx: _Ctx) -> list[Finding]:
    replies = {o.discharged_by for o in ctx.gaps.obligations if o.discharged_by}
    late_hours = ctx.rules.requested_timing_late_business_hours
    found: list[Finding] = []
    for request in ctx.gaps.requested_timing:
        who = ctx.who(request.contact)
        early = [ctx.touches[t] for t in request.early if t not in replies]
        if early:
            when = (
                f"on {ctx.day(early[0].at)}"
                if len(early) == 1
                else f"from {ctx.day(early[0].at)} to {ctx.day(early[-1].at)}"
            )
            found.append(
                ctx.finding(
                    "requested_timing_early",
                    request.ref,
                    "high",
                    early[0].at,
                    [request.ref, *(t.id for t in early)],
                    f"{who} asked on {ctx.day(request.requested_at)} to be "
                    f"contacted from {ctx.day(request.not_before)}, but got "
                    f"{_plural(len(early), 'touch', 'touches')} before then, {when}.",
                )
            )
        if request.status == "late":
            asked = (
                f"{who} asked on {ctx.day(request.requested_at)} to be contacted "
                f"from {ctx.day(request.not_before)}"
            )
            if request.answered_at is not None:
                sentence = (
                    f"{asked}, but the next touch came only on "
                    f"{ctx.day(request.answered_at)}, "
                    f"{ctx.later(request.not_before, request.answered_at)}."
                )
            else:
                sentence = (
                    f"{asked}, and was not contacted within "
                    f"{ctx.duration(late_hours)} of it."
                )
            found.append(
                ctx.finding(
                    "requested_timing_ignored",
                    request.ref,
                    "medium",
                    request.deadline,
                    [request.ref, request.answered_by],
                    sentence,
                )
            )
    return found


def _slow_follow_ups(ctx: _Ctx) -> list[Finding]:
    severe = timedelta(hours=ctx.rules.follow_up.severe_latency_business_hours)
    closed_at = ctx.life.closed_at
    found: list[Finding] = []
    for owed in ctx.gaps.obligations:
        if not owed.breached:
            continue
        trigger = ctx.touches[owed.trigger]
        # Exact, as the gaps measure it (their figure is rounded): the
        # discharge, else the close if it came first, else ``at``.
        stopped = closed_at is not None and trigger.at <= closed_at
        end = owed.discharged_at or (closed_at if stopped and closed_at else ctx.at)
        latency = ctx.span(trigger.at, end)
        buyer = owed.kind == "buyer_initiated"
        what = "answer" if buyer else "follow-up"
        subject = f"The {_noun(trigger) if buyer else _NOUNS[trigger.channel]}"
        subject += f" of {ctx.day(trigger.at)}"
        if owed.discharged_at is not None:
            verb = "answered" if buyer else "followed up"
            sentence = (
                f"{subject} was {verb} "
                f"{ctx.later(trigger.at, owed.discharged_at)}, "
                f"on {ctx.day(owed.discharged_at)}."
            )
        elif stopped and closed_at is not None:
            sentence = (
                f"{subject} got no {what} before the deal was "
                f"{ctx.life.status} on {ctx.day(closed_at)}, "
                f"{ctx.later(trigger.at, closed_at)}."
            )
        else:
            waited = ctx.duration(latency / _HOUR)
            sentence = f"{subject} has had no {what} for {waited}."
        found.append(
            ctx.finding(
                "slow_follow_up",
                owed.trigger,
                "high" if latency >= severe else "medium",
                owed.deadline,
                [owed.trigger, owed.discharged_by],
                sentence,
            )
        )
    return found


def _promises(ctx: _Ctx) -> list[Finding]:
    found: list[Finding] = []
    for promise in ctx.gaps.promises:
        if promise.status not in ("missed", "late"):
            continue
        due_end = datetime.combine(
            promise.due + timedelta(days=1), time(0), tzinfo=ctx.cal.zone
        )
        due = date_text(promise.due)
        if promise.kind == "follow_up":
            subject = f"The follow-up promised on {ctx.day(promise.made_at)} for {due}"
        else:
            subject = f"The next step set on {ctx.day(promise.made_at)}, due {due},"
        late = promise.business_days_late or 0
        rule: str
        severity: Severity
        if promise.status == "missed":
            sentence = f"{subject} was missed: no outbound touch followed"
            sentence += (
                f", {_plural(late, 'business day')} past the due date by "
                f"{ctx.day(ctx.at)}."
                if late
                else f" by {ctx.day(ctx.at)}."
            )
            rule, severity = "promise_missed", "high"
        else:
            verb = "kept" if promise.kind == "follow_up" else "done"
            how_late = f"{_plural(late, 'business day')} late" if late else "late"
            done = promise.discharged_at or ctx.at
            sentence = f"{subject} was {verb} {how_late}, on {ctx.day(done)}."
            rule, severity = "promise_late", "medium"
        found.append(
            ctx.finding(
                rule,
                promise.ref,
                severity,
                max(due_end, promise.made_at),
                [promise.ref, promise.discharged_by],
                sentence,
            )
        )
    return found


def _open_spans(ctx: _Ctx) -> list[tuple[datetime, datetime]]:
    spans: list[tuple[datetime, datetime]] = []
    begin: datetime | None = ctx.timeline.opened.occurred_at
    for closed, reopened in ctx.life.closures:
        if begin is not None:
            spans.append((begin, closed))
        begin = reopened
    if begin is not None:
        spans.append((begin, ctx.at))
    return spans


def _low_clarity(ctx: _Ctx) -> list[Finding]:
    """Walks the open time piece by piece (a piece has a clear next step or
    not throughout), tracking when the running share last went below the
    threshold; integer microseconds of business time."""
    threshold = ctx.rules.next_step.low_clarity_share
    if threshold <= 0:
        return []
    us = timedelta(microseconds=1)
    needed = _us(ctx.rules.next_step.min_open_business_days * ctx.cal.hours_per_day)
    clear = [(s.start, s.end) for s in ctx.gaps.next_step_clarity.spans]
    pieces: list[tuple[datetime, datetime, bool]] = []
    for begin, end in _open_spans(ctx):
        cursor = begin
        for c_start, c_end in clear:
            c_start, c_end = max(c_start, begin), min(c_end, end)
            if c_start >= c_end:
                continue
            if c_start > cursor:
                pieces.append((cursor, c_start, False))
            pieces.append((c_start, c_end, True))
            cursor = c_end
        if cursor < end:
            pieces.append((cursor, end, False))

    open_us = clear_us = 0
    low_since: datetime | None = None
    for p_start, p_end, is_clear in pieces:
        length = ctx.span(p_start, p_end) // us
        if length <= 0:
            continue
        reach = max(needed - open_us, 0)
        # [lo, hi): the offsets into this piece where the deal is old enough
        # and the running share is below the threshold.
        lo: float
        hi: float
        if is_clear:
            lo = reach
            if threshold >= 1:
                hi = math.inf if clear_us < open_us else 0
            else:
                hi = (threshold * open_us - clear_us) / (1 - threshold)
        else:
            lo = max(reach, clear_us / threshold - open_us)
            hi = math.inf
        lo = max(lo, 0)
        if lo >= min(hi, length):
            low_since = None
        else:
            if lo > 0 or low_since is None:
                offset = timedelta(microseconds=math.ceil(lo))
                low_since = ctx.cal.add_business_time(p_start, offset)
            if hi < length:
                low_since = None
        open_us += length
        clear_us += length if is_clear else 0
    if low_since is None or open_us == 0:
        return []
    share = clear_us / open_us
    open_text = ctx.duration(open_us / _us(1))
    if clear_us == 0:
        sentence = (
            f"In {open_text} open, the deal never had a next step with an owner "
            "and a due date."
        )
    else:
        sentence = (
            f"A next step with an owner and a due date existed for only "
            f"{math.floor(share * 100)}% of the {open_text} the deal was open, "
            f"below {_half_up(threshold * 100)}%."
        )
    refs = [
        e.ref
        for e in ctx.timeline.entries
        if isinstance(e.event, NextStepSet | NextStepCleared)
    ]
    return [
        ctx.finding(
            "low_next_step_clarity",
            "",
            "medium",
            low_since,
            refs or [ctx.opened_ref],
            sentence,
        )
    ]


def _us(hours: float) -> int:
    return _HOUR * hours // timedelta(microseconds=1)


def _pauses(ctx: _Ctx) -> list[tuple[datetime, datetime]]:
    """Buyer-requested pauses, merged (as the follow-up gaps count them)."""
    return buyer_pauses(ctx.timeline.entries)


def _dark_periods(ctx: _Ctx) -> list[Finding]:
    rules = ctx.rules.dark_period
    needed = timedelta(hours=rules.business_days * ctx.cal.hours_per_day)
    pauses = _pauses(ctx)
    found: list[Finding] = []
    for dark in ctx.gaps.dark_periods:
        paused = any(a < dark.end and dark.start < b for a, b in pauses)
        # The gaps' count leaves pauses out; without one, count calendar days.
        days = (
            ctx.duration(dark.business_days * ctx.cal.hours_per_day)
            if paused
            else _plural(ctx.days(dark.start, dark.end), "business day")
        )
        if dark.ongoing:
            sentence = (
                f"No touch of any kind for {days} since {ctx.day(dark.start)}, "
                "and the deal is still open"
            )
        else:
            sentence = (
                f"No touch of any kind for {days}, from {ctx.day(dark.start)} "
                f"to {ctx.day(dark.end)}, while the deal was open"
            )
        sentence += " (not counting the pause the buyer asked for)." if paused else "."
        found.append(
            ctx.finding(
                "dark_period",
                dark.start_ref,
                "high" if dark.business_days >= rules.high_business_days else "medium",
                quiet_until(ctx.cal, dark.start, needed, pauses),
                [dark.start_ref, dark.end_ref],
                sentence,
            )
        )
    return found


def _single_threaded(ctx: _Ctx) -> list[Finding]:
    needed = timedelta(
        hours=ctx.rules.single_threaded.business_days * ctx.cal.hours_per_day
    )
    found: list[Finding] = []
    for run in ctx.involvement.single_threaded_spans:
        reached = next(
            (
                ctx.touches[t]
                for t in run.touches
                if ctx.span(run.start, ctx.touches[t].at) >= needed
            ),
            None,
        )
        if reached is None:
            continue
        days = _plural(ctx.days(run.start, run.end), "business day")
        sentence = (
            f"{ctx.who(run.contact)} was the only buyer contact engaged for "
            f"{days}, from {ctx.day(run.start)} to {ctx.day(run.end)}, over "
            f"{len(run.touches)} touches."
        )
        found.append(
            ctx.finding(
                "single_threaded",
                run.touches[0],
                "medium",
                reached.at,
                run.touches,
                sentence,
            )
        )
    return found


def _stage_stalls(ctx: _Ctx) -> list[Finding]:
    limit = timedelta(
        hours=ctx.rules.stages.stall_business_days * ctx.cal.hours_per_day
    )
    horizon = ctx.life.horizon(ctx.at)
    visits = ctx.state.stage_visits
    found: list[Finding] = []
    for i, visit in enumerate(visits):
        end = visit.left_at if visit.left_at is not None else horizon
        stay = ctx.span(visit.entered_at, end)
        if stay <= limit:
            continue
        stage = _role_text(visit.stage)
        days = _plural(ctx.days(visit.entered_at, end), "business day")
        if visit.left_at is not None:
            sentence = (
                f"The deal spent {days} in {stage}, from "
                f"{ctx.day(visit.entered_at)} to {ctx.day(visit.left_at)}."
            )
        elif ctx.life.closed_at is not None:
            sentence = (
                f"The deal spent {days} in {stage}, from "
                f"{ctx.day(visit.entered_at)} until it was {ctx.life.status} on "
                f"{ctx.day(ctx.life.closed_at)}."
            )
        else:
            sentence = (
                f"The deal has been in {stage} for {days}, since "
                f"{ctx.day(visit.entered_at)}."
            )
        found.append(
            ctx.finding(
                "stage_stall",
                visit.ref,
                "medium",
                ctx.cal.add_business_time(visit.entered_at, limit),
                [visit.ref, visits[i + 1].ref if i + 1 < len(visits) else None],
                sentence,
            )
        )
    return found


def _close_date_slips(ctx: _Ctx) -> list[Finding]:
    found: list[Finding] = []
    pushed = 0
    for n, slip in enumerate(ctx.state.close_slips, 1):
        pushed += slip.days
        sentence = (
            f"On {ctx.day(slip.at)} the expected close moved from "
            f"{date_text(slip.from_date)} to {date_text(slip.to_date)}, "
            f"{_plural(slip.days, 'day')} later"
        )
        sentence += f" (slip {n}, {pushed} days pushed in all)." if n > 1 else "."
        found.append(
            ctx.finding(
                "close_date_slips", slip.ref, "low", slip.at, [slip.ref], sentence
            )
        )
    return found

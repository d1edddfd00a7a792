"""Stakeholder involvement: who was engaged, when, in which role and stage.

Per contact: roles over time, first and last touched and engaged, touches by
channel and direction, stages during which they were engaged, priorities
noted, whether they ever replied, their current unanswered streak. Per deal:
roles covered in each stage visit, single-threaded spans, distinct contacts
engaged, when a decision maker was first engaged, rubber-stamp risk and
champions gone dark.

Definitions
- *Touched*: named among a touch's participants (any direction or outcome).
- *Engaged*: named in a touch that faces the buyer (inbound or outbound, not
  internal) and whose outcome is not an unanswered one (``Touch.engaged``).
  An internal touch is a seller-side conversation, so it engages nobody.
- *Answered*: a buyer-facing touch that is inbound, or outbound with outcome
  connected or replied, or a meeting or demo held (as in the follow-up
  gaps). The *unanswered streak* of a contact is the number of outbound
  touches naming them since their last answered one.
- *Role at a time*: from StakeholderJoined / RoleChanged / Left in timeline
  order; a touch before a contact first joined counts with the role they
  joined with (see ``Person.role_at``). Contacts with no role add no role to
  coverage.
- Stage of a touch: the stage visit it falls in (a touch at the instant of a
  stage change belongs to the new stage; one before the deal opened, to the
  first stage).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from engine.business_time import BusinessCalendar
from engine.projections.deal_state import (
    Lifecycle,
    Person,
    PriorityNote,
    RolePeriod,
    StageVisit,
    TouchMark,
    lifecycle,
    roster,
    stage_sort_key,
    stage_visits,
    start,
    visit_index_at,
)
from engine.projections.prepare import DealTimeline, ProjectionMeta, Touch
from engine.rules import RuleSet

__all__ = [
    "ChampionGoneDark",
    "ContactInvolvement",
    "DecisionMakerEngagement",
    "RubberStampRisk",
    "SingleThreadedSpan",
    "StageCoverage",
    "StakeholderInvolvement",
    "stakeholder_involvement",
]

CHAMPION = "champion"
# Outbound outcomes that mean the buyer answered.
ANSWERED_OUTCOMES = frozenset({"connected", "replied"})


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ContactInvolvement(_Model):
    """One contact's part in the deal.

    ``touches_by_channel`` and ``touches_by_direction`` count every touch
    naming them, keys sorted; ``stages_engaged`` is in pipeline order;
    ``role_history`` and ``priorities`` in timeline order.
    """

    contact: str
    name: str | None
    title: str | None
    current_role: str | None  # None if they left or were never given a role
    left_at: datetime | None
    role_history: list[RolePeriod]
    touches: int
    engaged_touches: int
    first_touched: TouchMark | None
    last_touched: TouchMark | None
    first_engaged: TouchMark | None
    last_engaged: TouchMark | None
    last_inbound: TouchMark | None
    last_answered: TouchMark | None
    touches_by_channel: dict[str, int]
    touches_by_direction: dict[str, int]
    stages_engaged: list[str]
    priorities: list[PriorityNote]
    replied: bool
    unanswered_streak: int


class StageCoverage(_Model):
    """Who was engaged during one stage visit (both lists sorted)."""

    stage: str
    entered_at: datetime
    left_at: datetime | None
    roles: list[str]
    contacts: list[str]


class SingleThreadedSpan(_Model):
    """Consecutive engaged touches (at least two) on the open deal, each with
    the same single buyer contact and nobody else.

    Unanswered and internal touches neither extend nor break a span; an
    engaged touch with anyone else, or the deal closing, ends it.
    """

    contact: str
    start: datetime
    end: datetime
    touches: list[str]
    business_days: float  # from the first touch to the last


class DecisionMakerEngagement(_Model):
    """The first engaged touch with a contact holding a decision role."""

    contact: str
    role: str
    at: datetime
    touch: str
    stage: str


class RubberStampRisk(_Model):
    """The deal reached a late stage before any decision maker was engaged.

    ``since`` is when the deal reached its first late stage (the moment the
    risk became visible); ``evidence`` cites the event that entered that
    stage, then the first decision-maker touch if there was one.
    """

    since: datetime
    reason: Literal["never_engaged", "engaged_after_late_stage"]
    late_stage: str
    evidence: list[str]


class ChampionGoneDark(_Model):
    """A current champion who stopped answering while the deal was open.

    ``since`` is when it became true: the touch that made the unanswered
    streak reach the rules' length, or the end of the rules' silence in
    business days after their last answered touch (or after they became
    champion, or after the deal last reopened, if later). Silence counts
    from the last *answered* touch, not only the last inbound one: a champion
    who joined a connected demo has not gone quiet. With both true,
    ``reason`` names the earlier. ``evidence`` cites the unanswered touches
    of the streak, or the last answered touch (else the event that made them
    champion) for silence.
    """

    contact: str
    since: datetime
    reason: Literal["unanswered_streak", "silence"]
    unanswered_streak: int
    last_answered_at: datetime | None
    evidence: list[str]


class StakeholderInvolvement(_Model):
    """Stakeholder involvement in a deal as of ``meta.evaluated_at``.

    ``contacts`` and ``champions_gone_dark`` are sorted by contact;
    ``stage_coverage`` and ``single_threaded_spans`` are in timeline order.
    """

    meta: ProjectionMeta
    contacts: list[ContactInvolvement]
    distinct_contacts_engaged: int
    stage_coverage: list[StageCoverage]
    single_threaded_spans: list[SingleThreadedSpan]
    decision_maker_first_engaged: DecisionMakerEngagement | None
    rubber_stamp_risk: RubberStampRisk | None
    champions_gone_dark: list[ChampionGoneDark]


# -- touch classification ----------------------------------------------------


def _buyer_facing(touch: Touch) -> bool:
    return touch.direction != "internal"


def _engaging(touch: Touch) -> bool:
    return _buyer_facing(touch) and touch.engaged and bool(touch.participants)


def _answered(touch: Touch) -> bool:
    # A meeting or demo held shows the buyer engaged, as in the follow-up
    # gaps' streaks: one champion metric and one gaps metric must agree.
    return (
        touch.inbound
        or (touch.outbound and touch.outcome in ANSWERED_OUTCOMES)
        or (touch.channel in ("meeting", "demo") and _engaging(touch))
    )


def _unanswered_streak(touches: Sequence[Touch]) -> list[Touch]:
    """The outbound touches since the last answered one (one contact's)."""
    streak: list[Touch] = []
    for touch in touches:
        if _answered(touch):
            streak = []
        elif touch.outbound:
            streak.append(touch)
    return streak


def _mark(touch: Touch | None) -> TouchMark | None:
    return None if touch is None else TouchMark(at=touch.at, touch=touch.id)


def _role(people: dict[str, Person], contact: str, moment: datetime) -> str | None:
    person = people.get(contact)
    return None if person is None else person.role_at(moment)


# -- per contact -------------------------------------------------------------


def _contact(
    contact: str,
    person: Person | None,
    touches: Sequence[Touch],
    visits: Sequence[StageVisit],
    stage_order: dict[str, tuple[int, int]],
) -> ContactInvolvement:
    """``touches``: every touch naming ``contact``, in timeline order."""
    engaged = [t for t in touches if _engaging(t)]
    facing = [t for t in touches if _buyer_facing(t)]
    stages = {visits[visit_index_at(visits, t.at)].stage for t in engaged}
    running = person.current if person is not None else None
    return ContactInvolvement(
        contact=contact,
        name=person.name if person else None,
        title=person.title if person else None,
        current_role=running.role if running else None,
        left_at=person.left_at if person else None,
        role_history=list(person.periods) if person else [],
        touches=len(touches),
        engaged_touches=len(engaged),
        first_touched=_mark(touches[0] if touches else None),
        last_touched=_mark(touches[-1] if touches else None),
        first_engaged=_mark(engaged[0] if engaged else None),
        last_engaged=_mark(engaged[-1] if engaged else None),
        last_inbound=_mark(next((t for t in reversed(touches) if t.inbound), None)),
        last_answered=_mark(next((t for t in reversed(facing) if _answered(t)), None)),
        touches_by_channel=dict(sorted(Counter(t.channel for t in touches).items())),
        touches_by_direction=dict(
            sorted(Counter(t.direction for t in touches).items())
        ),
        stages_engaged=sorted(stages, key=stage_order.__getitem__),
        priorities=list(person.priorities) if person else [],
        replied=any(_answered(t) for t in facing),
        unanswered_streak=len(_unanswered_streak(facing)),
    )


# -- per deal ----------------------------------------------------------------


def _coverage(
    visits: Sequence[StageVisit],
    engaged: Sequence[Touch],
    people: dict[str, Person],
) -> list[StageCoverage]:
    roles: list[set[str]] = [set() for _ in visits]
    contacts: list[set[str]] = [set() for _ in visits]
    for touch in engaged:
        i = visit_index_at(visits, touch.at)
        contacts[i].update(touch.participants)
        for contact in touch.participants:
            role = _role(people, contact, touch.at)
            if role is not None:
                roles[i].add(role)
    return [
        StageCoverage(
            stage=visit.stage,
            entered_at=visit.entered_at,
            left_at=visit.left_at,
            roles=sorted(roles[i]),
            contacts=sorted(contacts[i]),
        )
        for i, visit in enumerate(visits)
    ]


def _single_threaded_spans(
    engaged: Sequence[Touch], life: Lifecycle, calendar: BusinessCalendar
) -> list[SingleThreadedSpan]:
    runs: list[list[Touch]] = []
    run: list[Touch] = []
    for touch in engaged:
        alone = len(touch.participants) == 1 and life.is_open(touch.at)
        if alone and run and run[0].participants == touch.participants:
            run.append(touch)
            continue
        runs.append(run)
        run = [touch] if alone else []
    runs.append(run)
    return [
        SingleThreadedSpan(
            contact=run[0].participants[0],
            start=run[0].at,
            end=run[-1].at,
            touches=[t.id for t in run],
            business_days=round(
                calendar.business_days_between(run[0].at, run[-1].at), 2
            ),
        )
        for run in runs
        if len(run) >= 2
    ]


def _decision_maker(
    engaged: Sequence[Touch],
    people: dict[str, Person],
    rules: RuleSet,
    visits: Sequence[StageVisit],
) -> DecisionMakerEngagement | None:
    decision_roles = frozenset(str(r) for r in rules.rubber_stamp.decision_roles)
    for touch in engaged:
        for contact in touch.participants:  # sorted, so ties are stable
            role = _role(people, contact, touch.at)
            if role in decision_roles:
                return DecisionMakerEngagement(
                    contact=contact,
                    role=role,
                    at=touch.at,
                    touch=touch.id,
                    stage=visits[visit_index_at(visits, touch.at)].stage,
                )
    return None


def _rubber_stamp(
    visits: Sequence[StageVisit],
    decision_maker: DecisionMakerEngagement | None,
    rules: RuleSet,
) -> RubberStampRisk | None:
    late = next((v for v in visits if rules.is_late_stage(v.stage)), None)
    if late is None:
        return None
    if decision_maker is None:
        reason: Literal["never_engaged", "engaged_after_late_stage"] = "never_engaged"
        evidence = [late.ref]
    elif decision_maker.at > late.entered_at:
        reason = "engaged_after_late_stage"
        evidence = [late.ref, decision_maker.touch]
    else:
        return None
    return RubberStampRisk(
        since=late.entered_at, reason=reason, late_stage=late.stage, evidence=evidence
    )


def _champions_gone_dark(
    touches: Sequence[Touch],
    people: dict[str, Person],
    life: Lifecycle,
    rules: RuleSet,
    calendar: BusinessCalendar,
    at: datetime,
) -> list[ChampionGoneDark]:
    # A closed deal is judged as it stood when it closed: silence after a
    # loss is not a champion going dark.
    horizon = life.horizon(at)
    silence = rules.champion.silence_business_days * calendar.hours_per_day
    found: list[ChampionGoneDark] = []
    for contact in sorted(people):
        running = people[contact].current
        if running is None or running.role != CHAMPION or running.since > horizon:
            continue
        theirs = [
            t
            for t in touches
            if contact in t.participants and _buyer_facing(t) and t.at <= horizon
        ]
        streak = _unanswered_streak(theirs)
        last_answer = next((t for t in reversed(theirs) if _answered(t)), None)
        # Darkness cannot predate their being champion or the deal reopening.
        floor = max(running.since, life.last_reopened_at or running.since)
        candidates: list[tuple[datetime, int, ChampionGoneDark]] = []
        need = rules.champion.unanswered_streak
        if len(streak) >= need:
            since = max(streak[need - 1].at, floor)
            candidates.append(
                (
                    since,
                    0,
                    ChampionGoneDark(
                        contact=contact,
                        since=since,
                        reason="unanswered_streak",
                        unanswered_streak=len(streak),
                        last_answered_at=last_answer.at if last_answer else None,
                        evidence=[t.id for t in streak],
                    ),
                )
            )
        quiet_from = max(last_answer.at, floor) if last_answer else floor
        since = calendar.add_business_hours(quiet_from, silence)
        if since <= horizon:
            candidates.append(
                (
                    since,
                    1,
                    ChampionGoneDark(
                        contact=contact,
                        since=since,
                        reason="silence",
                        unanswered_streak=len(streak),
                        last_answered_at=last_answer.at if last_answer else None,
                        evidence=[last_answer.id if last_answer else running.ref],
                    ),
                )
            )
        if candidates:
            found.append(min(candidates, key=lambda c: (c[0], c[1]))[2])
    return found


# -- the projection ----------------------------------------------------------


def stakeholder_involvement(
    timeline: DealTimeline, rules: RuleSet, at: datetime
) -> StakeholderInvolvement:
    """Who was involved in the deal, and how, as of ``at`` (pure)."""
    meta = ProjectionMeta.of(timeline, rules, at)
    timeline = start(timeline, at)
    calendar = rules.calendar_for(timeline.timezone)
    life = lifecycle(timeline)
    people = roster(timeline)
    visits = stage_visits(timeline, calendar, life.horizon(at))
    stage_order = stage_sort_key(rules, visits)
    touches = timeline.touches
    engaged = [t for t in touches if _engaging(t)]

    by_contact: dict[str, list[Touch]] = {contact: [] for contact in people}
    for touch in touches:
        for contact in touch.participants:
            by_contact.setdefault(contact, []).append(touch)

    decision_maker = _decision_maker(engaged, people, rules, visits)
    return StakeholderInvolvement(
        meta=meta,
        contacts=[
            _contact(
                contact, people.get(contact), by_contact[contact], visits, stage_order
            )
            for contact in sorted(by_contact)
        ],
        distinct_contacts_engaged=len({c for t in engaged for c in t.participants}),
        stage_coverage=_coverage(visits, engaged, people),
        single_threaded_spans=_single_threaded_spans(engaged, life, calendar),
        decision_maker_first_engaged=decision_maker,
        rubber_stamp_risk=_rubber_stamp(visits, decision_maker, rules),
        champions_gone_dark=_champions_gone_dark(
            touches, people, life, rules, calendar, at
        ),
    )

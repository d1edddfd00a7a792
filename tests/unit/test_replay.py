"""The coaching replay, on small hand-built histories and generated deals.

Deals are in Europe/Paris (UTC+01:00 in March 2026) with the built-in rules;
2 March 2026 is a Monday.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.events import (
    CoachingNoteAdded,
    DealUpdated,
    Event,
    NextStepSet,
    TouchpointCorrected,
    TouchpointRetracted,
)
from engine.projections.findings import findings
from engine.projections.replay import Change, Replay, replay
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
OPENED = datetime.fromisoformat("2026-03-02T09:00:00+01:00")


def note(text: str, when: str, about: str | None = None) -> CoachingNoteAdded:
    return CoachingNoteAdded(
        deal=DEAL,
        occurred_at=at(when),
        author="coach",
        note=text,
        about=about,
    )


def walk(*events: Event, until: datetime | None = None) -> Replay:
    return replay(timeline(*events), RULES, until)


def test_a_late_logged_call_lands_where_it_happened() -> None:
    r = walk(
        opened(),
        touch("t1", occurred_at=iso("03-02 10:00")),
        touch("t3", occurred_at=iso("03-04 10:00")),
        stage("proposal", occurred_at=iso("03-05 10:00")),
        # Logged a week late: recorded last, happened second.
        touch(
            "t2",
            occurred_at=iso("03-03 10:00"),
            logged_at=iso("03-10 10:00"),
            channel="call",
        ),
    )
    assert [(s.index, s.ref, s.kind) for s in r.steps] == [
        (1, "#1", "DealOpened"),
        (2, "t1", "TouchpointLogged"),
        (3, "t2", "TouchpointLogged"),
        (4, "t3", "TouchpointLogged"),
        (5, "#4", "StageChanged"),
    ]
    assert r.steps[2].at == at("03-03 10:00")
    assert r.steps[2].changes == [
        Change(
            field="last_touch",
            before=f"t1 ({iso('03-02 10:00')})",
            after=f"t2 ({iso('03-03 10:00')})",
        )
    ]


def test_corrections_and_retractions_are_applied_not_shown() -> None:
    r = walk(
        opened(),
        touch("t1", occurred_at=iso("03-02 10:00")),
        touch("t2", occurred_at=iso("03-03 10:00"), summary="wrong deal"),
        TouchpointRetracted(
            deal=DEAL, occurred_at=at("03-03 11:00"), touchpoint="t2", reason="oops"
        ),
        TouchpointCorrected(
            deal=DEAL,
            occurred_at=at("03-04 09:00"),
            touchpoint="t1",
            touchpoint_occurred_at=at("03-04 08:00"),
            direction="inbound",
        ),
    )
    assert [(s.ref, s.at) for s in r.steps] == [
        ("#1", OPENED),
        ("t1", at("03-04 08:00")),
    ]
    assert r.steps[1].description.startswith("Inbound call with dana@acme.example")


def test_the_first_step_shows_the_opening_facts_as_changes() -> None:
    r = walk(opened(amount="1000", currency="EUR", expected_close="2026-03-31"))
    (first,) = r.steps
    assert first.description == (
        "Deal opened: ACME platform for ACME, owner sam, stage discovery"
    )
    assert [(c.field, c.before, c.after) for c in first.changes] == [
        ("stage", None, "discovery"),
        ("status", None, "open"),
        ("owner", None, "sam"),
        ("amount", None, "1000 EUR"),
        ("expected_close", None, "2026-03-31"),
    ]


def test_a_stage_change_and_other_headline_changes_show_in_changes() -> None:
    r = walk(
        opened(),
        joined("dana@acme.example", "champion", occurred_at=iso("03-02 09:30")),
        stage("proposal", occurred_at=iso("03-05 10:00")),
        NextStepSet(
            deal=DEAL,
            occurred_at=at("03-05 11:00"),
            description="Send the\nproposal",
            due="2026-03-09",
            owner="sam",
        ),
        DealUpdated(deal=DEAL, occurred_at=at("03-06 10:00"), owner="alex"),
        lost(occurred_at=iso("03-20 10:00")),
    )
    changes = {s.kind: s.changes for s in r.steps}
    assert changes["StakeholderJoined"] == [
        Change(field="stakeholders", before=None, after="dana@acme.example: champion")
    ]
    assert changes["StageChanged"] == [
        Change(field="stage", before="discovery", after="proposal")
    ]
    assert changes["NextStepSet"] == [
        Change(
            field="next_step",
            before=None,
            after="Send the proposal (due 2026-03-09, owner sam)",
        )
    ]
    assert changes["DealUpdated"] == [Change(field="owner", before="sam", after="alex")]
    assert changes["DealLost"] == [Change(field="status", before="open", after="lost")]
    assert r.steps[-1].description == "Deal lost (to Initech): chose a competitor"


def test_notes_attach_to_their_touchpoints_step_or_to_the_step_before_them() -> None:
    r = walk(
        opened(),
        touch("t1", occurred_at=iso("03-02 10:00")),
        touch("t2", occurred_at=iso("03-04 10:00")),
        # Written after the deal, about the first call.
        note("You promised a quote here", "03-20 09:00", about="t1"),
        # Unpinned: lands on the step at or just before it.
        note("Good recovery", "03-04 12:00"),
        note("Before anything", "03-01 12:00"),
    )
    notes = {s.ref: [(n.note, n.author, n.ref) for n in s.notes] for s in r.steps}
    assert notes == {
        "#1": [("Before anything", "coach", "#6")],
        "t1": [("You promised a quote here", "coach", "#4")],
        "t2": [("Good recovery", "coach", "#5")],
    }
    assert all(s.kind != "CoachingNoteAdded" for s in r.steps)
    assert r.steps[1].notes[0].at == at("03-20 09:00")


def test_until_cuts_the_walk() -> None:
    events = (
        opened(),
        touch("t1", occurred_at=iso("03-02 10:00")),
        touch("t2", occurred_at=iso("03-04 10:00")),
        note("about the first call", "03-20 09:00", about="t1"),
        note("late remark", "03-20 09:00"),
        stage("proposal", occurred_at=iso("03-05 10:00")),
    )
    full = walk(*events)
    cut = walk(*events, until=at("03-04 10:00"))
    assert [s.ref for s in full.steps] == ["#1", "t1", "t2", "#6"]
    assert [s.ref for s in cut.steps] == ["#1", "t1", "t2"]
    # The pinned note shows whenever written; the unpinned one after the cut
    # does not (in the full walk it sits on the last step).
    assert cut.steps == full.steps[:3]
    assert [n.note for n in full.steps[3].notes] == ["late remark"]
    assert cut.until == at("03-04 10:00")
    assert cut.meta.evaluated_at == at("03-04 10:00")
    assert full.meta.evaluated_at == at("03-05 10:00")
    assert walk(*events, until=at("03-01 00:00")).steps == []


def test_a_naive_until_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        walk(opened(), until=datetime(2026, 3, 5))


def test_replay_json_is_deterministic() -> None:
    events = (
        opened(),
        touch("t1", occurred_at=iso("03-02 10:00"), direction="inbound"),
        stage("proposal", occurred_at=iso("03-05 10:00")),
        lost(occurred_at=iso("03-20 10:00")),
    )
    first = orjson.dumps(walk(*events).model_dump(mode="json"))
    assert first == orjson.dumps(walk(*events).model_dump(mode="json"))


# -- property: the replay agrees with the findings at each step's time -------

_HOURS = 24 * 30  # a month of history after the opening


@st.composite
def deals(draw: st.DrawFn) -> list[Event]:
    """A small random deal, its events recorded in a random order."""
    contacts = ["dana@acme.example", "eve@acme.example"]
    hours = st.integers(min_value=0, max_value=_HOURS)

    def when(h: int) -> str:
        return (OPENED + timedelta(hours=h, minutes=7)).isoformat()

    events: list[Event] = [
        joined(contacts[0], "champion", occurred_at=when(0)),
        joined(
            contacts[1],
            draw(st.sampled_from(["decision_maker", "user"])),
            occurred_at=when(draw(hours)),
        ),
    ]
    for i in range(draw(st.integers(min_value=1, max_value=7))):
        events.append(
            touch(
                f"t{i}",
                occurred_at=when(draw(hours)),
                direction=draw(st.sampled_from(["inbound", "outbound"])),
                channel=draw(st.sampled_from(["call", "email", "meeting"])),
                outcome=draw(st.sampled_from([None, "no_answer", "connected"])),
                participants=sorted(
                    draw(st.sets(st.sampled_from(contacts), max_size=2))
                ),
            )
        )
    if draw(st.booleans()):
        events.append(
            stage(
                draw(st.sampled_from(["proposal", "negotiation", "demo"])),
                occurred_at=when(draw(hours)),
            )
        )
    if draw(st.booleans()):
        h = draw(hours)
        events.append(
            NextStepSet(
                deal=DEAL,
                occurred_at=datetime.fromisoformat(when(h)),
                description="demo",
                due=(OPENED + timedelta(hours=h + draw(st.integers(0, 240)))).date(),
                owner=draw(st.sampled_from([None, "sam"])),
            )
        )
    if draw(st.booleans()):
        events.append(lost(occurred_at=when(draw(hours) + _HOURS // 2)))
    ordered = draw(st.permutations(events))
    return [opened(), *ordered]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(deals())
def test_appeared_minus_cleared_is_the_findings_at_each_step(
    events: list[Event],
) -> None:
    tl = timeline(*events)
    r = replay(tl, RULES)
    assert len(r.steps) == len(tl.entries) + len(tl.touches)
    assert [s.at for s in r.steps] == sorted(s.at for s in r.steps)
    visible: set[str] = set()
    for step in r.steps:
        appeared = {f.key for f in step.appeared}
        cleared = {f.key for f in step.cleared}
        assert not appeared & cleared
        assert cleared <= visible
        visible = (visible | appeared) - cleared
        assert visible == {f.key for f in findings(tl, RULES, step.at)}

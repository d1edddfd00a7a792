"""The Deal aggregate's invariants, decided in memory (no store)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from engine.deal import Deal, Restated, deal_id
from engine.errors import DomainError, UnknownDealError
from engine.events import (
    CoachingNoteAdded,
    DealLost,
    DealReopened,
    DealWon,
    StakeholderLeft,
    StakeholderRoleChanged,
    TouchpointCorrected,
    TouchpointRetracted,
)
from tests.factories import joined, lost, opened, stage, touch

NOW = datetime(2026, 6, 1, tzinfo=UTC)
AT = "2026-03-03T10:00:00+01:00"


def open_deal() -> Deal:
    deal = Deal.new("ACME-1")
    assert deal.decide(opened(), NOW) is not None
    return deal


def test_the_aggregate_id_is_derived_from_the_deal_key() -> None:
    assert deal_id("ACME-1") == deal_id("ACME-1")
    assert deal_id("ACME-1") != deal_id("ACME-2")
    assert Deal.new("ACME-1").id == deal_id("ACME-1")


def test_a_deal_opens_once() -> None:
    deal = open_deal()
    with pytest.raises(DomainError, match="already open"):
        deal.decide(opened(name="Another name"), NOW)


def test_reopening_with_the_identical_event_is_a_no_op() -> None:
    deal = open_deal()
    assert deal.decide(opened(source="elsewhere.jsonl:3"), NOW) is None
    assert len(deal.pending) == 1


def test_nothing_is_recorded_on_an_unknown_deal() -> None:
    with pytest.raises(UnknownDealError, match="unknown deal 'ACME-1'"):
        Deal.new("ACME-1").decide(touch("t1"), NOW)


def test_an_event_for_another_deal_is_refused() -> None:
    with pytest.raises(DomainError, match="sent to"):
        open_deal().decide(touch("t1", deal="OTHER"), NOW)


def test_a_touchpoint_id_is_recorded_once() -> None:
    deal = open_deal()
    assert deal.decide(touch("t1"), NOW) is not None
    with pytest.raises(DomainError, match="differs in channel"):
        deal.decide(touch("t1", channel="email"), NOW)


def test_re_recording_the_identical_touchpoint_is_a_no_op() -> None:
    deal = open_deal()
    deal.decide(touch("t1"), NOW)
    assert deal.decide(touch("t1", actor="someone else"), NOW) is None
    assert [r.originator_version for r in deal.collect_events()] == [1, 2]


def test_corrections_and_retractions_name_an_existing_touchpoint() -> None:
    deal = open_deal()
    with pytest.raises(DomainError, match="no touchpoint 't9'"):
        deal.decide(
            TouchpointCorrected(
                deal="ACME-1", occurred_at=AT, touchpoint="t9", channel="email"
            ),
            NOW,
        )
    with pytest.raises(DomainError, match="no touchpoint 't9'"):
        deal.decide(
            TouchpointRetracted(
                deal="ACME-1", occurred_at=AT, touchpoint="t9", reason="x"
            ),
            NOW,
        )


def test_a_retracted_touchpoint_cannot_be_corrected_or_retracted_again() -> None:
    deal = open_deal()
    deal.decide(touch("t1"), NOW)
    deal.decide(
        TouchpointRetracted(
            deal="ACME-1", occurred_at=AT, touchpoint="t1", reason="wrong deal"
        ),
        NOW,
    )
    with pytest.raises(DomainError, match="already retracted"):
        deal.decide(
            TouchpointCorrected(
                deal="ACME-1", occurred_at=AT, touchpoint="t1", summary="x"
            ),
            NOW,
        )
    with pytest.raises(DomainError, match="already retracted"):
        deal.decide(
            TouchpointRetracted(
                deal="ACME-1", occurred_at=AT, touchpoint="t1", reason="dup"
            ),
            NOW,
        )


def test_a_coaching_note_can_only_pin_a_recorded_touchpoint() -> None:
    deal = open_deal()
    note = CoachingNoteAdded(
        deal="ACME-1", occurred_at=AT, author="kim", note="n", about="t1"
    )
    with pytest.raises(DomainError, match="no touchpoint 't1'"):
        deal.decide(note, NOW)
    deal.decide(touch("t1"), NOW)
    assert deal.decide(note, NOW) is not None


def test_a_lost_deal_needs_a_reason() -> None:
    with pytest.raises(ValidationError, match="reason"):
        DealLost(deal="ACME-1", occurred_at=AT)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="must not be empty"):
        DealLost(deal="ACME-1", occurred_at=AT, reason="  ")


def test_a_closed_deal_cannot_close_again_until_reopened() -> None:
    deal = open_deal()
    deal.decide(lost(occurred_at="2026-04-01T10:00:00+02:00"), NOW)
    with pytest.raises(
        DomainError,
        match=r"was already lost \(on 2026-04-01T10:00:00\+02:00\); reopen it first",
    ):
        deal.decide(DealWon(deal="ACME-1", occurred_at="2026-04-02T10:00:00Z"), NOW)
    deal.decide(
        DealReopened(deal="ACME-1", occurred_at="2026-04-03T10:00:00Z", reason="b"), NOW
    )
    assert deal.decide(DealWon(deal="ACME-1", occurred_at="2026-04-04T10:00:00Z"), NOW)


def test_an_open_deal_cannot_be_reopened() -> None:
    with pytest.raises(DomainError, match="was open at 2026-03-03T10:00:00"):
        open_deal().decide(DealReopened(deal="ACME-1", occurred_at=AT), NOW)


def test_nothing_closes_a_deal_before_it_opened() -> None:
    with pytest.raises(DomainError, match="it cannot be won before that"):
        open_deal().decide(
            DealWon(deal="ACME-1", occurred_at="2026-03-01T10:00:00Z"), NOW
        )


def test_a_backfilled_close_must_fit_the_history_in_occurred_order() -> None:
    deal = open_deal()
    deal.decide(lost(occurred_at="2026-04-01T10:00:00Z"), NOW)
    deal.decide(DealReopened(deal="ACME-1", occurred_at="2026-04-10T10:00:00Z"), NOW)
    deal.decide(DealWon(deal="ACME-1", occurred_at="2026-04-20T10:00:00Z"), NOW)
    # A loss dated between the reopening and the win would need another reopening.
    with pytest.raises(DomainError, match="would leave its won of 2026-04-20"):
        deal.decide(lost(occurred_at="2026-04-15T10:00:00Z"), NOW)
    # A reopening dated before the first loss reopens nothing.
    with pytest.raises(DomainError, match="was open at 2026-03-20"):
        deal.decide(
            DealReopened(deal="ACME-1", occurred_at="2026-03-20T10:00:00Z"), NOW
        )
    replayed = Deal.replay("ACME-1", deal.collect_events())
    with pytest.raises(DomainError, match="was already won"):
        replayed.decide(lost(occurred_at="2026-04-21T10:00:00Z"), NOW)


def test_touchpoints_can_be_backfilled_on_a_closed_deal() -> None:
    deal = open_deal()
    deal.decide(lost(), NOW)
    assert deal.decide(touch("t1"), NOW) is not None


def test_stakeholder_changes_need_a_current_stakeholder() -> None:
    deal = open_deal()
    change = StakeholderRoleChanged(
        deal="ACME-1", occurred_at=AT, contact="dana@acme.example", role="champion"
    )
    with pytest.raises(DomainError, match="not a stakeholder"):
        deal.decide(change, NOW)
    deal.decide(joined("dana@acme.example", "influencer"), NOW)
    assert deal.decide(change, NOW) is not None
    deal.decide(
        StakeholderLeft(deal="ACME-1", occurred_at=AT, contact="dana@acme.example"), NOW
    )
    with pytest.raises(DomainError, match="not a stakeholder"):
        deal.decide(change.model_copy(update={"role": "user"}), NOW)


def test_a_present_stakeholder_cannot_join_again_with_another_role() -> None:
    deal = open_deal()
    deal.decide(joined("dana@acme.example", "influencer"), NOW)
    with pytest.raises(DomainError, match="change their role instead"):
        deal.decide(joined("dana@acme.example", "champion"), NOW)


def test_a_replayed_deal_decides_like_the_original() -> None:
    deal = open_deal()
    deal.decide(touch("t1"), NOW)
    deal.decide(stage("proposal"), NOW)
    history = deal.collect_events()
    replayed = Deal.replay("ACME-1", history)
    assert replayed.version == 3
    assert replayed.decide(touch("t1"), NOW) is None
    with pytest.raises(DomainError):
        replayed.decide(touch("t1", channel="email"), NOW)


def test_decided_events_carry_the_recording_time() -> None:
    deal = open_deal()
    stored = deal.decide(touch("t1"), NOW)
    assert stored is not None
    assert stored.recorded_at == NOW
    assert stored.known_at == NOW


# A synced source's later export restating known facts

SYNCED = "salesforce:Task/00T1"


def test_only_a_synced_sources_restatements_are_carried() -> None:
    deal = open_deal()
    deal.decide(touch("t1", summary="first"), NOW)
    # A native line restating the touch with other details is refused.
    assert deal.restate(touch("t1", summary="second"), NOW) is None
    with pytest.raises(DomainError, match="record a correction instead"):
        deal.decide(touch("t1", summary="second"), NOW)
    restated = deal.restate(touch("t1", summary="second", source=SYNCED), NOW)
    assert restated is not None
    (fix,) = restated.events
    assert isinstance(fix, TouchpointCorrected)
    assert (fix.summary, fix.occurred_at, fix.logged_at) == ("second", NOW, None)
    assert restated.kept is None


def test_a_restatement_is_compared_with_the_touch_as_corrected() -> None:
    deal = open_deal()
    deal.decide(touch("t1", summary="first", source=SYNCED), NOW)
    again = touch("t1", summary="second", source=SYNCED)
    restated = deal.restate(again, NOW)
    assert restated is not None
    for fix in restated.events:
        deal.decide(fix, NOW)
    # The same later export once more: nothing left to carry.
    assert deal.restate(again, NOW) == (Restated([]))
    retracted = TouchpointRetracted(
        deal="ACME-1", occurred_at=NOW, touchpoint="t1", reason="duplicate"
    )
    deal.decide(retracted, NOW)
    kept = deal.restate(touch("t1", summary="third", source=SYNCED), NOW)
    assert kept == Restated([], "edits of retracted touchpoints")


def test_a_closed_deal_reopens_at_a_synced_stage_change_after_its_close() -> None:
    deal = open_deal()
    deal.decide(lost(source=SYNCED), NOW)
    # A row at the close itself is the move into the closed stage: the loss
    # recorded says it already.
    at_close = stage("closed_lost", occurred_at=lost().occurred_at, source=SYNCED)
    assert deal.restate(at_close, NOW) == Restated([])
    later = stage("negotiation", occurred_at="2026-04-02T10:00:00+02:00", source=SYNCED)
    restated = deal.restate(later, NOW)
    assert restated is not None
    reopened, same = restated.events
    assert isinstance(reopened, DealReopened)
    assert reopened.occurred_at == later.occurred_at
    assert same is later
    for event in restated.events:
        deal.decide(event, NOW)
    # Lost again, with a reason edited since: kept as first recorded.
    deal.decide(lost(occurred_at="2026-04-09T10:00:00+02:00", source=SYNCED), NOW)
    edited = lost(
        occurred_at="2026-04-09T10:00:00+02:00", reason="budget", source=SYNCED
    )
    assert deal.restate(edited, NOW) == Restated(
        [], "closings restated with other details"
    )


def test_a_role_edited_in_place_is_a_role_change_and_new_details_are_kept() -> None:
    deal = open_deal()
    deal.decide(
        joined("dana@acme.example", "influencer", title="CTO", source=SYNCED), NOW
    )
    edited = joined("dana@acme.example", "decision_maker", title="CEO", source=SYNCED)
    restated = deal.restate(edited, NOW)
    assert restated is not None
    (change,) = restated.events
    assert isinstance(change, StakeholderRoleChanged)
    assert change.role == "decision_maker"
    assert restated.kept == "contacts' names or titles changed since they joined"

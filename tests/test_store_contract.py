"""The application against each real store: SQLite file and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime

import orjson
import psycopg
import pytest

from engine.application import DealTrail
from engine.deal import deal_id
from engine.errors import UnknownDealError
from engine.events import Event, TouchpointCorrected
from tests.conftest import Clock
from tests.factories import opened, stage, touch

T = datetime.fromisoformat


def test_recorded_events_read_back_equal(app: DealTrail) -> None:
    first = app.record(opened())
    second = app.record(touch("t1", summary="Intro call — agenda agreed ✓"))
    history = app.history("ACME-1")
    assert [r.event for r in history] == [first, second]
    assert [r.originator_version for r in history] == [1, 2]
    assert {r.originator_id for r in history} == {deal_id("ACME-1")}


def test_stored_state_is_the_native_line_plus_recorded_at(
    app: DealTrail, clock: Clock
) -> None:
    event = touch("t1")
    app.record(opened())
    app.record(event)
    topic, state = _raw_rows(app)[-1]
    assert topic == "TouchpointLogged"
    assert orjson.loads(state) == event.native() | {
        "recorded_at": "2026-06-01T12:00:00Z"
    }


def test_a_new_application_reads_what_another_wrote(
    store_url: str, clock: Clock
) -> None:
    with DealTrail(store_url, clock=clock) as writer:
        writer.record(opened())
        writer.record(touch("t1"))
    with DealTrail(store_url, clock=clock) as reader:
        assert [r.event.type for r in reader.history("ACME-1")] == [
            "DealOpened",
            "TouchpointLogged",
        ]
        assert reader.deal_keys() == ["ACME-1"]
        assert reader.position() == 2


def test_an_unknown_deal_has_no_history(app: DealTrail) -> None:
    with pytest.raises(UnknownDealError):
        app.history("NOPE")


def test_deal_keys_are_sorted_and_position_counts_events(app: DealTrail) -> None:
    assert app.position() == 0
    assert app.deal_keys() == []
    for key in ("ZETA-9", "ACME-1", "BETA-2"):
        app.record(opened(deal=key))
    app.record(touch("t1", deal="BETA-2"))
    assert app.deal_keys() == ["ACME-1", "BETA-2", "ZETA-9"]
    assert app.position() == 4


def test_the_timeline_sorts_by_occurred_then_known_at_then_recording(
    app: DealTrail, clock: Clock
) -> None:
    app.record(opened())
    app.record(touch("late", occurred_at="2026-03-04T10:00:00+01:00"))
    clock.advance(hours=1)
    app.record(touch("early", occurred_at="2026-03-03T10:00:00+01:00"))
    app.record(touch("tie-b", occurred_at="2026-03-05T10:00:00+01:00"))
    app.record(
        touch(
            "tie-a",
            occurred_at="2026-03-05T10:00:00+01:00",
            logged_at="2026-03-05T11:00:00+01:00",
        )
    )
    order = [r.event.touchpoint for r in app.timeline("ACME-1")[1:]]  # type: ignore[attr-defined]
    assert order == ["early", "late", "tie-a", "tie-b"]


def test_as_of_and_as_known_at_with_a_backfilled_event(
    app: DealTrail, clock: Clock
) -> None:
    # A call on 3 March logged on 9 March; a stage change on 5 March logged live.
    app.record(opened(logged_at="2026-03-02T09:00:00+01:00"))
    app.record(
        touch(
            "call",
            occurred_at="2026-03-03T10:00:00+01:00",
            logged_at="2026-03-09T17:00:00+01:00",
        )
    )
    app.record(stage("proposal", logged_at="2026-03-05T10:05:00+01:00"))

    def kinds(
        as_of: datetime | None = None, as_known_at: datetime | None = None
    ) -> list[str]:
        timeline = app.timeline("ACME-1", as_of=as_of, as_known_at=as_known_at)
        return [r.event.type for r in timeline]

    assert kinds() == ["DealOpened", "TouchpointLogged", "StageChanged"]
    assert kinds(as_of=T("2026-03-04T00:00:00+01:00")) == [
        "DealOpened",
        "TouchpointLogged",
    ]
    # On 6 March the system knew of the stage change but not the call.
    assert kinds(as_known_at=T("2026-03-06T00:00:00+01:00")) == [
        "DealOpened",
        "StageChanged",
    ]
    assert kinds(
        as_of=T("2026-03-04T00:00:00+01:00"), as_known_at=T("2026-03-06T00:00:00+01:00")
    ) == ["DealOpened"]
    assert kinds(as_known_at=T("2026-03-01T00:00:00+01:00")) == []


def test_known_at_falls_back_to_recorded_at_without_logged_at(
    app: DealTrail, clock: Clock
) -> None:
    app.record(opened())
    assert app.timeline("ACME-1", as_known_at=clock.now)[0].event.type == "DealOpened"
    assert app.timeline("ACME-1", as_known_at=T("2026-05-31T00:00:00Z")) == []


def test_a_batch_with_a_refused_event_writes_nothing(app: DealTrail) -> None:
    app.record(opened())
    app.record(touch("t1"))
    before = _raw_rows(app)
    result = app.record_many(
        [
            opened(deal="NEW-1"),
            touch("t2"),
            touch("t1", channel="email", source="batch.jsonl:3"),
        ]
    )
    assert result.error_count == 1
    assert str(result.errors[0]).startswith("batch.jsonl:3: touchpoint 't1'")
    assert _raw_rows(app) == before


def test_a_batch_is_idempotent(app: DealTrail) -> None:
    batch = [touch("t1"), opened(), stage("proposal"), touch("t2")]
    first = app.record_many(batch)
    assert first.total_recorded == 4
    assert first.new_deals == {"ACME-1"}
    rows = _raw_rows(app)
    again = app.record_many(batch)
    assert again.total_recorded == 0
    assert again.unchanged == 4
    assert again.existing_deals == {"ACME-1"}
    assert _raw_rows(app) == rows


def test_a_batch_is_decided_in_its_own_order_after_the_deal_opens(
    app: DealTrail,
) -> None:
    correction = TouchpointCorrected(
        deal="ACME-1",
        occurred_at="2026-03-01T00:00:00Z",
        touchpoint="t1",
        channel="meeting",
    )
    refused = app.record_many([correction, touch("t1"), opened()], locations=["f:1"])
    assert [str(e) for e in refused.errors] == [
        "f:1: deal 'ACME-1' has no touchpoint 't1'"
    ]
    result = app.record_many([touch("t1"), correction, opened()])
    assert result.error_count == 0
    assert [r.event.type for r in app.history("ACME-1")] == [
        "DealOpened",
        "TouchpointLogged",
        "TouchpointCorrected",
    ]


def test_a_dry_run_writes_nothing(app: DealTrail) -> None:
    result = app.record_many([opened(), touch("t1")], dry_run=True)
    assert result.total_recorded == 2
    assert result.new_deals == {"ACME-1"}
    assert app.position() == 0


def _raw_rows(app: DealTrail) -> list[tuple[str, bytes]]:
    """Every stored row's topic and state, read beneath the library."""
    env = app.config.env
    if app.config.kind == "sqlite":
        with sqlite3.connect(env["SQLITE_DBNAME"]) as conn:
            rows = conn.execute(
                "SELECT topic, state FROM stored_events ORDER BY rowid"
            ).fetchall()
    else:
        with psycopg.connect(
            dbname=env["POSTGRES_DBNAME"],
            host=env["POSTGRES_HOST"],
            port=int(env["POSTGRES_PORT"]),
            user=env["POSTGRES_USER"],
        ) as conn:
            rows = conn.execute(
                f'SELECT topic, state FROM "{env["POSTGRES_SCHEMA"]}".dealtrail_events '
                "ORDER BY notification_id"
            ).fetchall()
    return [(topic, bytes(state)) for topic, state in rows]


@pytest.mark.postgres
def test_a_batch_of_forty_thousand_events_is_written_in_one_transaction(
    postgres_url: str, clock: Clock
) -> None:
    # Large single inserts used to hang in psycopg's pipeline mode; a daemon
    # thread turns a hang into a failure instead of a stuck run.
    events: list[Event] = []
    for d in range(800):
        events.append(opened(deal=f"D-{d:03d}"))
        events += [touch(f"t{t}", deal=f"D-{d:03d}") for t in range(49)]
    outcome: list[int] = []

    def write() -> None:
        with DealTrail(postgres_url, clock=clock) as app:
            outcome.append(app.record_many(events).total_recorded)
            outcome.append(app.position())

    worker = threading.Thread(target=write, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "the insert did not finish"
    assert outcome == [40_000, 40_000]

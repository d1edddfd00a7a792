"""Materialised views: tracked, batched, exactly once, equal to a rebuild."""

from __future__ import annotations

import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, Tracking
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.application import DealTrail
from engine.errors import DomainError
from engine.events import (
    Event,
    NextStepSet,
    TouchpointCorrected,
    TouchpointRetracted,
)
from engine.projections.summary import summarise
from engine.rules import RuleSet, parse_rules
from engine.views import VIEW, ViewRow
from tests.conftest import Clock
from tests.factories import import_examples, joined, lost, opened, stage, touch

RULES = RuleSet()


@pytest.fixture
def clock() -> Clock:
    # After the example stories' last logging time.
    return Clock(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))


def _documents(app: DealTrail) -> list[bytes]:
    return app.views.load()


def _pure(app: DealTrail, rules: RuleSet = RULES) -> list[bytes]:
    return [
        summarise(app.history(key), rules).model_dump_json().encode()
        for key in app.deal_keys()
    ]


def test_views_catch_up_to_the_head_and_equal_the_pure_summaries(
    app: DealTrail,
) -> None:
    import_examples(app)
    status = app.update_views(RULES, batch_size=50)
    assert status.position == status.head == app.position()
    assert app.view_status().lag == 0
    assert _documents(app) == _pure(app)
    assert len(_documents(app)) == 9


def test_views_updated_event_by_event_equal_a_rebuild(app: DealTrail) -> None:
    events: list[Event] = [
        opened(),
        joined("dana@acme.example", "champion"),
        touch("t1", direction="inbound", occurred_at="2026-03-03T10:00:00+01:00"),
        stage("proposal"),
        touch("t2", occurred_at="2026-03-09T10:00:00+01:00"),
        lost(),
    ]
    for event in events:
        app.record(event)
        app.update_views(RULES)
    incremental = _documents(app)
    app.update_views(RULES, rebuild=True, batch_size=2)
    assert _documents(app) == incremental == _pure(app)


def test_a_crash_while_building_writes_no_view(store_url: str, clock: Clock) -> None:
    with DealTrail(store_url, clock=clock) as app:
        import_examples(app)

        def crash(position: int, _head: int) -> None:
            raise KeyboardInterrupt("killed")

        with pytest.raises(KeyboardInterrupt):
            app.update_views(RULES, progress=crash)
        assert app.view_status().position == 0
        assert _documents(app) == []
    with DealTrail(store_url, clock=clock) as restarted:
        status = restarted.update_views(RULES)
        assert status.position == restarted.position()
        assert _documents(restarted) == _pure(restarted)


def test_a_crash_between_batches_counts_nothing_twice(
    store_url: str, clock: Clock
) -> None:
    with DealTrail(store_url, clock=clock) as app:
        app.record(opened())
        app.update_views(RULES)
        built = app.position()
        import_examples(app)
        head = app.position()

        def crash_after_first_batch(position: int, _head: int) -> None:
            raise KeyboardInterrupt("killed")

        with pytest.raises(KeyboardInterrupt):
            app.update_views(RULES, batch_size=40, progress=crash_after_first_batch)
        assert app.view_status().position == built + 40
        assert 1 < len(_documents(app)) < 10
    with DealTrail(store_url, clock=clock) as restarted:
        status = restarted.update_views(RULES, batch_size=40)
        assert status.position == head
        assert _documents(restarted) == _pure(restarted)


def test_other_rules_rebuild_the_views_with_their_hash(app: DealTrail) -> None:
    import_examples(app)
    app.update_views(RULES)
    strict = parse_rules("[follow_up]\nsla_business_hours = 1\n", "strict.toml")
    app.update_views(strict)
    assert app.view_status().rules_hash == strict.rules_hash
    assert _documents(app) == _pure(app, strict)
    assert _documents(app) != _pure(app, RULES)


def test_summaries_filter_by_status_owner_and_account(app: DealTrail) -> None:
    import_examples(app)
    lost_deals = [s.deal for s in app.summaries(RULES, status="lost").result]
    assert lost_deals == [
        "BRIGHTWATER-2026-01",
        "CALLOWAY-2026-05",
        "KESTREL-2026-02",
        "PRAIRIE-2026-04",
        "VANDIJK-2026-02",
        "VOGEL-2026-03",
    ]
    by_account = app.summaries(RULES, account="Van Dijk Installatietechniek").result
    assert [s.deal for s in by_account] == ["VANDIJK-2026-01", "VANDIJK-2026-02"]
    by_owner = app.summaries(RULES, owner="nina.park").result
    assert [s.deal for s in by_owner] == ["PACIFICCREST-2026-06"]


def test_following_keeps_the_views_current(store_url: str, clock: Clock) -> None:
    with (
        DealTrail(store_url, clock=clock) as app,
        DealTrail(store_url, clock=clock) as writer,
    ):
        stop = threading.Event()
        follower = threading.Thread(
            target=app.follow_views, args=(RULES, stop), kwargs={"poll_seconds": 0.05}
        )
        follower.start()
        try:
            writer.record(opened())
            writer.record(touch("t1"))
            deadline = time.monotonic() + 20
            while (
                app.views.position() < writer.position() and time.monotonic() < deadline
            ):
                time.sleep(0.05)
            assert app.views.position() == writer.position() == 2
            assert _documents(app) == _pure(writer)
        finally:
            stop.set()
            follower.join(timeout=10)
        assert not follower.is_alive()


# Property: for random histories, including out-of-order business time,
# corrections and retractions, the view updated event by event equals a full
# rebuild equals the pure function over all events.

BASE = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CONTACTS = ["ana@buyer.example", "ben@buyer.example", "cy@buyer.example"]


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    events: list[Event] = [opened(occurred_at=BASE.isoformat())]
    touchpoints: list[str] = []
    for n in range(draw(st.integers(min_value=1, max_value=14))):
        when = BASE + timedelta(hours=draw(st.integers(min_value=1, max_value=24 * 40)))
        kind = draw(
            st.sampled_from(["touch", "touch", "touch", "fix", "drop", "other"])
        )
        if kind == "touch" or not touchpoints:
            tp = f"t{n}"
            touchpoints.append(tp)
            events.append(
                touch(
                    tp,
                    occurred_at=when.isoformat(),
                    direction=draw(
                        st.sampled_from(["inbound", "outbound", "outbound"])
                    ),
                    channel=draw(st.sampled_from(["email", "call", "meeting"])),
                    participants=draw(st.lists(st.sampled_from(CONTACTS), max_size=2)),
                    outcome=draw(st.sampled_from([None, "no_answer", "connected"])),
                )
            )
        elif kind == "fix":
            events.append(
                TouchpointCorrected(
                    deal="ACME-1",
                    occurred_at=when,
                    touchpoint=draw(st.sampled_from(touchpoints)),
                    touchpoint_occurred_at=BASE + timedelta(hours=n * 7),
                    direction=draw(st.sampled_from(["inbound", "outbound"])),
                )
            )
        elif kind == "drop":
            events.append(
                TouchpointRetracted(
                    deal="ACME-1",
                    occurred_at=when,
                    touchpoint=draw(st.sampled_from(touchpoints)),
                    reason="wrong deal",
                )
            )
        else:
            events.append(
                draw(
                    st.sampled_from(
                        [
                            stage("proposal", occurred_at=when.isoformat()),
                            joined("ana@buyer.example", "champion"),
                            NextStepSet(
                                deal="ACME-1",
                                occurred_at=when,
                                description="Call back",
                                due=(when + timedelta(days=3)).date(),
                                owner="sam",
                            ),
                        ]
                    )
                )
            )
    return events


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(histories())
def test_incremental_views_equal_a_rebuild_equal_the_pure_function(
    events: list[Event],
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        clock = Clock(datetime(2026, 12, 1, tzinfo=UTC))
        with DealTrail(f"sqlite:///{scratch}/p.db", clock=clock) as app:
            for event in events:
                try:
                    app.record(event)
                except DomainError:
                    continue  # e.g. a second retraction: refused, as it should be
                app.update_views(RULES)
            incremental = _documents(app)
            app.update_views(RULES, rebuild=True, batch_size=3)
            assert _documents(app) == incremental == _pure(app)


def _touch_on(app: DealTrail, deal: str, touchpoint: str) -> None:
    app.record(touch(touchpoint, deal=deal, occurred_at="2026-09-01T10:00:00+02:00"))


def test_a_rebuild_while_a_batch_is_computed_leaves_whole_views(
    store_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with DealTrail(store_url, clock=clock) as a, DealTrail(store_url, clock=clock) as b:
        import_examples(a)
        a.update_views(RULES)
        _touch_on(a, "KESTREL-2026-02", "late-1")
        summarise_row = a._summary_row
        rebuilt: list[int] = []

        def rebuild_meanwhile(history: Any, rules: RuleSet) -> Any:
            if not rebuilt:
                # Another runner rebuilds, and more is recorded, while this
                # runner's batch is being computed.
                rebuilt.append(b.update_views(RULES, rebuild=True).position)
                _touch_on(b, "VOGEL-2026-03", "late-2")
            return summarise_row(history, rules)

        monkeypatch.setattr(a, "_summary_row", rebuild_meanwhile)
        status = a.update_views(RULES)
        assert rebuilt
        assert status.position == a.position()
        assert _documents(a) == _pure(a)


def test_a_batch_saved_while_the_views_are_built_leaves_whole_views(
    store_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with DealTrail(store_url, clock=clock) as a, DealTrail(store_url, clock=clock) as b:
        import_examples(a)
        a.update_views(RULES)
        summarise_row = b._summary_row
        moved: list[int] = []

        def update_meanwhile(history: Any, rules: RuleSet) -> Any:
            if not moved:
                # While this runner builds, another records and updates.
                _touch_on(a, "KESTREL-2026-02", "late-1")
                moved.append(a.update_views(RULES).position)
            return summarise_row(history, rules)

        monkeypatch.setattr(b, "_summary_row", update_meanwhile)
        b.update_views(RULES, rebuild=True)
        assert moved
        # Whichever committed last, the views are whole at their position,
        # and catching up brings them to the head.
        a.update_views(RULES)
        assert _documents(a) == _pure(a)


def test_a_batch_is_saved_only_where_it_started_and_under_its_rules(
    app: DealTrail,
) -> None:
    import_examples(app)
    app.update_views(RULES)
    views, head = app.views, app.position()
    row = ViewRow(deal="X-1", account="X", owner="sam", status="open", document=b"{}")
    other = parse_rules("[follow_up]\nsla_business_hours = 1\n", "strict.toml")
    # A runner that started before the views moved, or under other rules,
    # would write rows older than the position: nothing is written.
    for after, rules_hash in [(head - 1, RULES.rules_hash), (head, other.rules_hash)]:
        with pytest.raises(IntegrityError):
            views.save(
                [row],
                Tracking(VIEW, head + 1),
                after=after,
                rules_hash=rules_hash,
            )
        assert views.position() == head
        assert b"{}" not in _documents(app)
    views.save([row], Tracking(VIEW, head + 1), after=head, rules_hash=RULES.rules_hash)
    assert views.position() == head + 1

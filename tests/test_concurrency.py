"""Several processes appending to the same deal never lose an event."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier

import pytest

from engine.application import DealTrail
from tests.factories import opened, touch

WORKERS = 4
TOUCHES_EACH = 25


def _append(url: str, worker: int, barrier: Barrier) -> None:
    app = DealTrail(url)
    barrier.wait(timeout=20)
    for i in range(TOUCHES_EACH):
        app.record(
            touch(
                f"w{worker}-{i:02d}",
                occurred_at=f"2026-03-{2 + i % 20:02d}T{9 + worker:02d}:00:00+01:00",
            )
        )
    app.close()


@pytest.mark.parametrize(
    "store", ["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.postgres)]
)
def test_concurrent_writers_to_one_deal_lose_no_event(
    store: str, request: pytest.FixtureRequest
) -> None:
    url: str = request.getfixturevalue(store)
    with DealTrail(url) as app:
        app.record(opened())
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(WORKERS)
    workers = [
        spawn.Process(target=_append, args=(url, w, barrier)) for w in range(WORKERS)
    ]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
    assert [p.exitcode for p in workers] == [0] * WORKERS

    with DealTrail(url) as app:
        history = app.history("ACME-1")
    assert [r.originator_version for r in history] == list(
        range(1, 2 + WORKERS * TOUCHES_EACH)
    )
    touchpoints = sorted(r.event.touchpoint for r in history[1:])  # type: ignore[attr-defined]
    assert touchpoints == sorted(
        f"w{w}-{i:02d}" for w in range(WORKERS) for i in range(TOUCHES_EACH)
    )

"""An import's memory does not grow with its input.

The input is generated lazily, so only the importer could hold it. Python
allocations are traced (SQLite's own page cache is not, and is bounded by
its settings). The benchmark (bench/run.py) reports the peak RSS of a
1,000,000-event import; docs/performance.md records it.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.application import DealTrail
from engine.importing.native import dump_line
from tests.conftest import Clock
from tests.factories import opened, touch

PER_DEAL = 20


def _lines(deals: int) -> Iterator[bytes]:
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    # Deals interleaved, as a CRM export in time order would have them.
    yield from (dump_line(opened(f"D-{d:05d}")) for d in range(deals))
    for step in range(PER_DEAL):
        at = (start + timedelta(hours=step + 1)).isoformat()
        for d in range(deals):
            yield dump_line(touch(f"t{step}", deal=f"D-{d:05d}", occurred_at=at))


def _peak_import(tmp_path: Path, deals: int) -> int:
    clock = Clock(datetime(2026, 12, 1, tzinfo=UTC))
    with DealTrail(f"sqlite:///{tmp_path / f'{deals}.db'}", clock=clock) as app:
        tracemalloc.start()
        try:
            result = app.import_native([("big.jsonl", _lines(deals))])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert result.total_recorded == deals * (PER_DEAL + 1)
        assert app.position() == deals * (PER_DEAL + 1)
    return peak


def test_import_memory_stays_flat_as_the_input_grows(tmp_path: Path) -> None:
    small = _peak_import(tmp_path, 60)
    large = _peak_import(tmp_path, 600)
    # Ten times the events (about 2 MB of lines, and far more as objects).
    # What may grow: the set of new deal keys, and pydantic's cache of
    # recently seen strings, which is capped at 16,384 entries.
    assert large - small < 1_000_000, (small, large)

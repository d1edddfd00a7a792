"""A store written by an earlier version stays readable, byte for byte."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import orjson

from engine.application import DealTrail

FIXTURES = Path(__file__).parent / "fixtures"


def _timeline_document(app: DealTrail) -> bytes:
    events = [
        r.event.model_dump(mode="json", exclude_none=True)
        for r in app.timeline("FIX-1")
    ]
    return (
        orjson.dumps(
            {"deal": "FIX-1", "events": events},
            option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
        )
        + b"\n"
    )


def test_the_v1_fixture_store_reads_back_its_reviewed_timeline(tmp_path: Path) -> None:
    copy = tmp_path / "store-v1.db"
    shutil.copy(FIXTURES / "store-v1.db", copy)
    with DealTrail(f"sqlite:///{copy}") as app:
        assert app.deal_keys() == ["FIX-1"]
        assert app.position() == 22
        assert (
            _timeline_document(app)
            == (FIXTURES / "store-v1.timeline.json").read_bytes()
        )


def test_the_v1_fixture_store_names_events_by_type_not_by_module() -> None:
    with sqlite3.connect(f"file:{FIXTURES / 'store-v1.db'}?mode=ro", uri=True) as conn:
        topics = {row[0] for row in conn.execute("SELECT topic FROM stored_events")}
    assert "TouchpointLogged" in topics
    assert all(":" not in topic and "." not in topic for topic in topics)

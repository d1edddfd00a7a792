"""Golden audits of the example stories: each names its lesson, with evidence.

The golden files were reviewed by eye when written. To rewrite them after a
deliberate change, run with DEALTRAIL_WRITE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from engine.application import DealTrail
from engine.rules import RuleSet
from tests.conftest import Clock
from tests.factories import import_examples

ROOT = Path(__file__).parent.parent
GOLDEN = Path(__file__).parent / "golden" / "audit"
# Open deals are audited as of this time (a pre-mortem), closed ones at their close.
PRE_MORTEM_AT = datetime(2026, 11, 1, tzinfo=UTC)

LESSONS = {
    "BRIGHTWATER-2026-01": "Strike while the iron is hot",
    "KESTREL-2026-02": "There is no rubber stamp",
    "VOGEL-2026-03": "Follow up just right",
    "PRAIRIE-2026-04": "Follow up just right",
    "CALLOWAY-2026-05": "There is no rubber stamp",
    "VANDIJK-2026-02": "Do not neglect current customers",
}


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DealTrail]:
    store = tmp_path_factory.mktemp("examples") / "examples.db"
    clock = Clock(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    with DealTrail(f"sqlite:///{store}", clock=clock) as app:
        import_examples(app)
        yield app


def _audit_json(app: DealTrail, key: str) -> bytes:
    analysis = app.audit(
        key, RuleSet(), at=None if _closed(app, key) else PRE_MORTEM_AT
    )
    document = analysis.result.model_dump(mode="json") | {"position": analysis.position}
    return (
        orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        + b"\n"
    )


def _closed(app: DealTrail, key: str) -> bool:
    (summary,) = [s for s in app.summaries(RuleSet()).result if s.deal == key]
    return summary.status != "open"


KEYS = [
    "BRIGHTWATER-2026-01",
    "CALLOWAY-2026-05",
    "KESTREL-2026-02",
    "NORDLYS-2026-08",
    "PACIFICCREST-2026-06",
    "PRAIRIE-2026-04",
    "VANDIJK-2026-01",
    "VANDIJK-2026-02",
    "VOGEL-2026-03",
]


def test_the_examples_hold_exactly_these_deals(examples: DealTrail) -> None:
    assert examples.deal_keys() == KEYS


@pytest.mark.parametrize("key", KEYS)
def test_the_audit_of_each_story_matches_its_reviewed_golden_file(
    examples: DealTrail, key: str
) -> None:
    produced = _audit_json(examples, key)
    golden = GOLDEN / f"{key}.json"
    if os.environ.get("DEALTRAIL_WRITE_GOLDEN") == "1":
        golden.write_bytes(produced)
    assert produced == golden.read_bytes()


@pytest.mark.parametrize(("key", "lesson"), sorted(LESSONS.items()))
def test_each_lost_story_names_its_lesson(
    examples: DealTrail, key: str, lesson: str
) -> None:
    verdict = examples.audit(key, RuleSet()).result.verdict
    assert verdict.lesson == lesson
    assert verdict.top, "a lesson needs findings that support it"
    assert all(finding.evidence for finding in verdict.top)


def test_the_multi_threaded_win_has_no_high_severity_finding(
    examples: DealTrail,
) -> None:
    result = examples.audit("PACIFICCREST-2026-06", RuleSet()).result
    assert result.status == "won"
    assert [f.rule for f in result.findings if f.severity == "high"] == []


def test_the_late_logged_open_deal_shows_logging_lag(examples: DealTrail) -> None:
    result = examples.audit("NORDLYS-2026-08", RuleSet(), at=PRE_MORTEM_AT).result
    assert result.status == "open"
    assert "logging_lag" in {f.rule for f in result.findings}


def test_auditing_every_lost_deal_covers_the_six_losses(examples: DealTrail) -> None:
    audits = examples.audits(RuleSet()).result
    assert [a.deal for a in audits] == sorted(LESSONS)

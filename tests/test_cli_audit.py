"""The audit, replay, accounts and backtest commands, on the example stories."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from engine.application import DealTrail
from tests.conftest import Clock
from tests.factories import import_examples, lost, opened

ROOT = Path(__file__).parent.parent
RUNNER = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit") / "examples.db"
    clock = Clock(datetime(2026, 12, 1, tzinfo=UTC))
    with DealTrail(f"sqlite:///{path}", clock=clock) as app:
        import_examples(app)
    return path


def run(store: Path, *args: str) -> Result:
    result = RUNNER.invoke(
        cli, ["--store", f"sqlite:///{store}", *args], catch_exceptions=False
    )
    return result


def ok(store: Path, *args: str) -> str:
    result = run(store, *args)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_audit_of_one_lost_deal_shows_its_lesson_and_evidence(store: Path) -> None:
    text = ok(store, "audit", "BRIGHTWATER-2026-01")
    assert text.startswith("BRIGHTWATER-2026-01  Brightwater Logistics")
    assert "Lesson: Strike while the iron is hot" in text
    assert (
        "slow_follow_up: The meeting of Thu 15 Jan was followed up 5 business days "
        "later, on Thu 22 Jan. [brightwater-t04, brightwater-t06]"
    ) in text
    assert "competitor: Routewise" in text


def test_audit_json_matches_the_golden_audit(store: Path) -> None:
    shown = json.loads(ok(store, "audit", "KESTREL-2026-02", "--format", "json"))
    golden = json.loads((ROOT / "tests/golden/audit/KESTREL-2026-02.json").read_text())
    assert shown == golden


def test_audit_lost_lists_every_lost_deal_and_filters(store: Path) -> None:
    audits = json.loads(ok(store, "audit", "--lost", "--format", "json"))["audits"]
    assert [a["deal"] for a in audits] == [
        "BRIGHTWATER-2026-01",
        "CALLOWAY-2026-05",
        "KESTREL-2026-02",
        "PRAIRIE-2026-04",
        "VANDIJK-2026-02",
        "VOGEL-2026-03",
    ]
    since = json.loads(
        ok(store, "audit", "--lost", "--since", "2026-06-01", "--format", "json")
    )
    assert [a["deal"] for a in since["audits"]] == [
        "CALLOWAY-2026-05",
        "PRAIRIE-2026-04",
        "VANDIJK-2026-02",
    ]
    owner = json.loads(
        ok(store, "audit", "--lost", "--owner", "kevin.walsh", "--format", "json")
    )
    assert [a["deal"] for a in owner["audits"]] == ["PRAIRIE-2026-04"]
    account = ok(store, "audit", "--lost", "--account", "Vogel Maschinenbau GmbH")
    assert account.startswith("VOGEL-2026-03")


def test_audit_lost_leaves_out_deals_not_yet_known_at_as_known_at(
    tmp_path: Path,
) -> None:
    path = tmp_path / "two.db"
    clock = Clock(datetime(2026, 4, 2, tzinfo=UTC))
    with DealTrail(f"sqlite:///{path}", clock=clock) as app:
        for key in ("EARLY-1", "LATE-1"):
            app.record(opened(key))
            app.record(lost(key))
            clock.advance(days=30)
    args = ("audit", "--lost", "--format", "json", "--as-known-at")
    audits = json.loads(ok(path, *args, "2026-04-03T00:00:00Z"))["audits"]
    assert [a["deal"] for a in audits] == ["EARLY-1"]
    assert json.loads(ok(path, *args, "2026-01-01T00:00:00Z"))["audits"] == []


def test_audit_markdown_is_a_report_with_a_table_per_deal(store: Path) -> None:
    report = ok(store, "audit", "--lost", "--format", "markdown")
    assert report.startswith(
        "# Deal audit\n\n| Deal | Account | Owner | Status | Lesson |"
    )
    assert "## VOGEL-2026-03: Vogel Maschinenbau - maintenance planning" in report
    assert "| When visible | Severity | Finding | Evidence |" in report
    assert report.count("\n## ") == 6


def test_an_open_deal_gets_a_pre_mortem_at_the_evaluation_time(store: Path) -> None:
    early = json.loads(
        ok(
            store,
            "audit",
            "NORDLYS-2026-08",
            "--at",
            "2026-09-20T00:00:00Z",
            "--format",
            "json",
        )
    )
    late = json.loads(
        ok(
            store,
            "audit",
            "NORDLYS-2026-08",
            "--at",
            "2026-11-01T00:00:00Z",
            "--format",
            "json",
        )
    )
    assert early["status"] == late["status"] == "open"
    assert len(early["findings"]) < len(late["findings"])
    assert all(
        f["visible_at"] <= "2026-09-20T02:00:00+02:00" for f in early["findings"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "error: give a deal KEY or --lost, not both and not neither"),
        (
            ("X-1", "--lost"),
            "error: give a deal KEY or --lost, not both and not neither",
        ),
        (
            ("X-1", "--since", "2026-01-01"),
            "error: --since, --owner and --account go with --lost",
        ),
        (
            ("--lost", "--since", "May"),
            "error: --since: 'May' is not a date (YYYY-MM-DD)",
        ),
        (("NOPE",), "error: unknown deal 'NOPE'; open it first"),
    ],
)
def test_audit_bad_input_is_one_line(
    store: Path, args: tuple[str, ...], message: str
) -> None:
    result = run(store, "audit", *args)
    assert result.exit_code == 1
    assert (result.stdout, result.stderr) == ("", message + "\n")


def test_replay_prints_every_step_with_changes_findings_and_notes(store: Path) -> None:
    text = ok(store, "replay", "VOGEL-2026-03")
    assert text.startswith("Replay of deal VOGEL-2026-03")
    steps = re.findall(r"^\[(\d+)\] ", text, flags=re.M)
    assert steps == [str(i) for i in range(1, len(steps) + 1)]
    assert "    stage: prospecting -> qualification" in text
    assert (
        "    + high: Katrin Schulz asked on Wed 8 Apr to be contacted from Mon 20 Apr"
        in text
    )
    assert "    note from petra.kraus: 1:1 with Jonas" in text


def test_replay_shows_account_neglect_where_it_became_visible(store: Path) -> None:
    steps = json.loads(ok(store, "replay", "VANDIJK-2026-02", "--format", "json"))[
        "steps"
    ]
    appeared = [(s["index"], f["rule"]) for s in steps for f in s["appeared"]]
    assert (1, "account_neglect") in appeared


def test_replay_json_steps_and_until(store: Path) -> None:
    full = json.loads(ok(store, "replay", "VOGEL-2026-03", "--format", "json"))
    cut = json.loads(
        ok(
            store,
            "replay",
            "VOGEL-2026-03",
            "--until",
            "2026-04-13T12:00:00+02:00",
            "--format",
            "json",
        )
    )
    assert len(cut["steps"]) == 8 < len(full["steps"])
    assert cut["steps"] == full["steps"][:8]
    assert full["position"] == 254


def test_replay_without_a_terminal_ignores_interactive(store: Path) -> None:
    assert ok(store, "replay", "PRAIRIE-2026-04", "--interactive") == ok(
        store, "replay", "PRAIRIE-2026-04"
    )


def test_interactive_replay_steps_back_and_forth_in_a_terminal(store: Path) -> None:
    leader, follower = pty.openpty()
    env = os.environ | {"DEALTRAIL_STORE": f"sqlite:///{store}", "COLUMNS": "200"}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "replay", "PRAIRIE-2026-04", "--interactive"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        cwd=ROOT,
    )
    os.close(follower)
    seen = ""

    def read_until(text: str, times: int = 1) -> None:
        nonlocal seen
        deadline = time.monotonic() + 30
        while seen.count(text) < times and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(leader, 4096).decode()
                except OSError:
                    break
        assert seen.count(text) >= times, seen[-500:]

    try:
        read_until("-- step 1 of ")
        read_until("[Enter] next, p previous, q quit")
        os.write(leader, b"\n")
        read_until("-- step 2 of ")
        os.write(leader, b"p\n")
        read_until("-- step 1 of ", times=2)
        os.write(leader, b"q\n")
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)


def test_accounts_flags_the_neglected_customer(store: Path) -> None:
    shown = json.loads(
        ok(
            store,
            "accounts",
            "--at",
            "2026-12-01T00:00:00Z",
            "--neglected",
            "--format",
            "json",
        )
    )
    assert [a["account"] for a in shown["accounts"]] == ["Pacific Crest Utilities"]
    table = ok(store, "accounts", "--at", "2026-12-04T00:00:00Z")
    rows = [re.split(r"\s{2,}", line.strip()) for line in table.splitlines()]
    assert rows[-2] == [
        "Van Dijk Installatietechniek",
        "2",
        "VANDIJK-2026-01",
        "2026-10-06T10:40+02:00",
        "59",
    ]
    boundary = ok(store, "accounts", "--at", "2026-12-05T00:00:00Z")
    assert "Van Dijk Installatietechniek" in boundary
    assert next(line for line in boundary.splitlines() if "Van Dijk" in line).endswith(
        "60  NEGLECTED"
    )
    result = run(store, "accounts", "--at", "2026-06-01T00:00:00Z")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: accounts are judged on everything recorded")


def test_backtest_reports_every_rule_against_lost_and_won_deals(store: Path) -> None:
    shown = json.loads(ok(store, "backtest", "--format", "json"))
    assert (shown["lost_total"], shown["won_total"], shown["open_excluded"]) == (
        6,
        2,
        1,
    )
    by_rule = {r["rule"]: r for r in shown["rules"]}
    assert by_rule["rubber_stamp"]["fired_on_lost"] == 1
    assert by_rule["rubber_stamp"]["fired_on_won"] == 0
    assert by_rule["rubber_stamp"]["precision"] == 1.0
    assert by_rule["account_neglect"]["fired_on_lost"] == 1
    since = json.loads(
        ok(store, "backtest", "--since", "2026-06-01", "--format", "json")
    )
    assert since["before_since_excluded"] == 5
    assert "RULE" in ok(store, "backtest")


def test_the_quickstart_script_ends_with_the_audit(tmp_path: Path) -> None:
    script = (ROOT / "examples/quickstart.sh").read_text()
    assert script.rstrip().endswith("dealtrail audit --lost")
    assert shutil.which("bash")

"""Salesforce data export bundles: the example bundle, its mapping, bad bundles.

The example bundle in examples/salesforce/ is the fixture. Each deal's
events, as native lines, are kept in tests/golden/salesforce/, reviewed by
eye against the bundle when written; to rewrite them after a deliberate
change, run with DEALTRAIL_WRITE_GOLDEN=1 and review the diff. Variants of
the bundle (a bad date, a missing file...) are edited copies in tmp_path.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from engine.errors import InputError
from engine.events import DealLost, Event, Role, TouchpointLogged
from engine.importing.native import ImportItem, LineError, Located, dump_line
from engine.importing.salesforce import NO_LOSS_REASON, Bundle

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "salesforce"
GOLDEN = Path(__file__).parent / "golden" / "salesforce"
# After every activity in the bundle: nothing is skipped as not yet happened.
NOW = datetime(2026, 11, 1, tzinfo=UTC)

LOST, WON, OPEN, LOST_SILENTLY = (
    "0065g00000Opp01AAA",
    "0065g00000Opp02AAA",
    "0065g00000Opp03AAA",
    "0065g00000Opp04AAA",
)
DEALS = [LOST, WON, OPEN, LOST_SILENTLY]
IMPORTED = (
    "imported 59 events (2 DealLost, 4 DealOpened, 7 DealUpdated, 1 DealWon, "
    "7 StageChanged, 9 StakeholderJoined, 29 TouchpointLogged) "
    "on 4 new and 0 existing deals; 0 already recorded; skipped 4 rows "
    "(2 Task.csv rows not on an exported opportunity, "
    "1 Task.csv to-dos (open, or no channel in Type), "
    "1 history rows of opportunities not in Opportunity.csv)"
)
RUNNER = CliRunner()


# Reading


def bundle(folder: Path = EXAMPLE, **options: Any) -> Bundle:
    return Bundle(folder, now=options.pop("now", NOW), **options)


def read(folder: Path = EXAMPLE, **options: Any) -> list[ImportItem]:
    return list(bundle(folder, **options).items())


def events(items: list[ImportItem]) -> list[Event]:
    errors = [str(item) for item in items if isinstance(item, LineError)]
    assert errors == []
    return [item.event for item in items if isinstance(item, Located)]


def errors(items: list[ImportItem]) -> list[str]:
    return [str(item) for item in items if isinstance(item, LineError)]


def of_deal(items: list[ImportItem], deal: str) -> list[Event]:
    return [e for e in events(items) if e.deal == deal]


def lines_of(evts: list[Event]) -> bytes:
    return b"".join(dump_line(e) for e in evts)


# Editing copies of the bundle


@pytest.fixture
def export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example bundle at ./export, in a fresh working folder."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(EXAMPLE, tmp_path / "export")
    return Path("export")


def edit(path: Path, change: Callable[[list[list[str]]], None]) -> None:
    """Rewrite a CSV file of the bundle (header first) through ``change``."""
    text = path.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    change(rows)
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


def set_cell(path: Path, line: int, column: str, value: str) -> None:
    """Set one cell; ``line`` is the physical line (the header is line 1)."""

    def change(rows: list[list[str]]) -> None:
        rows[line - 1][rows[0].index(column)] = value

    edit(path, change)


def drop_column(path: Path, column: str) -> None:
    def change(rows: list[list[str]]) -> None:
        index = rows[0].index(column)
        for row in rows:
            del row[index]

    edit(path, change)


def add_column(path: Path, column: str, value: str) -> None:
    def change(rows: list[list[str]]) -> None:
        rows[0].append(column)
        for row in rows[1:]:
            row.append(value)

    edit(path, change)


def add_row(path: Path, **cells: str) -> None:
    def change(rows: list[list[str]]) -> None:
        rows.append([cells.get(column, "") for column in rows[0]])

    edit(path, change)


def edit_row_copy(path: Path, line: int, **cells: str) -> int:
    """Append a copy of a row with some cells changed; the copy's line."""
    lines: list[int] = []

    def change(rows: list[list[str]]) -> None:
        copy = list(rows[line - 1])
        for column, value in cells.items():
            copy[rows[0].index(column)] = value
        rows.append(copy)
        lines.append(len(rows))

    edit(path, change)
    return lines[0]


# The CLI


def invoke(store: Path, *args: str) -> Result:
    return RUNNER.invoke(
        cli,
        ["--store", f"sqlite:///{store}", *args],
        env={"DEALTRAIL_STORE": None, "DEALTRAIL_ACTOR": None},
        catch_exceptions=False,
    )


def succeeds(result: Result) -> str:
    """The one stderr line of a command that succeeded without printing data."""
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr.rstrip("\n")


def fails(result: Result) -> list[str]:
    """The stderr lines of a command that failed, the last one its error."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("error: "), lines
    return lines


def store_state(store: Path) -> Any:
    """Every deal key and the store's position, as `deal list` reports them."""
    listed = json.loads(invoke(store, "deal", "list", "--format", "json").stdout)
    return [d["deal"] for d in listed["deals"]], listed["position"]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store that already holds one deal of the native examples."""
    path = tmp_path / "store.db"
    succeeds(
        invoke(
            path, "import", str(ROOT / "examples" / "04-gave-up-after-one-try.jsonl")
        )
    )
    return path


# The example bundle


@pytest.mark.parametrize("deal", DEALS)
def test_each_opportunity_reads_into_its_reviewed_golden_timeline(deal: str) -> None:
    produced = lines_of(of_deal(read(), deal))
    golden = GOLDEN / f"{deal}.jsonl"
    if os.environ.get("DEALTRAIL_WRITE_GOLDEN") == "1":
        golden.write_bytes(produced)
    assert produced == golden.read_bytes()


def test_the_bundle_imports_into_the_golden_timelines(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    assert succeeds(invoke(store, "import", str(EXAMPLE))) == IMPORTED
    for deal in DEALS:
        result = invoke(store, "timeline", deal, "--format", "jsonl")
        assert result.exit_code == 0, result.stderr
        golden = (GOLDEN / f"{deal}.jsonl").read_text(encoding="utf-8")
        assert [json.loads(line) for line in result.stdout.splitlines()] == [
            json.loads(line) for line in golden.splitlines()
        ]


def test_importing_the_bundle_again_adds_nothing(store: Path) -> None:
    succeeds(invoke(store, "import", str(EXAMPLE)))
    before = store_state(store)
    assert succeeds(invoke(store, "import", str(EXAMPLE))).startswith(
        "imported 0 events on 0 new and 4 existing deals; 59 already recorded; "
        "skipped 4 rows"
    )
    assert store_state(store) == before


def test_a_dry_run_reports_the_import_and_writes_nothing(store: Path) -> None:
    before = store_state(store)
    assert succeeds(invoke(store, "import", "--dry-run", str(EXAMPLE))) == (
        IMPORTED.replace("imported", "would import", 1)
    )
    assert store_state(store) == before


def test_reading_the_bundle_twice_gives_identical_lines() -> None:
    assert lines_of(events(read())) == lines_of(events(read()))


def test_every_opportunity_opens_before_anything_else_of_its_deal() -> None:
    seen: set[str] = set()
    for event in events(read()):
        if event.type == "DealOpened":
            seen.add(event.deal)
        assert event.deal in seen, event


def test_rows_that_become_no_event_are_counted_by_reason() -> None:
    read_bundle = bundle()
    list(read_bundle.items())
    assert dict(read_bundle.skipped) == {
        "Task.csv rows not on an exported opportunity": 2,
        "Task.csv to-dos (open, or no channel in Type)": 1,
        "history rows of opportunities not in Opportunity.csv": 1,
    }


# The mapping


def test_a_call_logged_days_later_keeps_its_activity_date_and_logging_time() -> None:
    (call,) = [
        e
        for e in of_deal(read(), LOST)
        if isinstance(e, TouchpointLogged) and e.touchpoint == "00T5g00000Tsk04AAA"
    ]
    assert call.occurred_at == datetime(2026, 2, 2, 12, tzinfo=UTC)
    assert call.logged_at == datetime(2026, 2, 5, 16, 20, tzinfo=UTC)
    assert (call.channel, call.direction, call.duration_minutes) == (
        "call",
        "inbound",
        9,
    )
    assert call.source == "salesforce:Task/00T5g00000Tsk04AAA"


def test_dates_without_a_time_are_read_at_noon_in_the_given_time_zone() -> None:
    oslo = ZoneInfo("Europe/Oslo")
    lost = of_deal(read(timezone=oslo), LOST)
    assert lost[0].type == "DealOpened"
    assert lost[0].native()["timezone"] == "Europe/Oslo"
    (call,) = [
        e
        for e in lost
        if isinstance(e, TouchpointLogged) and e.touchpoint == "00T5g00000Tsk04AAA"
    ]
    assert call.occurred_at == datetime(2026, 2, 2, 12, tzinfo=oslo)


def test_an_email_is_inbound_when_its_email_message_is_incoming() -> None:
    directions = {
        e.touchpoint: e.direction
        for e in of_deal(read(), LOST)
        if isinstance(e, TouchpointLogged) and e.channel == "email"
    }
    assert directions == {
        "00T5g00000Tsk01AAA": "outbound",
        "00T5g00000Tsk02AAA": "inbound",
        "00T5g00000Tsk05AAA": "outbound",
        "00T5g00000Tsk06AAA": "outbound",
        "00T5g00000Tsk08AAA": "inbound",
        "00T5g00000Tsk10AAA": "inbound",
    }


def test_without_email_messages_every_email_is_outbound(export: Path) -> None:
    (export / "EmailMessage.csv").unlink()
    emails = [
        e
        for e in events(read(export))
        if isinstance(e, TouchpointLogged) and e.channel == "email"
    ]
    assert emails
    assert {e.direction for e in emails} == {"outbound"}


@pytest.mark.parametrize(
    ("value", "role"),
    [
        ("Decision Maker", Role.DECISION_MAKER),
        ("Economic Buyer", Role.ECONOMIC_BUYER),
        ("Economic Decision Maker", Role.ECONOMIC_BUYER),
        ("Technical Buyer", Role.TECHNICAL_EVALUATOR),
        ("Evaluator", Role.TECHNICAL_EVALUATOR),
        ("Influencer", Role.INFLUENCER),
        ("Executive Sponsor", Role.CHAMPION),
        ("Business User", Role.USER),
        ("Other", Role.OTHER),
        ("", Role.OTHER),
        ("Champion", Role.CHAMPION),
        ("technical_evaluator", Role.TECHNICAL_EVALUATOR),
        ("  economic  BUYER ", Role.ECONOMIC_BUYER),
    ],
)
def test_each_salesforce_contact_role_maps_onto_a_role(
    export: Path, value: str, role: Role
) -> None:
    set_cell(export / "OpportunityContactRole.csv", 2, "Role", value)
    joined = [e for e in of_deal(read(export), LOST) if e.type == "StakeholderJoined"]
    assert joined[0].native()["contact"] == "ingrid.saether@alesund-sjomat.example"
    assert joined[0].native()["role"] == role.value


def test_a_later_contact_role_row_with_another_role_changes_the_role(
    export: Path,
) -> None:
    role_file = export / "OpportunityContactRole.csv"
    for role, at in (
        ("Decision Maker", "2026-03-01"),
        ("Decision Maker", "2026-03-02"),
    ):
        add_row(
            role_file,
            Id=f"00K5g00000Ocr{at[-2:]}BBB",
            OpportunityId=LOST,
            ContactId="0035g00000Con01AAA",
            Role=role,
            CreatedDate=f"{at}T10:00:00.000Z",
        )
    bundle_read = bundle(export)
    changes = [
        e.native()
        for e in events(list(bundle_read.items()))
        if e.type == "StakeholderRoleChanged"
    ]
    assert changes == [
        {
            "type": "StakeholderRoleChanged",
            "deal": LOST,
            "occurred_at": "2026-03-01T10:00:00Z",
            "logged_at": "2026-03-01T10:00:00Z",
            "source": "salesforce:OpportunityContactRole/00K5g00000Ocr01BBB",
            "contact": "ingrid.saether@alesund-sjomat.example",
            "role": "decision_maker",
        }
    ]
    assert bundle_read.skipped["contact roles repeating a role"] == 1


def test_the_loss_reason_can_come_from_a_custom_field(export: Path) -> None:
    def rename(rows: list[list[str]]) -> None:
        rows[0][rows[0].index("LossReason")] = "Loss_Reason__c"

    edit(export / "Opportunity.csv", rename)
    losses = [e for e in events(read(export)) if isinstance(e, DealLost)]
    assert [e.reason for e in losses] == [NO_LOSS_REASON, NO_LOSS_REASON]
    mapped = read(export, loss_reason_field="Loss_Reason__c")
    reasons = [e.reason for e in events(mapped) if isinstance(e, DealLost)]
    assert reasons[0].startswith("Stayed with the incumbent")


def test_a_loss_reason_field_that_is_not_exported_is_refused(export: Path) -> None:
    with pytest.raises(InputError) as raised:
        read(export, loss_reason_field="Loss_Reason__c")
    assert str(raised.value) == "export/Opportunity.csv:1: no Loss_Reason__c column"


def test_a_closed_opportunity_without_history_closes_at_noon_on_its_close_date(
    export: Path,
) -> None:
    def without_opp04(rows: list[list[str]]) -> None:
        rows[:] = [row for row in rows if LOST_SILENTLY not in row]

    edit(export / "OpportunityHistory.csv", without_opp04)
    deal = of_deal(read(export), LOST_SILENTLY)
    assert deal[0].native()["stage"] == "closed_lost"
    (lost,) = [e for e in deal if isinstance(e, DealLost)]
    assert lost.occurred_at == datetime(2026, 6, 12, 12, tzinfo=UTC)
    assert lost.logged_at is None


def test_activities_that_have_not_happened_yet_are_skipped() -> None:
    early = bundle(now=datetime(2026, 6, 2, tzinfo=UTC))
    meetings = [
        e
        for e in events(list(early.items()))
        if isinstance(e, TouchpointLogged) and e.deal == OPEN
    ]
    assert "00U5g00000Evt05AAA" not in {e.touchpoint for e in meetings}
    assert early.skipped["activities that have not happened yet"] == 2


def test_deleted_rows_and_invitees_copies_of_events_are_skipped(export: Path) -> None:
    set_cell(export / "Task.csv", 5, "IsDeleted", "true")
    add_column(export / "Event.csv", "IsChild", "false")
    copy = edit_row_copy(export / "Event.csv", 2, Id="00U5g00000Evt01BBB")
    set_cell(export / "Event.csv", copy, "IsChild", "true")
    read_bundle = bundle(export)
    touchpoints = {
        e.touchpoint
        for e in events(list(read_bundle.items()))
        if isinstance(e, TouchpointLogged)
    }
    assert "00T5g00000Tsk04AAA" not in touchpoints
    assert "00U5g00000Evt01AAA" in touchpoints
    assert "00U5g00000Evt01BBB" not in touchpoints
    assert read_bundle.skipped["Task.csv rows deleted in Salesforce"] == 1
    assert read_bundle.skipped["Event.csv invitees' copies of events"] == 1


def test_an_event_longer_than_a_day_is_kept_without_its_duration(
    export: Path,
) -> None:
    set_cell(export / "Event.csv", 2, "DurationInMinutes", "2880")
    day_long = edit_row_copy(export / "Event.csv", 2, Id="00U5g00000Evt01BBB")
    set_cell(export / "Event.csv", day_long, "DurationInMinutes", "1440")
    read_bundle = bundle(export)
    meetings = {
        e.touchpoint: e
        for e in events(list(read_bundle.items()))
        if isinstance(e, TouchpointLogged)
    }
    long = meetings["00U5g00000Evt01AAA"]
    assert long.duration_minutes is None
    assert long.occurred_at == meetings["00U5g00000Evt01BBB"].occurred_at
    assert meetings["00U5g00000Evt01BBB"].duration_minutes == 1440
    # Imported, so noted but not counted as skipped.
    assert dict(read_bundle.notes) == {
        "Event.csv events over a day, imported without their duration": 1
    }
    assert dict(read_bundle.skipped) == {
        "Task.csv rows not on an exported opportunity": 2,
        "Task.csv to-dos (open, or no channel in Type)": 1,
        "history rows of opportunities not in Opportunity.csv": 1,
    }
    line = succeeds(invoke(Path("s.db"), "import", str(export)))
    assert line.endswith(
        "; noted: 1 Event.csv events over a day, imported without their duration"
        "; skipped 4 rows (2 Task.csv rows not on an exported opportunity, "
        "1 Task.csv to-dos (open, or no channel in Type), "
        "1 history rows of opportunities not in Opportunity.csv)"
    )


def test_an_opportunity_listed_twice_is_a_bad_row(export: Path) -> None:
    line = edit_row_copy(export / "Opportunity.csv", 3)
    assert errors(read(export)) == [
        f"export/Opportunity.csv:{line}: Id: {WON} is already on line 3"
    ]


def test_naive_times_need_a_time_zone(export: Path) -> None:
    set_cell(export / "Event.csv", 2, "StartDateTime", "2026-01-27 09:00:00")
    assert errors(read(export)) == [
        "export/Event.csv:2: StartDateTime: naive timestamp '2026-01-27 09:00:00'; "
        "pass --timezone to say where it is"
    ]
    oslo = ZoneInfo("Europe/Oslo")
    (visit,) = [
        e
        for e in events(read(export, timezone=oslo))
        if isinstance(e, TouchpointLogged) and e.touchpoint == "00U5g00000Evt01AAA"
    ]
    assert visit.occurred_at == datetime(2026, 1, 27, 9, tzinfo=oslo)


def test_a_naive_time_the_clocks_skipped_is_a_bad_row(export: Path) -> None:
    oslo = ZoneInfo("Europe/Oslo")
    set_cell(export / "Event.csv", 2, "StartDateTime", "2026-03-29T02:30:00.000")
    set_cell(export / "Event.csv", 3, "StartDateTime", "2026-10-25T02:30:00.000")
    assert errors(read(export, timezone=oslo)) == [
        "export/Event.csv:2: StartDateTime: 2026-03-29 02:30 does not exist in "
        "Europe/Oslo (clocks moved forward)"
    ]
    set_cell(export / "Event.csv", 2, "StartDateTime", "2026-03-29T03:30:00.000")
    starts = {
        e.touchpoint: e.native()["occurred_at"]
        for e in events(read(export, timezone=oslo))
        if isinstance(e, TouchpointLogged)
    }
    # An ambiguous time is the earlier of the two, in summer time.
    assert starts["00U5g00000Evt01AAA"] == "2026-03-29T03:30:00+02:00"
    assert starts["00U5g00000Evt02AAA"] == "2026-10-25T02:30:00+02:00"


@pytest.mark.parametrize(
    ("file", "line", "column", "value", "expected"),
    [
        (
            "Task.csv",
            5,
            "CreatedDate",
            "05/02/2026 16:20",
            "export/Task.csv:5: CreatedDate: '05/02/2026 16:20' is not a date and "
            "time, e.g. 2026-03-02T10:00:00.000Z",
        ),
        (
            "Task.csv",
            5,
            "ActivityDate",
            "2026-02-30",
            "export/Task.csv:5: ActivityDate: '2026-02-30' is not a date, "
            "e.g. 2026-03-31",
        ),
        (
            "Task.csv",
            5,
            "CallType",
            "Sideways",
            "export/Task.csv:5: CallType: 'Sideways' is not Inbound, Outbound "
            "or Internal",
        ),
        (
            "Task.csv",
            5,
            "CallDurationInSeconds",
            "nine",
            "export/Task.csv:5: CallDurationInSeconds: 'nine' is not a whole number",
        ),
        (
            "Event.csv",
            3,
            "DurationInMinutes",
            "-30",
            "export/Event.csv:3: DurationInMinutes: Input should be greater than "
            "or equal to 0",
        ),
        (
            "Event.csv",
            3,
            "WhoId",
            "no such contact",
            "export/Event.csv:3: WhoId: 'no such contact' is not an email or a CRM "
            "id (it has spaces)",
        ),
        (
            "Opportunity.csv",
            3,
            "IsWon",
            "maybe",
            "export/Opportunity.csv:3: IsWon: 'maybe' is not true or false",
        ),
        (
            "Opportunity.csv",
            3,
            "Name",
            "",
            "export/Opportunity.csv:3: Name: must not be empty",
        ),
        (
            "OpportunityHistory.csv",
            4,
            "Amount",
            "lots",
            "export/OpportunityHistory.csv:4: Amount: 'lots' is not a number",
        ),
        (
            "OpportunityContactRole.csv",
            3,
            "Role",
            "Chief Decider",
            "export/OpportunityContactRole.csv:3: Role: unknown role 'Chief Decider'; "
            "expected one of Decision Maker, Economic Buyer, Economic Decision Maker, "
            "Technical Buyer, Evaluator, Influencer, Executive Sponsor, Business "
            "User, Other",
        ),
    ],
)
def test_a_bad_row_is_reported_with_its_file_line_and_column(
    export: Path, file: str, line: int, column: str, value: str, expected: str
) -> None:
    set_cell(export / file, line, column, value)
    assert errors(read(export)) == [expected]


# Bad bundles through the CLI: one message per problem, nothing written


def test_a_bundle_with_an_unknown_role_imports_nothing(
    export: Path, store: Path
) -> None:
    before = store_state(store)
    set_cell(export / "OpportunityContactRole.csv", 3, "Role", "Chief Decider")
    lines = fails(invoke(store, "import", "export"))
    assert lines[0].startswith(
        "export/OpportunityContactRole.csv:3: Role: unknown role 'Chief Decider';"
    )
    assert lines[1:] == ["error: 1 bad line; nothing was imported"]
    assert store_state(store) == before


def test_a_bundle_with_a_bad_date_imports_nothing(export: Path, store: Path) -> None:
    before = store_state(store)
    set_cell(export / "Opportunity.csv", 4, "CreatedDate", "2026-05-04T25:00:00.000Z")
    assert fails(invoke(store, "import", "export")) == [
        "export/Opportunity.csv:4: CreatedDate: '2026-05-04T25:00:00.000Z' is not a "
        "date and time, e.g. 2026-03-02T10:00:00.000Z",
        "error: 1 bad line; nothing was imported",
    ]
    assert store_state(store) == before


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (
            lambda folder: (folder / "Event.csv").unlink(),
            "error: export: no Event.csv; a Salesforce export holds Opportunity.csv, "
            "OpportunityHistory.csv, OpportunityContactRole.csv, Contact.csv, "
            "Task.csv and Event.csv",
        ),
        (
            lambda folder: [
                (folder / name).unlink() for name in ("Task.csv", "Event.csv")
            ],
            "error: export: no Task.csv or Event.csv; a Salesforce export holds "
            "Opportunity.csv, OpportunityHistory.csv, OpportunityContactRole.csv, "
            "Contact.csv, Task.csv and Event.csv",
        ),
        (
            lambda folder: drop_column(folder / "OpportunityHistory.csv", "StageName"),
            "error: export/OpportunityHistory.csv:1: no StageName column",
        ),
        (
            lambda folder: drop_column(folder / "Task.csv", "WhatId"),
            "error: export/Task.csv:1: no WhatId column",
        ),
        (
            lambda folder: (folder / "Account.csv").write_text(""),
            "error: export/Account.csv:1: no header line; the first line names "
            "the columns",
        ),
        (
            lambda folder: edit(
                folder / "Contact.csv", lambda rows: rows[0].__setitem__(1, "Email")
            ),
            "error: export/Contact.csv:1: column 'Email' appears twice",
        ),
    ],
    ids=[
        "missing file",
        "missing files",
        "missing column",
        "missing task column",
        "empty",
        "twice",
    ],
)
def test_a_bundle_missing_a_file_or_column_is_refused_in_one_line(
    export: Path, store: Path, damage: Callable[[Path], None], expected: str
) -> None:
    before = store_state(store)
    damage(export)
    assert fails(invoke(store, "import", "export")) == [expected]
    assert store_state(store) == before


def test_a_bundle_read_in_the_wrong_encoding_imports_nothing(
    export: Path, store: Path
) -> None:
    for path in export.iterdir():
        path.write_bytes(path.read_text(encoding="utf-8-sig").encode("cp1252"))
    before = store_state(store)
    lines = fails(invoke(store, "import", "export"))
    assert lines[0] == (
        "export/Account.csv:2: Name: bytes b'\\xc5' are not valid utf-8; pass the "
        "file's encoding, e.g. --encoding cp1252"
    )
    assert lines[-1].endswith(" bad lines; nothing was imported")
    assert store_state(store) == before
    assert succeeds(invoke(store, "import", "--encoding", "cp1252", "export")) == (
        IMPORTED
    )
    for deal in DEALS:
        timeline = invoke(store, "timeline", deal, "--format", "jsonl").stdout
        golden = (GOLDEN / f"{deal}.jsonl").read_text(encoding="utf-8")
        assert [json.loads(line) for line in timeline.splitlines()] == [
            json.loads(line) for line in golden.splitlines()
        ]


def test_a_folder_without_export_files_is_no_salesforce_export(
    tmp_path: Path, store: Path
) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "touches.csv").write_text("deal,occurred_at\n")
    assert fails(invoke(store, "import", str(folder))) == [
        f"error: {folder}: not a Salesforce export, which holds Opportunity.csv, "
        "OpportunityHistory.csv, OpportunityContactRole.csv, Contact.csv, "
        "Task.csv and Event.csv"
    ]


def test_a_file_that_is_not_a_folder_is_no_salesforce_export(
    tmp_path: Path, store: Path
) -> None:
    path = tmp_path / "Opportunity.csv"
    shutil.copy(EXAMPLE / "Opportunity.csv", path)
    assert fails(invoke(store, "import", "--from", "salesforce", str(path))) == [
        f"error: {path}: not a folder of Salesforce CSV files"
    ]


# A later export of the same org


def later_export(export: Path) -> None:
    """Edits made in Salesforce after the first export, and one new task."""
    opportunities = export / "Opportunity.csv"
    set_cell(opportunities, 4, "Name", "Meridian Health - scheduling rollout")
    set_cell(opportunities, 4, "OwnerId", "0055g00000Usr02AAA")
    set_cell(opportunities, 2, "LossReason", "Went with the incumbent.")
    # Lost on 12 June, worked on again and won at the end of the month.
    for column, value in {
        "StageName": "Closed Won",
        "IsWon": "true",
        "CloseDate": "2026-06-30",
        "Probability": "100",
    }.items():
        set_cell(opportunities, 5, column, value)
    history = export / "OpportunityHistory.csv"
    edit_row_copy(
        history,
        17,
        Id="0085g00000His18AAA",
        CreatedDate="2026-06-20T09:00:00.000Z",
        StageName="Negotiation",
        CloseDate="2026-06-30",
    )
    edit_row_copy(
        history,
        17,
        Id="0085g00000His19AAA",
        CreatedDate="2026-06-30T15:00:00.000Z",
        StageName="Closed Won",
        CloseDate="2026-06-30",
    )
    tasks = export / "Task.csv"
    set_cell(
        tasks, 4, "Subject", "Discovery call with Ingrid: 4 sites, 2 audits a year"
    )
    set_cell(tasks, 4, "CallDurationInSeconds", "1800")
    edit_row_copy(
        tasks, 4, Id="00T5g00000Tsk99AAA", CreatedDate="2026-01-21T08:00:00.000Z"
    )
    events = export / "Event.csv"
    for column in ("ActivityDateTime", "StartDateTime"):
        set_cell(events, 2, column, "2026-01-28T09:00:00.000Z")
    set_cell(events, 2, "EndDateTime", "2026-01-28T10:30:00.000Z")
    set_cell(export / "Contact.csv", 3, "Title", "Chief Financial Officer")
    set_cell(export / "OpportunityContactRole.csv", 9, "Role", "Decision Maker")


LATER = (
    "imported 9 events (1 DealReopened, 2 DealUpdated, 1 DealWon, "
    "1 StageChanged, 1 StakeholderRoleChanged, 2 TouchpointCorrected, "
    "1 TouchpointLogged) on 0 new and 4 existing deals; 53 already recorded; "
    "kept as first recorded: 1 closings restated with other details, "
    "1 contacts' names or titles changed since they joined; skipped 4 rows"
)
# What a deal list says of a deal, apart from when and how it was evaluated.
DEAL_FACTS = [
    "name",
    "account",
    "owner",
    "stage",
    "status",
    "amount",
    "currency",
    "expected_close",
    "close_date_slips",
    "closed_at",
    "last_touch_at",
    "breaches",
    "distinct_contacts",
]


def deal_facts(store: Path) -> dict[str, dict[str, Any]]:
    listed = json.loads(invoke(store, "deal", "list", "--format", "json").stdout)
    return {d["deal"]: {f: d[f] for f in DEAL_FACTS} for d in listed["deals"]}


def recorded(store: Path) -> list[dict[str, Any]]:
    """The store's events in store order, without their times, each with
    its deal version."""
    out = invoke(store, "export", "events", "--ndjson").stdout
    found = []
    for line in map(json.loads, out.splitlines()):
        event = dict(line["event"], version=line["version"])
        event.pop("occurred_at")
        found.append(event)
    return found


def test_a_later_export_carries_edits_as_corrections(
    export: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store.db"
    succeeds(invoke(store, "import", str(export)))
    before = recorded(store)
    later_export(export)
    assert succeeds(invoke(store, "import", str(export))).startswith(LATER)
    after = recorded(store)
    added = [{k: v for k, v in e.items() if k != "version"} for e in after]
    added = [e for e, full in zip(added, after, strict=True) if full not in before]
    corrections = [e for e in added if e["type"] != "TouchpointLogged"]
    assert [e for e in corrections if e["deal"] != LOST_SILENTLY] == [
        {
            "deal": LOST,
            "duration_minutes": 30,
            "source": "salesforce:Task/00T5g00000Tsk03AAA",
            "summary": "Discovery call with Ingrid: 4 sites, 2 audits a year",
            "touchpoint": "00T5g00000Tsk03AAA",
            "type": "TouchpointCorrected",
        },
        {
            "deal": LOST,
            "source": "salesforce:Event/00U5g00000Evt01AAA",
            "touchpoint": "00U5g00000Evt01AAA",
            "touchpoint_occurred_at": "2026-01-28T09:00:00Z",
            "type": "TouchpointCorrected",
        },
        {
            "deal": OPEN,
            "name": "Meridian Health - scheduling rollout",
            "owner": "Marc Vidal",
            "source": f"salesforce:Opportunity/{OPEN}",
            "type": "DealUpdated",
        },
        {
            "contact": "tom.okafor@meridianhealth.example",
            "deal": OPEN,
            "role": "decision_maker",
            "source": "salesforce:OpportunityContactRole/00K5g00000Ocr08AAA",
            "type": "StakeholderRoleChanged",
        },
    ]
    # The row into Closed Lost is no longer the final one, but the loss
    # recorded already says it.
    reopened = [e["type"] for e in added if e["deal"] == LOST_SILENTLY]
    assert reopened == ["DealReopened", "StageChanged", "DealUpdated", "DealWon"]
    # Importing it again adds nothing; what cannot be carried is said again.
    again = succeeds(invoke(store, "import", str(export)))
    assert again.startswith(
        "imported 0 events on 0 new and 4 existing deals; 61 already recorded; "
        "kept as first recorded: 1 closings restated"
    )
    # The deals now stand as a fresh import of the later export has them.
    fresh = tmp_path / "fresh.db"
    succeeds(invoke(fresh, "import", str(export)))
    assert deal_facts(store) == deal_facts(fresh)
    assert deal_facts(store)[LOST_SILENTLY]["status"] == "won"


def test_what_a_later_export_cannot_carry_is_kept_as_first_recorded(
    export: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store.db"
    succeeds(invoke(store, "import", str(export)))
    before = store_state(store)
    set_cell(export / "Account.csv", 2, "Name", "Ålesund Seafood AS")
    set_cell(export / "Contact.csv", 2, "Title", "Director of Logistics")
    set_cell(export / "Task.csv", 4, "Subject", "")
    line = succeeds(invoke(store, "import", str(export)))
    assert line.startswith(
        "imported 0 events on 0 new and 4 existing deals; 55 already recorded; "
        "kept as first recorded: 1 contacts' names or titles changed since they "
        "joined, 2 deals' accounts or opening values changed since they opened, "
        "1 touchpoints' fields emptied; skipped 4 rows"
    )
    assert store_state(store) == before


def stakeholder_roles(store: Path, deal: str) -> dict[str, str]:
    out = invoke(store, "stakeholders", deal, "--format", "json").stdout
    return {c["contact"]: c["current_role"] for c in json.loads(out)["contacts"]}


def test_an_edit_undone_in_a_later_export_is_undone_in_the_store(
    export: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store.db"
    tasks = export / "Task.csv"
    original = next(
        row[3]
        for row in csv.reader(tasks.open(encoding="utf-8-sig"))
        if row[0].endswith("Tsk03AAA")
    )
    succeeds(invoke(store, "import", str(export)))
    for subject in ("Edited once", original):
        set_cell(tasks, 4, "Subject", subject)
        line = succeeds(invoke(store, "import", str(export)))
        assert line.startswith("imported 1 event (1 TouchpointCorrected)")
    # Back as first imported: the store and a fresh import agree.
    fresh = tmp_path / "fresh.db"
    succeeds(invoke(fresh, "import", str(export)))
    assert deal_facts(store) == deal_facts(fresh)
    timeline = invoke(store, "timeline", LOST, "--format", "jsonl").stdout
    fixes = [json.loads(x) for x in timeline.splitlines() if "TouchpointCorrected" in x]
    assert [f["summary"] for f in fixes] == ["Edited once", original]


def test_a_role_row_is_compared_with_the_role_it_stated(
    export: Path, tmp_path: Path
) -> None:
    """Tom joins as influencer and a later row makes him decision maker:
    restating both rows changes nothing, and editing the first row only
    rewrites history that the later row has overtaken."""
    roles = export / "OpportunityContactRole.csv"
    edit_row_copy(
        roles,
        9,
        Id="00K5g00000Ocr10AAA",
        Role="Decision Maker",
        CreatedDate="2026-05-20T09:00:00.000Z",
    )
    store = tmp_path / "store.db"
    succeeds(invoke(store, "import", str(export)))
    tom = "tom.okafor@meridianhealth.example"
    assert stakeholder_roles(store, OPEN)[tom] == "decision_maker"
    # Only his title changed: his role stays what the later row made it.
    set_cell(export / "Contact.csv", 9, "Title", "CIO")
    line = succeeds(invoke(store, "import", str(export)))
    assert line.startswith(
        "imported 0 events on 0 new and 4 existing deals; 59 already recorded; "
        "kept as first recorded: 1 contacts' names or titles changed since they "
        "joined;"
    )
    assert stakeholder_roles(store, OPEN)[tom] == "decision_maker"
    set_cell(export / "Contact.csv", 9, "Title", "Head of IT")
    set_cell(roles, 9, "Role", "Evaluator")
    line = succeeds(invoke(store, "import", str(export)))
    assert line.startswith(
        "imported 0 events on 0 new and 4 existing deals; 59 already recorded; "
        "kept as first recorded: 1 contact roles edited before a later role change;"
    )
    assert stakeholder_roles(store, OPEN)[tom] == "decision_maker"
    # The later row, edited, still sets his role now.
    set_cell(roles, 11, "Role", "Economic Buyer")
    line = succeeds(invoke(store, "import", str(export)))
    assert line.startswith("imported 1 event (1 StakeholderRoleChanged)")
    assert stakeholder_roles(store, OPEN)[tom] == "economic_buyer"


def test_a_contact_whose_email_changed_is_not_a_second_stakeholder(
    export: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store.db"
    succeeds(invoke(store, "import", str(export)))
    before = stakeholder_roles(store, WON)
    # The CEO had no email, so his Salesforce id was his key.
    set_cell(
        export / "Contact.csv", 6, "Email", "alex.roca@tarragona-logistica.example"
    )
    line = succeeds(invoke(store, "import", str(export)))
    # He keeps his old key in his role and in the touches he was on.
    assert line.startswith(
        "imported 0 events on 0 new and 4 existing deals; 58 already recorded; "
        "kept as first recorded: 1 contact roles whose contact's email changed;"
    )
    assert stakeholder_roles(store, WON) == before


def test_an_export_and_a_later_one_in_one_command(export: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    shutil.copytree(export, first)
    later_export(export)
    store = tmp_path / "store.db"
    succeeds(invoke(store, "import", str(first), str(export)))
    fresh = tmp_path / "fresh.db"
    succeeds(invoke(fresh, "import", str(export)))
    assert deal_facts(store) == deal_facts(fresh)

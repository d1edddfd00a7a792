"""CSV touchpoints: the column layout, its aliases, encodings and time zones."""

from __future__ import annotations

import io
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from engine.errors import InputError
from engine.events import EVENT_TYPES, Event
from engine.importing.csv_format import ALIASES, COLUMNS, FIELDS, column_key, read_csv
from engine.importing.native import ImportItem, LineError, Located

PARIS = ZoneInfo("Europe/Paris")
HEADER = "deal,occurred_at,channel,direction,participants"
OPEN_ROW = (
    "type,deal,occurred_at,name,account,owner,stage\n"
    "DealOpened,B-1,2026-03-02T09:00:00+01:00,Bolt rollout,Bolt,kim,discovery\n"
)
RUNNER = CliRunner()


def read(
    text: str | bytes,
    *,
    encoding: str = "utf-8",
    zone: ZoneInfo | None = None,
    name: str = "touches.csv",
) -> list[ImportItem]:
    data = text.encode() if isinstance(text, str) else text
    return list(read_csv(io.BytesIO(data), name, encoding=encoding, timezone=zone))


def events(items: list[ImportItem]) -> list[Event]:
    assert [str(i) for i in items if isinstance(i, LineError)] == []
    return [item.event for item in items if isinstance(item, Located)]


def one(text: str | bytes, **options: Any) -> dict[str, Any]:
    """The native line object of a file's only event."""
    (event,) = events(read(text, **options))
    return event.native()


def errors(items: list[ImportItem]) -> list[str]:
    return [str(item) for item in items if isinstance(item, LineError)]


def refused(text: str | bytes, **options: Any) -> str:
    with pytest.raises(InputError) as raised:
        read(text, **options)
    return str(raised.value)


# The layout


def test_a_row_becomes_a_touchpoint_with_the_file_and_line_as_source() -> None:
    row = one(
        f"{HEADER},summary\n"
        "B-1,2026-03-03T10:00:00+01:00,email,inbound,lee@bolt.example,"
        "Asked for a demo\n"
    )
    # Without an id, the touchpoint's id is derived from its content.
    assert row.pop("touchpoint").startswith("tp-")
    assert row == {
        "type": "TouchpointLogged",
        "deal": "B-1",
        "occurred_at": "2026-03-03T10:00:00+01:00",
        "source": "touches.csv:2",
        "channel": "email",
        "direction": "inbound",
        "participants": ["lee@bolt.example"],
        "summary": "Asked for a demo",
    }


def test_participants_are_separated_by_semicolons() -> None:
    row = one(
        f"{HEADER}\n"
        "B-1,2026-03-03T10:00:00Z,meeting,outbound,"
        '"lee@bolt.example; ;Ann@Bolt.example"\n'
    )
    assert row["participants"] == ["ann@bolt.example", "lee@bolt.example"]


def test_empty_cells_are_absent_fields() -> None:
    row = one(
        f"{HEADER},rep,summary,outcome,duration_minutes,touchpoint\n"
        "B-1,2026-03-03T10:00:00Z,call,outbound,,,  ,,,t-7\n"
    )
    assert row == {
        "type": "TouchpointLogged",
        "deal": "B-1",
        "occurred_at": "2026-03-03T10:00:00Z",
        "source": "touches.csv:2",
        "touchpoint": "t-7",
        "channel": "call",
        "direction": "outbound",
        "participants": [],
    }


def test_a_type_column_reads_any_event() -> None:
    text = (
        "type,deal,occurred_at,name,account,owner,stage,contact,role,channel,"
        "direction\n"
        "DealOpened,B-1,2026-03-02T09:00:00Z,Bolt rollout,Bolt,kim,Discovery,,,,\n"
        "StakeholderJoined,B-1,2026-03-02T09:05:00Z,Lee Park,,,,lee@bolt.example,"
        "Decision Maker,,\n"
        "TouchpointLogged,B-1,2026-03-02T10:00:00Z,,,,,,,Call,Outbound\n"
    )
    read_events = events(read(text))
    assert [e.type for e in read_events] == [
        "DealOpened",
        "StakeholderJoined",
        "TouchpointLogged",
    ]
    assert read_events[0].native()["stage"] == "discovery"
    assert read_events[1].native()["role"] == "decision_maker"
    assert read_events[2].native()["channel"] == "call"


def test_choices_are_read_as_spreadsheets_spell_them() -> None:
    row = one(f"{HEADER},outcome\nB-1,2026-03-03T10:00:00Z,Call,Outbound,,No Answer\n")
    assert (row["channel"], row["direction"], row["outcome"]) == (
        "call",
        "outbound",
        "no_answer",
    )


def test_every_field_of_every_event_has_a_column() -> None:
    fields = {name for cls in EVENT_TYPES.values() for name in cls.model_fields}
    assert fields - {"recorded_at"} == FIELDS
    assert {COLUMNS[column_key(name)] for name in FIELDS} == FIELDS


def test_each_alias_means_exactly_one_field() -> None:
    meanings: dict[str, set[str]] = {column_key(name): {name} for name in FIELDS}
    for field, aliases in ALIASES.items():
        for alias in aliases:
            meanings.setdefault(column_key(alias), set()).add(field)
            assert COLUMNS[column_key(alias)] == field
    assert {key: f for key, f in meanings.items() if len(f) > 1} == {}


def test_the_documented_aliases_are_the_aliases() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "importing.md").read_text()
    rows = [line for line in doc.splitlines() if line.startswith("| `")]
    for field, aliases in ALIASES.items():
        assert f"| `{field}` | {', '.join(aliases)} |" in rows


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Deal", "deal"),
        ("deal_key", "deal"),
        ("Opportunity", "deal"),
        ("Opportunity ID", "deal"),
        ("Occurred At", "occurred_at"),
        ("date", "occurred_at"),
        ("TIMESTAMP", "occurred_at"),
        ("Activity Date", "occurred_at"),
        ("Participants", "participants"),
        ("with", "participants"),
        ("Contacts", "participants"),
        ("Channel", "channel"),
        ("Type of activity", "channel"),
        ("Activity-Type", "channel"),
        ("Call Type", "direction"),
        ("Subject", "summary"),
        ("Duration (min)", "duration_minutes"),
        ("Assigned To", "rep"),
        ("Created Date", "logged_at"),
    ],
)
def test_common_header_spellings_are_aliases(header: str, field: str) -> None:
    assert COLUMNS[column_key(header)] == field
    values = {
        "deal": "B-1",
        "occurred_at": "2026-03-03T10:00:00Z",
        "channel": "call",
        "direction": "inbound",
        "participants": "lee@bolt.example",
        "summary": "Hello",
        "duration_minutes": "12",
        "rep": "kim",
        "logged_at": "2026-03-04T10:00:00Z",
    }
    columns = {"deal": "deal", "occurred_at": "occurred_at", "channel": "channel"}
    columns |= {"direction": "direction", field: header}
    text = ",".join(columns.values()) + "\n"
    text += ",".join(values[f] for f in columns) + "\n"
    row = one(text)
    expected: Any = [values[field]] if field == "participants" else values[field]
    if field == "duration_minutes":
        expected = 12
    assert row[field] == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "deal,Opportunity,occurred_at",
            "touches.csv:1: columns 'deal' and 'Opportunity' both mean deal",
        ),
        (
            "deal,occurred_at,date",
            "touches.csv:1: columns 'occurred_at' and 'date' both mean occurred_at",
        ),
        (
            "deal,occurred_at,colour",
            "touches.csv:1: unknown column 'colour'; see docs/importing.md for the "
            "columns and their aliases",
        ),
        (
            "deal,occurred_at,recorded_at",
            "touches.csv:1: unknown column 'recorded_at'; see docs/importing.md for "
            "the columns and their aliases",
        ),
        ("deal,,occurred_at", "touches.csv:1: column 2 has no name"),
        ("deal,channel", "touches.csv:1: no occurred_at column"),
        ("summary", "touches.csv:1: no deal or occurred_at column"),
        ("", "touches.csv:1: no header line; the first line names the columns"),
    ],
)
def test_an_unknown_ambiguous_or_missing_column_is_refused(
    header: str, expected: str
) -> None:
    assert refused(header + "\n") == expected


# Rows and lines


def test_a_bad_row_names_its_file_line_and_column() -> None:
    items = read(
        "Deal,Date,Channel,Direction,With,Duration (min)\n"
        "B-1,2026-03-03T10:00:00Z,fax,outbound,,\n"
        "B-1,2026-03-03T10:00:00Z,call,outbound,not an email,\n"
        "B-1,2026-03-03T10:00:00Z,call,outbound,,forty\n"
        "B-1,2026-03-03T10:00:00Z,call,outbound,,,surplus\n"
        ",2026-03-03T10:00:00Z,call,outbound,,\n"
    )
    assert errors(items) == [
        "touches.csv:2: Channel: 'fax' is not one of email, call, meeting, demo, "
        "message, proposal, social, event, other",
        "touches.csv:3: With: 'not an email' is not an email or a CRM id "
        "(it has spaces)",
        "touches.csv:4: Duration (min): 'forty' is not a whole number",
        "touches.csv:5: (line): 7 cells, but the header names 6 columns",
        "touches.csv:6: Deal: Field required",
    ]


def test_a_refused_choice_or_contact_names_the_value_as_the_cell_gives_it() -> None:
    items = read(
        "type,deal,occurred_at,channel,Call Type,contact,Contact Role,With\n"
        "TouchpointLogged,B-1,2026-03-03T10:00:00Z,call,Sideways,,,\n"
        "StakeholderJoined,B-1,2026-03-03T10:00:00Z,,,lee@bolt.example,"
        "Chief Decider,\n"
        "TouchpointLogged,B-1,2026-03-03T10:00:00Z,call,Inbound,,,"
        "a@bolt.example; b@bolt\n"
    )
    assert errors(items) == [
        "touches.csv:2: Call Type: 'Sideways' is not one of outbound, inbound, "
        "internal",
        "touches.csv:3: Contact Role: 'Chief Decider' is not one of decision_maker, "
        "economic_buyer, champion, influencer, technical_evaluator, user, "
        "procurement, legal, gatekeeper, blocker, other",
        # The column as a whole, whichever of its contacts is refused.
        "touches.csv:4: With: 'b@bolt' is not a valid email address",
    ]


def test_an_unknown_event_type_is_a_bad_row() -> None:
    assert errors(
        read("type,deal,occurred_at\nDealExploded,B-1,2026-03-03T10:00Z\n")
    ) == ["touches.csv:2: type: unknown event type 'DealExploded'"]


def test_lines_are_physical_lines_across_quoted_line_breaks_and_blank_lines() -> None:
    items = read(
        f"{HEADER},summary\n"
        'B-1,2026-03-03T10:00:00Z,call,outbound,,"two\nlines"\n'
        "\n"
        "B-1,2026-03-03T11:00:00Z,fax,outbound,,\n"
    )
    assert [i.location for i in items if isinstance(i, Located)] == ["touches.csv:2"]
    assert errors(items)[0].startswith("touches.csv:5: channel: ")


def test_crlf_line_ends_and_a_byte_order_mark_are_accepted() -> None:
    text = (
        f"\ufeff{HEADER},summary\r\n"
        'B-1,2026-03-03T10:00:00Z,call,outbound,,"first\r\nsecond"\r\n'
        "B-1,2026-03-03T11:00:00Z,fax,outbound,,\r\n"
    )
    items = read(text.encode("utf-8"))
    (event,) = events([i for i in items if isinstance(i, Located)])
    assert event.native()["deal"] == "B-1"
    assert errors(items)[0].startswith("touches.csv:4: channel: ")


# Time zones


def test_a_naive_time_without_a_time_zone_is_a_bad_row() -> None:
    assert errors(read(f"{HEADER}\nB-1,2026-03-03 10:00,call,outbound,\n")) == [
        "touches.csv:2: occurred_at: naive timestamp '2026-03-03 10:00'; add a UTC "
        "offset such as Z or +01:00, or pass --timezone"
    ]


def test_naive_times_are_read_in_the_given_time_zone() -> None:
    text = (
        f"{HEADER},logged_at\n"
        "B-1,2026-03-03 10:00,call,outbound,,2026-07-01T09:00:00\n"
        "B-1,2026-03-03T10:00:00Z,call,outbound,,\n"
    )
    winter, utc = events(read(text, zone=PARIS))
    assert winter.occurred_at.utcoffset() == timedelta(hours=1)
    assert winter.occurred_at == datetime(2026, 3, 3, 10, tzinfo=PARIS)
    assert winter.logged_at == datetime(2026, 7, 1, 9, tzinfo=PARIS)
    assert winter.logged_at.utcoffset() == timedelta(hours=2)
    assert utc.occurred_at.utcoffset() == timedelta(0)
    assert utc.occurred_at == datetime(2026, 3, 3, 10, tzinfo=UTC)


OSLO = ZoneInfo("Europe/Oslo")


def test_a_local_time_the_clocks_skipped_is_a_bad_row() -> None:
    text = (
        f"{HEADER},logged_at\n"
        "B-1,2026-03-29 02:30,call,outbound,,\n"
        "B-1,2026-03-29T01:59:59,call,outbound,,2026-03-29 02:00:00.250\n"
        "B-1,2026-03-29 03:00,call,outbound,,\n"
    )
    items = read(text, zone=OSLO)
    assert errors(items) == [
        "touches.csv:2: occurred_at: 2026-03-29 02:30 does not exist in "
        "Europe/Oslo (clocks moved forward)",
        "touches.csv:3: logged_at: 2026-03-29 02:00:00.250000 does not exist in "
        "Europe/Oslo (clocks moved forward)",
    ]
    # Either side of the gap is read as usual.
    (after,) = [i.event for i in items if isinstance(i, Located)]
    assert after.occurred_at == datetime(2026, 3, 29, 1, tzinfo=UTC)


def test_an_ambiguous_local_time_is_the_earlier_of_the_two() -> None:
    text = f"{HEADER}\nB-1,2026-10-25 02:30,call,outbound,\n"
    (touch,) = events(read(text, zone=OSLO))
    # 02:30 summer time (+02:00), an hour before 02:30 winter time.
    assert touch.native()["occurred_at"] == "2026-10-25T02:30:00+02:00"
    # (Compared in UTC: Python's datetimes in an ambiguous hour compare unequal
    # to any other zone's.)
    assert touch.occurred_at.astimezone(UTC) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )


def test_a_date_without_a_time_stays_a_bad_row_with_a_time_zone() -> None:
    (error,) = errors(read(f"{HEADER}\nB-1,2026-03-03,call,outbound,\n", zone=PARIS))
    assert error.startswith(
        "touches.csv:2: occurred_at: '2026-03-03' is a date without a time"
    )


# Encodings


CP1252 = f"{HEADER},summary\nB-1,2026-03-03T10:00:00Z,call,outbound,,Café à Orléans\n"


def test_bytes_that_are_not_utf8_are_a_bad_row_naming_the_column() -> None:
    assert errors(read(CP1252.encode("cp1252"))) == [
        "touches.csv:2: summary: bytes b'\\xe9' are not valid utf-8; pass the "
        "file's encoding, e.g. --encoding cp1252"
    ]


def test_the_same_file_reads_with_its_encoding() -> None:
    assert one(CP1252.encode("cp1252"), encoding="cp1252")["summary"] == (
        "Café à Orléans"
    )


def test_undecodable_bytes_in_the_header_refuse_the_file() -> None:
    text = "deal,occurred_at,Résumé\n".encode("cp1252")
    assert refused(text) == (
        "touches.csv:1: column 3: bytes b'\\xe9' are not valid utf-8; pass the "
        "file's encoding, e.g. --encoding cp1252"
    )


def test_a_utf8_file_read_as_another_encoding_is_refused() -> None:
    text = ("\ufeff" + CP1252).encode("utf-8")
    assert refused(text, encoding="cp1252") == (
        "touches.csv:1: starts with a UTF-8 byte-order mark; the file is UTF-8, "
        "not cp1252"
    )
    assert one(text, encoding="UTF8")["summary"] == "Café à Orléans"


def test_an_unknown_encoding_is_refused() -> None:
    assert refused(CP1252, encoding="klingon") == (
        "--encoding: unknown encoding 'klingon'"
    )


def test_a_row_the_csv_reader_cannot_split_is_refused_with_its_line() -> None:
    huge = "x" * 200_000
    assert refused(
        f"{HEADER},summary\nB-1,2026-03-03T10:00:00Z,call,outbound,,{huge}\n"
    ) == ("touches.csv:2: a cell is longer than 131,072 characters")


# Truncated and malformed rows: a bad row each, never padded or merged

ROWS = (
    f"{HEADER},summary\n"
    "B-1,2026-03-03T10:00:00Z,call,outbound,,first\n"
    'B-1,2026-03-03T11:00:00Z,call,outbound,,"second, quoted"\n'
)
UNCLOSED = "the file ends before this quoted cell's closing '\"'; is it cut short?"


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        # A cut inside a quoted cell: the rest would have been its text.
        (
            'B-1,2026-03-03T12:00:00Z,call,outbound,,"third, cut',
            f"touches.csv:4: summary: {UNCLOSED}",
        ),
        (
            'B-1,2026-03-03T12:00:00Z,call,"outb',
            f"touches.csv:4: direction: {UNCLOSED}",
        ),
        # A cut between cells, with or without the line end.
        (
            "B-1,2026-03-03T12:00:00Z,call",
            "touches.csv:4: (line): 3 cells, but the header names 6 columns",
        ),
        (
            "B-1,2026-03-03T12:00:00Z,call,\n",
            "touches.csv:4: (line): 4 cells, but the header names 6 columns",
        ),
    ],
)
def test_a_truncated_last_row_is_a_bad_row(tail: str, expected: str) -> None:
    items = read(ROWS + tail)
    assert errors(items) == [expected]
    assert len([i for i in items if isinstance(i, Located)]) == 2


def test_an_unclosed_quote_does_not_swallow_the_rows_after_it() -> None:
    # Read leniently, the third row became part of the second's summary.
    items = read(
        f"{HEADER},summary\n"
        "B-1,2026-03-03T10:00:00Z,call,outbound,,first\n"
        'B-1,2026-03-03T11:00:00Z,call,outbound,,"second\n'
        "B-1,2026-03-03T12:00:00Z,call,outbound,,third\n"
    )
    assert errors(items) == [f"touches.csv:3: summary: {UNCLOSED}"]
    assert [i.location for i in items if isinstance(i, Located)] == ["touches.csv:2"]


def test_a_short_row_and_text_after_a_closing_quote_are_bad_rows() -> None:
    items = read(
        f"{HEADER},summary\n"
        "B-1,2026-03-03T10:00:00Z,call,outbound\n"
        'B-1,2026-03-03T11:00:00Z,call,outbound,,"27" screen"\n'
        'B-1,2026-03-03T12:00:00Z,call,outbound,,"two\nlines"\n'
    )
    assert errors(items) == [
        "touches.csv:2: (line): 4 cells, but the header names 6 columns",
        "touches.csv:3: (line): text after a quoted cell's closing '\"'; a '\"' "
        "inside a quoted cell is written '\"\"'",
    ]
    assert [i.location for i in items if isinstance(i, Located)] == ["touches.csv:4"]


def test_blank_rows_and_trailing_empty_lines_are_still_skipped() -> None:
    items = read(
        f"{HEADER},summary\r\n"
        "\r\n"
        "B-1,2026-03-03T10:00:00Z,call,outbound,,first\r\n"
        ",,,\r\n"
        "   \r\n"
        "B-1,2026-03-03T11:00:00Z,call,outbound,,last\r\n"
        "\r\n"
        "\r\n"
    )
    assert errors(items) == []
    assert [i.location for i in items if isinstance(i, Located)] == [
        "touches.csv:3",
        "touches.csv:6",
    ]


def test_an_unclosed_quote_in_the_header_refuses_the_file() -> None:
    assert refused('deal,occurred_at,"summary\n') == f"touches.csv:1: {UNCLOSED}"


# Through the CLI


def invoke(store: Path, *args: str) -> Result:
    return RUNNER.invoke(
        cli,
        ["--store", f"sqlite:///{store}", *args],
        env={"DEALTRAIL_STORE": None, "DEALTRAIL_ACTOR": None},
        catch_exceptions=False,
    )


def timeline(store: Path, key: str) -> list[dict[str, Any]]:
    result = invoke(store, "timeline", key, "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "open.csv").write_text(OPEN_ROW)
    return tmp_path


def test_a_csv_file_imports_through_the_cli(workdir: Path) -> None:
    (workdir / "touches.csv").write_text(
        "Opportunity,Date,Type of activity,Direction,With,Subject\n"
        "B-1,2026-03-03 10:00,Email,Inbound,lee@bolt.example,Asked for a demo\n"
    )
    store = workdir / "s.db"
    result = invoke(
        store, "import", "--timezone", "Europe/Paris", "open.csv", "touches.csv"
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (
        "imported 2 events (1 DealOpened, 1 TouchpointLogged) on 1 new and 0 "
        "existing deals; 0 already recorded\n"
    )
    touch = timeline(store, "B-1")[1]
    assert touch["occurred_at"] == "2026-03-03T10:00:00+01:00"
    assert touch["source"] == "touches.csv:2"
    again = invoke(store, "import", "--timezone", "Europe/Paris", "touches.csv")
    assert again.stderr == (
        "imported 0 events on 0 new and 1 existing deals; 1 already recorded\n"
    )


def test_from_csv_reads_a_file_of_any_name(workdir: Path) -> None:
    (workdir / "open.txt").write_text(OPEN_ROW)
    result = invoke(workdir / "s.db", "import", "--from", "csv", "open.txt")
    assert result.exit_code == 0, result.stderr
    assert [e["type"] for e in timeline(workdir / "s.db", "B-1")] == ["DealOpened"]


def test_a_csv_file_with_a_bad_row_imports_nothing(workdir: Path) -> None:
    store = workdir / "s.db"
    assert invoke(store, "import", "open.csv").exit_code == 0
    (workdir / "touches.csv").write_text(
        f"{HEADER}\n"
        "B-1,2026-03-03T10:00:00Z,call,outbound,lee@bolt.example\n"
        "B-1,2026-03-03 11:00,call,outbound,lee@bolt.example\n"
    )
    result = invoke(store, "import", "touches.csv")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "touches.csv:3: occurred_at: naive timestamp '2026-03-03 11:00'; add a "
        "UTC offset such as Z or +01:00, or pass --timezone",
        "error: 1 bad line; nothing was imported",
    ]
    assert [e["type"] for e in timeline(store, "B-1")] == ["DealOpened"]


def test_a_csv_file_with_a_bad_header_is_one_line_error(workdir: Path) -> None:
    (workdir / "touches.csv").write_text("deal,occurred_at,colour\n")
    result = invoke(workdir / "s.db", "import", "touches.csv")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: touches.csv:1: unknown column 'colour'; see docs/importing.md for "
        "the columns and their aliases\n"
    )
    assert not (workdir / "s.db").exists()


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ("base64", "error: --encoding: 'base64' is not a text encoding"),
        ("rot13", "error: --encoding: 'rot13' is not a text encoding"),
        (
            "utf-16",
            "error: open.csv:1: cannot be read as utf-16: "
            "UTF-16 stream does not start with BOM",
        ),
    ],
)
def test_an_encoding_that_cannot_read_the_file_is_one_line(
    workdir: Path, encoding: str, message: str
) -> None:
    result = invoke(
        workdir / "s.db", "import", "open.csv", "--encoding", encoding, "--dry-run"
    )
    assert (result.exit_code, result.stderr) == (1, message + "\n")


# Truncated files through the CLI: one line naming the row, nothing written

EXAMPLE = Path(__file__).parent.parent / "examples" / "salesforce"


def deal_list(store: Path) -> Any:
    """Every deal and the store's position, as `deal list` reports them."""
    result = invoke(store, "deal", "list", "--format", "json")
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    return listed["deals"], listed["position"]


@pytest.mark.parametrize(
    ("tail", "error"),
    [
        (
            'B-1,2026-03-04T10:00:00Z,call,outbound,,"Pricing, and the',
            f"touches.csv:5: summary: {UNCLOSED}",
        ),
        (
            "B-1,2026-03-04T10:00:00Z,call,out",
            "touches.csv:5: (line): 4 cells, but the header names 6 columns",
        ),
    ],
)
def test_a_truncated_csv_file_imports_nothing(
    workdir: Path, tail: str, error: str
) -> None:
    store = workdir / "s.db"
    assert invoke(store, "import", "open.csv").exit_code == 0
    before = deal_list(store)
    (workdir / "touches.csv").write_text(
        f"{HEADER},summary\n"
        "B-1,2026-03-03T10:00:00Z,call,outbound,lee@bolt.example,Intro\n"
        'B-1,2026-03-03T11:00:00Z,email,inbound,lee@bolt.example,"Re: Intro\n'
        'second line"\n' + tail
    )
    result = invoke(store, "import", "touches.csv")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        error,
        "error: 1 bad line; nothing was imported",
    ]
    assert deal_list(store) == before
    assert [e["type"] for e in timeline(store, "B-1")] == ["DealOpened"]


@pytest.mark.parametrize(
    ("cut_after", "error"),
    [
        # Inside the quoted CallType cell of line 5 ("Inbound").
        (
            '"540","Inbo',
            f"export/Task.csv:5: CallType: {UNCLOSED}",
        ),
        # Between cells: CallType and what follows are missing.
        (
            '"540",',
            "export/Task.csv:5: (line): 17 cells, but the header names 19 columns",
        ),
    ],
)
def test_a_salesforce_export_with_a_truncated_task_file_imports_nothing(
    workdir: Path, cut_after: str, error: str
) -> None:
    shutil.copytree(EXAMPLE, workdir / "export")
    task = workdir / "export" / "Task.csv"
    text = task.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    assert lines[4].startswith('"00T5g00000Tsk04AAA",')
    cut = lines[4].index(cut_after) + len(cut_after)
    task.write_text("".join(lines[:4]) + lines[4][:cut], encoding="utf-8")
    store = workdir / "s.db"
    assert invoke(store, "import", "open.csv").exit_code == 0
    before = deal_list(store)
    result = invoke(store, "import", "export")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        error,
        "error: 1 bad line; nothing was imported",
    ]
    assert deal_list(store) == before

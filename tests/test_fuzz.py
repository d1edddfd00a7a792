"""Hostile input: every reader and every command-line value, fuzzed.

Each case ends in success or a clear error: for a reader, each bad line or
row becomes one ``FILE:LINE: field: problem`` item (or the whole file an
``InputError``); for the CLI, exit code 0, 1 (one ``error: `` line) or 2
(a usage error), never a traceback, and a failed command leaves the store
exactly as it was.

CI runs a few dozen examples per test. For a long run::

    HYPOTHESIS_PROFILE=fuzz .venv/bin/pytest tests/test_fuzz.py
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
import string
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from cli.main import cli
from engine.errors import InputError
from engine.events import (
    EVENT_TYPES,
    LONG_TEXT,
    MAX_PARTICIPANTS,
    MAX_TIMEZONE,
    SHORT_TEXT,
    Event,
)
from engine.importing.csv_format import MAX_CELL_CHARS, MAX_LINE_CHARS, read_csv
from engine.importing.native import (
    MAX_LINE_BYTES,
    MAX_REPORTED_ERRORS,
    LineError,
    Located,
    dump_line,
    iter_lines,
    read_lines,
)
from engine.importing.salesforce import read_bundle

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.jsonl"))
SALESFORCE = ROOT / "examples" / "salesforce"

settings.register_profile("fuzz", max_examples=5000, deadline=None)
LONG_RUN = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"


def budget(examples: int) -> settings:
    """A few examples in CI; thousands in the long run."""
    return settings(
        max_examples=5000 if LONG_RUN else examples,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.data_too_large,
        ],
    )


# Strategies

VALID_LINES: list[dict[str, Any]] = [
    json.loads(line)
    for path in EXAMPLES
    for line in path.read_text(encoding="utf-8").splitlines()
    if line.strip()
]
FIELDS = sorted({key for line in VALID_LINES for key in line})

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=50)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Values shaped like what the fields hold, slightly or badly wrong.
hostile_text = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "\x1b[31mred",
        "line\nbreak",
        "crlf\r\n",
        "\ufeffbom",
        "\u202eevil",
        "x" * (SHORT_TEXT + 1),
        "y" * (LONG_TEXT + 1),
        "2026-03-02",
        "2026-03-02T10:00:00",
        "2026-03-02 10:00",
        "2026-03-02T10:00:00+25:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "1900-01-01T00:00:00+00:01",
        "2026-02-30T10:00:00Z",
        "1700000000",
        "1e3",
        "NaN",
        "sNaN",
        "-Infinity",
        "1e999999999",
        "-1",
        "0.00001",
        "eur",
        "Europe/Nowhere",
        "../../etc/passwd",
        "z" * 300,
        "a@b",
        "@example.com",
        "two words@example.com",
    ]
)
field_values = hostile_text | json_values


@st.composite
def mutated_lines(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A valid example line with one field changed, dropped, added or given
    twice; and the field touched."""
    obj = dict(draw(st.sampled_from(VALID_LINES)))
    field = draw(st.sampled_from(sorted(obj)) | st.sampled_from(FIELDS))
    how = draw(st.sampled_from(["set", "drop", "extra", "twice"]))
    if how == "drop":
        obj.pop(field, None)
    elif how == "extra":
        field = draw(st.text(min_size=1, max_size=20))
        obj[field] = draw(field_values)
    elif how == "twice" and field in obj:
        text = json.dumps(obj, allow_nan=True)
        again = json.dumps({field: draw(field_values)}, allow_nan=True)[1:-1]
        return (text[:-1] + ", " + again + "}").encode(), field
    else:
        obj[field] = draw(field_values)
    return json.dumps(obj, allow_nan=True).encode(), field


def one_line(text: str) -> str:
    """A message, checked to be one line of reasonable length."""
    assert "\n" not in text, text
    assert "\r" not in text, text
    assert len(text) < 400, text
    return text


def problem_lines(errors: list[LineError]) -> Iterator[str]:
    for error in errors:
        yield one_line(str(error))


def text_fields(event: Event) -> Iterator[str]:
    for value in event.native().values():
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):
            yield from (v for v in value if isinstance(v, str))


def assert_clean(event: Event) -> None:
    """What an accepted event may hold: bounded text without hostile
    control characters, and a native line that reads back the same."""
    for text in text_fields(event):
        assert len(text) <= LONG_TEXT
        assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text), text
    assert len(getattr(event, "participants", None) or []) <= MAX_PARTICIPANTS
    again = read_lines([dump_line(event)], "again")
    assert not again.errors
    assert again.events[0].native() == event.native()


# The native line reader


@budget(300)
@given(st.lists(st.binary(max_size=200), max_size=5))
def test_any_bytes_are_events_or_one_line_errors(lines: list[bytes]) -> None:
    parsed = read_lines(lines, "f.jsonl")
    list(problem_lines(parsed.errors))
    for event in parsed.events:
        assert_clean(event)


@budget(400)
@given(mutated_lines())
def test_a_mutated_line_is_an_event_or_an_error_naming_the_field(
    case: tuple[bytes, str | None],
) -> None:
    line, _ = case
    [item] = list(iter_lines([line], "f.jsonl"))
    if isinstance(item, Located):
        assert_clean(item.event)
        return
    [text] = problem_lines([item])
    assert text.startswith("f.jsonl:1: ")
    assert item.field


@budget(200)
@given(
    st.sampled_from(VALID_LINES),
    st.sampled_from(["occurred_at", "logged_at", "due", "expected_close"]),
    st.integers(min_value=-(10**12), max_value=10**13)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers().map(str),
)
def test_a_number_is_never_read_as_a_date(
    line: dict[str, Any], field: str, value: int | float | str
) -> None:
    # Read as Unix time a number is seconds or milliseconds by its size.
    kind = EVENT_TYPES[line["type"]]
    assume(field in kind.model_fields)
    [item] = list(iter_lines([json.dumps(line | {field: value}).encode()], "f"))
    assert isinstance(item, LineError)
    assert item.field == field


@budget(200)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F), min_size=1, max_size=30))
def test_long_text_keeps_line_breaks_but_no_other_control_character(
    text: str,
) -> None:
    line = {
        "type": "NextStepSet",
        "deal": "D1",
        "occurred_at": "2026-03-02T10:00:00Z",
        "due": "2026-03-09",
        "description": f"call {text} back",
    }
    [item] = list(iter_lines([json.dumps(line).encode()], "f"))
    if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text):
        assert isinstance(item, LineError)
        assert item.field == "description"
    else:
        assert isinstance(item, Located)


@budget(200)
@given(
    st.sampled_from(VALID_LINES),
    st.data(),
)
def test_a_field_given_twice_is_refused(line: dict[str, Any], data: Any) -> None:
    field = data.draw(st.sampled_from(sorted(line)))
    # Spelled plainly or with an escape, the second key is the same field.
    spelled = data.draw(
        st.sampled_from(
            [json.dumps(field), '"\\u' + f"{ord(field[0]):04x}" + field[1:] + '"']
        )
    )
    again = data.draw(st.sampled_from([line[field], "other", 1]))
    text = json.dumps(line)[:-1] + f", {spelled}: {json.dumps(again)}" + "}"
    [item] = list(iter_lines([text.encode()], "f.jsonl"))
    assert isinstance(item, LineError)
    assert str(item) == f"f.jsonl:1: {field}: given twice; give each field once"


def test_a_key_spelled_in_a_value_is_no_repetition() -> None:
    line = dict(VALID_LINES[0]) | {"name": 'the "deal", "deal"', "stage": "deal"}
    [item] = list(iter_lines([json.dumps(line).encode()], "f.jsonl"))
    assert isinstance(item, Located)


class ChunkRecorder(io.BytesIO):
    """A stream that remembers the longest piece any read returned."""

    longest = 0

    def readline(self, size: int | None = -1) -> bytes:
        piece = super().readline(size)
        self.longest = max(self.longest, len(piece))
        return piece

    def __iter__(self) -> Iterator[bytes]:
        raise AssertionError("a whole line would be read into memory")


def test_an_overlong_line_is_refused_without_being_read_whole() -> None:
    huge = b'{"summary": "' + b"x" * (3 * MAX_LINE_BYTES) + b'"}\n'
    stream = ChunkRecorder(huge + json.dumps(VALID_LINES[0]).encode() + b"\n")
    items = list(iter_lines(stream, "f.jsonl"))
    assert [str(i) for i in items if isinstance(i, LineError)] == [
        f"f.jsonl:1: (line): longer than {MAX_LINE_BYTES:,} bytes; "
        "a line holds one event"
    ]
    # The next line is read, and numbered, as usual.
    assert [i.location for i in items if isinstance(i, Located)] == ["f.jsonl:2"]
    assert stream.longest <= MAX_LINE_BYTES + 2


def test_a_line_at_the_cap_is_read() -> None:
    obj = {"type": "DealOpened"}
    text = json.dumps(obj).encode()
    line = text[:-1] + b" " * (MAX_LINE_BYTES - len(text)) + b"}"
    assert len(line) == MAX_LINE_BYTES
    [item] = list(iter_lines(io.BytesIO(line + b"\r\n"), "f"))
    # Read and validated: the problem is a missing field, not the length.
    assert isinstance(item, LineError)
    assert item.field != "(line)"


WON = b'{"type": "DealWon", "deal": "D1", "occurred_at": "2026-03-02T10:00:00Z"}'


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"[" * 100_000, "(line): not valid JSON: depth limit exceeded"),
        (b'{"a": ' * 2000 + b"1" + b"}" * 2000, "(line): not valid JSON: depth"),
        (b'{"type": "' + b"T" * 100_000 + b'"}', "type: unknown event type 'TTTT"),
        (WON[:-1] + b', "' + b"k" * 10_000 + b'": 1}', "'kkkkk"),
        (WON[:-1] + b', "a\\nb": 1}', "'a\\nb': unknown field"),
        (b'{"type": "DealWon", "deal": "\\ud800"}', "(line): not valid JSON"),
        (b'{"type": "DealWon", "deal": "\xff"}', "(line): not UTF-8 text"),
        (b'{"type": "DealWon", "amount": NaN}', "(line): not valid JSON"),
        (b'{"type": "DealWon", "amount": 1e999}', "(line): not valid JSON"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_hostile_lines_get_a_short_error(line: bytes, expected: str) -> None:
    [item] = list(iter_lines([line], "f.jsonl"))
    assert isinstance(item, LineError)
    [text] = problem_lines([item])
    assert text.startswith("f.jsonl:1: " + expected)


def test_a_bom_and_crlf_change_nothing() -> None:
    lines = [json.dumps(obj).encode() for obj in VALID_LINES[:5]]
    plain = read_lines(io.BytesIO(b"\n".join(lines)), "f")
    dos = read_lines(io.BytesIO(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n"), "f")
    assert not plain.errors
    assert not dos.errors
    assert [e.native() for e in dos.events] == [e.native() for e in plain.events]


# The CSV reader

HEADER = ["deal", "occurred_at", "channel", "direction", "participants", "summary"]
GOOD_ROW = ["D1", "2026-03-02T10:00:00Z", "email", "inbound", "a@b.example", "Hi"]
csv_cells = hostile_text | st.text(max_size=30) | st.sampled_from(GOOD_ROW)


def read_csv_bytes(data: bytes, encoding: str = "utf-8") -> list[str]:
    """Each row's outcome: 'ok' or its one-line error; or the file's error."""
    try:
        items = list(
            read_csv(io.BytesIO(data), "f.csv", encoding=encoding, timezone=None)
        )
    except InputError as e:
        return [one_line(str(e))]
    outcomes = []
    for item in items:
        if isinstance(item, Located):
            assert_clean(item.event)
            outcomes.append("ok")
        else:
            outcomes.extend(problem_lines([item]))
    return outcomes


@budget(300)
@given(
    st.lists(st.lists(csv_cells, min_size=1, max_size=8), max_size=4),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.booleans(),
)
def test_csv_rows_are_events_or_one_line_errors(
    rows: list[list[str]], newline: str, bom: bool
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerows([HEADER, GOOD_ROW, *rows])
    data = (b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode(
        "utf-8", "surrogatepass"
    )
    read_csv_bytes(data)


@budget(300)
@given(st.binary(max_size=300))
def test_csv_bytes_are_events_or_one_line_errors(data: bytes) -> None:
    header = ",".join(HEADER).encode() + b"\n"
    read_csv_bytes(header + data)
    read_csv_bytes(header + data, encoding="cp1252")


def test_an_overlong_csv_cell_is_refused() -> None:
    row = [*GOOD_ROW[:-1], '"' + "x" * (MAX_CELL_CHARS + 1) + '"']
    data = (",".join(HEADER) + "\n" + ",".join(row) + "\n").encode()
    assert read_csv_bytes(data) == [
        f"f.csv:2: a cell is longer than {MAX_CELL_CHARS:,} characters"
    ]


def test_an_overlong_csv_line_is_refused_without_being_read_whole() -> None:
    # Many short cells: no cell is too long, the line is.
    cells = ",".join(["x"] * (MAX_LINE_CHARS // 2 + 10))
    stream = io.BytesIO((",".join(HEADER) + "\n" + cells + "\n").encode())
    with pytest.raises(InputError) as raised:
        list(read_csv(stream, "f.csv", encoding="utf-8", timezone=None))
    assert str(raised.value) == (
        f"f.csv:2: line longer than {MAX_LINE_CHARS:,} characters"
    )


def test_csv_refuses_control_characters_in_long_text() -> None:
    row = ",".join(GOOD_ROW[:-1]) + ',"a\x00b"'
    assert read_csv_bytes((",".join(HEADER) + "\n" + row + "\n").encode()) == [
        "f.csv:2: summary: must not contain control characters other than tabs "
        "and line breaks"
    ]


# The Salesforce bundle reader

SALESFORCE_FILES = {p.name: p.read_bytes() for p in SALESFORCE.glob("*.csv")}
NOW = datetime(2026, 7, 1, tzinfo=UTC)


def salesforce_rows(name: str) -> list[list[str]]:
    text = SALESFORCE_FILES[name].decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline="")))


def read_salesforce(folder: Path) -> list[str]:
    try:
        items = list(
            read_bundle(
                folder, encoding="utf-8", timezone=None, loss_reason_field=None, now=NOW
            )
        )
    except InputError as e:
        return [one_line(str(e))]
    outcomes = []
    for item in items:
        if isinstance(item, Located):
            assert_clean(item.event)
            outcomes.append("ok")
        else:
            outcomes.extend(problem_lines([item]))
    return outcomes


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("salesforce")
    for name, data in SALESFORCE_FILES.items():
        (folder / name).write_bytes(data)
    return folder


@st.composite
def salesforce_edits(draw: st.DrawFn) -> tuple[str, bytes]:
    """One example file with one cell (header or data) replaced."""
    name = draw(st.sampled_from(sorted(SALESFORCE_FILES)))
    rows = salesforce_rows(name)
    row = draw(st.integers(min_value=0, max_value=len(rows) - 1))
    column = draw(st.integers(min_value=0, max_value=len(rows[row]) - 1))
    rows[row][column] = draw(csv_cells)
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL).writerows(rows)
    return name, buffer.getvalue().encode("utf-8")


@budget(120)
@given(salesforce_edits())
def test_a_salesforce_cell_changed_is_events_or_one_line_errors(
    bundle: Path, edit: tuple[str, bytes]
) -> None:
    name, data = edit
    (bundle / name).write_bytes(data)
    try:
        read_salesforce(bundle)
    finally:
        (bundle / name).write_bytes(SALESFORCE_FILES[name])


@pytest.mark.parametrize(
    ("file", "column", "value", "expected"),
    [
        ("OpportunityHistory.csv", "Amount", "sNaN", "Amount: 'sNaN' is not a number"),
        ("OpportunityHistory.csv", "Amount", "Infinity", "Amount: 'Infinity' is not"),
        (
            "Task.csv",
            "CallDurationInSeconds",
            "1e99999999",
            "'1e99999999' is too large",
        ),
        ("Task.csv", "CreatedDate", "0001-01-01T00:00:00+01:00", "CreatedDate: year 1"),
        ("Task.csv", "ActivityDate", "9999-12-31", "ActivityDate: year 9999"),
        ("Event.csv", "StartDateTime", "9999-12-31T23:59:59-01:00", "StartDateTime"),
        ("Task.csv", "Subject", "bell\x07", "Subject: must not contain control"),
        ("Opportunity.csv", "IsWon", "y" * 5000, "IsWon: 'yyyy"),
        ("Account.csv", "IsDeleted", "\x00", "IsDeleted: '\\x00' is not true"),
    ],
)
def test_hostile_salesforce_cells(
    bundle: Path, file: str, column: str, value: str, expected: str
) -> None:
    rows = salesforce_rows(file)
    rows[1][rows[0].index(column)] = value
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    (bundle / file).write_bytes(buffer.getvalue().encode())
    try:
        outcomes = read_salesforce(bundle)
    finally:
        (bundle / file).write_bytes(SALESFORCE_FILES[file])
    problems = [o for o in outcomes if o != "ok"]
    assert problems
    assert problems[0].startswith(f"{bundle / file}:2: ")
    assert expected in problems[0]


# The command line, end to end

RUNNER = CliRunner()
CLEAN_ENV: dict[str, str | None] = {"DEALTRAIL_STORE": None, "DEALTRAIL_ACTOR": None}
# A bad line names its field; an event the deal's history refuses does not.
REFUSED_LINE = re.compile(r"^.+:\d+: .+$")


def dealtrail(store: str, *args: str, input: bytes | None = None) -> Result:
    result = RUNNER.invoke(cli, ["--store", store, *args], input=input, env=CLEAN_ENV)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args[:2]} raised: {result.exception!r}")
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2), result.output
    if result.exit_code == 2:
        assert result.stdout == ""
        assert "\nError: " in result.stderr
    return result


def one_error_line(result: Result) -> str:
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ")
    return result.stderr


def dump(path: Path) -> list[str]:
    """The store's whole content, row by row."""
    with sqlite3.connect(path) as db:
        return list(db.iterdump())


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    path = tmp_path_factory.mktemp("store") / "dealtrail.db"
    url = f"sqlite:///{path}"
    result = dealtrail(url, "import", str(EXAMPLES[0]))
    assert result.exit_code == 0, result.stderr
    return url, path


def unchanged_on_failure(path: Path, before: list[str], result: Result) -> None:
    if result.exit_code != 0:
        assert dump(path) == before


@budget(60)
@given(st.lists(mutated_lines(), min_size=1, max_size=30))
def test_import_refuses_bad_lines_and_writes_nothing(
    store: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory, lines: Any
) -> None:
    url, path = store
    source = tmp_path_factory.mktemp("in") / "hostile.jsonl"
    source.write_bytes(b"\n".join(line for line, _ in lines))
    before = dump(path)
    result = dealtrail(url, "import", "--dry-run", str(source))
    if result.exit_code == 0:
        return
    *problems, last = result.stderr.splitlines()
    assert last.startswith("error: ")
    assert last.endswith("; nothing was imported")
    count = int(last.removeprefix("error: ").split()[0])
    if count > MAX_REPORTED_ERRORS:
        assert problems[-1] == f"... and {count - MAX_REPORTED_ERRORS} more"
        problems = problems[:-1]
    assert len(problems) == min(count, MAX_REPORTED_ERRORS)
    for problem in problems:
        assert REFUSED_LINE.match(problem)
        assert problem.startswith(f"{source}:")
    assert dump(path) == before


def test_a_refused_import_writes_nothing(
    store: tuple[str, Path], tmp_path: Path
) -> None:
    url, path = store
    good = [json.dumps(line) for line in VALID_LINES if line["deal"] != "X"]
    source = tmp_path / "one-bad.jsonl"
    source.write_text("\n".join([*good, '{"type": "DealWon", "deal": 1}']) + "\n")
    before = dump(path)
    result = dealtrail(url, "import", str(source))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].startswith(f"{source}:{len(good) + 1}: ")
    assert dump(path) == before


DEAL = VALID_LINES[0]["deal"]
RECORDING = {
    "open": (
        ["NEW"],
        {"--name": "n", "--account": "a", "--owner": "o", "--stage": "s"},
        ["--amount", "--currency", "--expected-close", "--timezone"],
    ),
    "log": (
        [DEAL],
        {"--channel": "email", "--direction": "inbound"},
        ["--with", "--summary", "--rep", "--duration", "--at", "--logged-at"],
    ),
    "stakeholder add": ([DEAL, "c@example.com"], {"--role": "champion"}, ["--name"]),
    "next-step set": ([DEAL], {"--due": "2026-07-01"}, ["--due", "--at"]),
    "promise": ([DEAL], {"--due": "2026-07-01"}, ["--due", "--promise"]),
    "lost": ([DEAL], {"--reason": "price"}, ["--reason", "--competitor", "--at"]),
    "update": ([DEAL], {"--amount": "1"}, ["--amount", "--currency", "--name"]),
}


def _options(command: str) -> list[str]:
    from cli.main import cli as group

    ctx = group.make_context("dealtrail", ["--help"], resilient_parsing=True)
    found: Any = group
    for word in command.split():
        found = found.get_command(ctx, word)
    return [opt for p in found.params for opt in getattr(p, "opts", [])]


@pytest.mark.parametrize("command", sorted(RECORDING))
def test_the_fuzzed_options_exist(command: str) -> None:
    _, required, fuzzed = RECORDING[command]
    assert set(required) | set(fuzzed) <= set(_options(command))


cli_values = (
    hostile_text
    | st.text(max_size=40)
    | st.sampled_from(
        ["2026-06-01T10:00:00Z", "1e308", "-0", "Europe/Paris", "9" * 400]
    )
)


@budget(80)
@given(st.sampled_from(sorted(RECORDING)), st.data())
def test_recording_options_succeed_or_give_one_error_line(
    store: tuple[str, Path], command: str, data: Any
) -> None:
    url, path = store
    arguments, required, fuzzed = RECORDING[command]
    values = dict(required)
    for option in data.draw(st.lists(st.sampled_from(fuzzed), min_size=1, max_size=3)):
        values[option] = data.draw(cli_values)
    key = data.draw(st.sampled_from([arguments[0], "D\x00", "x" * 300, " "]))
    argv = [*command.split(), key, *arguments[1:]]
    for option, value in values.items():
        argv += [option, value]
    before = dump(path)
    result = dealtrail(url, *argv)
    if result.exit_code == 1:
        one_error_line(result)
    unchanged_on_failure(path, before, result)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["open", "N", "--timezone", "z" * 5000], "error: --timezone: String should"),
        (["log", DEAL, "--summary", "a\x00b"], "error: --summary: must not contain"),
        (["log", DEAL, "--at", "1700000000"], "error: --at: '1700000000' is a number"),
        (
            ["promise", DEAL, "--due", "20260701"],
            "error: --due: '20260701' is a number",
        ),
        (["import", "--timezone", "z" * 5000, "x.csv"], "error: --timezone: unknown"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)
def test_hostile_option_values(
    store: tuple[str, Path], argv: list[str], expected: str
) -> None:
    url, path = store
    fill = {"open": ["--name", "n", "--account", "a", "--owner", "o", "--stage", "s"]}
    fill["log"] = ["--channel", "email", "--direction", "inbound"]
    before = dump(path)
    result = dealtrail(url, *argv, *fill.get(argv[0], []))
    assert one_error_line(result).startswith(expected)
    assert dump(path) == before


@budget(60)
@given(
    st.sampled_from([("timeline", "--as-of"), ("gaps", "--as-of"), ("deal", "show")]),
    cli_values,
)
def test_as_of_times_are_read_or_refused_in_one_line(
    store: tuple[str, Path], command: tuple[str, str], value: str
) -> None:
    url, _ = store
    deal = VALID_LINES[0]["deal"]
    if command == ("deal", "show"):
        argv = ["deal", "show", deal, "--as-of", value]
    else:
        argv = [command[0], deal, command[1], value]
    result = dealtrail(url, *argv)
    if result.exit_code == 1:
        one_error_line(result)


passwords = st.text(
    alphabet=string.ascii_letters + string.digits + "!#$%&'()*+,/:;=?@[]~ -_.",
    min_size=6,
    max_size=20,
).filter(lambda pw: pw.strip() == pw and "  " not in pw)


@budget(60)
@example("pass/word", False, "/db")
@example("pass[word", False, "/db")
@example("p@ss?word#", False, "/db?schema=Bad")
@given(
    passwords,
    st.booleans(),
    st.sampled_from(["/db", "/db?schema=Bad", "/", "/db?x=1", ":99999/db", ""]),
)
def test_a_store_password_never_appears_in_a_message(
    password: str, encoded: bool, rest: str
) -> None:
    written = quote(password, safe="") if encoded else password
    # Port 1 on the loopback refuses at once: no server, no waiting.
    host = "127.0.0.1" + ("" if rest.startswith(":") else ":1")
    url = f"postgresql://alice:{written}@{host}{rest}"
    result = dealtrail(url, "deal", "list")
    one_error_line(result)
    assert password not in result.output
    assert written not in result.output


toml_values = st.sampled_from(
    [
        "nan",
        "inf",
        "-inf",
        "-1",
        "0",
        "1e308",
        '"x"',
        '"' + "x" * 300 + '"',
        "1979-05-27T07:32:00",
        "0001-01-01",
        "9999-12-31",
        "07:32:00",
        "[]",
        "[" * 3000 + "]" * 3000,
        "{ a = 1 }",
        '"Europe/Nowhere"',
        '"' + "z" * 5000 + '"',
        "true",
    ]
)
RULE_KEYS = [
    "version",
    "calendar.default_timezone",
    "calendar.workday_start",
    "calendar.weekend",
    "calendar.extra_holidays",
    "calendar.holidays_country",
    "follow_up.sla_business_hours",
    "stages.order",
    "rubber_stamp.late_stage",
    "nowhere.at_all",
]


@budget(60)
@example([("calendar.default_timezone", '"' + "z" * 5000 + '"')])
@example([("stages.order", "[" * 3000 + "]" * 3000)])
@given(st.lists(st.tuples(st.sampled_from(RULE_KEYS), toml_values), max_size=4))
def test_a_rules_file_is_read_or_refused_in_one_line(
    store: tuple[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
    settings_: list[tuple[str, str]],
) -> None:
    url, _ = store
    tables: dict[str, list[str]] = {}
    for key, value in settings_:
        table, _, name = key.rpartition(".")
        tables.setdefault(table, []).append(f"{name} = {value}")
    text = "\n".join(
        (f"[{table}]\n" if table else "") + "\n".join(lines)
        for table, lines in sorted(tables.items())
    )
    rules = tmp_path_factory.mktemp("rules") / "rules.toml"
    rules.write_text(text + "\n")
    result = dealtrail(url, "gaps", VALID_LINES[0]["deal"], "--rules", str(rules))
    if result.exit_code == 1:
        # A rules file reports all its problems, one line each.
        first, *more = result.stderr.splitlines()
        assert first.startswith(f"error: {rules}: ")
        assert all(line.startswith(f"{rules}: ") for line in more)


def test_size_limits_are_the_documented_ones() -> None:
    page = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    section = page.split("## Hostile input", 1)[1].split("\n## ", 1)[0]
    for limit in (SHORT_TEXT, LONG_TEXT, MAX_PARTICIPANTS, MAX_TIMEZONE):
        assert f"{limit:,}" in section
    for limit in (MAX_LINE_BYTES, MAX_CELL_CHARS, MAX_LINE_CHARS):
        assert f"{limit:,}" in section

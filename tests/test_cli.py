"""The ``dealtrail`` command line, end to end against real SQLite files.

Every command is invoked through Click's CliRunner on a store in tmp_path.
Recording commands are read back with ``timeline KEY --format json``. The
contract checked throughout: stdout carries data only, messages go to
stderr, and an error is one line on stderr with exit code 1 (2 for usage
errors, as Click does).
"""

from __future__ import annotations

import json
import re
import shlex
import stat
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from engine.rules import RuleSet

RUNNER = CliRunner()

# A user's own settings must not leak into the tests (None unsets).
CLEAN_ENV: dict[str, str | None] = {"DEALTRAIL_STORE": None, "DEALTRAIL_ACTOR": None}

NO_STORE = (
    "error: no store at {path}; run 'dealtrail init' or "
    "'dealtrail import FILE' first (or pass --store)"
)
NAIVE = "naive timestamp '{value}'; add a UTC offset such as Z or +01:00"


def sh(command: str) -> tuple[str, ...]:
    """Command-line words, split as a POSIX shell would."""
    return tuple(shlex.split(command))


def cases(*pairs: tuple[tuple[str, ...], str]) -> list[Any]:
    """(args, expected) parameters, each named by its command's first words."""
    return [
        pytest.param(args, expected, id=" ".join(args[:3]).split(" -")[0])
        for args, expected in pairs
    ]


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def invoke(
    store: Path | None,
    *args: str,
    input: str | bytes | None = None,
    env: Mapping[str, str | None] | None = None,
) -> Result:
    """Run ``dealtrail [--store sqlite:///STORE] ARGS...`` in-process."""
    argv = [*(["--store", url(store)] if store is not None else []), *args]
    return RUNNER.invoke(
        cli,
        argv,
        input=input,
        env={**CLEAN_ENV, **(env or {})},
        catch_exceptions=False,
        prog_name="dealtrail",
    )


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.stderr
    return result


def error_line(result: Result, code: int = 1) -> str:
    """The one stderr line of a command that exits with ``code`` and prints no
    data (stdout must stay empty)."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.endswith("\n")
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr.rstrip("\n")


def message(result: Result) -> str:
    """The one stderr line of a successful command that prints no data."""
    return error_line(result, code=0)


def usage_error(result: Result) -> str:
    """The 'Error: ...' line of a Click usage error (exit 2, nothing on stdout)."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("Usage: dealtrail ")
    return result.stderr[result.stderr.index("\nError: ") + 1 :].rstrip("\n")


def record(store: Path, *args: str) -> str:
    """Run a recording command that must succeed; its stderr line."""
    return message(invoke(store, *args))


def timeline(store: Path, key: str, *options: str) -> list[dict[str, Any]]:
    result = ok(invoke(store, "timeline", key, "--format", "json", *options))
    assert result.stderr == ""
    data = json.loads(result.stdout)
    assert data["deal"] == key
    events: list[dict[str, Any]] = data["events"]
    return events


def types_of(events: Sequence[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def without_recorded_at(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    for e in events:
        assert datetime.fromisoformat(e["recorded_at"]).tzinfo is not None
    return [{k: v for k, v in e.items() if k != "recorded_at"} for e in events]


def cells(line: str) -> list[str]:
    """The cells of a plain tabulate row (columns are 2+ spaces apart)."""
    return re.split(r"\s{2,}", line.strip())


def write_lines(path: Path, *objs: dict[str, Any] | str) -> Path:
    path.write_text(
        "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs)
    )
    return path


# A deal as the `deal` fixture records it.

OPEN = (
    "open", "ACME-1", "--name", "ACME platform", "--account", "ACME",
    "--owner", "sam", "--stage", "discovery", "--timezone", "Europe/Paris",
    "--at", "2026-03-02T09:00:00+01:00", "--logged-at", "2026-03-02T08:00:00Z",
)  # fmt: skip
JOIN = (
    "stakeholder", "add", "ACME-1", "dana@acme.example", "--role", "champion",
    "--at", "2026-03-02T09:30:00+01:00", "--logged-at", "2026-03-02T08:30:00Z",
)  # fmt: skip
TOUCH = (
    "log", "ACME-1", "--channel", "call", "--direction", "outbound",
    "--with", "dana@acme.example", "--id", "t1",
    "--at", "2026-03-02T10:00:00+01:00", "--logged-at", "2026-03-02T09:00:00Z",
)  # fmt: skip

# Native lines for imports.

B_OPEN = {
    "type": "DealOpened",
    "deal": "B-1",
    "occurred_at": "2026-03-02T09:00:00+01:00",
    "name": "Bolt rollout",
    "account": "Bolt",
    "owner": "kim",
    "stage": "discovery",
}
B_TOUCH = {
    "type": "TouchpointLogged",
    "deal": "B-1",
    "touchpoint": "b1",
    "occurred_at": "2026-03-03T10:00:00+01:00",
    "channel": "email",
    "direction": "inbound",
    "participants": ["lee@bolt.example"],
}
B_STAGE = {
    "type": "StageChanged",
    "deal": "B-1",
    "occurred_at": "2026-03-05T10:00:00+01:00",
    "stage": "proposal",
}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Where the test's SQLite store lives (not created yet)."""
    return tmp_path / "s.db"


@pytest.fixture
def deal(store: Path) -> Path:
    """A store holding ACME-1: opened, with champion dana, and touchpoint t1."""
    for args in (OPEN, JOIN, TOUCH):
        record(store, *args)
    return store


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in tmp_path, so import messages name files as given."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# The command catalogue


def command_paths(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[Any]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from command_paths(command, (*path, name))


def command_at(path: Sequence[str]) -> click.Command:
    command: click.Command | None = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.get_command(click.Context(command), name)
    assert command is not None
    return command


ALL_PATHS: list[tuple[str, ...]] = [(), *command_paths(cli)]


def test_the_cli_offers_exactly_the_commands_these_tests_cover() -> None:
    assert [" ".join(p) for p in ALL_PATHS[1:]] == [
        "init",
        "import",
        "deal",
        "deal list",
        "deal show",
        "gaps",
        "stakeholders",
        "audit",
        "replay",
        "accounts",
        "backtest",
        "projections",
        "projections status",
        "projections rebuild",
        "projections follow",
        "open",
        "update",
        "stage",
        "log",
        "stakeholder",
        "stakeholder add",
        "stakeholder role",
        "stakeholder leave",
        "stakeholder note",
        "next-step",
        "next-step set",
        "next-step clear",
        "promise",
        "request",
        "coach",
        "won",
        "lost",
        "reopen",
        "correct",
        "retract",
        "timeline",
        "export",
        "schemas",
        "schemas write",
        "schemas check",
        "report",
        "doctor",
        "verify",
        "forget",
    ]


@pytest.mark.parametrize("path", ALL_PATHS, ids=lambda p: " ".join(p) or "dealtrail")
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_of_every_command_and_group_exits_0_and_describes_it(
    path: tuple[str, ...], flag: str
) -> None:
    result = invoke(None, *path, flag)
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout.startswith(" ".join(("Usage: dealtrail", *path)))
    summary = (command_at(path).help or "").strip().splitlines()[0]
    assert summary
    assert summary in result.stdout


def test_version_prints_the_package_version() -> None:
    from importlib.metadata import version

    result = ok(invoke(None, "--version"))
    assert result.stdout == f"dealtrail, version {version('dealtrail')}\n"


def test_an_unknown_command_is_a_usage_error() -> None:
    assert usage_error(invoke(None, "frobnicate")) == (
        "Error: No such command 'frobnicate'."
    )


# init and the store


def test_init_creates_a_private_empty_sqlite_file(store: Path) -> None:
    assert message(invoke(store, "init")) == f"store ready: {url(store)} (0 events)"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert store.read_bytes().startswith(b"SQLite format 3\x00")


def test_init_creates_missing_parent_directories(tmp_path: Path) -> None:
    store = tmp_path / "a" / "b" / "s.db"
    ok(invoke(store, "init"))
    assert stat.S_IMODE(store.stat().st_mode) == 0o600


def test_init_on_an_existing_store_keeps_and_counts_its_events(deal: Path) -> None:
    assert message(invoke(deal, "init")) == f"store ready: {url(deal)} (3 events)"
    assert types_of(timeline(deal, "ACME-1")) == [
        "DealOpened",
        "StakeholderJoined",
        "TouchpointLogged",
    ]


def test_a_recording_command_creates_a_private_store_file(store: Path) -> None:
    record(store, *OPEN)
    assert stat.S_IMODE(store.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "args",
    [
        ("timeline", "ACME-1"),
        ("timeline", "ACME-1", "--format", "json"),
        ("timeline", "ACME-1", "--format", "jsonl"),
        ("deal", "list"),
        ("deal", "list", "--format", "json"),
        ("deal", "show", "ACME-1"),
        ("deal", "show", "ACME-1", "--format", "json"),
    ],
    ids=" ".join,
)
def test_a_read_command_on_a_missing_store_fails_without_creating_it(
    store: Path, args: tuple[str, ...]
) -> None:
    assert error_line(invoke(store, *args)) == NO_STORE.format(path=store)
    assert not store.exists()


def test_the_store_can_come_from_the_environment(store: Path) -> None:
    ok(invoke(None, *OPEN, env={"DEALTRAIL_STORE": url(store)}))
    assert store.exists()
    assert types_of(timeline(store, "ACME-1")) == ["DealOpened"]


def test_the_default_store_is_dealtrail_db_in_the_working_directory(
    in_tmp: Path,
) -> None:
    error = error_line(invoke(None, "deal", "list"))
    assert error == NO_STORE.format(path="dealtrail.db")
    assert not (in_tmp / "dealtrail.db").exists()
    assert (
        message(invoke(None, "init"))
        == "store ready: sqlite:///dealtrail.db (0 events)"
    )
    assert (in_tmp / "dealtrail.db").is_file()


@pytest.mark.parametrize(
    ("store_url", "expected"),
    [
        (
            "foo://x",
            "error: store 'foo://x': unknown kind; "
            "use sqlite:///file.db or postgresql://user@host/db",
        ),
        (
            "sqlite://host/x.db",
            "error: store 'sqlite://host/x.db': write sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db",
        ),
        (
            "sqlite:///",
            "error: store 'sqlite:///': write sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db",
        ),
        (
            "postgresql://sam:hunter2@/crm",
            "error: store 'postgresql://sam:***@/crm': "
            "write postgresql://user[:password]@host[:port]/db",
        ),
        (
            "postgresql://sam@db.example:port/crm",
            "error: store 'postgresql://sam@db.example:port/crm': "
            "the port must be a number from 0 to 65535",
        ),
        (
            "postgresql://sam@db.example/crm?colour=red",
            "error: store 'postgresql://sam@db.example/crm?colour=red': "
            "unknown option 'colour' (only 'schema' is understood)",
        ),
        (
            "postgresql://sam@db.example/crm?schema=Bad-Name",
            "error: store 'postgresql://sam@db.example/crm?schema=Bad-Name': "
            "schema must be a lower-case name",
        ),
        (
            "foo://" + "x" * 500,
            "error: store 'foo://" + "x" * 49 + "...': unknown kind; "
            "use sqlite:///file.db or postgresql://user@host/db",
        ),
    ],
    ids=[
        "unknown kind",
        "sqlite with a host",
        "sqlite without a path",
        "postgresql without a host",
        "postgresql with a bad port",
        "postgresql with an unknown option",
        "postgresql with a bad schema",
        "a long one, clipped",
    ],
)
@pytest.mark.parametrize(
    "args",
    [("init",), ("timeline", "ACME-1"), ("deal", "list"), OPEN],
    ids=lambda a: a[0],
)
def test_a_bad_store_url_is_a_one_line_error(
    store_url: str, expected: str, args: tuple[str, ...]
) -> None:
    result = RUNNER.invoke(
        cli,
        ["--store", store_url, *args],
        env=CLEAN_ENV,
        catch_exceptions=False,
        prog_name="dealtrail",
    )
    line = error_line(result)
    assert line == expected
    assert "hunter2" not in line


def test_a_password_containing_an_at_sign_is_never_shown() -> None:
    result = RUNNER.invoke(
        cli,
        ["--store", "postgresql://sam:hun@ter2@/crm", "deal", "list"],
        env=CLEAN_ENV,
        catch_exceptions=False,
    )
    line = error_line(result)
    assert "ter2" not in line


def test_a_store_file_that_is_not_a_database_is_a_one_line_error(store: Path) -> None:
    store.write_text("this is not a database\n" * 10)
    line = error_line(invoke(store, "timeline", "ACME-1"))
    assert line == f"error: cannot open store {url(store)}: file is not a database"


# Recording commands

AT = "2026-03-20T10:00:00+01:00"
LOGGED = "2026-03-20T12:00:00Z"

RECORDING_CASES = [
    pytest.param(
        (),
        (
            "update", "ACME-1", "--name", "ACME platform v2", "--owner", "kim",
            "--amount", "52000.50", "--currency", "EUR",
            "--expected-close", "2026-07-31",
        ),
        {
            "type": "DealUpdated",
            "name": "ACME platform v2",
            "owner": "kim",
            "amount": "52000.50",
            "currency": "EUR",
            "expected_close": "2026-07-31",
        },
        id="update",
    ),
    pytest.param(
        (),
        ("stage", "ACME-1", "Proposal Sent"),
        {"type": "StageChanged", "stage": "proposal_sent"},
        id="stage",
    ),
    pytest.param(
        (),
        (
            "log", "ACME-1", "--channel", "meeting", "--direction", "inbound",
            "--with", "Dana@ACME.example", "--with", "al@acme.example",
            "--id", "t2", "--rep", "sam", "--summary", "Demo went well",
            "--outcome", "connected", "--duration", "45",
        ),
        {
            "type": "TouchpointLogged",
            "touchpoint": "t2",
            "channel": "meeting",
            "direction": "inbound",
            "participants": ["al@acme.example", "dana@acme.example"],
            "rep": "sam",
            "summary": "Demo went well",
            "outcome": "connected",
            "duration_minutes": 45,
        },
        id="log",
    ),
    pytest.param(
        (),
        (
            "stakeholder", "add", "ACME-1", "Cy@ACME.example",
            "--role", "economic_buyer", "--name", "Cy Doe", "--title", "CFO",
        ),
        {
            "type": "StakeholderJoined",
            "contact": "cy@acme.example",
            "role": "economic_buyer",
            "name": "Cy Doe",
            "title": "CFO",
        },
        id="stakeholder add",
    ),
    pytest.param(
        (),
        ("stakeholder", "role", "ACME-1", "dana@acme.example", "decision_maker"),
        {
            "type": "StakeholderRoleChanged",
            "contact": "dana@acme.example",
            "role": "decision_maker",
        },
        id="stakeholder role",
    ),
    pytest.param(
        (),
        ("stakeholder", "leave", "ACME-1", "dana@acme.example", "--reason", "left"),
        {"type": "StakeholderLeft", "contact": "dana@acme.example", "reason": "left"},
        id="stakeholder leave",
    ),
    pytest.param(
        (),
        ("stakeholder", "note", "ACME-1", "DANA@acme.example", "cut churn by 5%"),
        {
            "type": "StakeholderPriorityNoted",
            "contact": "dana@acme.example",
            "priority": "cut churn by 5%",
        },
        id="stakeholder note",
    ),
    pytest.param(
        (),
        (
            "next-step", "set", "ACME-1", "Security review call",
            "--due", "2026-03-25", "--owner", "sam",
        ),
        {
            "type": "NextStepSet",
            "description": "Security review call",
            "due": "2026-03-25",
            "owner": "sam",
        },
        id="next-step set",
    ),
    pytest.param(
        (),
        ("next-step", "clear", "ACME-1", "--reason", "done"),
        {"type": "NextStepCleared", "reason": "done"},
        id="next-step clear",
    ),
    pytest.param(
        (),
        ("promise", "ACME-1", "--due", "2026-03-24", "--promise", "pricing options"),
        {"type": "FollowUpPromised", "due": "2026-03-24", "promise": "pricing options"},
        id="promise",
    ),
    pytest.param(
        (),
        (
            "request", "ACME-1", "--by", "Dana@acme.example",
            "--not-before", "2026-03-30T09:00:00+02:00", "--note", "after budget",
        ),
        {
            "type": "FollowUpRequested",
            "by": "dana@acme.example",
            "not_before": "2026-03-30T09:00:00+02:00",
            "note": "after budget",
        },
        id="request",
    ),
    pytest.param(
        (),
        ("coach", "ACME-1", "Name a deadline", "--author", "kim", "--about", "t1"),
        {
            "type": "CoachingNoteAdded",
            "note": "Name a deadline",
            "author": "kim",
            "about": "t1",
        },
        id="coach",
    ),
    pytest.param(
        (),
        ("won", "ACME-1", "--amount", "48000", "--note", "signed"),
        {"type": "DealWon", "amount": "48000", "note": "signed"},
        id="won",
    ),
    pytest.param(
        (),
        (
            "lost", "ACME-1", "--reason", "chose a competitor",
            "--competitor", "Initech", "--note", "price",
        ),
        {
            "type": "DealLost",
            "reason": "chose a competitor",
            "competitor": "Initech",
            "note": "price",
        },
        id="lost",
    ),
    pytest.param(
        (("lost", "ACME-1", "--reason", "no budget", "--at", "2026-03-15T10:00:00Z"),),
        ("reopen", "ACME-1", "--reason", "budget came back"),
        {"type": "DealReopened", "reason": "budget came back"},
        id="reopen",
    ),
    pytest.param(
        (),
        (
            "correct", "ACME-1", "t1", "--occurred-at", "2026-03-02T11:00:00+01:00",
            "--channel", "meeting", "--direction", "inbound",
            "--with", "Bo@acme.example", "--with", "dana@acme.example",
            "--rep", "kim", "--summary", "In person", "--outcome", "replied",
            "--duration", "20",
        ),
        {
            "type": "TouchpointCorrected",
            "touchpoint": "t1",
            "touchpoint_occurred_at": "2026-03-02T11:00:00+01:00",
            "channel": "meeting",
            "direction": "inbound",
            "participants": ["bo@acme.example", "dana@acme.example"],
            "rep": "kim",
            "summary": "In person",
            "outcome": "replied",
            "duration_minutes": 20,
        },
        id="correct",
    ),
    pytest.param(
        (),
        ("retract", "ACME-1", "t1", "--reason", "logged on the wrong deal"),
        {
            "type": "TouchpointRetracted",
            "touchpoint": "t1",
            "reason": "logged on the wrong deal",
        },
        id="retract",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("before", "args", "fields"), RECORDING_CASES)
def test_each_recording_command_records_its_event_with_the_given_fields(
    deal: Path,
    before: tuple[tuple[str, ...], ...],
    args: tuple[str, ...],
    fields: dict[str, Any],
) -> None:
    for setup in before:
        record(deal, *setup)
    count = len(timeline(deal, "ACME-1"))
    line = record(deal, *args, "--at", AT, "--logged-at", LOGGED, "--actor", "kim")
    assert line == f"recorded {fields['type']} on ACME-1"
    events = timeline(deal, "ACME-1")
    assert len(events) == count + 1
    assert without_recorded_at(events[-1:]) == [
        {
            "deal": "ACME-1",
            "occurred_at": AT,
            "logged_at": LOGGED,
            "actor": "kim",
            "source": "cli",
            **fields,
        }
    ]


def test_every_recording_command_has_a_case_above() -> None:
    recording = {
        " ".join(path)
        for path in ALL_PATHS
        if any(p.name == "logged_at" for p in command_at(path).params)
    }
    covered = {p.id for p in RECORDING_CASES} | {"open"}
    assert recording == covered


def test_open_records_every_given_field_and_normalises_the_stage(store: Path) -> None:
    line = record(
        store,
        "open", "ACME-1", "--name", "ACME platform", "--account", "ACME",
        "--owner", "sam", "--stage", "Discovery Call", "--amount", "48000.5",
        "--currency", "EUR", "--expected-close", "2026-06-30",
        "--timezone", "Europe/Paris", "--at", "2026-03-02T09:00:00+01:00",
        "--logged-at", "2026-03-02T08:05:00Z", "--actor", "kim",
    )  # fmt: skip
    assert line == "recorded DealOpened on ACME-1"
    assert without_recorded_at(timeline(store, "ACME-1")) == [
        {
            "type": "DealOpened",
            "deal": "ACME-1",
            "occurred_at": "2026-03-02T09:00:00+01:00",
            "logged_at": "2026-03-02T08:05:00Z",
            "actor": "kim",
            "source": "cli",
            "name": "ACME platform",
            "account": "ACME",
            "owner": "sam",
            "stage": "discovery_call",
            "amount": "48000.5",
            "currency": "EUR",
            "expected_close": "2026-06-30",
            "timezone": "Europe/Paris",
        }
    ]


def test_without_at_an_event_happens_and_is_logged_now(deal: Path) -> None:
    before = datetime.now(UTC)
    record(deal, "stage", "ACME-1", "proposal")
    after = datetime.now(UTC)
    event = timeline(deal, "ACME-1")[-1]
    occurred = datetime.fromisoformat(event["occurred_at"])
    assert event["type"] == "StageChanged"
    assert before <= occurred <= after
    assert datetime.fromisoformat(event["logged_at"]) == occurred
    assert "actor" not in event


def test_the_actor_can_come_from_the_environment(deal: Path) -> None:
    result = invoke(
        deal, "stage", "ACME-1", "proposal", env={"DEALTRAIL_ACTOR": "robin"}
    )
    message(result)
    assert timeline(deal, "ACME-1")[-1]["actor"] == "robin"


def test_a_log_without_id_gets_an_id_derived_from_the_touch(deal: Path) -> None:
    args = (
        "log", "ACME-1", "--channel", "email", "--direction", "outbound",
        "--at", "2026-03-03T10:00:00Z",
    )  # fmt: skip
    record(deal, *args)
    touchpoint = timeline(deal, "ACME-1")[-1]["touchpoint"]
    assert re.fullmatch(r"tp-[0-9a-f]{12}", touchpoint)
    again = record(deal, *args)
    assert again == "TouchpointLogged on ACME-1 is already recorded; nothing changed"
    assert types_of(timeline(deal, "ACME-1")).count("TouchpointLogged") == 2


# Idempotence and refusals


def test_re_running_an_identical_log_says_already_recorded_and_adds_nothing(
    deal: Path,
) -> None:
    line = record(deal, *TOUCH)
    assert line == "TouchpointLogged on ACME-1 is already recorded; nothing changed"
    assert len(timeline(deal, "ACME-1")) == 3


def test_re_running_a_log_with_other_provenance_is_still_already_recorded(
    deal: Path,
) -> None:
    line = record(
        deal, *TOUCH[:-2], "--logged-at", "2026-03-09T09:00:00Z", "--actor", "x"
    )
    assert line == "TouchpointLogged on ACME-1 is already recorded; nothing changed"
    assert timeline(deal, "ACME-1")[-1]["logged_at"] == "2026-03-02T09:00:00Z"


def test_a_duplicate_touchpoint_id_with_different_content_is_refused(
    deal: Path,
) -> None:
    changed = tuple("email" if a == "call" else a for a in TOUCH)
    assert error_line(invoke(deal, *changed)) == (
        "error: touchpoint 't1' is already recorded with other details "
        "(differs in channel); record a correction instead"
    )
    touches = [e for e in timeline(deal, "ACME-1") if e["type"] == "TouchpointLogged"]
    assert [t["channel"] for t in touches] == ["call"]


@pytest.mark.parametrize(
    ("args", "expected"),
    cases(
        (
            ("stage", "NOPE-1", "proposal"),
            "error: unknown deal 'NOPE-1'; open it first",
        ),
        (
            ("log", "NOPE-1", "--channel", "call", "--direction", "outbound"),
            "error: unknown deal 'NOPE-1'; open it first",
        ),
        (
            ("retract", "ACME-1", "t9", "--reason", "typo"),
            "error: deal 'ACME-1' has no touchpoint 't9'",
        ),
        (
            ("correct", "ACME-1", "t9", "--channel", "email"),
            "error: deal 'ACME-1' has no touchpoint 't9'",
        ),
        (
            ("coach", "ACME-1", "Slow down", "--author", "kim", "--about", "t9"),
            "error: deal 'ACME-1' has no touchpoint 't9'",
        ),
        (
            (*OPEN[:3], "ACME platform II", *OPEN[4:]),
            "error: deal 'ACME-1' is already open",
        ),
        (
            ("stakeholder", "add", "ACME-1", "Dana@acme.example", "--role", "user"),
            "error: dana@acme.example is already a stakeholder; "
            "change their role instead",
        ),
        (
            ("stakeholder", "role", "ACME-1", "zed@acme.example", "user"),
            "error: zed@acme.example is not a stakeholder",
        ),
        (
            ("stakeholder", "leave", "ACME-1", "zed@acme.example"),
            "error: zed@acme.example is not a stakeholder",
        ),
        (
            ("stakeholder", "note", "ACME-1", "zed@acme.example", "uptime"),
            "error: zed@acme.example has never been a stakeholder",
        ),
        (
            ("reopen", "ACME-1", "--at", "2026-03-20T10:00:00Z"),
            "error: deal 'ACME-1' was open at 2026-03-20T10:00:00+00:00, not closed",
        ),
    ),
)
def test_a_command_the_history_does_not_allow_is_refused_and_records_nothing(
    deal: Path, args: tuple[str, ...], expected: str
) -> None:
    assert error_line(invoke(deal, *args)) == expected
    assert len(timeline(deal, "ACME-1")) == 3


def test_a_closed_deal_must_be_reopened_before_closing_again(deal: Path) -> None:
    record(deal, "won", "ACME-1", "--at", "2026-03-20T10:00:00Z")
    assert error_line(invoke(deal, "lost", "ACME-1", "--reason", "oops")) == (
        "error: deal 'ACME-1' was already won (on 2026-03-20T10:00:00+00:00); "
        "reopen it first"
    )
    record(deal, "reopen", "ACME-1", "--at", "2026-03-21T10:00:00Z")
    record(deal, "lost", "ACME-1", "--reason", "oops", "--at", "2026-03-22T10:00:00Z")
    assert types_of(timeline(deal, "ACME-1"))[-3:] == [
        "DealWon",
        "DealReopened",
        "DealLost",
    ]


def test_a_retracted_touchpoint_cannot_be_corrected_or_retracted_again(
    deal: Path,
) -> None:
    record(deal, "retract", "ACME-1", "t1", "--reason", "wrong deal")
    assert error_line(invoke(deal, "correct", "ACME-1", "t1", "--rep", "kim")) == (
        "error: touchpoint 't1' is already retracted"
    )
    assert error_line(invoke(deal, "retract", "ACME-1", "t1", "--reason", "dup")) == (
        "error: touchpoint 't1' is already retracted"
    )
    assert types_of(timeline(deal, "ACME-1"))[-1] == "TouchpointRetracted"


# Bad input


@pytest.mark.parametrize(
    "args",
    [
        ("log", "ACME-1", "--channel", "call", "--direction", "outbound"),
        ("stage", "ACME-1", "proposal"),
        ("won", "ACME-1"),
        OPEN[:-4],
    ],
    ids=lambda a: a[0],
)
def test_a_naive_at_is_a_one_line_error_naming_at(
    deal: Path, args: tuple[str, ...]
) -> None:
    line = error_line(invoke(deal, *args, "--at", "2026-03-02T10:00:00"))
    assert line == "error: --at: " + NAIVE.format(value="2026-03-02T10:00:00")
    assert len(timeline(deal, "ACME-1")) == 3


@pytest.mark.parametrize(
    "args",
    [
        ("stage", "ACME-1", "proposal", "--logged-at"),
        ("correct", "ACME-1", "t1", "--occurred-at"),
        ("timeline", "ACME-1", "--as-of"),
        ("timeline", "ACME-1", "--as-known-at"),
        ("deal", "show", "ACME-1", "--as-of"),
        ("deal", "show", "ACME-1", "--as-known-at"),
    ],
    ids=" ".join,
)
def test_a_naive_time_option_is_a_one_line_error_naming_the_option(
    deal: Path, args: tuple[str, ...]
) -> None:
    line = error_line(invoke(deal, *args, "2026-03-02 10:00"))
    assert line == f"error: {args[-1]}: " + NAIVE.format(value="2026-03-02 10:00")


def test_a_naive_not_before_names_the_option(deal: Path) -> None:
    args = sh("request ACME-1 --by dana@acme.example --not-before 2026-03-16T09:00:00")
    line = error_line(invoke(deal, *args))
    assert line.startswith("error: --not-before: naive timestamp")


NOT_A_TIME = (
    "{value} is not a time; write ISO 8601 with an offset, "
    "e.g. 2026-03-02T10:00:00+01:00"
)
LONG = "x" * 500
CLIPPED = repr(LONG)[:56] + "...'"


def test_a_time_that_is_not_a_time_is_a_one_line_error(deal: Path) -> None:
    line = error_line(invoke(deal, "stage", "ACME-1", "proposal", "--at", "soon"))
    assert line == "error: --at: " + NOT_A_TIME.format(value="'soon'")


@pytest.mark.parametrize(
    ("args", "value", "shown"),
    [
        (("gaps", "ACME-1", "--at"), "notatime", "'notatime'"),
        (("deal", "list", "--at"), "2026-13-01T10:00:00Z", "'2026-13-01T10:00:00Z'"),
        (("accounts", "--at"), "notatime", "'notatime'"),
        (("timeline", "ACME-1", "--as-of"), "tomorrow", "'tomorrow'"),
        (("deal", "show", "ACME-1", "--as-known-at"), LONG, CLIPPED),
        (("replay", "ACME-1", "--until"), "2026-03-02T25:00:00Z", None),
        (("request", "ACME-1", "--by", "dana@acme.example", "--not-before"), "", "''"),
        (("correct", "ACME-1", "t1", "--occurred-at"), LONG, CLIPPED),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, tuple) else None,
)
def test_every_time_option_names_a_value_that_is_not_a_time_in_one_clipped_line(
    deal: Path, args: tuple[str, ...], value: str, shown: str | None
) -> None:
    line = error_line(invoke(deal, *args, value))
    shown = shown or repr(value)
    assert line == f"error: {args[-1]}: " + NOT_A_TIME.format(value=shown)
    assert len(line) < 160


def test_a_date_that_is_not_a_date_is_a_one_line_error(deal: Path) -> None:
    args = ("promise", "ACME-1", "--due", "notadate")
    assert error_line(invoke(deal, *args)) == (
        "error: --due: 'notadate' is not a date (YYYY-MM-DD)"
    )
    assert error_line(invoke(deal, "backtest", "--since", LONG)) == (
        f"error: --since: {CLIPPED} is not a date (YYYY-MM-DD)"
    )


@pytest.mark.parametrize(
    "args",
    [
        ("timeline", LONG),
        ("deal", "show", LONG),
        ("gaps", LONG),
        ("audit", LONG),
        ("replay", LONG),
        ("report", LONG, "--out", "z.html"),
        ("verify", "--deal", LONG),
    ],
    ids=lambda a: a[0] if a[0] != "deal" else "deal show",
)
def test_an_unknown_deal_key_is_clipped_in_its_error(
    deal: Path, args: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    line = error_line(invoke(deal, *args))
    assert line == f"error: unknown deal {CLIPPED}; open it first"
    assert not (tmp_path / "z.html").exists()


def test_verify_counts_one_deal_and_one_event_in_the_singular(store: Path) -> None:
    record(store, *OPEN)
    lines = ok(invoke(store, "verify")).stdout.splitlines()
    assert lines[0] == "verified 1 deal, 1 event: chains intact"
    assert lines[1].startswith("store: chain head at position 1: ")
    assert lines[1].endswith(" (1 deal)")
    record(store, *JOIN)
    record(store, *(x.replace("ACME-1", "ACME-2") for x in OPEN))
    lines = ok(invoke(store, "verify")).stdout.splitlines()
    assert lines[0] == "verified 2 deals, 3 events: chains intact"
    assert lines[1].endswith(" (2 deals)")


def test_bad_input_is_refused_before_the_store_is_created(store: Path) -> None:
    args = (*OPEN[:-4], "--at", "2026-03-02T09:00:00")
    assert error_line(invoke(store, *args)).startswith("error: --at: naive")
    assert not store.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    cases(
        (
            ("log", "ACME-1", "--channel", "fax", "--direction", "outbound"),
            "Error: Invalid value for '--channel': 'fax' is not one of 'email', "
            "'call', 'meeting', 'demo', 'message', 'proposal', 'social', "
            "'event', 'other'.",
        ),
        (
            ("log", "ACME-1", "--channel", "call", "--direction", "sideways"),
            "Error: Invalid value for '--direction': 'sideways' is not one of "
            "'outbound', 'inbound', 'internal'.",
        ),
        (
            ("log", "ACME-1", "--channel", "call"),
            "Error: Missing option '--direction'. Choose from:\n"
            "\toutbound,\n\tinbound,\n\tinternal",
        ),
        (
            sh("log ACME-1 --channel call --direction inbound --duration 'an hour'"),
            "Error: Invalid value for '--duration': 'an hour' is not a valid integer.",
        ),
        (
            ("lost", "ACME-1"),
            "Error: Missing option '--reason'.",
        ),
        (
            ("stakeholder", "role", "ACME-1", "dana@acme.example", "boss"),
            "Error: Invalid value for '{decision_maker|economic_buyer|champion|"
            "influencer|technical_evaluator|user|procurement|legal|gatekeeper|"
            "blocker|other}': 'boss' is not one of 'decision_maker', "
            "'economic_buyer', 'champion', 'influencer', 'technical_evaluator', "
            "'user', 'procurement', 'legal', 'gatekeeper', 'blocker', 'other'.",
        ),
        (
            ("stage",),
            "Error: Missing argument 'KEY'.",
        ),
        (
            ("timeline", "ACME-1", "--format", "xml"),
            "Error: Invalid value for '--format': 'xml' is not one of "
            "'table', 'json', 'jsonl'.",
        ),
        (
            ("deal", "list", "--format", "jsonl"),
            "Error: Invalid value for '--format': 'jsonl' is not one of "
            "'table', 'json'.",
        ),
    ),
)
def test_a_usage_error_exits_2_and_records_nothing(
    deal: Path, args: tuple[str, ...], expected: str
) -> None:
    assert usage_error(invoke(deal, *args)) == expected
    assert len(timeline(deal, "ACME-1")) == 3


@pytest.mark.parametrize(
    ("args", "expected"),
    cases(
        (
            ("stakeholder", "add", "ACME-1", "dana at acme", "--role", "user"),
            "error: CONTACT: 'dana at acme' is not an email or a CRM id "
            "(it has spaces)",
        ),
        (
            sh("log ACME-1 --channel call --direction inbound --id t5 --duration -5"),
            "error: --duration: Input should be greater than or equal to 0",
        ),
        (
            ("update", "ACME-1", "--currency", "eur"),
            "error: --currency: String should match pattern '^[A-Z]{3}$'",
        ),
        (
            sh(
                "open ACME-2 --name N --account A --owner o --stage s "
                "--timezone Mars/Olympus"
            ),
            "error: --timezone: 'Mars/Olympus' is not an IANA time zone name",
        ),
        (
            ("stage", "ACME-1", "  ---  "),
            "error: STAGE: must contain a letter or digit",
        ),
        (
            ("won", "ACME-1", "--amount", "-1"),
            "error: --amount: Input should be greater than or equal to 0",
        ),
    ),
)
def test_an_invalid_value_is_a_one_line_error_naming_what_is_wrong(
    deal: Path, args: tuple[str, ...], expected: str
) -> None:
    assert error_line(invoke(deal, *args)) == expected
    assert len(timeline(deal, "ACME-1")) == 3


@pytest.mark.parametrize(
    ("args", "needs"),
    cases(
        (
            ("update", "ACME-1"),
            "error: needs at least one of --name, --owner, --amount, --currency, "
            "--expected-close",
        ),
        (
            ("correct", "ACME-1", "t1"),
            "error: needs at least one of --occurred-at, --channel, --direction, "
            "--with, --rep, --summary, --outcome, --duration",
        ),
    ),
)
def test_a_change_that_changes_nothing_is_a_one_line_error(
    deal: Path, args: tuple[str, ...], needs: str
) -> None:
    assert error_line(invoke(deal, *args)) == needs
    assert len(timeline(deal, "ACME-1")) == 3


# import


def test_import_of_a_valid_file_records_each_line_with_file_and_line_as_source(
    in_tmp: Path,
) -> None:
    write_lines(in_tmp / "deals.jsonl", B_OPEN, "", B_TOUCH, B_STAGE)
    assert message(invoke(in_tmp / "s.db", "import", "deals.jsonl")) == (
        "imported 3 events (1 DealOpened, 1 StageChanged, 1 TouchpointLogged) "
        "on 1 new and 0 existing deals; 0 already recorded"
    )
    assert without_recorded_at(timeline(in_tmp / "s.db", "B-1")) == [
        B_OPEN | {"source": "deals.jsonl:1"},
        B_TOUCH | {"source": "deals.jsonl:3"},
        B_STAGE | {"source": "deals.jsonl:4"},
    ]
    assert stat.S_IMODE((in_tmp / "s.db").stat().st_mode) == 0o600


def test_importing_the_same_file_again_adds_nothing(in_tmp: Path) -> None:
    store = in_tmp / "s.db"
    write_lines(in_tmp / "deals.jsonl", B_OPEN, B_TOUCH, B_STAGE)
    ok(invoke(store, "import", "deals.jsonl"))
    assert message(invoke(store, "import", "deals.jsonl")) == (
        "imported 0 events on 0 new and 1 existing deals; 3 already recorded"
    )
    assert len(timeline(store, "B-1")) == 3


def test_import_of_several_files_treats_them_as_one_batch(in_tmp: Path) -> None:
    write_lines(in_tmp / "b.jsonl", B_TOUCH)
    write_lines(in_tmp / "a.jsonl", B_OPEN)
    assert message(invoke(in_tmp / "s.db", "import", "b.jsonl", "a.jsonl")) == (
        "imported 2 events (1 DealOpened, 1 TouchpointLogged) "
        "on 1 new and 0 existing deals; 0 already recorded"
    )
    sources = [e["source"] for e in timeline(in_tmp / "s.db", "B-1")]
    assert sources == ["a.jsonl:1", "b.jsonl:1"]


def test_import_dry_run_reports_what_it_would_do_and_writes_nothing(
    in_tmp: Path, deal: Path
) -> None:
    write_lines(in_tmp / "deals.jsonl", B_OPEN, B_TOUCH, B_STAGE)
    assert message(invoke(deal, "import", "--dry-run", "deals.jsonl")) == (
        "would import 3 events (1 DealOpened, 1 StageChanged, 1 TouchpointLogged) "
        "on 1 new and 0 existing deals; 0 already recorded"
    )
    listed = json.loads(ok(invoke(deal, "deal", "list", "--format", "json")).stdout)
    assert [d["deal"] for d in listed["deals"]] == ["ACME-1"]
    assert listed["position"] == 3


def test_import_dry_run_on_a_missing_store_creates_no_file(in_tmp: Path) -> None:
    write_lines(in_tmp / "deals.jsonl", B_OPEN)
    invoke(in_tmp / "s.db", "import", "--dry-run", "deals.jsonl")
    assert not (in_tmp / "s.db").exists()


def test_import_dry_run_on_a_missing_store_reports_what_it_would_do(
    in_tmp: Path,
) -> None:
    write_lines(in_tmp / "deals.jsonl", B_OPEN)
    assert message(invoke(in_tmp / "s.db", "import", "--dry-run", "deals.jsonl")) == (
        "would import 1 event (1 DealOpened) on 1 new and 0 existing deals; "
        "0 already recorded"
    )


def test_import_with_a_bad_line_writes_nothing(in_tmp: Path, deal: Path) -> None:
    write_lines(
        in_tmp / "bad.jsonl",
        B_OPEN,
        B_TOUCH | {"channel": "fax"},
        B_STAGE | {"occurred_at": "2026-03-05T10:00:00"},
        "{not json",
        B_STAGE | {"deal": "ACME-1"},
    )
    result = invoke(deal, "import", "bad.jsonl")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 4
    for line in lines[:3]:
        assert re.fullmatch(r"bad\.jsonl:\d+: [\w.()]+: \S.*", line), line
    assert lines[0].startswith(
        "bad.jsonl:2: channel: 'fax' is not one of email, call, meeting, demo"
    )
    assert lines[1] == "bad.jsonl:3: occurred_at: " + NAIVE.format(
        value="2026-03-05T10:00:00"
    )
    assert lines[2].startswith("bad.jsonl:4: (line): not valid JSON")
    assert lines[3] == "error: 3 bad lines; nothing was imported"
    listed = json.loads(ok(invoke(deal, "deal", "list", "--format", "json")).stdout)
    assert [d["deal"] for d in listed["deals"]] == ["ACME-1"]
    assert listed["position"] == 3


def test_import_with_a_refused_event_writes_nothing(in_tmp: Path, deal: Path) -> None:
    write_lines(
        in_tmp / "refused.jsonl",
        B_OPEN,
        B_STAGE | {"deal": "Z-9"},
        {**B_TOUCH, "deal": "ACME-1", "touchpoint": "t1"},
    )
    result = invoke(deal, "import", "refused.jsonl")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert sorted(lines[:2]) == [
        "refused.jsonl:2: unknown deal 'Z-9'; open it first",
        "refused.jsonl:3: touchpoint 't1' is already recorded with other details "
        "(differs in occurred_at, channel, direction, participants); "
        "record a correction instead",
    ]
    assert lines[2:] == ["error: 2 refused events; nothing was imported"]
    listed = json.loads(ok(invoke(deal, "deal", "list", "--format", "json")).stdout)
    assert listed["position"] == 3


def test_import_reports_at_most_20_bad_lines_and_counts_the_rest(
    in_tmp: Path, deal: Path
) -> None:
    write_lines(in_tmp / "bad.jsonl", *["{bad"] * 25)
    result = invoke(deal, "import", "bad.jsonl")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 22
    assert lines[19].startswith("bad.jsonl:20: (line): not valid JSON")
    assert lines[20:] == [
        "... and 5 more",
        "error: 25 bad lines; nothing was imported",
    ]


def test_import_reads_stdin_when_the_file_is_a_dash(store: Path) -> None:
    stdin = "".join(json.dumps(o) + "\n" for o in (B_OPEN, B_TOUCH))
    assert message(invoke(store, "import", "-", input=stdin)).startswith(
        "imported 2 events (1 DealOpened, 1 TouchpointLogged) on 1 new"
    )
    assert [e["source"] for e in timeline(store, "B-1")] == ["<stdin>:1", "<stdin>:2"]


def test_import_names_stdin_in_its_errors(deal: Path) -> None:
    result = invoke(deal, "import", "-", input=json.dumps(B_OPEN | {"colour": 1}))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "<stdin>:1: colour: unknown field",
        "error: 1 bad line; nothing was imported",
    ]


def test_import_of_a_missing_file_is_a_one_line_error(in_tmp: Path, deal: Path) -> None:
    write_lines(in_tmp / "deals.jsonl", B_OPEN)
    line = error_line(invoke(deal, "import", "deals.jsonl", "missing.jsonl"))
    assert line == "error: missing.jsonl: No such file or directory"
    listed = json.loads(ok(invoke(deal, "deal", "list", "--format", "json")).stdout)
    assert listed["position"] == 3


@pytest.mark.parametrize("content", [None, "{not json\n"], ids=["missing", "bad"])
def test_a_failed_import_into_a_missing_store_creates_no_file(
    in_tmp: Path, content: str | None
) -> None:
    if content is not None:
        (in_tmp / "deals.jsonl").write_text(content)
    result = invoke(in_tmp / "s.db", "import", "deals.jsonl")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert not (in_tmp / "s.db").exists()


def test_import_without_a_file_is_a_usage_error(deal: Path) -> None:
    assert usage_error(invoke(deal, "import")) == "Error: Missing argument 'SOURCE...'."


# timeline


def test_timeline_table_lists_events_in_occurred_order_with_logging_lag(
    deal: Path,
) -> None:
    # Recorded last, happened before t1, logged three days after it happened.
    record(
        deal, "stage", "ACME-1", "qualified", "--at", "2026-03-02T09:45:00+01:00",
        "--logged-at", "2026-03-05T09:00:00Z",
    )  # fmt: skip
    result = ok(invoke(deal, "timeline", "ACME-1"))
    assert result.stderr == ""
    rows = [cells(line) for line in result.stdout.splitlines()]
    assert rows[0] == ["OCCURRED", "EVENT", "DETAILS", "LOGGED"]
    assert rows[1:] == [
        [
            "2026-03-02T09:00+01:00",
            "DealOpened",
            "name=ACME platform account=ACME owner=sam stage=discovery "
            "timezone=Europe/Paris",
        ],
        [
            "2026-03-02T09:30+01:00",
            "StakeholderJoined",
            "contact=dana@acme.example role=champion",
        ],
        ["2026-03-02T09:45+01:00", "StageChanged", "stage=qualified", "3d late"],
        [
            "2026-03-02T10:00+01:00",
            "TouchpointLogged",
            "t1: call outbound with dana@acme.example",
        ],
    ]


def test_timeline_json_holds_every_field_in_occurred_order(deal: Path) -> None:
    events = without_recorded_at(timeline(deal, "ACME-1"))
    provenance = {"actor", "logged_at", "source"}
    assert [{k: v for k, v in e.items() if k not in provenance} for e in events] == [
        {
            "type": "DealOpened",
            "deal": "ACME-1",
            "occurred_at": "2026-03-02T09:00:00+01:00",
            "name": "ACME platform",
            "account": "ACME",
            "owner": "sam",
            "stage": "discovery",
            "timezone": "Europe/Paris",
        },
        {
            "type": "StakeholderJoined",
            "deal": "ACME-1",
            "occurred_at": "2026-03-02T09:30:00+01:00",
            "contact": "dana@acme.example",
            "role": "champion",
        },
        {
            "type": "TouchpointLogged",
            "deal": "ACME-1",
            "occurred_at": "2026-03-02T10:00:00+01:00",
            "touchpoint": "t1",
            "channel": "call",
            "direction": "outbound",
            "participants": ["dana@acme.example"],
        },
    ]
    assert [e["logged_at"] for e in events] == [
        "2026-03-02T08:00:00Z",
        "2026-03-02T08:30:00Z",
        "2026-03-02T09:00:00Z",
    ]


def test_timeline_jsonl_prints_sorted_native_lines_without_recorded_at(
    deal: Path,
) -> None:
    result = ok(invoke(deal, "timeline", "ACME-1", "--format", "jsonl"))
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    parsed = [json.loads(line) for line in lines]
    assert parsed == without_recorded_at(timeline(deal, "ACME-1"))
    for line, obj in zip(lines, parsed, strict=True):
        assert line == json.dumps(obj, sort_keys=True, separators=(",", ":"))


def test_timeline_jsonl_lists_events_in_recording_order_not_occurred_order(
    deal: Path,
) -> None:
    # Recorded last, but happened before the touchpoint t1.
    record(deal, "stage", "ACME-1", "qualified", "--at", "2026-03-02T09:45:00+01:00")
    occurred = types_of(timeline(deal, "ACME-1"))
    assert occurred[-2:] == ["StageChanged", "TouchpointLogged"]
    result = ok(invoke(deal, "timeline", "ACME-1", "--format", "jsonl"))
    recorded = [json.loads(line)["type"] for line in result.stdout.splitlines()]
    assert recorded == [
        "DealOpened",
        "StakeholderJoined",
        "TouchpointLogged",
        "StageChanged",
    ]


def test_timeline_of_an_unknown_deal_is_a_one_line_error(deal: Path) -> None:
    for fmt in ("table", "json", "jsonl"):
        line = error_line(invoke(deal, "timeline", "NOPE-1", "--format", fmt))
        assert line == "error: unknown deal 'NOPE-1'; open it first"


def test_timeline_as_of_keeps_what_had_happened_by_then_inclusive(
    deal: Path,
) -> None:
    # t1 happened at 09:00Z, which is 10:00+01:00.
    as_of = {
        "2026-03-02T09:29:59+01:00": ["DealOpened"],
        "2026-03-02T08:30:00Z": ["DealOpened", "StakeholderJoined"],
        "2026-03-02T09:00:00Z": ["DealOpened", "StakeholderJoined", "TouchpointLogged"],
    }
    for when, expected in as_of.items():
        assert types_of(timeline(deal, "ACME-1", "--as-of", when)) == expected


def test_timeline_as_known_at_uses_logged_at_for_backfills(deal: Path) -> None:
    # A call on 3 March, entered into the CRM a week later.
    record(
        deal, "log", "ACME-1", "--channel", "call", "--direction", "inbound",
        "--id", "t2", "--at", "2026-03-03T10:00:00+01:00",
        "--logged-at", "2026-03-10T12:00:00Z",
    )  # fmt: skip
    known = timeline(deal, "ACME-1", "--as-known-at", "2026-03-02T08:00:00Z")
    assert types_of(known) == ["DealOpened"]
    known = timeline(deal, "ACME-1", "--as-known-at", "2026-03-10T12:59:59+01:00")
    assert [e.get("touchpoint") for e in known] == [None, None, "t1"]
    known = timeline(deal, "ACME-1", "--as-known-at", "2026-03-10T13:00:00+01:00")
    assert [e.get("touchpoint") for e in known] == [None, None, "t1", "t2"]
    # Known now, but it had not happened yet on 2 March.
    both = timeline(
        deal, "ACME-1", "--as-known-at", "2026-03-11T00:00:00Z",
        "--as-of", "2026-03-02T23:59:00+01:00",
    )  # fmt: skip
    assert [e.get("touchpoint") for e in both] == [None, None, "t1"]


def test_a_timeline_filtered_to_nothing_says_so(deal: Path) -> None:
    early = ("--as-of", "2026-01-01T00:00:00Z")
    assert ok(invoke(deal, "timeline", "ACME-1", *early)).stdout == "no events\n"
    assert timeline(deal, "ACME-1", *early) == []
    result = ok(invoke(deal, "timeline", "ACME-1", "--format", "jsonl", *early))
    assert result.stdout == ""


def test_a_deal_exported_as_jsonl_imports_into_an_empty_store_identically(
    deal: Path, tmp_path: Path
) -> None:
    for args in (
        ("stage", "ACME-1", "proposal", "--at", "2026-03-05T10:00:00+01:00"),
        ("log", "ACME-1", "--channel", "email", "--direction", "outbound",
         "--at", "2026-03-03T10:00:00+01:00", "--logged-at", "2026-03-06T10:00:00Z",
         "--summary", "Pricing", "--actor", "sam"),
        ("correct", "ACME-1", "t1", "--summary", "Intro call", "--duration", "30",
         "--at", "2026-03-06T10:00:00+01:00"),
        ("coach", "ACME-1", "Ask for a deadline", "--author", "kim", "--about", "t1",
         "--at", "2026-03-06T11:00:00+01:00"),
        ("stakeholder", "note", "ACME-1", "dana@acme.example", "NPS",
         "--at", "2026-03-07T10:00:00+01:00"),
        ("next-step", "set", "ACME-1", "Send MSA", "--due", "2026-03-12",
         "--at", "2026-03-07T10:00:00+01:00"),
        ("request", "ACME-1", "--by", "dana@acme.example",
         "--not-before", "2026-03-16T09:00:00+01:00", "--at", "2026-03-08T10:00:00Z"),
        ("lost", "ACME-1", "--reason", "no budget", "--at", "2026-03-20T10:00:00Z"),
        ("reopen", "ACME-1", "--at", "2026-03-25T10:00:00Z"),
        ("won", "ACME-1", "--amount", "40000", "--at", "2026-03-30T10:00:00+02:00"),
    ):  # fmt: skip
        record(deal, *args)
    exported = ok(invoke(deal, "timeline", "ACME-1", "--format", "jsonl")).stdout
    second = tmp_path / "second.db"
    imported = message(invoke(second, "import", "-", input=exported))
    assert imported.startswith("imported 13 events (")
    assert imported.endswith("on 1 new and 0 existing deals; 0 already recorded")
    original = without_recorded_at(timeline(deal, "ACME-1"))
    copy = without_recorded_at(timeline(second, "ACME-1"))
    assert copy == original
    assert len(copy) == 13
    again = ok(invoke(second, "timeline", "ACME-1", "--format", "jsonl")).stdout
    assert again == exported
    for command in ("deal", "show"), ("gaps",), ("stakeholders",):
        args = (*command, "ACME-1", "--at", "2026-04-01T00:00:00Z", "--format", "json")
        shown = [json.loads(ok(invoke(s, *args)).stdout) for s in (deal, second)]
        assert shown[0] == shown[1]
    state = json.loads(
        ok(invoke(second, "deal", "show", "ACME-1", "--format", "json")).stdout
    )
    assert state["status"] == "won"


def test_a_deal_with_a_backdated_stakeholder_note_survives_a_jsonl_round_trip(
    deal: Path, tmp_path: Path
) -> None:
    # Cy is added on 10 March; what Cy is measured on was learned on a call
    # on 5 March, and noted afterwards with that date.
    record(
        deal, "stakeholder", "add", "ACME-1", "cy@acme.example", "--role", "user",
        "--at", "2026-03-10T10:00:00Z",
    )  # fmt: skip
    record(
        deal, "stakeholder", "note", "ACME-1", "cy@acme.example", "uptime",
        "--at", "2026-03-05T10:00:00Z",
    )  # fmt: skip
    exported = ok(invoke(deal, "timeline", "ACME-1", "--format", "jsonl")).stdout
    second = tmp_path / "second.db"
    ok(invoke(second, "import", "-", input=exported))
    assert without_recorded_at(timeline(second, "ACME-1")) == without_recorded_at(
        timeline(deal, "ACME-1")
    )


# deal list and deal show


def test_deal_list_on_an_empty_store_says_no_deals(store: Path) -> None:
    ok(invoke(store, "init"))
    result = ok(invoke(store, "deal", "list"))
    assert (result.stdout, result.stderr) == ("no deals\n", "")
    args = ("deal", "list", "--format", "json", "--at", "2026-04-01T00:00:00Z")
    listed = json.loads(ok(invoke(store, *args)).stdout)
    assert listed == {
        "deals": [],
        "evaluated_at": "2026-04-01T00:00:00+00:00",
        "position": 0,
        "rules_hash": RuleSet().rules_hash,
        "rules_version": "builtin-1",
    }


def test_deal_list_table_shows_one_row_per_deal_sorted_by_key(deal: Path) -> None:
    record(
        deal, "open", "AAA-9", "--name", "Tiny", "--account", "Aardvark",
        "--owner", "kim", "--stage", "lead", "--at", "2026-03-01T09:00:00Z",
    )  # fmt: skip
    record(deal, "lost", "AAA-9", "--reason", "ghosted", "--at", "2026-03-09T09:00:00Z")
    result = ok(invoke(deal, "deal", "list", "--at", "2026-03-02T11:00:00+01:00"))
    assert result.stderr == ""
    assert [cells(line) for line in result.stdout.splitlines()] == [
        ["DEAL", "NAME", "ACCOUNT", "OWNER", "STAGE", "STATUS", "LAST TOUCH", "FLAGS"],
        ["AAA-9", "Tiny", "Aardvark", "kim", "lead", "lost", "-", "-"],
        [
            "ACME-1",
            "ACME platform",
            "ACME",
            "sam",
            "discovery",
            "open",
            "2026-03-02T10:00+01:00",
            "-",
        ],
    ]


def test_deal_list_filters_by_status_owner_account_and_flag(deal: Path) -> None:
    record(
        deal, "open", "AAA-9", "--name", "Tiny", "--account", "Aardvark",
        "--owner", "kim", "--stage", "lead", "--at", "2026-03-02T09:00:00Z",
    )  # fmt: skip
    record(
        deal, "log", "AAA-9", "--channel", "email", "--direction", "inbound",
        "--with", "x@aardvark.example", "--at", "2026-03-02T10:00:00Z",
    )  # fmt: skip

    def keys(*options: str) -> list[str]:
        args = ("deal", "list", "--format", "json", "--at", "2026-03-10T12:00:00Z")
        listed = json.loads(ok(invoke(deal, *args, *options)).stdout)
        return [d["deal"] for d in listed["deals"]]

    assert keys() == ["AAA-9", "ACME-1"]
    assert keys("--owner", "kim") == ["AAA-9"]
    assert keys("--account", "ACME") == ["ACME-1"]
    assert keys("--status", "won") == []
    # The inbound email of 2 March was never answered: breached by 10 March.
    assert keys("--flag", "breach") == ["AAA-9"]
    assert keys("--flag", "breach", "--flag", "pushy") == []


def test_deal_list_json_holds_each_summary_its_flags_and_the_store_position(
    deal: Path,
) -> None:
    args = ("deal", "list", "--format", "json", "--at", "2026-03-03T00:00:00Z")
    result = ok(invoke(deal, *args))
    assert result.stderr == ""
    listed = json.loads(result.stdout)
    assert listed["position"] == 3
    assert listed["rules_hash"] == RuleSet().rules_hash
    (summary,) = listed["deals"]
    assert {k: summary[k] for k in ("deal", "name", "stage", "status", "flags")} == {
        "deal": "ACME-1",
        "name": "ACME platform",
        "stage": "discovery",
        "status": "open",
        "flags": [],
    }
    assert summary["last_touch_at"] == "2026-03-02T10:00:00+01:00"
    assert summary["distinct_contacts"] == 1


def test_deal_show_table_shows_the_deal_state(deal: Path) -> None:
    record(
        deal, "lost", "ACME-1", "--reason", "chose a competitor",
        "--competitor", "Initech", "--at", "2026-04-01T10:00:00+02:00",
    )  # fmt: skip
    result = ok(invoke(deal, "deal", "show", "ACME-1", "--at", "2026-04-02T00:00:00Z"))
    assert result.stderr == ""
    text = result.stdout
    assert text.startswith(
        "deal ACME-1, evaluated at 2026-04-02T00:00+00:00; rules builtin-1 ("
    )
    rows = [cells(line) for line in text.splitlines()]
    assert ["status", "lost"] in rows
    assert ["loss reason", "chose a competitor"] in rows
    assert ["competitor", "Initech"] in rows
    assert ["last touch", "2026-03-02T10:00+01:00 (t1)"] in rows
    assert ["dana@acme.example", "-", "champion", "2026-03-02T09:30+01:00"] in rows


def test_deal_show_json_reflects_updates_stages_and_stakeholders(deal: Path) -> None:
    for args in (
        ("update", "ACME-1", "--amount", "48000", "--currency", "EUR",
         "--at", "2026-03-04T10:00:00Z"),
        ("stage", "ACME-1", "proposal", "--at", "2026-03-05T10:00:00Z"),
        ("stakeholder", "role", "ACME-1", "dana@acme.example", "decision_maker",
         "--at", "2026-03-06T10:00:00Z"),
        ("stakeholder", "add", "ACME-1", "cy@acme.example", "--role", "legal",
         "--at", "2026-03-06T11:00:00Z"),
    ):  # fmt: skip
        record(deal, *args)
    args = (
        "deal",
        "show",
        "ACME-1",
        "--format",
        "json",
        "--at",
        "2026-03-07T00:00:00Z",
    )
    result = ok(invoke(deal, *args))
    assert result.stderr == ""
    shown = json.loads(result.stdout)
    assert shown["position"] == 7
    assert shown["meta"]["rules_hash"] == RuleSet().rules_hash
    assert shown["meta"]["evaluated_at"] == "2026-03-07T00:00:00Z"
    assert (shown["stage"], shown["amount"], shown["currency"]) == (
        "proposal",
        "48000",
        "EUR",
    )
    assert [(p["contact"], p["role"]) for p in shown["stakeholders"]] == [
        ("cy@acme.example", "legal"),
        ("dana@acme.example", "decision_maker"),
    ]


def test_deal_show_as_of_and_as_known_at_show_the_deal_as_it_was(
    deal: Path,
) -> None:
    record(
        deal, "stage", "ACME-1", "proposal", "--at", "2026-03-05T10:00:00Z",
        "--logged-at", "2026-03-06T10:00:00Z",
    )  # fmt: skip

    def show(*options: str) -> dict[str, Any]:
        args = ("deal", "show", "ACME-1", "--format", "json", *options)
        shown: dict[str, Any] = json.loads(ok(invoke(deal, *args)).stdout)
        return shown

    assert show()["stage"] == "proposal"
    before = show("--as-of", "2026-03-05T09:59:59Z")
    assert (before["stage"], before["last_touch"]["touch"]) == ("discovery", "t1")
    assert before["meta"]["evaluated_at"] == "2026-03-05T09:59:59Z"
    unknown = show("--as-known-at", "2026-03-06T09:59:59Z")
    assert unknown["stage"] == "discovery"
    assert show("--as-of", "2026-03-02T09:15:00+01:00")["stakeholders"] == []


def test_gaps_shows_a_breached_follow_up_in_table_and_json(deal: Path) -> None:
    record(
        deal, "log", "ACME-1", "--channel", "email", "--direction", "inbound",
        "--with", "dana@acme.example", "--id", "q1",
        "--at", "2026-03-03T10:00:00+01:00",
    )  # fmt: skip
    record(
        deal, "log", "ACME-1", "--channel", "email", "--direction", "outbound",
        "--with", "dana@acme.example", "--id", "a1",
        "--at", "2026-03-10T10:00:00+01:00",
    )  # fmt: skip
    at = ("--at", "2026-03-11T00:00:00Z")
    shown = json.loads(
        ok(invoke(deal, "gaps", "ACME-1", *at, "--format", "json")).stdout
    )
    (obligation,) = shown["obligations"]
    assert (obligation["trigger"], obligation["discharged_by"]) == ("q1", "a1")
    assert (obligation["latency_business_hours"], obligation["breached"]) == (
        40.0,
        True,
    )
    assert shown["summary"]["breaches"] == 1
    assert shown["position"] == 5
    text = ok(invoke(deal, "gaps", "ACME-1", *at)).stdout
    assert [
        "q1",
        "buyer_initiated",
        "2026-03-03T10:00+01:00",
        "a1",
        "40h",
        "BREACHED",
    ] in [cells(line) for line in text.splitlines()]


def test_stakeholders_flags_a_rubber_stamp_in_table_and_json(deal: Path) -> None:
    record(deal, "stage", "ACME-1", "proposal", "--at", "2026-03-05T10:00:00+01:00")
    at = ("--at", "2026-03-06T00:00:00Z")
    args = ("stakeholders", "ACME-1", *at, "--format", "json")
    shown = json.loads(ok(invoke(deal, *args)).stdout)
    assert shown["rubber_stamp_risk"]["reason"] == "never_engaged"
    assert shown["decision_maker_first_engaged"] is None
    text = ok(invoke(deal, "stakeholders", "ACME-1", *at)).stdout
    assert "RUBBER-STAMP RISK since 2026-03-05T10:00+01:00: never_engaged" in text


def test_a_rules_file_changes_thresholds_and_the_hash(
    deal: Path, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('version = "strict"\n[follow_up]\nsla_business_hours = 1\n')
    args = ("deal", "show", "ACME-1", "--format", "json", "--rules", str(rules))
    meta = json.loads(ok(invoke(deal, *args)).stdout)["meta"]
    assert meta["rules_version"] == "strict"
    assert meta["rules_hash"] != RuleSet().rules_hash
    rules.write_text("[follow_up]\nsla_business_hours = -1\n")
    assert error_line(invoke(deal, *args)) == (
        f"error: {rules}: follow_up.sla_business_hours: Input should be greater than 0"
    )


def status_line(store: Path) -> str:
    result = ok(invoke(store, "projections", "status"))
    assert result.stderr == ""
    return result.stdout.rstrip("\n")


def test_projections_status_rebuild_and_lag(deal: Path) -> None:
    assert status_line(deal) == (
        "position 0 of 3 (lag 3); rules none (views not built yet)"
    )
    assert message(invoke(deal, "projections", "rebuild", "--batch-size", "2")) == (
        "rebuilt views to position 3"
    )
    assert status_line(deal).startswith("position 3 of 3 (lag 0); rules ")
    assert status_line(deal).endswith("(current)")
    record(deal, "stage", "ACME-1", "proposal")
    assert status_line(deal).startswith("position 3 of 4 (lag 1)")
    ok(invoke(deal, "deal", "list"))
    assert status_line(deal).startswith("position 4 of 4 (lag 0)")


@pytest.mark.parametrize("option", ["--as-of", "--as-known-at"])
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_deal_show_before_the_deal_opened_is_a_clear_error(
    deal: Path, option: str, fmt: str
) -> None:
    args = ("deal", "show", "ACME-1", option, "2026-03-01T00:00:00Z", "--format", fmt)
    assert error_line(invoke(deal, *args)) == (
        "error: deal 'ACME-1' had not been opened at that time"
    )


def test_deal_show_of_an_unknown_deal_is_a_one_line_error(deal: Path) -> None:
    assert error_line(invoke(deal, "deal", "show", "NOPE-1")) == (
        "error: unknown deal 'NOPE-1'; open it first"
    )


def test_an_empty_at_is_an_error_not_now(deal: Path) -> None:
    line = error_line(invoke(deal, "stage", "ACME-1", "proposal", "--at", ""))
    assert line == "error: --at: " + NOT_A_TIME.format(value="''")
    assert len(timeline(deal, "ACME-1")) == 3


def test_a_logged_at_in_the_future_is_refused(deal: Path) -> None:
    line = error_line(
        invoke(
            deal, "stage", "ACME-1", "proposal", "--logged-at", "2199-01-01T00:00:00Z"
        )
    )
    assert line == (
        "error: logged_at 2199-01-01T00:00:00+00:00 is in the future; "
        "it is when the event was first logged"
    )
    assert (
        error_line(
            invoke(deal, "stage", "ACME-1", "proposal", "--at", "9999-12-31T23:59:59Z")
        )
        == "error: --at: year 9999 is out of range (1900-2200)"
    )


def test_a_refused_recording_command_leaves_no_new_store_behind(tmp_path: Path) -> None:
    store = tmp_path / "new.db"
    assert error_line(invoke(store, "stage", "NOPE", "proposal")) == (
        "error: unknown deal 'NOPE'; open it first"
    )
    assert not store.exists()


def test_a_refused_import_line_is_named_by_its_place_in_the_file_not_its_source(
    deal: Path, tmp_path: Path
) -> None:
    exported = ok(invoke(deal, "timeline", "ACME-1", "--format", "jsonl")).stdout
    clash = exported.replace('"name":"ACME platform"', '"name":"Renamed"')
    assert clash != exported
    result = invoke(deal, "import", "-", input=clash)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == "<stdin>:1: deal 'ACME-1' is already open"


def test_timeline_table_clips_long_details_at_90_characters(deal: Path) -> None:
    record(
        deal, "log", "ACME-1", "--channel", "email", "--direction", "inbound",
        "--with", "dana@acme.example", "--id", "t9", "--summary", "x" * 200,
        "--at", "2026-03-03T10:00:00+01:00",
    )  # fmt: skip
    last = cells(ok(invoke(deal, "timeline", "ACME-1")).stdout.splitlines()[-1])
    assert last[2].startswith("t9: email inbound with dana@acme.example: xxx")
    assert len(last[2]) == 90
    assert last[2].endswith("…")

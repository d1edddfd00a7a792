"""Exports: every kind is valid against its committed schema, the same in
JSON and NDJSON, byte-identical run to run, atomic on disk, and an events
export imports back into the same timelines."""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import click
import orjson
import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from cli.main import cli
from engine.application import DealTrail
from engine.errors import InputError, UnknownDealError
from engine.exporting import (
    KINDS,
    ExportQuery,
    export,
    write_atomically,
    write_json,
    write_ndjson,
)
from engine.rules import RuleSet, load_rules
from engine.schemas import EXPORTS
from tests.conftest import Clock
from tests.factories import import_examples, lost, opened

SCHEMAS = Path(__file__).parent.parent / "schemas"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
# After every example deal opened but before most closed.
MID_YEAR = datetime(2026, 4, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('export')}/examples.db"
    with DealTrail(url, clock=Clock(NOW)) as app:
        import_examples(app)
    return url


@pytest.fixture(scope="module")
def app(store: str) -> Iterator[DealTrail]:
    with DealTrail(store, clock=Clock(NOW)) as application:
        yield application


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(None)


def run(
    app: DealTrail,
    kind: str,
    rules: RuleSet,
    *,
    ndjson: bool = False,
    query: ExportQuery | None = None,
) -> bytes:
    out = io.BytesIO()
    writer = write_ndjson if ndjson else write_json
    writer(export(app, kind, query or ExportQuery(), rules), out)
    return out.getvalue()


@pytest.fixture(scope="module")
def exported(app: DealTrail, rules: RuleSet) -> dict[str, tuple[bytes, bytes]]:
    """Every kind, unfiltered, as (JSON, NDJSON) bytes."""
    return {
        kind: (run(app, kind, rules), run(app, kind, rules, ndjson=True))
        for kind in KINDS
    }


@functools.cache
def validator(name: str) -> Draft202012Validator:
    # Without rfc3339-validator, jsonschema would skip date-time silently.
    assert "date-time" in Draft202012Validator.FORMAT_CHECKER.checkers
    schema = orjson.loads((SCHEMAS / name).read_bytes())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(
        schema, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def lines(data: bytes) -> list[dict[str, Any]]:
    assert data.endswith(b"\n")
    return [orjson.loads(line) for line in data.splitlines()]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_valid_against_its_committed_schemas(
    kind: str,
    exported: dict[str, tuple[bytes, bytes]],
    app: DealTrail,
    rules: RuleSet,
) -> None:
    json_bytes, ndjson_bytes = exported[kind]
    form = EXPORTS[kind]
    document = orjson.loads(json_bytes)
    validator(form.document_name).validate(document)
    assert document["items"], "the examples give every kind something to export"
    assert document["$schema"].endswith("/" + form.document_name)
    assert document["position"] == app.position()
    assert document["rules_hash"] == rules.rules_hash
    line_validator = validator(form.line_name)
    for line in lines(ndjson_bytes):
        line_validator.validate(line)
        assert line["$schema"].endswith("/" + form.line_name)
    if kind == "events":
        # An exported event is an import line: the round trip test imports them.
        import_line = validator("import-line.schema.json")
        for item in document["items"]:
            import_line.validate(item["event"])


@pytest.mark.parametrize("kind", KINDS)
def test_ndjson_lines_are_the_json_items_with_the_same_head(
    kind: str, exported: dict[str, tuple[bytes, bytes]]
) -> None:
    json_bytes, ndjson_bytes = exported[kind]
    document = orjson.loads(json_bytes)
    line_id = document["$schema"].replace(".schema.json", ".line.schema.json")
    head = {k: v for k, v in document.items() if k not in ("$schema", "items")}
    expected = [head | item | {"$schema": line_id} for item in document["items"]]
    assert lines(ndjson_bytes) == expected


@pytest.mark.parametrize("kind", KINDS)
def test_a_second_run_writes_the_same_bytes(
    kind: str,
    exported: dict[str, tuple[bytes, bytes]],
    store: str,
    rules: RuleSet,
) -> None:
    # NDJSON lines are the JSON items (see above): the JSON document will do.
    json_bytes = exported[kind][0]
    with DealTrail(store, clock=Clock(NOW)) as again:
        assert run(again, kind, rules) == json_bytes
    # The streamed document is what orjson writes for the whole, keys sorted.
    canonical = orjson.dumps(orjson.loads(json_bytes), option=orjson.OPT_SORT_KEYS)
    assert json_bytes == canonical + b"\n"


def test_per_deal_items_name_their_deal_in_key_order(
    exported: dict[str, tuple[bytes, bytes]], app: DealTrail
) -> None:
    for kind in ("deals", "gaps", "stakeholders", "audit", "replay"):
        deals = [line["deal"] for line in lines(exported[kind][1])]
        assert deals == sorted(deals), kind
    per_deal = [orjson.loads(exported[k][0]) for k in ("gaps", "stakeholders")]
    assert all([i["deal"] for i in d["items"]] == app.deal_keys() for d in per_deal)


def test_one_deal_is_the_same_item_as_in_the_export_of_all(
    exported: dict[str, tuple[bytes, bytes]], app: DealTrail, rules: RuleSet
) -> None:
    key = "KESTREL-2026-02"
    for kind in ("gaps", "stakeholders", "audit", "replay"):
        everything = orjson.loads(exported[kind][0])
        (mine,) = [i for i in everything["items"] if i["deal"] == key]
        one = orjson.loads(run(app, kind, rules, query=ExportQuery(deal=key)))
        assert one["items"] == [mine], kind
        assert one["query"]["deal"] == key
    events = lines(run(app, "events", rules, ndjson=True, query=ExportQuery(deal=key)))
    assert {e["deal"] for e in events} == {key}
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))


def test_events_come_in_store_order_and_as_of_cuts_them(
    exported: dict[str, tuple[bytes, bytes]], app: DealTrail, rules: RuleSet
) -> None:
    every = lines(exported["events"][1])
    assert len(every) == app.position()
    cut = lines(
        run(app, "events", rules, ndjson=True, query=ExportQuery(as_of=MID_YEAR))
    )
    early = [
        e
        for e in every
        if datetime.fromisoformat(e["event"]["occurred_at"]) <= MID_YEAR
    ]
    assert 0 < len(cut) < len(every)
    assert [e["event"] for e in cut] == [e["event"] for e in early]
    assert {e["query"]["as_of"] for e in cut} == {"2026-04-01T00:00:00Z"}


@pytest.mark.parametrize("kind", ["gaps", "stakeholders", "replay"])
def test_deals_not_yet_opened_at_as_of_are_left_out(
    app: DealTrail, rules: RuleSet, kind: str
) -> None:
    found = orjson.loads(run(app, kind, rules, query=ExportQuery(as_of=MID_YEAR)))
    opened = {
        e["deal"]
        for e in lines(
            run(app, "events", rules, ndjson=True, query=ExportQuery(as_of=MID_YEAR))
        )
    }
    assert [i["deal"] for i in found["items"]] == sorted(opened)
    assert len(opened) < len(app.deal_keys())
    validator(EXPORTS[kind].document_name).validate(found)
    # Asked for by key, such a deal is an error.
    later = next(k for k in app.deal_keys() if k not in opened)
    with pytest.raises(InputError, match="had not been opened at that time"):
        export(app, kind, ExportQuery(deal=later, as_of=MID_YEAR), rules)


def test_an_audit_export_reads_the_clock_once_or_audits_at_at(
    store: str, rules: RuleSet, tmp_path: Path
) -> None:
    ticks = iter(range(10_000))

    def moving() -> datetime:
        return NOW + timedelta(seconds=next(ticks))

    with DealTrail(f"sqlite:///{tmp_path}/open.db", clock=moving) as two:
        for key in ("A-1", "B-1"):
            two.record(opened(key))
        audits = orjson.loads(run(two, "audit", rules, query=ExportQuery()))
        times = {i["audit"]["meta"]["evaluated_at"] for i in audits["items"]}
        assert len(audits["items"]) == 2
        assert len(times) == 1
    with DealTrail(store, clock=moving) as app:
        # --at audits every deal at that time, as --deal KEY --at does; deals
        # not yet opened then are left out.
        at = orjson.loads(run(app, "audit", rules, query=ExportQuery(at=MID_YEAR)))
        for item in at["items"]:
            one = orjson.loads(
                run(
                    app,
                    "audit",
                    rules,
                    query=ExportQuery(deal=item["deal"], at=MID_YEAR),
                )
            )
            assert one["items"] == [item]
        assert 0 < len(at["items"]) < len(app.deal_keys())


def test_deals_not_yet_opened_at_at_are_left_out(
    app: DealTrail, rules: RuleSet
) -> None:
    deals = orjson.loads(run(app, "deals", rules, query=ExportQuery(at=MID_YEAR)))
    opened = {
        e["deal"]
        for e in lines(
            run(app, "events", rules, ndjson=True, query=ExportQuery(as_of=MID_YEAR))
        )
    }
    assert [i["deal"] for i in deals["items"]] == sorted(opened)
    assert len(opened) < len(app.deal_keys())


def test_audits_leave_out_deals_not_yet_known_at_as_known_at(
    sqlite_url: str, rules: RuleSet
) -> None:
    early = datetime(2026, 4, 2, tzinfo=UTC)
    clock = Clock(early)
    with DealTrail(sqlite_url, clock=clock) as two:
        for key in ("EARLY-1", "LATE-1"):
            two.record(opened(key))
            two.record(lost(key))
            clock.advance(days=30)
        query = ExportQuery(lost=True, as_known_at=early + timedelta(days=1))
        audits = orjson.loads(run(two, "audit", rules, query=query))
    assert [i["deal"] for i in audits["items"]] == ["EARLY-1"]
    validator(EXPORTS["audit"].document_name).validate(audits)


def test_filters_select_deals(app: DealTrail, rules: RuleSet) -> None:
    lost = orjson.loads(run(app, "deals", rules, query=ExportQuery(status="lost")))
    assert lost["items"]
    assert {i["summary"]["status"] for i in lost["items"]} == {"lost"}
    audits = orjson.loads(run(app, "audit", rules, query=ExportQuery(lost=True)))
    assert [i["deal"] for i in audits["items"]] == [i["deal"] for i in lost["items"]]
    owner = lost["items"][0]["summary"]["owner"]
    owned = orjson.loads(run(app, "deals", rules, query=ExportQuery(owner=owner)))
    replays = orjson.loads(run(app, "replay", rules, query=ExportQuery(owner=owner)))
    assert {i["summary"]["owner"] for i in owned["items"]} == {owner}
    assert [i["deal"] for i in replays["items"]] == [i["deal"] for i in owned["items"]]
    assert len(owned["items"]) < len(app.deal_keys())


@pytest.mark.parametrize(
    ("kind", "query", "message"),
    [
        ("events", ExportQuery(status="open"), "--status does not apply to events"),
        ("backtest", ExportQuery(deal="X"), "--deal does not apply to backtest"),
        (
            "gaps",
            ExportQuery(deal="X", owner="sam"),
            "--deal exports one deal; leave out --owner",
        ),
        ("audit", ExportQuery(lost=True, status="won"), "contradict"),
        ("deals", ExportQuery(status="closed"), "'closed' is not open, won or lost"),
        ("nonsense", ExportQuery(), "unknown export kind 'nonsense'"),
    ],
)
def test_a_filter_that_does_not_fit_is_refused(
    kind: str, query: ExportQuery, message: str, app: DealTrail, rules: RuleSet
) -> None:
    with pytest.raises(InputError, match=message):
        export(app, kind, query, rules)


def test_an_unknown_deal_fails_before_anything_is_written(
    app: DealTrail, rules: RuleSet
) -> None:
    for kind in ("events", "gaps", "stakeholders", "audit", "replay"):
        with pytest.raises(UnknownDealError):
            export(app, kind, ExportQuery(deal="NOPE-1"), rules)


def test_the_cli_writes_what_the_engine_writes(
    store: str, app: DealTrail, rules: RuleSet, tmp_path: Path
) -> None:
    runner = CliRunner()
    for extra, ndjson in (([], False), (["--ndjson"], True)):
        result = runner.invoke(
            cli,
            ["--store", store, "export", "backtest", "--since", "2026-01-01", *extra],
        )
        assert result.exit_code == 0, result.stderr
        query = ExportQuery(since=datetime(2026, 1, 1).date())
        assert result.stdout_bytes == run(
            app, "backtest", rules, ndjson=ndjson, query=query
        )
    target = tmp_path / "gaps.json"
    args = ["--store", store, "export", "gaps", "--at", "2026-11-30T12:00:00Z"]
    first = runner.invoke(cli, [*args, "--out", str(target)])
    assert first.exit_code == 0, first.stderr
    assert f"exported {len(app.deal_keys())} items (gaps)" in first.stderr
    written = target.read_bytes()
    second = runner.invoke(cli, args)
    assert second.stdout_bytes == written
    assert list(tmp_path.iterdir()) == [target]
    validator(EXPORTS["gaps"].document_name).validate(orjson.loads(written))


def test_an_unknown_deal_is_a_one_line_error_and_leaves_no_file(
    store: str, tmp_path: Path
) -> None:
    target = tmp_path / "out.json"
    result = CliRunner().invoke(
        cli,
        ["--store", store, "export", "audit", "--deal", "NOPE-1", "--out", str(target)],
    )
    assert result.exit_code == 1
    assert result.stderr == "error: unknown deal 'NOPE-1'; open it first\n"
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_leaves_the_old_file_intact(store: str, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"the previous export\n")
    target.chmod(0o640)
    result = CliRunner().invoke(
        cli,
        ["--store", store, "export", "gaps", "--deal", "NOPE-1", "--out", str(target)],
    )
    assert result.exit_code == 1
    assert target.read_bytes() == b"the previous export\n"
    assert list(tmp_path.iterdir()) == [target]
    replaced = CliRunner().invoke(
        cli, ["--store", store, "export", "accounts", "--out", str(target)]
    )
    assert replaced.exit_code == 0, replaced.stderr
    assert orjson.loads(target.read_bytes())["kind"] == "accounts"
    assert target.stat().st_mode & 0o777 == 0o640


def test_a_write_failing_midway_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "out.ndjson"

    def half(stream: IO[bytes]) -> int:
        stream.write(b'{"half": ')
        raise InputError("the store went away")

    with pytest.raises(InputError, match="went away"):
        write_atomically(target, half)
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"old\n")
    with pytest.raises(InputError):
        write_atomically(target, half)
    assert target.read_bytes() == b"old\n"
    assert list(tmp_path.iterdir()) == [target]


def test_an_unwritable_folder_is_a_one_line_error(store: str, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "out.json"
    result = CliRunner().invoke(
        cli, ["--store", store, "export", "accounts", "--out", str(target)]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot write {target}: ")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("page_size", [1, 7])
def test_stored_events_pages_through_the_whole_log(
    app: DealTrail, page_size: int
) -> None:
    everything = list(app.stored_events())
    assert len(everything) == app.position()
    assert list(app.stored_events(page_size=page_size)) == everything
    assert list(app.stored_events(until=10, page_size=page_size)) == everything[:10]


def test_an_events_export_imports_back_into_the_same_store(
    exported: dict[str, tuple[bytes, bytes]],
    app: DealTrail,
    rules: RuleSet,
    store_url: str,
) -> None:
    native = b"".join(
        orjson.dumps(line["event"]) + b"\n" for line in lines(exported["events"][1])
    )
    with DealTrail(store_url, clock=Clock(NOW)) as fresh:
        fresh.import_native([("export.ndjson", io.BytesIO(native))])
        assert fresh.deal_keys() == app.deal_keys()
        for key in app.deal_keys():
            assert [r.event for r in fresh.timeline(key)] == [
                r.event for r in app.timeline(key)
            ]
        # Same clock, same order: the copy exports the very same bytes.
        assert run(fresh, "events", rules, ndjson=True) == exported["events"][1]


def test_the_cli_knows_every_export_kind() -> None:
    (kind,) = [p for p in cli.commands["export"].params if p.name == "kind"]
    assert isinstance(kind.type, click.Choice)
    assert tuple(kind.type.choices) == KINDS

"""Generated files (schemas/, docs/events.md, docs/cli.md) are up to date,
and ``dealtrail schemas write|check`` keeps a schemas folder so."""

from __future__ import annotations

import shutil
from pathlib import Path

import jsonschema
import orjson
import pytest
from click.testing import CliRunner

from cli.generate import ROOT, generated_files, stale_files
from cli.main import cli
from engine.events import CATALOGUE, event_type_name
from engine.schemas import schema_files
from tests.factories import touch


def test_no_generated_file_is_stale() -> None:
    assert stale_files() == [], "run: python -m cli.generate"


def test_a_changed_generated_file_is_reported_stale(
    tmp_path: pytest.TempPathFactory,
) -> None:
    for path, content in generated_files().items():
        target = tmp_path / path  # type: ignore[operator]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    (tmp_path / "docs/cli.md").write_text("edited by hand\n")  # type: ignore[operator]
    assert stale_files(tmp_path) == ["docs/cli.md"]  # type: ignore[arg-type]


def test_the_event_catalogue_lists_every_event_type() -> None:
    text = (ROOT / "docs/events.md").read_text()
    for cls in CATALOGUE:
        assert f"## {event_type_name(cls)}\n" in text


def test_the_event_schema_accepts_a_native_line_and_names_itself() -> None:
    schema = orjson.loads((ROOT / "schemas/event.schema.json").read_bytes())
    assert schema["$id"].endswith("event.schema.json")
    assert schema["discriminator"]["propertyName"] == "type"
    assert set(schema["discriminator"]["mapping"]) == {
        event_type_name(c) for c in CATALOGUE
    }


def test_every_fixture_line_is_valid_against_the_event_schema() -> None:
    schema = orjson.loads((ROOT / "schemas/event.schema.json").read_bytes())
    validator = jsonschema.Draft202012Validator(schema)
    lines = (ROOT / "tests/fixtures/every-event.jsonl").read_bytes().splitlines()
    for line in lines:
        validator.validate(orjson.loads(line))
    validator.validate(touch("t1").model_dump(mode="json", exclude_none=True))
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(orjson.loads(lines[0]) | {"type": "TouchpointLogged"})


@pytest.mark.parametrize(
    ("command", "schema"),
    [
        (("deal", "show", "FIX-1"), "deal-state.schema.json"),
        (("gaps", "FIX-1"), "gaps.schema.json"),
        (("stakeholders", "FIX-1"), "stakeholders.schema.json"),
    ],
)
def test_command_output_is_valid_against_its_schema(
    command: tuple[str, ...], schema: str, tmp_path: Path
) -> None:
    store = tmp_path / "store.db"
    shutil.copy(ROOT / "tests/fixtures/store-v1.db", store)
    result = CliRunner().invoke(
        cli,
        ["--store", f"sqlite:///{store}", *command, "--format", "json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    document = orjson.loads(result.stdout)
    validator = jsonschema.Draft202012Validator(
        orjson.loads((ROOT / "schemas" / schema).read_bytes())
    )
    validator.validate(document)
    assert document["meta"]["deal"] == "FIX-1"


def test_deal_list_entries_are_valid_against_the_summary_schema(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    shutil.copy(ROOT / "tests/fixtures/store-v1.db", store)
    result = CliRunner().invoke(
        cli, ["--store", f"sqlite:///{store}", "deal", "list", "--format", "json"]
    )
    assert result.exit_code == 0, result.stderr
    validator = jsonschema.Draft202012Validator(
        orjson.loads((ROOT / "schemas/deal-summary.schema.json").read_bytes())
    )
    (summary,) = orjson.loads(result.stdout)["deals"]
    validator.validate(summary)


def test_an_import_line_is_an_event_without_recorded_at() -> None:
    schemas = ROOT / "schemas"
    import_line = jsonschema.Draft202012Validator(
        orjson.loads((schemas / "import-line.schema.json").read_bytes()),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    event = jsonschema.Draft202012Validator(
        orjson.loads((schemas / "event.schema.json").read_bytes())
    )
    lines = (ROOT / "tests/fixtures/every-event.jsonl").read_bytes().splitlines()
    for line in lines:
        import_line.validate(orjson.loads(line))
    stored = orjson.loads(lines[0]) | {"recorded_at": "2026-06-01T12:00:00Z"}
    event.validate(stored)
    with pytest.raises(jsonschema.ValidationError, match="recorded_at"):
        import_line.validate(stored)


def test_a_schema_no_longer_generated_is_reported_stale(tmp_path: Path) -> None:
    for path, content in generated_files().items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    (tmp_path / "schemas/retired.schema.json").write_text("{}\n")
    (tmp_path / "schemas/notes.txt").write_text("not a schema\n")
    assert stale_files(tmp_path) == ["schemas/retired.schema.json"]


def test_schemas_write_and_check(tmp_path: Path) -> None:
    runner = CliRunner()
    folder = tmp_path / "schemas"

    def check() -> tuple[int, str]:
        result = runner.invoke(cli, ["schemas", "check", "--dir", str(folder)])
        return result.exit_code, result.stderr

    code, message = check()
    assert code == 1
    assert f"{folder.as_posix()}/event.schema.json is stale" in message
    wrote = runner.invoke(cli, ["schemas", "write", "--dir", str(folder)])
    assert wrote.exit_code == 0, wrote.stderr
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        path.removeprefix("schemas/") for path in schema_files()
    )
    assert check()[0] == 0
    (folder / "gaps.schema.json").write_text("{}\n")
    (folder / "retired.schema.json").write_text("{}\n")
    code, message = check()
    assert code == 1
    assert message.splitlines() == [
        f"{folder.as_posix()}/gaps.schema.json is stale; run: dealtrail schemas write",
        f"{folder.as_posix()}/retired.schema.json is not generated any more; remove it",
    ]
    rewrote = runner.invoke(cli, ["schemas", "write", "--dir", str(folder)])
    assert "wrote 1 of" in rewrote.stderr
    committed = runner.invoke(cli, ["schemas", "check", "--dir", str(ROOT / "schemas")])
    assert committed.exit_code == 0, committed.stderr

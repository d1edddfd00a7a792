"""Generated files (schemas/, docs/events.md, docs/cli.md) are up to date."""

from __future__ import annotations

import jsonschema
import orjson
import pytest

from cli.generate import ROOT, generated_files, stale_files
from engine.events import CATALOGUE, event_type_name
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

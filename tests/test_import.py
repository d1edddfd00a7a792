"""The native line format: validation, all-or-nothing and idempotent import."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from engine.application import DealTrail
from engine.errors import ImportRefused
from engine.importing.native import MAX_REPORTED_ERRORS, dump_line, read_lines
from tests.factories import opened, touch


def lines(*objs: dict[str, object] | str) -> list[bytes]:
    return [
        (o if isinstance(o, str) else orjson.dumps(o).decode()).encode() + b"\n"
        for o in objs
    ]


OPEN = opened().native()
TOUCH = touch("t1").native()


def test_every_line_becomes_an_event_with_its_file_and_line_as_source() -> None:
    parsed = read_lines(lines(OPEN, "", TOUCH), "deals.jsonl")
    assert parsed.errors == []
    assert [e.type for e in parsed.events] == ["DealOpened", "TouchpointLogged"]
    assert [e.source for e in parsed.events] == ["deals.jsonl:1", "deals.jsonl:3"]


def test_a_source_given_in_the_line_is_kept() -> None:
    parsed = read_lines(lines(OPEN | {"source": "crm:0061"}), "deals.jsonl")
    assert parsed.events[0].source == "crm:0061"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", "deals.jsonl:1: (line): not valid JSON"),
        ("[1, 2]", "deals.jsonl:1: (line): expected a JSON object"),
        ({"deal": "A"}, "deals.jsonl:1: type: missing"),
        (
            {"type": "DealExploded"},
            "deals.jsonl:1: type: unknown event type 'DealExploded'",
        ),
        (TOUCH | {"channel": "fax"}, "deals.jsonl:1: channel: Input should be 'email'"),
        (
            TOUCH | {"occurred_at": "2026-03-02T10:00:00"},
            "deals.jsonl:1: occurred_at: naive",
        ),
        (TOUCH | {"colour": "red"}, "deals.jsonl:1: colour: unknown field"),
        (
            TOUCH | {"recorded_at": "2026-03-02T10:00:00Z"},
            "deals.jsonl:1: recorded_at: set by",
        ),
        (TOUCH | {"participants": ["not an email"]}, "deals.jsonl:1: participants.0: "),
        (
            OPEN | {"timezone": "Mars/Olympus"},
            "deals.jsonl:1: timezone: 'Mars/Olympus' is not",
        ),
        (OPEN | {"amount": "NaN"}, "deals.jsonl:1: amount: "),
    ],
)
def test_a_bad_line_is_reported_with_file_line_and_field(
    line: dict[str, object] | str, expected: str
) -> None:
    parsed = read_lines(lines(line), "deals.jsonl")
    assert parsed.events == []
    assert parsed.bad_lines == 1
    assert str(parsed.errors[0]).startswith(expected)


def test_errors_are_reported_up_to_a_limit_but_all_are_counted() -> None:
    parsed = read_lines(lines(*["{bad"] * 50), "deals.jsonl")
    assert parsed.bad_lines == 50
    assert len(parsed.errors) == MAX_REPORTED_ERRORS


def test_a_byte_order_mark_and_crlf_line_ends_are_accepted() -> None:
    raw = b"\xef\xbb\xbf" + orjson.dumps(OPEN) + b"\r\n" + orjson.dumps(TOUCH) + b"\r\n"
    parsed = read_lines(io.BytesIO(raw), "deals.jsonl")
    assert parsed.errors == []
    assert len(parsed.events) == 2


def test_invalid_utf8_is_a_bad_line_not_a_crash() -> None:
    parsed = read_lines([b'{"type": "DealOpened", "name": "\xff"}\n'], "deals.jsonl")
    assert parsed.bad_lines == 1
    assert "not valid JSON" in str(parsed.errors[0])


def test_dump_line_writes_sorted_native_lines_that_read_back_equal() -> None:
    event = touch("t1", summary="Agreed pricing", logged_at="2026-03-04T09:00:00Z")
    line = dump_line(event)
    assert line.endswith(b"\n")
    assert list(orjson.loads(line)) == sorted(orjson.loads(line))
    assert read_lines([line], "x").events == [
        event.model_copy(update={"source": "x:1"})
    ]


def _large_file(
    path: Path, deals: int, touches: int, bad_line: int | None = None
) -> int:
    count = 0
    with path.open("wb") as out:
        for d in range(deals):
            key = f"D-{d:04d}"
            out.write(dump_line(opened(deal=key)))
            count += 1
            for t in range(touches):
                count += 1
                if count == bad_line:
                    out.write(
                        b'{"type": "TouchpointLogged", "deal": "'
                        + key.encode()
                        + b'"}\n'
                    )
                else:
                    out.write(
                        dump_line(
                            touch(
                                f"t{t}",
                                deal=key,
                                occurred_at=f"2026-03-{1 + t % 28:02d}T10:00:00Z",
                            )
                        )
                    )
    return count


def test_a_bad_line_in_the_middle_of_a_large_file_leaves_the_store_unchanged(
    app: DealTrail, tmp_path: Path
) -> None:
    app.record(opened(deal="EXISTING"))
    path = tmp_path / "big.jsonl"
    total = _large_file(path, deals=200, touches=24, bad_line=2500)
    with path.open("rb") as stream, pytest.raises(ImportRefused) as refused:
        app.import_native([(path.name, stream)])
    assert total == 5000
    assert refused.value.count == 1
    assert refused.value.problems == [
        "big.jsonl:2500: occurred_at: Field required (and 2 more problems)"
    ]
    assert app.position() == 1
    assert app.deal_keys() == ["EXISTING"]


def test_a_refused_event_in_the_middle_of_a_large_file_leaves_the_store_unchanged(
    app: DealTrail, tmp_path: Path
) -> None:
    app.record(opened(deal="D-0100"))
    app.record(touch("t5", deal="D-0100", channel="email"))
    path = tmp_path / "big.jsonl"
    _large_file(path, deals=200, touches=24)
    with path.open("rb") as stream, pytest.raises(ImportRefused) as refused:
        app.import_native([(path.name, stream)])
    assert refused.value.problems == [
        "big.jsonl:2507: touchpoint 't5' is already recorded with other details "
        "(differs in occurred_at, channel); record a correction instead"
    ]
    assert app.position() == 2


def test_a_large_file_imports_in_one_batch_and_re_imports_as_nothing(
    app: DealTrail, tmp_path: Path
) -> None:
    path = tmp_path / "big.jsonl"
    total = _large_file(path, deals=100, touches=19)
    with path.open("rb") as stream:
        result = app.import_native([(path.name, stream)])
    assert result.total_recorded == total == 2000
    assert len(result.new_deals) == 100
    assert app.position() == 2000
    with path.open("rb") as stream:
        again = app.import_native([(path.name, stream)])
    assert again.total_recorded == 0
    assert again.unchanged == 2000
    assert app.position() == 2000

"""The native line format: validation, all-or-nothing and idempotent import."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import orjson
import pytest

from engine.application import DealTrail
from engine.errors import ImportRefused
from engine.importing.native import MAX_REPORTED_ERRORS, dump_line, read_lines
from tests.factories import joined, opened, touch


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
        (
            TOUCH | {"channel": "fax"},
            "deals.jsonl:1: channel: 'fax' is not one of email, call, meeting, demo, "
            "message, proposal, social, event, other",
        ),
        (
            TOUCH | {"occurred_at": "2026-03-02T10:00:00"},
            "deals.jsonl:1: occurred_at: naive",
        ),
        (TOUCH | {"colour": "red"}, "deals.jsonl:1: colour: unknown field"),
        (
            TOUCH | {"recorded_at": "2026-03-02T10:00:00Z"},
            "deals.jsonl:1: recorded_at: set by",
        ),
        (
            TOUCH | {"participants": ["a@bolt.example", "not an email"]},
            "deals.jsonl:1: participants (item 2): 'not an email' is not an email "
            "or a CRM id (it has spaces)",
        ),
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


NOT_UTF8 = (
    "(line): not UTF-8 text; native lines are UTF-8 JSON (is this a CSV file, "
    "or compressed?)"
)


def test_invalid_utf8_is_a_bad_line_not_a_crash() -> None:
    parsed = read_lines([b'{"type": "DealOpened", "name": "\xff"}\n'], "deals.jsonl")
    assert parsed.bad_lines == 1
    assert [str(e) for e in parsed.errors] == [f"deals.jsonl:1: {NOT_UTF8}"]


@pytest.mark.parametrize(
    "data",
    [
        # Written by Excel or Notepad on Windows: cp1252, not UTF-8.
        orjson.dumps(OPEN)
        + b"\n"
        + orjson.dumps(TOUCH).replace(b"t1", b"caf\xe9")
        # ... and more lines like it, which would each say the same.
        + (b"\n" + orjson.dumps(TOUCH).replace(b"t1", b"\xe9t\xe9")) * 30,
        # A compressed file: the line after the first is no text either.
        orjson.dumps(OPEN) + b"\n" + gzip.compress(orjson.dumps(TOUCH) * 50, mtime=0),
    ],
    ids=["cp1252", "gzip"],
)
def test_a_file_that_is_not_utf8_is_one_bad_line_naming_where(data: bytes) -> None:
    parsed = read_lines(io.BytesIO(data), "deals.jsonl")
    assert [str(e) for e in parsed.errors] == [f"deals.jsonl:2: {NOT_UTF8}"]
    # Not read further: the whole file is refused by that one line.
    assert parsed.bad_lines == 1


def test_a_cp1252_file_refuses_the_import_with_one_line(
    app: DealTrail, tmp_path: Path
) -> None:
    path = tmp_path / "deals.jsonl"
    path.write_bytes(
        b"".join(
            orjson.dumps(touch(f"t{n}", summary="Caf\xe9").native())
            .decode("utf-8")
            .encode("cp1252")
            + b"\n"
            for n in range(50)
        )
    )
    with path.open("rb") as stream, pytest.raises(ImportRefused) as refused:
        app.import_native([(path.name, stream)])
    assert refused.value.problems == [f"deals.jsonl:1: {NOT_UTF8}"]
    assert str(refused.value) == "1 bad line; nothing was imported"


def test_a_utf16_file_is_told_to_be_saved_as_utf8() -> None:
    # What PowerShell's `>` writes by default.
    data = (orjson.dumps(OPEN) + b"\r\n" + orjson.dumps(TOUCH)).decode()
    parsed = read_lines(io.BytesIO(data.encode("utf-16")), "deals.jsonl")
    assert [str(e) for e in parsed.errors] == [
        "deals.jsonl:1: (line): UTF-16 text (it starts with a UTF-16 byte-order "
        "mark); native lines are UTF-8 JSON: save the file as UTF-8"
    ]
    assert parsed.bad_lines == 1


def test_a_lone_surrogate_escape_is_still_not_valid_json() -> None:
    parsed = read_lines([b'{"type": "DealWon", "deal": "\\ud800"}'], "deals.jsonl")
    assert str(parsed.errors[0]).startswith(
        "deals.jsonl:1: (line): not valid JSON: no low surrogate"
    )


def test_a_refused_choice_names_the_value_given_clipped() -> None:
    parsed = read_lines(
        lines(
            TOUCH | {"direction": "sideways"},
            joined("a@b.example", "champion").native() | {"role": "boss"},
            TOUCH | {"outcome": "x" * 100},
            TOUCH | {"direction": 7},
        ),
        "deals.jsonl",
    )
    assert [str(e) for e in parsed.errors] == [
        "deals.jsonl:1: direction: 'sideways' is not one of outbound, inbound, "
        "internal",
        "deals.jsonl:2: role: 'boss' is not one of decision_maker, economic_buyer, "
        "champion, influencer, technical_evaluator, user, procurement, legal, "
        "gatekeeper, blocker, other",
        # Clipped to 60 characters, as every quoted value.
        f"deals.jsonl:3: outcome: '{'x' * 55}...' is not one of connected, "
        "no_answer, voicemail, bounced, replied, other",
        "deals.jsonl:4: direction: 7 is not one of outbound, inbound, internal",
    ]


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

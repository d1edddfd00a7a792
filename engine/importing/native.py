"""The native line format: one JSON object per line, one event per object."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from engine.errors import QUOTED, ImportRefused, quoted
from engine.events import EVENT_TYPES, Event

MAX_REPORTED_ERRORS = 20
# The longest valid line (two long texts and a full participant list, every
# character escaped) is about a quarter of this; the cap bounds memory.
MAX_LINE_BYTES = 1_048_576
_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
NOT_UTF8 = (
    "not UTF-8 text; native lines are UTF-8 JSON (is this a CSV file, or compressed?)"
)
UTF16 = (
    "UTF-16 text (it starts with a UTF-16 byte-order mark); native lines are "
    "UTF-8 JSON: save the file as UTF-8"
)


@dataclass(frozen=True, slots=True)
class LineError:
    file: str
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.problem}"


@dataclass(frozen=True, slots=True)
class Located:
    """A validated event and where it was read (FILE:LINE, or FILE:ROW)."""

    event: Event
    location: str


# What every reader yields, line by line: an event, or why a line was refused.
ImportItem = Located | LineError
# Where a validation error is: field names and list positions (from 0).
Loc = tuple[str | int, ...]


@dataclass(slots=True)
class ParsedFile:
    events: list[Event] = field(default_factory=list)
    # FILE:LINE of each event, whatever its own ``source`` says.
    locations: list[str] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    bad_lines: int = 0

    def add_error(self, error: LineError) -> None:
        self.bad_lines += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)


def validation_problem(
    error: ValidationError, given: Mapping[str, object] | None = None
) -> tuple[Loc, str]:
    """The first problem of a validation error as (location, message).

    A refused choice (an enum or literal) is named with the value given:
    ``given`` holds a reader's values as the user wrote them, by field, for
    a reader that changed them before validation (a CSV cell's spelling).
    """
    first = error.errors(include_url=False)[0]
    loc = tuple(first["loc"])
    kind = first["type"]
    if kind == "extra_forbidden":
        message = "unknown field"
    elif kind in ("enum", "literal_error"):
        value = first["input"]
        if given is not None and len(loc) == 1 and loc[0] in given:
            value = given[str(loc[0])]
        expected = str(first.get("ctx", {}).get("expected", ""))
        choices = ", ".join(re.findall(r"'([^']*)'", expected)) or expected
        message = f"{quoted(value)} is not one of {choices}"
    elif kind == "int_parsing":
        value = first["input"]
        if given is not None and len(loc) == 1 and loc[0] in given:
            value = given[str(loc[0])]
        message = f"{quoted(value)} is not a whole number"
    else:
        message = first["msg"].removeprefix("Value error, ")
    more = error.error_count() - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return loc, message


def field_path(loc: Loc) -> str:
    """A field's location as a native line's messages name it: the field,
    and an item of a list by its position counted from 1
    (``participants (item 2)``)."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f" (item {part + 1})"
        else:
            path += ("." if path else "") + _loc_part(part)
    return path or "(line)"


def describe_validation_error(error: ValidationError) -> tuple[str, str]:
    """The first problem of a validation error as (dotted field path, message),
    for the command line, which names a field by its option."""
    loc, message = validation_problem(error)
    return ".".join(_loc_part(part) for part in loc) or "(line)", message


def _loc_part(part: str | int) -> str:
    # An unknown field's name comes from the input: keep it short, one line.
    text = str(part)
    if len(text) <= QUOTED and text.isprintable() and "." not in text:
        return text
    return quoted(text)


def parse_event(obj: Any) -> Event:
    """Validate one decoded line object into its event.

    Raises ValueError (with a field name prefix) or ValidationError.
    """
    if not isinstance(obj, dict):
        raise ValueError("(line): expected a JSON object")
    kind = obj.get("type")
    if kind is None:
        raise ValueError("type: missing; name the event, e.g. 'TouchpointLogged'")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"type: unknown event type {quoted(kind)}")
    if "recorded_at" in obj:
        raise ValueError("recorded_at: set by the store; use logged_at instead")
    return cls.model_validate(obj)


def iter_lines(lines: Iterable[bytes], name: str) -> Iterator[ImportItem]:
    """Validate a native file line by line, yielding each event or error.

    Lines without a ``source`` get ``FILE:LINE`` as their provenance. The
    first line that is not UTF-8 is the file's last: the file is not text
    of native lines.
    """
    for number, raw in _numbered(lines):
        if len(raw) > MAX_LINE_BYTES and len(raw.rstrip(b"\r\n")) > MAX_LINE_BYTES:
            yield LineError(
                name,
                number,
                "(line)",
                f"longer than {MAX_LINE_BYTES:,} bytes; a line holds one event",
            )
            continue
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
            repeated = _repeated_key(raw, obj) if isinstance(obj, dict) else None
            if repeated is not None:
                yield LineError(name, number, *repeated)
                continue
            if isinstance(obj, dict) and "source" not in obj:
                obj["source"] = f"{name}:{number}"
            yield Located(parse_event(obj), f"{name}:{number}")
        except orjson.JSONDecodeError as e:
            encoding = _not_utf8(raw, number)
            if encoding is not None:
                # Another encoding, compressed or binary: every line would
                # say so again, and later lines may not even be split right.
                yield LineError(name, number, "(line)", encoding)
                return
            yield LineError(name, number, "(line)", f"not valid JSON: {e}")
        except ValidationError as e:
            loc, message = validation_problem(e)
            yield LineError(name, number, field_path(loc), message)
        except ValueError as e:
            where, _, message = str(e).partition(": ")
            yield LineError(name, number, where, message)


def read_lines(lines: Iterable[bytes], name: str) -> ParsedFile:
    """Validate every line of a native file; the result holds events or errors."""
    return _gather(iter_lines(lines, name))


def _gather(items: Iterable[ImportItem]) -> ParsedFile:
    parsed = ParsedFile()
    for item in items:
        if isinstance(item, LineError):
            parsed.add_error(item)
        else:
            parsed.events.append(item.event)
            parsed.locations.append(item.location)
    return parsed


def collect(items: Iterable[ImportItem]) -> ParsedFile:
    """Every event of a stream of items; raise ImportRefused on any bad line."""
    parsed = _gather(items)
    if parsed.bad_lines:
        problems = [str(e) for e in parsed.errors]
        raise ImportRefused(problems, parsed.bad_lines, "bad line")
    return parsed


def parse_sources(sources: Iterable[tuple[str, Iterable[bytes]]]) -> ParsedFile:
    """Validate every line of every source; raise ImportRefused on any bad line."""
    return collect(
        item for name, stream in sources for item in iter_lines(stream, name)
    )


def _repeated_key(raw: bytes, obj: dict[str, Any]) -> tuple[str, str] | None:
    """(field, problem) if a line names a key twice, else None.

    Decoding keeps a repeated key's last value, while a person or another
    tool reading the line may take the first: such a line says two things.
    The quick test (each key spelled once, no escapes in the line) settles
    almost every line; any other line is decoded again to find out.
    """
    if b"\\" not in raw and all(
        raw.count(b'"' + key.encode() + b'"') == 1 for key in obj
    ):
        return None
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                found.append(key)
            seen.add(key)
        return {}

    try:
        json.loads(raw, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        # Orjson read the line; only this second reading's limits differ.
        return "(line)", "nested too deeply to check for repeated keys"
    if not found:
        return None
    return _loc_part(found[0]), "given twice; give each field once"


def _not_utf8(raw: bytes, number: int) -> str | None:
    """Why a line that did not decode as JSON is not UTF-8 text, or None."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        if number == 1 and raw.startswith(_UTF16_BOMS):
            return UTF16
        return NOT_UTF8
    return None


def _numbered(lines: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Each line with its number; a line's bytes are read up to the cap
    only, so that one endless line cannot exhaust memory."""
    readline = getattr(lines, "readline", None)
    if readline is None:
        for number, raw in enumerate(lines, start=1):
            yield number, raw.removeprefix(_BOM) if number == 1 else raw
        return
    number = 0
    # Room for the longest line allowed and its CR LF.
    while raw := readline(MAX_LINE_BYTES + 2):
        number += 1
        if number == 1:
            raw = raw.removeprefix(_BOM)
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            # Skip the rest of the line, a bounded chunk at a time.
            while (rest := readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
        yield number, raw


def dump_line(event: Event) -> bytes:
    """One native line (sorted keys, no recording time), with a newline."""
    return orjson.dumps(event.native(), option=orjson.OPT_SORT_KEYS) + b"\n"

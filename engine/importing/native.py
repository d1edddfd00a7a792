"""The native line format: one JSON object per line, one event per object."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from engine.errors import ImportRefused
from engine.events import EVENT_TYPES, Event

MAX_REPORTED_ERRORS = 20
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class LineError:
    file: str
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.problem}"


@dataclass(slots=True)
class ParsedFile:
    events: list[Event] = field(default_factory=list)
    # FILE:LINE of each event, whatever its own ``source`` says.
    locations: list[str] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    bad_lines: int = 0
    lines: int = 0

    def add_error(self, error: LineError) -> None:
        self.bad_lines += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)


def describe_validation_error(error: ValidationError) -> tuple[str, str]:
    """The first problem of a validation error as (field path, message)."""
    first = error.errors(include_url=False)[0]
    loc = ".".join(str(part) for part in first["loc"]) or "(line)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    more = error.error_count() - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return loc, message


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
        raise ValueError(f"type: unknown event type {kind!r}")
    if "recorded_at" in obj:
        raise ValueError("recorded_at: set by the store; use logged_at instead")
    return cls.model_validate(obj)


def read_lines(lines: Iterable[bytes], name: str) -> ParsedFile:
    """Validate every line of a native file; the result holds events or errors.

    Lines without a ``source`` get ``FILE:LINE`` as their provenance.
    """
    parsed = ParsedFile()
    for number, raw in _numbered(lines):
        parsed.lines = number
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
            if isinstance(obj, dict) and "source" not in obj:
                obj["source"] = f"{name}:{number}"
            parsed.events.append(parse_event(obj))
            parsed.locations.append(f"{name}:{number}")
        except orjson.JSONDecodeError as e:
            parsed.add_error(LineError(name, number, "(line)", f"not valid JSON: {e}"))
        except ValidationError as e:
            loc, message = describe_validation_error(e)
            parsed.add_error(LineError(name, number, loc, message))
        except ValueError as e:
            loc, _, message = str(e).partition(": ")
            parsed.add_error(LineError(name, number, loc, message))
    return parsed


def parse_sources(sources: Iterable[tuple[str, Iterable[bytes]]]) -> ParsedFile:
    """Validate every line of every source; raise ImportRefused on any bad line."""
    combined = ParsedFile()
    problems: list[str] = []
    for name, stream in sources:
        parsed = read_lines(stream, name)
        combined.events += parsed.events
        combined.locations += parsed.locations
        combined.lines += parsed.lines
        combined.bad_lines += parsed.bad_lines
        problems += [str(e) for e in parsed.errors]
    if combined.bad_lines:
        raise ImportRefused(
            problems[:MAX_REPORTED_ERRORS], combined.bad_lines, "bad line"
        )
    return combined


def _numbered(lines: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, raw in enumerate(lines, start=1):
        yield number, raw.removeprefix(_BOM) if number == 1 else raw


def dump_line(event: Event) -> bytes:
    """One native line (sorted keys, no recording time), with a newline."""
    return orjson.dumps(event.native(), option=orjson.OPT_SORT_KEYS) + b"\n"

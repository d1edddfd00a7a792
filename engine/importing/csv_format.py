"""CSV touchpoints: one event per row, the native line fields as columns.

The layout is documented in docs/importing.md. A file without a ``type``
column holds touchpoints (``TouchpointLogged``). Headers match the native
field names, or one of their aliases, ignoring case, spaces, underscores
and punctuation. Empty cells are absent fields; ``participants`` lists
contacts separated by ``;``.

The reading helpers (``text_stream``, ``CsvTable``, ``undecodable``) are
shared with the Salesforce reader.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from typing import IO, Any

from pydantic import ValidationError

from engine.errors import InputError, quoted
from engine.events import CATALOGUE, TouchpointLogged, event_type_name
from engine.importing.native import (
    ImportItem,
    LineError,
    Loc,
    Located,
    field_path,
    parse_event,
    validation_problem,
)

LIST_SEPARATOR = ";"
LIST_FIELDS = frozenset({"participants"})
TIMESTAMP_FIELDS = frozenset(
    {"occurred_at", "logged_at", "not_before", "touchpoint_occurred_at"}
)
CHOICE_FIELDS = frozenset({"channel", "direction", "outcome", "role"})
REQUIRED = ("deal", "occurred_at")
DEFAULT_TYPE = event_type_name(TouchpointLogged)

# Every field an input line may carry; the store sets recorded_at.
FIELDS: frozenset[str] = frozenset(
    name for cls in CATALOGUE for name in cls.model_fields if name != "recorded_at"
)

# Common spellings of the fields in CRM and spreadsheet exports. Each alias
# means one field only; words that mean different things in different
# exports (a bare "id", "contact", "notes", "owner" for a touch) are left out.
ALIASES: dict[str, tuple[str, ...]] = {
    "type": ("event", "event type"),
    "deal": ("deal key", "deal id", "opportunity", "opportunity id", "opportunity key"),
    "occurred_at": (
        "occurred",
        "date",
        "time",
        "timestamp",
        "datetime",
        "date time",
        "when",
        "activity date",
    ),
    "logged_at": ("logged", "created", "created at", "created date", "created on"),
    "participants": (
        "with",
        "contacts",
        "contact emails",
        "attendees",
        "people",
        "participant",
    ),
    "channel": ("medium", "activity", "activity type", "type of activity"),
    "direction": ("inbound outbound", "call type"),
    "rep": ("sales rep", "salesperson", "seller", "assigned to", "user"),
    "summary": ("subject", "comments", "details"),
    "outcome": ("result", "call result", "disposition", "call disposition"),
    "duration_minutes": (
        "duration",
        "duration min",
        "duration mins",
        "duration minutes",
        "minutes",
    ),
    "touchpoint": ("touchpoint id", "activity id"),
    "name": ("deal name", "opportunity name", "contact name"),
    "account": ("account name", "company", "organisation", "organization"),
    "stage": ("stage name", "deal stage"),
    "amount": ("value", "deal value"),
    "currency": ("currency code", "currency iso code"),
    "expected_close": ("close date", "expected close date"),
    "timezone": ("time zone", "tz"),
    "contact": ("contact email", "email"),
    "title": ("job title",),
    "role": ("contact role", "stakeholder role"),
    "reason": ("loss reason", "lost reason"),
    "competitor": ("lost to",),
}


def column_key(header: str) -> str:
    """A header as compared: lower-case letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", header.casefold())


def _lookup() -> dict[str, str]:
    lookup = {column_key(name): name for name in FIELDS}
    for name, aliases in ALIASES.items():
        assert name in FIELDS, name
        for alias in aliases:
            key = column_key(alias)
            assert lookup.setdefault(key, name) == name, alias
    return lookup


COLUMNS: dict[str, str] = _lookup()

# The csv module's own default: room for the longest text a CRM exports
# (an email body), and a bound on what one cell may hold in memory.
MAX_CELL_CHARS = 131_072
# A physical line may hold many cells; this bounds the memory of reading one.
MAX_LINE_CHARS = 1_048_576

_SURROGATES = re.compile("[\udc80-\udcff]+")
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_BOM = codecs.BOM_UTF8


def text_stream(stream: IO[bytes], encoding: str) -> io.TextIOWrapper:
    """Decode a binary stream for the csv module.

    A UTF-8 byte-order mark is dropped. Undecodable bytes are kept as lone
    surrogates, so that each row can say where they are (see ``undecodable``).
    """
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise InputError(f"--encoding: unknown encoding {encoding!r}") from None
    try:
        return io.TextIOWrapper(
            stream,
            encoding="utf-8-sig" if codec == "utf-8" else codec,
            errors="surrogateescape",
            newline="",
        )
    except LookupError:
        # A codec that is not bytes-to-text, such as base64 or rot13.
        raise InputError(f"--encoding: {encoding!r} is not a text encoding") from None


def undecodable(cell: str, encoding: str) -> str | None:
    """Why a decoded cell is not text in ``encoding``, or None if it is."""
    found = _SURROGATES.search(cell)
    if found is None:
        return None
    raw = bytes(ord(char) - 0xDC00 for char in found.group())
    return (
        f"bytes {quoted(raw)} are not valid {encoding}; pass the file's encoding, "
        "e.g. --encoding cp1252"
    )


# What the csv module (strict) says of a row its quotes leave unsplittable.
_CSV_EOF_IN_QUOTES = "unexpected end of data"
_CSV_TEXT_AFTER_QUOTE = "',' expected after '\"'"
UNCLOSED_QUOTE = (
    "the file ends before this quoted cell's closing '\"'; is it cut short?"
)
TEXT_AFTER_QUOTE = (
    "text after a quoted cell's closing '\"'; a '\"' inside a quoted cell is "
    "written '\"\"'"
)


class _Unsplittable(Exception):
    """A row whose quotes do not split into cells."""


class CsvTable:
    """A CSV file read row by row, each row with the physical line it starts on.

    Quotes are read strictly: a file that ends inside a quoted cell (cut
    short) is a bad row, and so is text after a cell's closing quote. Every
    row must have as many cells as the header; blank rows are skipped.
    """

    def __init__(self, stream: IO[bytes], name: str, encoding: str) -> None:
        self.name = name
        self.encoding = encoding
        self._text: io.TextIOWrapper | None = text_stream(stream, encoding)
        self._codec = codecs.lookup(encoding).name
        csv.field_size_limit(MAX_CELL_CHARS)
        # The physical lines of the row being read, to say which cell an
        # unclosed quote opened.
        self._record: list[str] = []
        self._reader = csv.reader(self._lines(self._text), strict=True)
        try:
            self.header = self._read_header()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop reading; the caller's binary stream stays open."""
        if self._text is not None:
            self._text.detach()
            self._text = None

    def _read_header(self) -> list[str]:
        try:
            header = self._next()
        except _Unsplittable as e:
            raise InputError(f"{self.name}:1: {e}") from None
        if not header or not any(cell.strip() for cell in header):
            raise InputError(
                f"{self.name}:1: no header line; the first line names the columns"
            )
        bom = _BOM.decode(self._codec, errors="surrogateescape")
        if self._codec != "utf-8" and header[0].startswith(bom):
            raise InputError(
                f"{self.name}:1: starts with a UTF-8 byte-order mark; the file is "
                f"UTF-8, not {self.encoding}"
            )
        for number, cell in enumerate(header, start=1):
            problem = undecodable(cell, self.encoding)
            if problem is not None:
                raise InputError(f"{self.name}:1: column {number}: {problem}")
        return [cell.strip() for cell in header]

    def rows(self) -> Iterator[tuple[int, list[str]] | LineError]:
        """Each non-blank row after the header, with the line it starts on,
        as many cells as the header names; or the row's error, with the
        line it starts on."""
        try:
            while True:
                start = self._reader.line_num + 1
                self._record = []
                try:
                    row = self._next()
                except _Unsplittable as e:
                    yield LineError(self.name, start, self._bad_cell(e), str(e))
                    continue
                if row is None:
                    return
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(self.header):
                    yield LineError(
                        self.name,
                        start,
                        "(line)",
                        f"{len(row)} cells, but the header names "
                        f"{len(self.header)} columns",
                    )
                    continue
                yield start, row
        finally:
            self._record = []
            self.close()

    def _bad_cell(self, error: _Unsplittable) -> str:
        """The column of the cell an unclosed quote opened: the last of the
        row so far, read leniently. Other quote errors name the line."""
        if str(error) != UNCLOSED_QUOTE:
            return "(line)"
        try:
            cells = next(csv.reader(self._record), [])
        except csv.Error:
            return "(line)"
        index = len(cells) - 1
        if not 0 <= index < len(self.header):
            return "(line)"
        column = self.header[index]
        if column and column.isprintable() and len(column) <= 60:
            return column
        return f"column {index + 1}"

    def _lines(self, text: io.TextIOWrapper) -> Iterator[str]:
        """The physical lines, none longer than the cap (one would be read
        into memory whole)."""
        while line := self._readline(text):
            self._record.append(line)
            if len(line) > MAX_LINE_CHARS and len(line.rstrip("\r\n")) > MAX_LINE_CHARS:
                raise InputError(
                    f"{self.name}:{self._reader.line_num + 1}: line longer than "
                    f"{MAX_LINE_CHARS:,} characters"
                )
            yield line

    def _readline(self, text: io.TextIOWrapper) -> str:
        try:
            return text.readline(MAX_LINE_CHARS + 2)
        except UnicodeError as e:
            # Codecs such as UTF-16 refuse a stream as a whole (no BOM),
            # which surrogateescape cannot carry into a row's error.
            raise InputError(
                f"{self.name}:{self._reader.line_num + 1}: cannot be read as "
                f"{text.encoding}: {e}"
            ) from None

    def _next(self) -> list[str] | None:
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except csv.Error as e:
            problem = str(e)
            if problem == _CSV_EOF_IN_QUOTES:
                raise _Unsplittable(UNCLOSED_QUOTE) from None
            if problem == _CSV_TEXT_AFTER_QUOTE:
                raise _Unsplittable(TEXT_AFTER_QUOTE) from None
            if problem.startswith("field larger than field limit"):
                problem = f"a cell is longer than {MAX_CELL_CHARS:,} characters"
            raise InputError(
                f"{self.name}:{self._reader.line_num}: {problem}"
            ) from None


def read_csv(
    stream: IO[bytes], name: str, *, encoding: str, timezone: tzinfo | None
) -> Iterator[ImportItem]:
    """Read CSV events row by row, yielding each event or the row's error.

    Naive timestamps are read in ``timezone``; without one they are errors.
    Rows without a ``source`` get ``FILE:LINE`` as their provenance.
    """
    table = CsvTable(stream, name, encoding)
    fields = _fields_of(table.header, name)
    for item in table.rows():
        if isinstance(item, LineError):
            yield item
            continue
        line, row = item
        yield _read_row(row, fields, table, line, timezone)


def _fields_of(header: list[str], name: str) -> list[str]:
    """The event field of each column; an unknown or repeated one is refused."""
    fields: list[str] = []
    seen: dict[str, str] = {}
    for number, column in enumerate(header, start=1):
        if not column:
            raise InputError(f"{name}:1: column {number} has no name")
        field = COLUMNS.get(column_key(column))
        if field is None:
            raise InputError(
                f"{name}:1: unknown column {quoted(column)}; see docs/importing.md "
                "for the columns and their aliases"
            )
        if field in seen:
            raise InputError(
                f"{name}:1: columns {quoted(seen[field])} and {quoted(column)} "
                f"both mean {field}"
            )
        seen[field] = column
        fields.append(field)
    missing = [field for field in REQUIRED if field not in seen]
    if missing:
        raise InputError(f"{name}:1: no {' or '.join(missing)} column")
    return fields


def _read_row(
    row: list[str],
    fields: list[str],
    table: CsvTable,
    line: int,
    zone: tzinfo | None,
) -> ImportItem:
    name = table.name
    obj: dict[str, Any] = {}
    # Each cell as written, for messages about the value it gave.
    given: dict[str, str] = {}
    for field, column, raw in zip(fields, table.header, row, strict=True):
        cell = raw.strip()
        if not cell:
            continue
        value, problem = _value(field, cell, table.encoding, zone)
        if problem is not None:
            return LineError(name, line, column, problem)
        obj[field] = value
        given[field] = cell
    if "type" not in fields:
        obj["type"] = DEFAULT_TYPE
    obj.setdefault("source", f"{name}:{line}")
    try:
        return Located(parse_event(obj), f"{name}:{line}")
    except ValidationError as e:
        loc, message = validation_problem(e, given)
        return LineError(name, line, _column_of(loc, fields, table.header), message)
    except ValueError as e:
        field, _, message = str(e).partition(": ")
        return LineError(
            name, line, _column_of((field,), fields, table.header), message
        )


def _value(
    field: str, cell: str, encoding: str, zone: tzinfo | None
) -> tuple[Any, str | None]:
    """A cell as its field's input value: (value, problem)."""
    problem = undecodable(cell, encoding)
    if problem is not None:
        return None, problem
    if field in TIMESTAMP_FIELDS:
        return timestamp_in(cell, zone)
    if field in LIST_FIELDS:
        parts = (part.strip() for part in cell.split(LIST_SEPARATOR))
        return [part for part in parts if part], None
    if field in CHOICE_FIELDS:
        # "No Answer" and "Decision Maker" as spreadsheets spell them.
        return re.sub(r"[\s-]+", "_", cell.casefold()), None
    return cell, None


def _column_of(loc: Loc, fields: list[str], header: list[str]) -> str:
    """An error's field, named by the file's own column header: the whole
    cell, for a list's item too (the message names the item)."""
    if loc and loc[0] in fields:
        return header[fields.index(str(loc[0]))]
    return field_path(loc)


def timestamp_in(text: str, zone: tzinfo | None) -> tuple[Any, str | None]:
    """An ISO 8601 time, naive ones read in ``zone``: (value, problem).

    Text that is not a time at all is passed on unchanged, for the event's
    own validation to explain.
    """
    if _DATE_ONLY.fullmatch(text):
        return text, None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return text, None
    if value.tzinfo is not None:
        return value, None
    if zone is None:
        return None, (
            f"naive timestamp {text!r}; add a UTC offset such as Z or +01:00, "
            "or pass --timezone"
        )
    return local_time(value, zone)


def local_time(value: datetime, zone: tzinfo) -> tuple[datetime | None, str | None]:
    """A naive time read in ``zone``: (aware time, problem).

    A time that the clocks skipped (a spring-forward gap) does not exist: it
    is refused. An ambiguous one (clocks moved back) is the earlier of the
    two.
    """
    aware = value.replace(tzinfo=zone, fold=0)
    try:
        back = aware.astimezone(UTC).astimezone(zone)
    except (OverflowError, ValueError):
        # Near the calendar's ends: the event's own year check refuses it.
        return aware, None
    if back.replace(tzinfo=None) != value.replace(fold=0):
        # Written anew, not as given: a cell may hold any fraction of a second.
        precise = value.second or value.microsecond
        shown = value.isoformat(sep=" ", timespec="auto" if precise else "minutes")
        name = getattr(zone, "key", None) or str(zone)
        return None, f"{shown} does not exist in {name} (clocks moved forward)"
    return aware, None

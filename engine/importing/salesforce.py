"""Salesforce data export bundles: a folder of the standard objects' CSV files.

Columns are read by their API names (``StageName``, ``WhatId``...); other
columns, which exports have many of, are ignored. Each opportunity is one
deal, keyed by its Opportunity Id. The mapping, field by field, is in
docs/importing.md.

Contacts, accounts, users, opportunities and their history and contact
roles are held in memory as lookups; tasks and events, the bulk of an
export, are read row by row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.errors import InputError, quoted
from engine.events import (
    EARLIEST_YEAR,
    LATEST_YEAR,
    Channel,
    Direction,
    Role,
    normalise_contact,
)
from engine.importing.csv_format import CsvTable, local_time, undecodable
from engine.importing.native import (
    ImportItem,
    LineError,
    Located,
    field_path,
    parse_event,
    validation_problem,
)


@dataclass(frozen=True)
class Layout:
    """The columns one export file must have, and those read when present."""

    file: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    # Alternatives: at least one column of each group must be present.
    one_of: tuple[tuple[str, ...], ...] = ()


OPPORTUNITY = Layout(
    "Opportunity.csv",
    (
        "Id",
        "Name",
        "AccountId",
        "OwnerId",
        "StageName",
        "Amount",
        "CloseDate",
        "CreatedDate",
        "IsClosed",
        "IsWon",
    ),
    ("CurrencyIsoCode", "LossReason"),
)
HISTORY = Layout(
    "OpportunityHistory.csv",
    ("OpportunityId", "StageName", "Amount", "CloseDate", "CreatedDate"),
    ("Id",),
)
CONTACT_ROLE = Layout(
    "OpportunityContactRole.csv",
    ("OpportunityId", "ContactId", "Role", "CreatedDate"),
    ("Id",),
)
CONTACT = Layout(
    "Contact.csv",
    ("Id", "Email"),
    ("Name", "FirstName", "LastName", "Title"),
    (("Name", "LastName"),),
)
TASK = Layout(
    "Task.csv",
    (
        "Id",
        "WhatId",
        "WhoId",
        "Subject",
        "ActivityDate",
        "CreatedDate",
        "TaskSubtype",
        "Type",
        "Status",
        "CallType",
        "CallDurationInSeconds",
    ),
    ("OwnerId", "IsClosed"),
)
EVENT = Layout(
    "Event.csv",
    (
        "Id",
        "WhatId",
        "WhoId",
        "Subject",
        "StartDateTime",
        "DurationInMinutes",
        "CreatedDate",
    ),
    ("OwnerId", "Type", "IsChild"),
)
ACCOUNT = Layout("Account.csv", ("Id", "Name"))
USER = Layout(
    "User.csv",
    ("Id",),
    ("Name", "FirstName", "LastName", "Email"),
    (("Name", "LastName", "Email"),),
)
EMAIL_MESSAGE = Layout("EmailMessage.csv", ("ActivityId", "Incoming"))

REQUIRED_FILES = (OPPORTUNITY, HISTORY, CONTACT_ROLE, CONTACT, TASK, EVENT)
OPTIONAL_FILES = (ACCOUNT, USER, EMAIL_MESSAGE)
DEFAULT_LOSS_REASON = "LossReason"
# Read in every file that has it: deleted rows are no history.
DELETED = "IsDeleted"
NO_LOSS_REASON = "No loss reason recorded in Salesforce"

# OpportunityContactRole.Role picklist values, and the project's own role
# names for orgs that added them (Champion, Procurement...).
ROLES: dict[str, Role] = {
    "decision maker": Role.DECISION_MAKER,
    "economic buyer": Role.ECONOMIC_BUYER,
    "economic decision maker": Role.ECONOMIC_BUYER,
    "technical buyer": Role.TECHNICAL_EVALUATOR,
    "evaluator": Role.TECHNICAL_EVALUATOR,
    "influencer": Role.INFLUENCER,
    # The buyer's senior sponsor who argues for the purchase inside.
    "executive sponsor": Role.CHAMPION,
    "business user": Role.USER,
    "other": Role.OTHER,
} | {role.value.replace("_", " "): role for role in Role}
ROLE_VALUES = (
    "Decision Maker, Economic Buyer, Economic Decision Maker, Technical Buyer, "
    "Evaluator, Influencer, Executive Sponsor, Business User, Other"
)

# Task and Event Type picklist values naming a channel; "Other" names none.
CHANNELS: dict[str, Channel] = {
    str(channel.value): Channel(channel)
    for channel in Channel
    if channel is not Channel.OTHER
} | {"send quote": Channel.PROPOSAL, "linkedin": Channel.SOCIAL}
CALL_TYPES = {
    "inbound": Direction.INBOUND,
    "outbound": Direction.OUTBOUND,
    "internal": Direction.INTERNAL,
}
TRUE, FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no", ""})
# Whole numbers (durations) have at most this many digits.
MAX_DIGITS = 9
# The longest touchpoint duration the catalogue takes (TouchpointLogged).
DAY_MINUTES = 24 * 60
# Noted in ``Bundle.notes``: a multi-day event imported without a duration.
LONG_EVENT = "Event.csv events over a day, imported without their duration"
# The hour given to activities that Salesforce dates without a time.
NOON = time(12)

# Order of a deal's events that share a time: history, then roles, then a close.
HISTORY_RANK, ROLE_RANK, CLOSE_RANK = 0, 1, 2


class _Bad(Exception):
    """A problem with one column of one row."""

    def __init__(self, row: _Row, column: str, problem: str) -> None:
        super().__init__(problem)
        self.error = LineError(row.file, row.line, column, problem)


@dataclass(frozen=True)
class _Row:
    """One row, its cells by column API name ('' for an absent optional one)."""

    file: str
    line: int
    cells: dict[str, str]

    def __getitem__(self, column: str) -> str:
        return self.cells.get(column, "")


@dataclass(frozen=True)
class _Contact:
    key: str
    name: str | None
    title: str | None


@dataclass
class _Opportunity:
    row: _Row
    created: datetime
    is_closed: bool
    is_won: bool
    history: list[tuple[datetime, _Row]] = field(default_factory=list)
    roles: list[tuple[datetime, _Row]] = field(default_factory=list)


@dataclass
class Bundle:
    """A Salesforce data export folder, read into events.

    ``skipped`` counts, after reading, the rows that became no event and why;
    ``notes`` counts rows whose event was imported with a change, and why.
    ``now`` bounds activities: those after it have not happened yet.
    """

    folder: Path
    encoding: str = "utf-8"
    timezone: tzinfo | None = None
    loss_reason_field: str | None = None
    now: datetime | None = None
    skipped: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)
    _paths: dict[str, Path] = field(default_factory=dict)
    _users: dict[str, str] = field(default_factory=dict)
    _accounts: dict[str, str] = field(default_factory=dict)
    _contacts: dict[str, _Contact] = field(default_factory=dict)
    _incoming: set[str] = field(default_factory=set)
    _opportunities: dict[str, _Opportunity] = field(default_factory=dict)

    def items(self) -> Iterator[ImportItem]:
        """Every opportunity's events (its DealOpened first), then its
        tasks and events in file order, each as an event or a row's error."""
        self._locate_files()
        now = self.now or datetime.now(UTC)
        yield from self._read_lookups()
        yield from self._read_opportunities()
        for opportunity in self._opportunities.values():
            yield from self._deal_events(opportunity)
        yield from self._activities(TASK, lambda row: self._task(row, now))
        yield from self._activities(EVENT, lambda row: self._event(row, now))

    # Files

    def _locate_files(self) -> None:
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: not a folder of Salesforce CSV files")
        by_name = {p.name.casefold(): p for p in self.folder.iterdir() if p.is_file()}
        missing = []
        for layout in REQUIRED_FILES + OPTIONAL_FILES:
            path = by_name.get(layout.file.casefold())
            if path is not None:
                self._paths[layout.file] = path
            elif layout in REQUIRED_FILES:
                missing.append(layout.file)
        needed = _listing([layout.file for layout in REQUIRED_FILES], "and")
        if len(missing) == len(REQUIRED_FILES):
            raise InputError(
                f"{self.folder}: not a Salesforce export, which holds {needed}"
            )
        if missing:
            raise InputError(
                f"{self.folder}: no {_listing(missing, 'or')}; a Salesforce export "
                f"holds {needed}"
            )
        # Refuse a bad header before reading anything.
        for layout in REQUIRED_FILES + OPTIONAL_FILES:
            if layout.file in self._paths:
                with self._table(layout):
                    pass

    def _display(self, layout: Layout) -> str:
        return str(self.folder / self._paths[layout.file].name)

    @contextmanager
    def _table(self, layout: Layout) -> Iterator[Iterator[_Row | LineError]]:
        """The file's rows, each with the cells this reader uses."""
        name = self._display(layout)
        with open(self._paths[layout.file], "rb") as stream:
            table = CsvTable(stream, name, self.encoding)
            try:
                columns = self._columns(layout, table.header, name)
                yield self._rows(table, columns)
            finally:
                table.close()

    def _columns(self, layout: Layout, header: list[str], name: str) -> dict[str, int]:
        """The position of each column read, by API name (any case)."""
        read = (*layout.required, *layout.optional, *self._extra(layout), DELETED)
        wanted = {column.casefold(): column for column in read}
        positions: dict[str, int] = {}
        for index, text in enumerate(header):
            column = wanted.get(text.casefold())
            if column is None:
                continue
            if column in positions:
                raise InputError(f"{name}:1: column {column!r} appears twice")
            positions[column] = index
        missing = [
            c for c in (*layout.required, *self._extra(layout)) if c not in positions
        ]
        if missing:
            raise InputError(f"{name}:1: no {', '.join(missing)} column")
        for group in layout.one_of:
            if not any(column in positions for column in group):
                raise InputError(f"{name}:1: no {' or '.join(group)} column")
        return positions

    def _extra(self, layout: Layout) -> tuple[str, ...]:
        """Columns required by the options: a named loss reason column."""
        if layout is OPPORTUNITY and self.loss_reason_field:
            return (self.loss_reason_field,)
        return ()

    def _rows(
        self, table: CsvTable, columns: dict[str, int]
    ) -> Iterator[_Row | LineError]:
        for item in table.rows():
            if isinstance(item, LineError):
                yield item
                continue
            line, row = item
            cells: dict[str, str] = {}
            for column, index in columns.items():
                cell = row[index].strip()
                problem = undecodable(cell, self.encoding)
                if problem is not None:
                    yield LineError(table.name, line, column, problem)
                    break
                cells[column] = cell
            else:
                yield _Row(table.name, line, cells)

    def _each(
        self, layout: Layout, read: Callable[[_Row], Iterator[ImportItem] | None]
    ) -> Iterator[ImportItem]:
        """Apply ``read`` to each row; a row's problem becomes its LineError."""
        if layout.file not in self._paths:
            return
        with self._table(layout) as rows:
            for row in rows:
                if isinstance(row, LineError):
                    yield row
                    continue
                try:
                    if row[DELETED] and _boolean(row, DELETED):
                        # An "export all" also holds the recycle bin.
                        self.skipped[f"{layout.file} rows deleted in Salesforce"] += 1
                        continue
                    items = read(row)
                    if items is not None:
                        yield from items
                except _Bad as bad:
                    yield bad.error

    # Lookups

    def _read_lookups(self) -> Iterator[ImportItem]:
        yield from self._each(USER, self._user)
        yield from self._each(ACCOUNT, self._account)
        yield from self._each(CONTACT, self._contact)
        yield from self._each(EMAIL_MESSAGE, self._email_message)

    def _user(self, row: _Row) -> None:
        name = _person_name(row) or row["Email"]
        if name:
            self._users[_required(row, "Id")] = name

    def _account(self, row: _Row) -> None:
        if row["Name"]:
            self._accounts[_required(row, "Id")] = row["Name"]

    def _contact(self, row: _Row) -> None:
        contact_id = _required(row, "Id")
        # A contact without a usable email is named by its id.
        key = contact_id
        if "@" in row["Email"]:
            with suppress(ValueError):
                key = normalise_contact(row["Email"])
        self._contacts[contact_id] = _Contact(
            key, _person_name(row) or None, row["Title"] or None
        )

    def _email_message(self, row: _Row) -> None:
        if row["ActivityId"] and _boolean(row, "Incoming"):
            self._incoming.add(row["ActivityId"])

    # Opportunities

    def _read_opportunities(self) -> Iterator[ImportItem]:
        yield from self._each(OPPORTUNITY, self._opportunity)
        yield from self._each(HISTORY, self._history)
        yield from self._each(CONTACT_ROLE, self._contact_role)

    def _opportunity(self, row: _Row) -> None:
        key = _required(row, "Id")
        if key in self._opportunities:
            first = self._opportunities[key].row.line
            raise _Bad(row, "Id", f"{key} is already on line {first}")
        self._opportunities[key] = _Opportunity(
            row,
            self._timestamp(row, "CreatedDate"),
            _boolean(row, "IsClosed"),
            _boolean(row, "IsWon"),
        )

    def _history(self, row: _Row) -> None:
        opportunity = self._opportunity_of(row, "OpportunityId", "history rows")
        if opportunity is not None:
            # Checked once here, so that comparing rows later cannot fail.
            _amount(row)
            _date(row, "CloseDate")
            opportunity.history.append((self._timestamp(row, "CreatedDate"), row))

    def _contact_role(self, row: _Row) -> None:
        opportunity = self._opportunity_of(row, "OpportunityId", "contact roles")
        if opportunity is not None:
            opportunity.roles.append((self._timestamp(row, "CreatedDate"), row))

    def _opportunity_of(self, row: _Row, column: str, what: str) -> _Opportunity | None:
        opportunity = self._opportunities.get(row[column])
        if opportunity is None:
            self.skipped[f"{what} of opportunities not in Opportunity.csv"] += 1
        return opportunity

    def _deal_events(self, opportunity: _Opportunity) -> Iterator[ImportItem]:
        """DealOpened, then the deal's history, roles and close in time order."""
        row = opportunity.row
        history = sorted(
            opportunity.history, key=lambda entry: (entry[0], entry[1].line)
        )
        try:
            closing = self._closing_index(opportunity, history)
            yield self._opened(opportunity, history)
        except _Bad as bad:
            yield bad.error
            return
        timed: list[tuple[datetime, int, int, ImportItem]] = []
        for index in range(1, len(history)):
            at, entry = history[index]
            try:
                changes = list(
                    self._history_events(
                        row["Id"], history[index - 1][1], entry, at, index == closing
                    )
                )
            except _Bad as bad:
                changes = [bad.error]
            timed += [(at, HISTORY_RANK, entry.line, item) for item in changes]
        for at, entry, item in self._role_events(row["Id"], opportunity.roles):
            timed.append((at, ROLE_RANK, entry.line, item))
        if opportunity.is_closed:
            try:
                at, item = self._close(opportunity, history, closing)
            except _Bad as bad:
                at, item = opportunity.created, bad.error
            timed.append((at, CLOSE_RANK, row.line, item))
        timed.sort(key=lambda entry: entry[:3])
        for *_, item in timed:
            yield item

    def _opened(
        self, opportunity: _Opportunity, history: list[tuple[datetime, _Row]]
    ) -> ImportItem:
        row = opportunity.row
        # The first history row holds the values the deal opened with.
        first = history[0][1] if history else row
        columns = {
            "name": "Name",
            "account": "AccountId",
            "owner": "OwnerId",
            "stage": "StageName",
            "amount": "Amount",
            "expected_close": "CloseDate",
            "currency": "CurrencyIsoCode",
        }
        return _located(
            {
                "type": "DealOpened",
                "deal": row["Id"],
                "occurred_at": opportunity.created,
                "logged_at": opportunity.created,
                "source": f"salesforce:Opportunity/{row['Id']}",
                "name": row["Name"],
                "account": self._accounts.get(row["AccountId"], row["AccountId"]),
                "owner": self._users.get(row["OwnerId"], row["OwnerId"]),
                "stage": first["StageName"],
                "amount": _amount(first),
                "currency": row["CurrencyIsoCode"] or None,
                "expected_close": _date(first, "CloseDate"),
                "timezone": getattr(self.timezone, "key", None),
            },
            row,
            columns,
        )

    def _history_events(
        self, deal: str, before: _Row, row: _Row, at: datetime, closes: bool
    ) -> Iterator[ImportItem]:
        """What changed since the previous history row.

        The move into the final closed stage is the close itself, so it is no
        stage change; a change of amount or close date is a DealUpdated.
        """
        common = {
            "deal": deal,
            "occurred_at": at,
            "logged_at": at,
            "source": _source("OpportunityHistory", row),
        }
        if row["StageName"] != before["StageName"] and not closes:
            yield _located(
                common | {"type": "StageChanged", "stage": row["StageName"]},
                row,
                {"stage": "StageName"},
            )
        changes: dict[str, Any] = {}
        amount = _amount(row)
        if amount is not None and amount != _amount(before):
            changes["amount"] = amount
        close = _date(row, "CloseDate")
        if close is not None and close != _date(before, "CloseDate"):
            changes["expected_close"] = close
        if changes:
            yield _located(
                common | {"type": "DealUpdated"} | changes,
                row,
                {"amount": "Amount", "expected_close": "CloseDate"},
            )

    def _role_events(
        self, deal: str, roles: list[tuple[datetime, _Row]]
    ) -> Iterator[tuple[datetime, _Row, ImportItem]]:
        """A contact joins with their first role; a later row with another
        role changes it (the project gives each stakeholder one role)."""
        current: dict[str, Role] = {}
        for at, row in sorted(roles, key=lambda entry: (entry[0], entry[1].line)):
            try:
                role = _role(row)
                contact = self._contact_of(_required(row, "ContactId"))
            except _Bad as bad:
                yield at, row, bad.error
                continue
            common = {
                "deal": deal,
                "occurred_at": at,
                "logged_at": at,
                "source": _source("OpportunityContactRole", row),
                "contact": contact.key,
                "role": role.value,
            }
            columns = {"contact": "ContactId", "role": "Role"}
            if contact.key not in current:
                event = common | {
                    "type": "StakeholderJoined",
                    "name": contact.name,
                    "title": contact.title,
                }
            elif current[contact.key] != role:
                event = common | {"type": "StakeholderRoleChanged"}
            else:
                self.skipped["contact roles repeating a role"] += 1
                continue
            current[contact.key] = role
            yield at, row, _located(event, row, columns)

    def _closing_index(
        self, opportunity: _Opportunity, history: list[tuple[datetime, _Row]]
    ) -> int | None:
        """The history row that moved a closed deal into its final stage."""
        if not opportunity.is_closed:
            return None
        final = opportunity.row["StageName"]
        index = len(history)
        while index > 0 and history[index - 1][1]["StageName"] == final:
            index -= 1
        return index if index < len(history) else None

    def _close(
        self,
        opportunity: _Opportunity,
        history: list[tuple[datetime, _Row]],
        closing: int | None,
    ) -> tuple[datetime, ImportItem]:
        """DealWon or DealLost, when the deal entered its closed stage.

        Without a history row for that, at noon on the CloseDate (and not
        before the deal opened), with no logging time.
        """
        row = opportunity.row
        logged: datetime | None
        if closing is not None:
            at = logged = history[closing][0]
        else:
            day = _date(row, "CloseDate")
            if day is None:
                raise _Bad(
                    row, "CloseDate", "empty; a closed opportunity needs its close date"
                )
            at, logged = max(self._noon(day), opportunity.created), None
        common = {
            "deal": row["Id"],
            "occurred_at": at,
            "logged_at": logged,
            "source": f"salesforce:Opportunity/{row['Id']}",
        }
        if opportunity.is_won:
            event = common | {"type": "DealWon", "amount": _amount(row)}
            return at, _located(event, row, {"amount": "Amount"})
        column = self.loss_reason_field or DEFAULT_LOSS_REASON
        event = common | {"type": "DealLost", "reason": row[column] or NO_LOSS_REASON}
        return at, _located(event, row, {"reason": column})

    # Activities

    def _activities(
        self, layout: Layout, read: Callable[[_Row], ImportItem | None]
    ) -> Iterator[ImportItem]:
        def one(row: _Row) -> Iterator[ImportItem] | None:
            if row["WhatId"] not in self._opportunities:
                self.skipped[f"{layout.file} rows not on an exported opportunity"] += 1
                return None
            item = read(row)
            return None if item is None else iter((item,))

        yield from self._each(layout, one)

    def _task(self, row: _Row, now: datetime) -> ImportItem | None:
        """A completed task: an email, a call, or a to-do whose Type names a
        channel. Open to-dos and those of Type Other are no touch."""
        subtype = row["TaskSubtype"].casefold()
        if subtype in ("email", "listemail"):
            channel = Channel.EMAIL
        elif subtype == "call":
            channel = Channel.CALL
        elif subtype == "linkedin":
            channel = Channel.SOCIAL
        else:
            found = CHANNELS.get(row["Type"].casefold())
            if found is None or not self._completed(row):
                self.skipped["Task.csv to-dos (open, or no channel in Type)"] += 1
                return None
            channel = found
        created = self._timestamp(row, "CreatedDate")
        occurred = self._task_time(row, created)
        if occurred > now:
            self.skipped["activities that have not happened yet"] += 1
            return None
        direction = (
            Direction.INBOUND if row["Id"] in self._incoming else _call_direction(row)
        )
        return self._touchpoint(
            row,
            "Task",
            occurred,
            created,
            channel,
            direction,
            _call_minutes(row),
            {
                "occurred_at": "ActivityDate",
                "duration_minutes": "CallDurationInSeconds",
            },
        )

    def _event(self, row: _Row, now: datetime) -> ImportItem | None:
        """A calendar event: a meeting, unless its Type names another channel.

        An invitee's copy of an event (IsChild) is the same meeting again.
        """
        if row["IsChild"] and _boolean(row, "IsChild"):
            self.skipped["Event.csv invitees' copies of events"] += 1
            return None
        occurred = self._timestamp(row, "StartDateTime")
        if occurred > now:
            self.skipped["activities that have not happened yet"] += 1
            return None
        created = self._timestamp(row, "CreatedDate")
        channel = CHANNELS.get(row["Type"].casefold(), Channel.MEETING)
        minutes = _integer(row, "DurationInMinutes")
        if minutes is not None and minutes > DAY_MINUTES:
            # A multi-day event (an offsite, a trade show) is still a touch
            # at its start; a touchpoint's duration is at most a day.
            self.notes[LONG_EVENT] += 1
            minutes = None
        return self._touchpoint(
            row,
            "Event",
            occurred,
            created,
            channel,
            Direction.OUTBOUND,
            minutes,
            {"occurred_at": "StartDateTime", "duration_minutes": "DurationInMinutes"},
        )

    def _touchpoint(
        self,
        row: _Row,
        kind: str,
        occurred: datetime,
        created: datetime,
        channel: Channel,
        direction: Direction,
        minutes: int | None,
        columns: dict[str, str],
    ) -> ImportItem:
        who = row["WhoId"]
        return _located(
            {
                "type": "TouchpointLogged",
                "deal": row["WhatId"],
                "occurred_at": occurred,
                "logged_at": created,
                "source": f"salesforce:{kind}/{_required(row, 'Id')}",
                "touchpoint": row["Id"],
                "channel": channel.value,
                "direction": direction.value,
                "participants": [self._contact_of(who).key] if who else [],
                "rep": self._users.get(row["OwnerId"], row["OwnerId"]) or None,
                "summary": row["Subject"] or None,
                "duration_minutes": minutes,
            },
            row,
            columns
            | {
                "participants": "WhoId",
                "rep": "OwnerId",
                "summary": "Subject",
                "touchpoint": "Id",
            },
        )

    def _task_time(self, row: _Row, created: datetime) -> datetime:
        """When a task happened: its CreatedDate when that falls on its
        ActivityDate (or there is none), else noon on the ActivityDate."""
        day = _date(row, "ActivityDate")
        zone = self.timezone or UTC
        if day is None or created.astimezone(zone).date() == day:
            return created
        return self._noon(day)

    def _completed(self, row: _Row) -> bool:
        if row["IsClosed"]:
            return _boolean(row, "IsClosed")
        return row["Status"].casefold() == "completed"

    # Values

    def _contact_of(self, contact_id: str) -> _Contact:
        return self._contacts.get(contact_id) or _Contact(contact_id, None, None)

    def _timestamp(self, row: _Row, column: str) -> datetime:
        text = _required(row, column)
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise _Bad(
                row,
                column,
                f"{quoted(text)} is not a date and time, e.g. 2026-03-02T10:00:00.000Z",
            ) from None
        _check_year(row, column, value)
        if value.tzinfo is not None:
            return value
        if self.timezone is None:
            raise _Bad(
                row,
                column,
                f"naive timestamp {quoted(text)}; pass --timezone to say where it is",
            )
        aware, problem = local_time(value, self.timezone)
        if aware is None:
            raise _Bad(row, column, problem or "not a time in --timezone")
        return aware

    def _noon(self, day: date) -> datetime:
        return datetime.combine(day, NOON, tzinfo=self.timezone or UTC)


def read_bundle(
    folder: Path,
    *,
    encoding: str,
    timezone: tzinfo | None,
    loss_reason_field: str | None,
    now: datetime | None = None,
) -> Iterator[ImportItem]:
    """Read a Salesforce data export folder, yielding each event or row error."""
    bundle = Bundle(folder, encoding, timezone, loss_reason_field, now)
    return bundle.items()


def _located(obj: dict[str, Any], row: _Row, columns: dict[str, str]) -> ImportItem:
    """The event of a row, or the row's error named by its source column."""
    obj = {key: value for key, value in obj.items() if value is not None}
    try:
        return Located(parse_event(obj), f"{row.file}:{row.line}")
    except ValidationError as e:
        loc, message = validation_problem(e)
        # The column the field came from, a list's item included (WhoId).
        column = columns.get(str(loc[0])) if loc else None
        return LineError(row.file, row.line, column or field_path(loc), message)
    except ValueError as e:
        where, _, message = str(e).partition(": ")
        return LineError(row.file, row.line, where, message)


def _listing(names: list[str], last: str) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} {last} {names[-1]}"


def _source(kind: str, row: _Row) -> str:
    return f"salesforce:{kind}/{row['Id']}" if row["Id"] else f"{row.file}:{row.line}"


def _required(row: _Row, column: str) -> str:
    value = row[column]
    if not value:
        raise _Bad(row, column, "empty")
    return value


def _boolean(row: _Row, column: str) -> bool:
    text = row[column].casefold()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise _Bad(row, column, f"{quoted(row[column])} is not true or false")


def _date(row: _Row, column: str) -> date | None:
    text = row[column]
    if not text:
        return None
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise _Bad(
            row, column, f"{quoted(text)} is not a date, e.g. 2026-03-31"
        ) from None
    _check_year(row, column, value)
    return value


def _check_year(row: _Row, column: str, value: date) -> None:
    # Far-off dates are typos, and time arithmetic on them can overflow.
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise _Bad(
            row,
            column,
            f"year {value.year} is out of range ({EARLIEST_YEAR}-{LATEST_YEAR})",
        )


def _amount(row: _Row) -> Decimal | None:
    return _decimal(row, "Amount", whole=False)


def _integer(row: _Row, column: str) -> int | None:
    value = _decimal(row, column, whole=True)
    if value is None:
        return None
    # Converting a huge exponent to an int would take minutes.
    if value.adjusted() >= MAX_DIGITS:
        raise _Bad(row, column, f"{quoted(row[column])} is too large")
    return int(value)


def _decimal(row: _Row, column: str, *, whole: bool) -> Decimal | None:
    """A cell's number, None when empty; a bad one is a bad row."""
    text = row[column]
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or (whole and value != value.to_integral_value()):
        kind = "whole number" if whole else "number"
        raise _Bad(row, column, f"{quoted(text)} is not a {kind}")
    return value


def _call_minutes(row: _Row) -> int | None:
    seconds = _integer(row, "CallDurationInSeconds")
    return None if seconds is None else (seconds + 30) // 60


def _call_direction(row: _Row) -> Direction:
    text = row["CallType"]
    if not text:
        return Direction.OUTBOUND
    direction = CALL_TYPES.get(text.casefold())
    if direction is None:
        raise _Bad(
            row, "CallType", f"{quoted(text)} is not Inbound, Outbound or Internal"
        )
    return direction


def _role(row: _Row) -> Role:
    text = row["Role"]
    if not text:
        return Role.OTHER
    role = ROLES.get(" ".join(text.casefold().replace("_", " ").split()))
    if role is None:
        raise _Bad(
            row, "Role", f"unknown role {quoted(text)}; expected one of {ROLE_VALUES}"
        )
    return role


def _person_name(row: _Row) -> str:
    if row["Name"]:
        return row["Name"]
    return " ".join(part for part in (row["FirstName"], row["LastName"]) if part)

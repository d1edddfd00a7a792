"""The event catalogue: every fact dealtrail records, as frozen pydantic models.

An event is a past-tense fact about one deal. The stored JSON of an event is
its native line object (see docs/events.md) plus ``recorded_at``, the time the
store accepted it. ``type`` names the event and is also its stable storage
topic, so renaming or moving this module never orphans stored events.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)

from engine.business_time import check_timezone

# Re-exported: the vocabularies belong to the catalogue.
from engine.vocabulary import Channel as Channel
from engine.vocabulary import Direction as Direction
from engine.vocabulary import Outcome as Outcome
from engine.vocabulary import Role as Role

# Size limits keep a hostile or broken import from bloating the store.
SHORT_TEXT = 200
LONG_TEXT = 10_000
MAX_PARTICIPANTS = 100
# IANA names are at most about 30 characters; this bounds the zone lookup.
MAX_TIMEZONE = 64

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Long text may span lines, but other control characters (NUL above all,
# which PostgreSQL text refuses) are no part of a note.
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _single_line(value: str) -> str:
    if value.isascii() and value.isprintable():
        # The common case, and already NFC without control characters.
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value
    value = unicodedata.normalize("NFC", value).strip()
    if _CONTROL.search(value):
        raise ValueError("must be a single line without control characters")
    if not value:
        raise ValueError("must not be empty")
    return value


def _text(value: str) -> str:
    value = unicodedata.normalize("NFC", value).strip()
    if _TEXT_CONTROL.search(value):
        raise ValueError(
            "must not contain control characters other than tabs and line breaks"
        )
    if not value:
        raise ValueError("must not be empty")
    return value


def normalise_contact(value: str) -> str:
    """Contacts are emails (compared case-insensitively) or CRM ids (exact)."""
    value = _single_line(value)
    if "@" in value:
        value = value.lower()
        local, _, domain = value.rpartition("@")
        if not local or "." not in domain or " " in value:
            raise ValueError(f"{value!r} is not a valid email address")
    elif " " in value:
        raise ValueError(f"{value!r} is not an email or a CRM id (it has spaces)")
    return value


def normalise_stage(value: str) -> str:
    """Stage names compare as lower-case words joined by underscores."""
    slug = re.sub(r"[^0-9a-z]+", "_", _single_line(value).lower()).strip("_")
    if not slug:
        raise ValueError("must contain a letter or digit")
    return slug


def _as_contact_set(value: list[str]) -> list[str]:
    # Participants are a set; a stable order keeps fingerprints stable.
    return sorted(set(value))


_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_NAIVE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?")


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _not_a_number(value: Any) -> Any:
    # Pydantic would read a number as Unix time, seconds or milliseconds
    # depending on its size: too ambiguous for a fact's date.
    number = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
    if number or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError(
            f"{str(value)[:40]!r} is a number; write an ISO 8601 date or time, "
            "e.g. 2026-03-02 or 2026-03-02T10:00:00Z"
        )
    return value


def _aware(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    # Parse first; only a refused value pays for the friendlier message.
    try:
        return handler(value)
    except ValidationError:
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError(
                "naive timestamp; add a UTC offset such as Z or +01:00"
            ) from None
        text = value.strip() if isinstance(value, str) else None
        if text is not None and _DATE_ONLY.fullmatch(text):
            raise ValueError(
                f"{value!r} is a date without a time; give a time with a UTC "
                f"offset, e.g. {text}T09:00:00Z"
            ) from None
        if text is not None and _NAIVE.fullmatch(text):
            raise ValueError(
                f"naive timestamp {value!r}; add a UTC offset such as Z or +01:00"
            ) from None
        raise


DealKey = Annotated[
    str,
    Field(max_length=SHORT_TEXT, description="The user's deal key, e.g. a CRM id."),
    AfterValidator(_single_line),
]
# Length limits come before the validators, so they apply to the text as given
# (and read "at most N characters").
ShortText = Annotated[str, Field(max_length=SHORT_TEXT), AfterValidator(_single_line)]
LongText = Annotated[str, Field(max_length=LONG_TEXT), AfterValidator(_text)]
Contact = Annotated[
    str,
    Field(max_length=SHORT_TEXT, description="An email address or a CRM contact id."),
    AfterValidator(normalise_contact),
]
Stage = Annotated[
    str,
    Field(
        max_length=SHORT_TEXT,
        description="A pipeline stage, compared as lower snake_case ('Proposal Sent' "
        "is proposal_sent).",
    ),
    AfterValidator(normalise_stage),
]
D = TypeVar("D", date, datetime)

# Far outside any sales history, and clear of the calendar's year limits.
EARLIEST_YEAR, LATEST_YEAR = 1900, 2200


def _plausible_year(value: D) -> D:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(
            f"year {value.year} is out of range ({EARLIEST_YEAR}-{LATEST_YEAR})"
        )
    return value


Day = Annotated[date, BeforeValidator(_not_a_number), AfterValidator(_plausible_year)]


Timestamp = Annotated[
    AwareDatetime,
    WrapValidator(_aware),
    BeforeValidator(_not_a_number),
    AfterValidator(_plausible_year),
]
Money = Annotated[
    Decimal,
    Field(
        ge=0,
        max_digits=20,
        decimal_places=4,
        allow_inf_nan=False,
        description="An exact amount, a JSON number or string; written as a string.",
    ),
]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")]
TimeZoneName = Annotated[
    str,
    Field(max_length=MAX_TIMEZONE, description="An IANA time zone."),
    AfterValidator(lambda name: check_timezone(name.strip())),
]
TouchpointId = Annotated[
    str,
    Field(max_length=SHORT_TEXT, description="The touchpoint's id, unique per deal."),
    AfterValidator(_single_line),
]


class Event(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", use_enum_values=True, str_strip_whitespace=False
    )

    # Fields that identify a fact rather than describe how it was recorded;
    # two events that agree on these are the same fact (see ``fingerprint``).
    PROVENANCE: ClassVar[frozenset[str]] = frozenset(
        {"actor", "source", "logged_at", "recorded_at"}
    )

    type: str
    deal: DealKey
    occurred_at: Timestamp = Field(
        description="When it happened in the world (business time)."
    )
    logged_at: Timestamp | None = Field(
        default=None,
        description=(
            "When another system first logged it (e.g. a CRM's CreatedDate); "
            "the known-at clock uses it instead of recorded_at."
        ),
    )
    actor: ShortText | None = Field(default=None, description="Who recorded it.")
    source: ShortText | None = Field(
        default=None,
        description="Provenance: 'cli', 'FILE:LINE' of an import, or an external id.",
    )
    recorded_at: Timestamp | None = Field(
        default=None,
        description="When the store accepted it; set by the store, never by input.",
    )

    @property
    def known_at(self) -> datetime:
        """When the system knew of it: ``logged_at`` if given, else recorded."""
        known = self.logged_at or self.recorded_at
        if known is None:
            raise ValueError("event has not been recorded yet")
        return known

    @property
    def logging_lag(self) -> timedelta | None:
        """How long after it happened it was logged, where that is known.

        Only ``logged_at`` is a real logging time: a bulk import records
        months of history at once, so ``recorded_at`` says nothing of lag.
        """
        return None if self.logged_at is None else self.logged_at - self.occurred_at

    def native(self) -> dict[str, Any]:
        """The native line object: what ``import`` reads, without recording time."""
        return self.model_dump(mode="json", exclude_none=True, exclude={"recorded_at"})

    def fingerprint(self) -> bytes:
        """Canonical bytes of the fact, ignoring how and when it was recorded."""
        return self.model_dump_json(
            exclude_none=True, exclude=set(self.PROVENANCE)
        ).encode()


class DealOpened(Event):
    """A deal enters the pipeline."""

    type: Literal["DealOpened"] = "DealOpened"
    name: ShortText
    account: ShortText
    owner: ShortText = Field(description="The rep who owns the deal.")
    stage: Stage
    amount: Money | None = None
    currency: Currency | None = None
    expected_close: Day | None = None
    timezone: TimeZoneName | None = Field(
        default=None, description="The deal's time zone for business time."
    )


class DealUpdated(Event):
    """Some of the deal's headline facts change."""

    type: Literal["DealUpdated"] = "DealUpdated"
    name: ShortText | None = None
    owner: ShortText | None = None
    amount: Money | None = None
    currency: Currency | None = None
    expected_close: Day | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> DealUpdated:
        if all(
            getattr(self, f) is None
            for f in ("name", "owner", "amount", "currency", "expected_close")
        ):
            raise ValueError(
                "needs at least one of name, owner, amount, currency, expected_close"
            )
        return self


class StageChanged(Event):
    type: Literal["StageChanged"] = "StageChanged"
    stage: Stage


class StakeholderJoined(Event):
    """A buyer-side contact becomes part of the deal."""

    type: Literal["StakeholderJoined"] = "StakeholderJoined"
    contact: Contact
    name: ShortText | None = None
    title: ShortText | None = None
    role: Role


class StakeholderRoleChanged(Event):
    type: Literal["StakeholderRoleChanged"] = "StakeholderRoleChanged"
    contact: Contact
    role: Role


class StakeholderLeft(Event):
    type: Literal["StakeholderLeft"] = "StakeholderLeft"
    contact: Contact
    reason: LongText | None = None


class StakeholderPriorityNoted(Event):
    """What a stakeholder is measured on (their KPI), learned by asking."""

    type: Literal["StakeholderPriorityNoted"] = "StakeholderPriorityNoted"
    contact: Contact
    priority: LongText


class TouchpointLogged(Event):
    """An email, call, meeting or other contact between the sides."""

    type: Literal["TouchpointLogged"] = "TouchpointLogged"
    touchpoint: TouchpointId = Field(
        default="",
        description="Unique per deal; derived from the touch's content when absent.",
    )
    channel: Channel
    direction: Direction
    participants: list[Contact] = Field(
        default_factory=list,
        max_length=MAX_PARTICIPANTS,
        description="Buyer-side contacts on the touch.",
    )
    rep: ShortText | None = Field(default=None, description="The seller-side person.")
    summary: LongText | None = None
    outcome: Outcome | None = None
    duration_minutes: int | None = Field(default=None, ge=0, le=24 * 60)

    @field_validator("participants")
    @classmethod
    def _participant_set(cls, value: list[str]) -> list[str]:
        return _as_contact_set(value)

    @model_validator(mode="after")
    def _derive_id(self) -> TouchpointLogged:
        if not self.touchpoint:
            # A content-derived id makes re-recording the same touch a no-op.
            content = self.model_dump_json(
                exclude_none=True, exclude=set(self.PROVENANCE) | {"touchpoint"}
            )
            digest = hashlib.blake2b(content.encode(), digest_size=6).hexdigest()
            # Validators run before the model is frozen to callers.
            object.__setattr__(self, "touchpoint", f"tp-{digest}")
        return self


CORRECTABLE = (
    "touchpoint_occurred_at",
    "channel",
    "direction",
    "participants",
    "rep",
    "summary",
    "outcome",
    "duration_minutes",
)


class TouchpointCorrected(Event):
    """Fixes fields of a recorded touchpoint; only the fields given change."""

    type: Literal["TouchpointCorrected"] = "TouchpointCorrected"
    touchpoint: TouchpointId
    touchpoint_occurred_at: Timestamp | None = Field(
        default=None, description="The touchpoint's corrected occurred_at."
    )
    channel: Channel | None = None
    direction: Direction | None = None
    participants: list[Contact] | None = Field(
        default=None, max_length=MAX_PARTICIPANTS
    )
    rep: ShortText | None = None
    summary: LongText | None = None
    outcome: Outcome | None = None
    duration_minutes: int | None = Field(default=None, ge=0, le=24 * 60)

    @model_validator(mode="after")
    def _changes_something(self) -> TouchpointCorrected:
        if all(getattr(self, f) is None for f in CORRECTABLE):
            raise ValueError("needs at least one of " + ", ".join(CORRECTABLE))
        return self

    @field_validator("participants")
    @classmethod
    def _participant_set(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _as_contact_set(value)

    def changes(self) -> dict[str, Any]:
        """The touchpoint fields this correction sets, by their names on
        TouchpointLogged (``touchpoint_occurred_at`` sets ``occurred_at``)."""
        return {
            "occurred_at" if name == "touchpoint_occurred_at" else name: value
            for name in CORRECTABLE
            if (value := getattr(self, name)) is not None
        }


class TouchpointRetracted(Event):
    """A touchpoint was logged in error; it no longer counts."""

    type: Literal["TouchpointRetracted"] = "TouchpointRetracted"
    touchpoint: TouchpointId
    reason: LongText


class NextStepSet(Event):
    """A concrete next step agreed with the buyer (replaces any current one)."""

    type: Literal["NextStepSet"] = "NextStepSet"
    description: LongText
    due: Day
    owner: ShortText | None = None


class NextStepCleared(Event):
    type: Literal["NextStepCleared"] = "NextStepCleared"
    reason: LongText | None = None


class FollowUpPromised(Event):
    """The rep promised the buyer a follow-up by a date."""

    type: Literal["FollowUpPromised"] = "FollowUpPromised"
    due: Day
    promise: LongText | None = None


class FollowUpRequested(Event):
    """The buyer asked to be contacted at or after a time."""

    type: Literal["FollowUpRequested"] = "FollowUpRequested"
    by: Contact
    not_before: Timestamp
    note: LongText | None = None


class CoachingNoteAdded(Event):
    type: Literal["CoachingNoteAdded"] = "CoachingNoteAdded"
    author: ShortText
    note: LongText
    about: TouchpointId | None = Field(
        default=None, description="The touchpoint the note is pinned to."
    )


class DealWon(Event):
    type: Literal["DealWon"] = "DealWon"
    amount: Money | None = None
    note: LongText | None = None


class DealLost(Event):
    type: Literal["DealLost"] = "DealLost"
    reason: LongText
    competitor: ShortText | None = None
    note: LongText | None = None


class DealReopened(Event):
    type: Literal["DealReopened"] = "DealReopened"
    reason: LongText | None = None


CATALOGUE: tuple[type[Event], ...] = (
    DealOpened,
    DealUpdated,
    StageChanged,
    StakeholderJoined,
    StakeholderRoleChanged,
    StakeholderLeft,
    StakeholderPriorityNoted,
    TouchpointLogged,
    TouchpointCorrected,
    TouchpointRetracted,
    NextStepSet,
    NextStepCleared,
    FollowUpPromised,
    FollowUpRequested,
    CoachingNoteAdded,
    DealWon,
    DealLost,
    DealReopened,
)

EVENT_TYPES: dict[str, type[Event]] = {
    cls.model_fields["type"].default: cls for cls in CATALOGUE
}


def event_type_name(cls: type[Event]) -> str:
    name: str = cls.model_fields["type"].default
    return name

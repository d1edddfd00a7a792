"""The rule set: every threshold the analyses use, with built-in defaults.

Rules are versioned with the output: every projection reports the rule set's
``version`` (a label the user chooses) and ``rules_hash`` (a SHA-256 of its
canonical JSON, label included: relabelling a rule set changes its hash).

A rules file is TOML and overrides the defaults key by key; a partial file
changes only what it names. Unknown keys and bad values are errors. Example::

    version = "emea-2025-03"

    [calendar]
    default_timezone = "Europe/Paris"
    workday_start = 08:30:00          # or "08:30"
    workday_end = "17:30"
    weekend = ["saturday", "sunday"]  # or "sat", "sun"
    holidays_country = "FR"
    extra_holidays = [2025-12-24, 2025-12-31]

    [calendar.zones."Europe/London"]  # deals in this zone use UK holidays
    holidays_country = "GB"
    holidays_subdivision = "ENG"

    [follow_up]
    sla_business_hours = 4

    [stages]
    order = ["lead", "discovery", "proposal", "negotiation", "closed"]

    [rubber_stamp]
    late_stage = "proposal"
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from datetime import date, time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.business_time import BusinessCalendar, check_holiday_region, check_timezone
from engine.errors import InputError
from engine.events import Role, normalise_stage

__all__ = [
    "AccountRules",
    "CalendarRules",
    "ChampionRules",
    "DarkPeriodRules",
    "FollowUpRules",
    "HygieneRules",
    "NextStepRules",
    "RubberStampRules",
    "RuleSet",
    "RulesError",
    "SingleThreadedRules",
    "StageRules",
    "StreakRules",
    "ZoneCalendarRules",
    "load_rules",
    "parse_rules",
]

BUILTIN_VERSION = "builtin-1"


class RulesError(InputError, ValueError):
    """A rules file that cannot be read or does not validate."""


# -- field types -------------------------------------------------------------

Weekday = Literal[
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
]
_WEEKDAYS: tuple[Weekday, ...] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)


def _weekday_name(value: Any) -> Any:
    # Accept "Sat", "SATURDAY", "sat": people write days every which way.
    if isinstance(value, str):
        key = value.strip().lower()
        for name in _WEEKDAYS:
            if key in (name, name[:3]):
                return name
    return value


def _week_order(days: tuple[Weekday, ...]) -> tuple[Weekday, ...]:
    # Canonical order keeps the hash independent of how the file lists them.
    return tuple(d for d in _WEEKDAYS if d in days)


def _local_time(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("must be a local time of day without a UTC offset")
    return value


def _sorted_dates(value: tuple[date, ...]) -> tuple[date, ...]:
    return tuple(sorted(set(value)))


def _country(value: str) -> str:
    value = value.strip().upper()
    check_holiday_region(value)
    return value


def _timezone(value: str) -> str:
    return check_timezone(value.strip())


WeekdayName = Annotated[Weekday, BeforeValidator(_weekday_name)]
Weekend = Annotated[tuple[WeekdayName, ...], AfterValidator(_week_order)]
LocalTime = Annotated[time, AfterValidator(_local_time)]
DateSet = Annotated[tuple[date, ...], AfterValidator(_sorted_dates)]
CountryCode = Annotated[str, AfterValidator(_country)]
TimeZoneName = Annotated[str, AfterValidator(_timezone)]
StageName = Annotated[str, AfterValidator(normalise_stage)]
# Upper bounds keep every threshold inside the calendar arithmetic's range
# (ten years of business time is far beyond any sensible rule).
PositiveHours = Annotated[float, Field(gt=0, le=24 * 3650, allow_inf_nan=False)]
PositiveDays = Annotated[float, Field(gt=0, le=3650, allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class _Rules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def canonical_json(self) -> str:
        """These rules as JSON with sorted keys and no spaces."""
        return json.dumps(
            self.model_dump(mode="json"),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
            allow_nan=False,
        )

    def __hash__(self) -> int:
        # Pydantic's default hash fails on the dict of zone overrides.
        return hash(self.canonical_json())


# -- groups ------------------------------------------------------------------


class ZoneCalendarRules(_Rules):
    """Overrides for deals in one time zone; an absent field inherits from
    ``[calendar]``. Setting ``holidays_country`` replaces the holiday region
    as a whole (the subdivision is not inherited then); ``extra_holidays``
    add to the calendar-wide ones."""

    workday_start: LocalTime | None = None
    workday_end: LocalTime | None = None
    weekend: Weekend | None = None
    holidays_country: CountryCode | None = None
    holidays_subdivision: str | None = None
    extra_holidays: DateSet = ()


class CalendarRules(_Rules):
    """Business time: the zone, working hours, weekend and holidays."""

    #: Time zone of deals that do not name one.
    default_timezone: TimeZoneName = "UTC"
    workday_start: LocalTime = time(9)
    workday_end: LocalTime = time(17)
    weekend: Weekend = ("saturday", "sunday")
    #: ISO country code for public holidays (``holidays`` library); none if unset.
    holidays_country: CountryCode | None = None
    holidays_subdivision: str | None = None
    extra_holidays: DateSet = ()
    #: Per-time-zone overrides, keyed by IANA name.
    zones: dict[TimeZoneName, ZoneCalendarRules] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Self:
        # Building each calendar validates hours, weekend and holiday region
        # exactly as they will be used.
        for zone in [None, *self.zones]:
            try:
                self.calendar_for(zone)
            except ValueError as error:
                where = f"zones.{zone}: " if zone else ""
                raise ValueError(f"{where}{error}") from None
        return self

    def calendar_for(self, timezone: str | None) -> BusinessCalendar:
        """A new calendar for deals in ``timezone`` (None: the default zone).

        Prefer ``RuleSet.calendar_for``, which caches.
        """
        tz = self.default_timezone if timezone is None else timezone
        o = self.zones.get(tz, ZoneCalendarRules())
        country: str | None
        if o.holidays_country is not None:
            country, subdivision = o.holidays_country, o.holidays_subdivision
        else:
            country = self.holidays_country
            subdivision = o.holidays_subdivision
            if subdivision is None:
                subdivision = self.holidays_subdivision
        weekend = self.weekend if o.weekend is None else o.weekend
        return BusinessCalendar(
            timezone=tz,
            workday_start=(
                self.workday_start if o.workday_start is None else o.workday_start
            ),
            workday_end=self.workday_end if o.workday_end is None else o.workday_end,
            weekend=frozenset(_WEEKDAYS.index(d) for d in weekend),
            holidays_country=country,
            holidays_subdivision=subdivision,
            extra_holidays=frozenset(self.extra_holidays + o.extra_holidays),
        )


class FollowUpRules(_Rules):
    """Follow-up latency and buyer-requested timing."""

    #: A follow-up owed is breached after this much business time (1 day = 8 h).
    sla_business_hours: PositiveHours = 8.0
    #: A touch this long after a buyer-requested time is late; unset means
    #: the follow-up SLA (see ``RuleSet.requested_timing_late_business_hours``).
    requested_timing_late_business_hours: PositiveHours | None = None
    #: A slow follow-up whose latency reaches this is high severity (else
    #: medium); 24 hours is three business days of 8 hours.
    severe_latency_business_hours: PositiveHours = 24.0


class StreakRules(_Rules):
    """Unanswered outbound streaks and attempt variety."""

    #: This many unanswered attempts in a row is pushy.
    pushy_min_unanswered: int = Field(default=6, ge=1, le=10_000)
    #: A deal that went silent after at most this many unanswered attempts
    #: and was then lost was given up early.
    gave_up_max_unanswered: int = Field(default=2, ge=1, le=10_000)
    #: Local times that split the day into time-of-day buckets for variety
    #: (default: before noon, afternoon, from 17:00).
    time_of_day_boundaries: tuple[LocalTime, ...] = (time(12), time(17))
    #: A pushy streak whose variety (share of attempts changing channel or
    #: time of day) reaches this is medium severity; a more repetitive one
    #: is high.
    varied_share: Share = 0.5

    @field_validator("time_of_day_boundaries")
    @classmethod
    def _increasing(cls, value: tuple[time, ...]) -> tuple[time, ...]:
        if list(value) != sorted(set(value)):
            raise ValueError("must be distinct times in increasing order")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.gave_up_max_unanswered >= self.pushy_min_unanswered:
            raise ValueError(
                "gave_up_max_unanswered must be below pushy_min_unanswered"
            )
        return self


class DarkPeriodRules(_Rules):
    """Open deals with no touch at all."""

    business_days: PositiveDays = 10
    #: A dark period at least this long is high severity (else medium).
    high_business_days: PositiveDays = 20


class NextStepRules(_Rules):
    """Next-step clarity."""

    #: Clarity (share of open life with a next step that has an owner and a
    #: due date) below this is a warning.
    low_clarity_share: Share = 0.5
    #: Clarity is judged only once the deal has been open this long, so a
    #: deal is not flagged in its first hours for having no next step yet.
    min_open_business_days: Annotated[
        float, Field(ge=0, le=3650, allow_inf_nan=False)
    ] = 5


class StageRules(_Rules):
    """The pipeline: stage order and stalls."""

    #: Pipeline order, earliest first; names are normalised to lower_snake_case.
    order: tuple[StageName, ...] = (
        "prospecting",
        "qualification",
        "discovery",
        "demo",
        "proposal",
        "negotiation",
        "closed",
    )
    #: Time in one stage beyond this is a stall.
    stall_business_days: PositiveDays = 20

    @field_validator("order")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must name at least one stage")
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a stage")
        return value


class RubberStampRules(_Rules):
    """Late stages reached without the decision maker."""

    #: This stage and every later one in ``stages.order`` count as late.
    late_stage: StageName = "proposal"
    #: Roles whose direct engagement rules the risk out.
    decision_roles: tuple[Role, ...] = (Role.DECISION_MAKER, Role.ECONOMIC_BUYER)

    @field_validator("decision_roles")
    @classmethod
    def _some_role(cls, value: tuple[Role, ...]) -> tuple[Role, ...]:
        if not value:
            raise ValueError("must name at least one role")
        return tuple(sorted(set(value)))


class ChampionRules(_Rules):
    """A champion gone dark on an open deal."""

    #: Unanswered attempts in a row to the champion.
    unanswered_streak: int = Field(default=3, ge=1, le=10_000)
    #: Business days without an inbound touch from the champion.
    silence_business_days: PositiveDays = 10


class SingleThreadedRules(_Rules):
    """Deals worked through a single buyer contact."""

    #: A single-threaded span (engaged touches with one contact only) this
    #: long, first touch to last, is a finding.
    business_days: PositiveDays = 10


class AccountRules(_Rules):
    """Existing customers."""

    #: An account with a won deal and no touch for this many calendar days.
    neglect_calendar_days: int = Field(default=60, ge=1, le=3650)


class HygieneRules(_Rules):
    """Data hygiene."""

    #: Events recorded this long after they occurred were logged late.
    logging_lag_business_days: PositiveDays = 2


# -- the rule set ------------------------------------------------------------


def _version_text(value: Any) -> Any:
    # TOML users may write `version = 3`; store labels as text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


class RuleSet(_Rules):
    """Every rule the analyses use. Immutable; compare by ``rules_hash``."""

    version: Annotated[
        str, BeforeValidator(_version_text), Field(min_length=1, max_length=200)
    ] = BUILTIN_VERSION
    calendar: CalendarRules = Field(default_factory=CalendarRules)
    follow_up: FollowUpRules = Field(default_factory=FollowUpRules)
    streaks: StreakRules = Field(default_factory=StreakRules)
    dark_period: DarkPeriodRules = Field(default_factory=DarkPeriodRules)
    next_step: NextStepRules = Field(default_factory=NextStepRules)
    stages: StageRules = Field(default_factory=StageRules)
    rubber_stamp: RubberStampRules = Field(default_factory=RubberStampRules)
    champion: ChampionRules = Field(default_factory=ChampionRules)
    single_threaded: SingleThreadedRules = Field(default_factory=SingleThreadedRules)
    accounts: AccountRules = Field(default_factory=AccountRules)
    hygiene: HygieneRules = Field(default_factory=HygieneRules)

    _calendars: dict[str | None, BusinessCalendar] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _late_stage_known(self) -> Self:
        if self.rubber_stamp.late_stage not in self.stages.order:
            raise ValueError(
                f"rubber_stamp.late_stage {self.rubber_stamp.late_stage!r}"
                " is not in stages.order"
            )
        return self

    @cached_property
    def rules_hash(self) -> str:
        """Hex SHA-256 of ``canonical_json()``, stable across runs."""
        return hashlib.sha256(self.canonical_json().encode("ascii")).hexdigest()

    def __hash__(self) -> int:
        return hash(self.rules_hash)

    def model_copy(
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> Self:
        """A validated copy with ``update`` applied to top-level fields.

        Pydantic's copy would skip validation and carry over the cached hash
        and calendars of the original.
        """
        return self.model_validate({**self.model_dump(), **(update or {})})

    @property
    def requested_timing_late_business_hours(self) -> float:
        """When a touch after a buyer-requested time is late (default: the SLA)."""
        late = self.follow_up.requested_timing_late_business_hours
        return self.follow_up.sla_business_hours if late is None else late

    def calendar_for(self, timezone: str | None) -> BusinessCalendar:
        """The business calendar of deals in ``timezone`` (None: the default).

        Cached per rule set, so callers may ask for it on every event.
        Raises ValueError for a name that is not an IANA time zone.
        """
        found = self._calendars.get(timezone)
        if found is None:
            found = self.calendar.calendar_for(timezone)
            self._calendars[timezone] = found
        return found

    def stage_rank(self, stage: str) -> int | None:
        """Position of ``stage`` (any spelling) in ``stages.order``; None if
        the pipeline does not list it."""
        try:
            return self.stages.order.index(normalise_stage(stage))
        except ValueError:
            return None

    def is_late_stage(self, stage: str) -> bool:
        """True for ``rubber_stamp.late_stage`` and the stages after it.
        A stage missing from ``stages.order`` is not late."""
        rank = self.stage_rank(stage)
        late = self.stages.order.index(self.rubber_stamp.late_stage)
        return rank is not None and rank >= late


def _describe(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors(include_url=False):
        # Pydantic marks a bad dict key with a "[key]" step; the key says it.
        where = ".".join(str(part) for part in item["loc"] if part != "[key]")
        message = item["msg"]
        if item["type"] == "value_error" and "error" in item.get("ctx", {}):
            # Our own checks: drop pydantic's "Value error, " prefix.
            message = str(item["ctx"]["error"])
        lines.append(
            f"{source}: {where}: {message}" if where else f"{source}: {message}"
        )
    return "\n".join(lines)


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Parse a TOML rules document; ``source`` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RulesError(f"{source}: not valid TOML: {error}") from None
    except RecursionError:
        raise RulesError(f"{source}: not valid TOML: nested too deeply") from None
    try:
        return RuleSet.model_validate(data)
    except ValidationError as error:
        raise RulesError(_describe(error, source)) from None


def load_rules(path: Path | None = None) -> RuleSet:
    """The built-in rules, overridden by the TOML file at ``path`` if given.

    Raises RulesError naming the file (and the field) when it cannot be read
    or does not validate.
    """
    if path is None:
        return RuleSet()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RulesError(f"{path}: cannot read rules file: {error}") from None
    return parse_rules(text, str(path))

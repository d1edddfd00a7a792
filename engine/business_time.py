"""Business-time arithmetic: working hours on business days in a deal's time zone.

A :class:`BusinessCalendar` says when people work: a time zone, daily working
hours, weekend days, and public holidays (from the ``holidays`` library, by
country and optional subdivision) plus explicit extra dates. It answers how
much *working* time passed between two instants ("Friday 17:00 to Monday
09:00 is 0 business hours") and when a span of working time ends ("a
one-business-day SLA for an inbound at Friday 16:00 expires Monday 16:00").

Model. Each business day (a local date that is neither a weekend day nor a
holiday) contributes one *window*: the instants from ``workday_start`` to
``workday_end`` local time that day. Business time between two instants is the
real elapsed time they share with the windows. On the rare day where a
daylight-saving shift falls inside the window, the window is an hour longer or
shorter; with the usual 09:00-17:00 hours every window is exactly 8 hours.

Every result is the difference of one cumulative function, so results are
exact (integer microseconds inside), additive
(``between(a, b) + between(b, c) == between(a, c)``) and antisymmetric
(``between(b, a) == -between(a, b)``): an end before the start gives a negative
value, which keeps ordering checks meaningful.

Projections call this module very often: windows and holidays are computed
lazily once per calendar and year and then answered by binary search. The
module does no I/O at import time and never reads the clock.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

__all__ = [
    "DEFAULT_WEEKEND",
    "BusinessCalendar",
    "check_holiday_region",
    "check_timezone",
]

#: Saturday and Sunday, as ``date.weekday()`` numbers (Monday is 0).
DEFAULT_WEEKEND: frozenset[int] = frozenset({5, 6})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_US_PER_HOUR = 3_600_000_000


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    # Scanning tzdata is slow, so it happens once, and only when first needed.
    return frozenset(available_timezones())


def check_timezone(name: str) -> str:
    """Return ``name`` if it is an IANA time zone name, else raise ValueError.

    The exact-name check matters on case-insensitive file systems, where
    ``ZoneInfo("utc")`` would load but name no zone in the database.
    """
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a name too long for a file name.
        raise ValueError(f"{name[:60]!r} is not an IANA time zone name") from None
    if name not in _zone_names():
        raise ValueError(f"{name[:60]!r} is not an IANA time zone name")
    return name


def check_holiday_region(country: str, subdivision: str | None = None) -> None:
    """Raise ValueError unless the ``holidays`` library knows this region.

    ``country`` is an ISO 3166-1 alpha-2 code such as ``"US"``; ``subdivision``
    a code that library lists for it, such as ``"ENG"`` for ``"GB"``.
    """
    # Imported here: the library takes tens of milliseconds to import and
    # most commands never need it.
    import holidays

    supported = holidays.list_supported_countries()
    if country not in supported:
        raise ValueError(
            f"{country!r} is not a country code known to the holidays library"
        )
    if subdivision is not None:
        try:
            holidays.country_holidays(country, subdiv=subdivision)
        except NotImplementedError:
            choices = ", ".join(supported[country]) or "none"
            raise ValueError(
                f"{subdivision!r} is not a subdivision of {country} (known: {choices})"
            ) from None


@dataclass(frozen=True, slots=True)
class _YearTable:
    """The business windows of one local calendar year, ready for bisection.

    Times are integer microseconds since the Unix epoch; ``cum_end[i]`` is the
    business time in windows ``0..i``. ``days_before[k]`` is the number of
    business days in the year before day-of-year ``k + 1``.
    """

    starts: list[int]
    ends: list[int]
    cum_end: list[int]
    days_before: list[int]

    @property
    def total(self) -> int:
        return self.cum_end[-1] if self.cum_end else 0

    @property
    def day_total(self) -> int:
        return self.days_before[-1]

    def elapsed(self, t: int) -> int:
        """Business time in this year's windows before instant ``t``."""
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0
        before = self.cum_end[i - 1] if i else 0
        return before + min(t, self.ends[i]) - self.starts[i]

    def first_reaching(self, amount: int) -> int:
        """Earliest instant with ``amount`` business time before it (0 < amount)."""
        i = bisect_left(self.cum_end, amount)
        return self.ends[i] - (self.cum_end[i] - amount)

    def last_at(self, amount: int) -> int:
        """Latest instant with exactly ``amount`` before it (amount < total)."""
        i = bisect_right(self.cum_end, amount)
        before = self.cum_end[i - 1] if i else 0
        return self.starts[i] + (amount - before)


def _to_us(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}; give a UTC offset")
    return (moment - _EPOCH) // _MICROSECOND


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """When people work: time zone, working hours, weekend days and holidays.

    Immutable and hashable; lookups are cached per instance, so build one
    calendar per rule set and time zone (see ``RuleSet.calendar_for``) and
    reuse it.

    >>> cal = BusinessCalendar("Europe/Paris", holidays_country="FR")
    >>> cal.is_business_day(date(2025, 7, 14))  # Bastille Day
    False
    """

    timezone: str = "UTC"
    workday_start: time = time(9)
    workday_end: time = time(17)
    #: ``date.weekday()`` numbers: Monday is 0, Sunday is 6.
    weekend: frozenset[int] = DEFAULT_WEEKEND
    holidays_country: str | None = None
    holidays_subdivision: str | None = None
    extra_holidays: frozenset[date] = frozenset()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _years: dict[int, _YearTable] = field(init=False, repr=False, compare=False)
    _holidays: dict[int, frozenset[date]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_timezone(self.timezone)
        for name in ("workday_start", "workday_end"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None:
                raise ValueError(f"{name} must be a local time of day without zone")
        if self.workday_end <= self.workday_start:
            raise ValueError("workday_end must be after workday_start")
        # Accept any iterable but store frozensets, so equality and hashing work.
        object.__setattr__(self, "weekend", frozenset(self.weekend))
        object.__setattr__(self, "extra_holidays", frozenset(self.extra_holidays))
        if not self.weekend <= frozenset(range(7)):
            raise ValueError("weekend days must be weekday numbers 0 (Mon) to 6")
        if len(self.weekend) == 7:
            raise ValueError("a week needs at least one working day")
        if self.holidays_subdivision is not None and self.holidays_country is None:
            raise ValueError("holidays_subdivision needs holidays_country")
        if self.holidays_country is not None:
            check_holiday_region(self.holidays_country, self.holidays_subdivision)
        object.__setattr__(self, "_zone", ZoneInfo(self.timezone))
        object.__setattr__(self, "_years", {})
        object.__setattr__(self, "_holidays", {})

    # -- days ---------------------------------------------------------------

    @property
    def zone(self) -> ZoneInfo:
        """The calendar's time zone."""
        return self._zone

    @property
    def hours_per_day(self) -> float:
        """Nominal length of a business day in hours (8.0 for 09:00-17:00)."""
        day = date(2000, 1, 1)
        length = datetime.combine(day, self.workday_end) - datetime.combine(
            day, self.workday_start
        )
        return length / timedelta(hours=1)

    def holidays_in(self, year: int) -> frozenset[date]:
        """The holiday dates of ``year``: the region's (observed days
        included, since offices close on them) plus the extra dates."""
        found = self._holidays.get(year)
        if found is None:
            found = frozenset(d for d in self.extra_holidays if d.year == year)
            if self.holidays_country is not None:
                import holidays  # deferred import; see check_holiday_region

                region = holidays.country_holidays(
                    self.holidays_country,
                    subdiv=self.holidays_subdivision,
                    years=year,
                )
                found |= frozenset(region.keys())
            self._holidays[year] = found
        return found

    def is_business_day(self, d: date) -> bool:
        """True if ``d`` (a local date) is neither a weekend day nor a holiday."""
        if isinstance(d, datetime):
            # A datetime never equals a holiday date, and which zone's date it
            # means is ambiguous: make the caller choose.
            raise TypeError("is_business_day takes a date; use .date() in the zone")
        return d.weekday() not in self.weekend and d not in self.holidays_in(d.year)

    def business_day_count(self, start: date, end: date) -> int:
        """Business days ``d`` with ``start <= d < end``; negative if ``end < start``.

        Half-open like ``numpy.busday_count``: Monday to the next Monday is 5.
        """
        y0, y1 = start.year, end.year
        if y0 == y1:
            table = self._table(y0)
            return self._day_index(table, end) - self._day_index(table, start)
        if y1 < y0:
            return -self.business_day_count(end, start)
        count = self._table(y0).day_total - self._day_index(self._table(y0), start)
        count += sum(self._table(y).day_total for y in range(y0 + 1, y1))
        return count + self._day_index(self._table(y1), end)

    # -- time ---------------------------------------------------------------

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Exact working time from ``start`` to ``end`` (negative if reversed)."""
        return timedelta(microseconds=self._between_us(start, end))

    def business_hours_between(self, start: datetime, end: datetime) -> float:
        """Working hours from ``start`` to ``end`` (aware datetimes).

        Only time inside working hours on business days counts, so Friday
        17:00 to Monday 09:00 is 0.0 and a start before opening counts from
        opening. Swapping the arguments negates the result.
        """
        return self._between_us(start, end) / _US_PER_HOUR

    def business_days_between(self, start: datetime, end: datetime) -> float:
        """Working time from ``start`` to ``end`` in business days
        (``business_hours_between / hours_per_day``)."""
        return self.business_hours_between(start, end) / self.hours_per_day

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant ``duration`` of working time after ``start``.

        For a positive duration this is the earliest such instant, so a span
        ending exactly at closing time ends at closing time, not at the next
        opening: Friday 09:00 plus 8 hours is Friday 17:00. A negative
        duration counts backwards (latest such instant); zero returns
        ``start``. The result is expressed in the calendar's time zone.
        """
        t = self._add_us(start, duration // _MICROSECOND)
        return (_EPOCH + timedelta(microseconds=t)).astimezone(self._zone)

    def add_business_hours(self, start: datetime, hours: float) -> datetime:
        """``add_business_time`` with the span in hours (rounded to 1 µs).

        A one-business-day SLA for an inbound at Friday 16:00 expires at
        ``add_business_hours(friday_16, 8)``, i.e. Monday 16:00.
        """
        return self.add_business_time(start, timedelta(hours=hours))

    # -- internals ----------------------------------------------------------

    def _local_year(self, moment: datetime) -> int:
        # Windows are grouped by the local year of their date.
        return moment.astimezone(self._zone).year

    def _between_us(self, start: datetime, end: datetime) -> int:
        a, b = _to_us(start), _to_us(end)
        ya, yb = self._local_year(start), self._local_year(end)
        if ya == yb:
            table = self._table(ya)
            return table.elapsed(b) - table.elapsed(a)
        if yb < ya:
            return -self._between_us(end, start)
        total = self._table(ya).total - self._table(ya).elapsed(a)
        total += sum(self._table(y).total for y in range(ya + 1, yb))
        return total + self._table(yb).elapsed(b)

    def _add_us(self, start: datetime, amount: int) -> int:
        t = _to_us(start)
        if amount == 0:
            return t
        year = self._local_year(start)
        table = self._table(year)
        done = table.elapsed(t)
        if amount > 0:
            # Walk forward whole years until the remainder fits in one.
            remaining = amount
            available = table.total - done
            while remaining > available:
                remaining -= available
                year += 1
                table, done = self._table(year), 0
                available = table.total
            return table.first_reaching(done + remaining)
        remaining = -amount
        while remaining > done:
            remaining -= done
            year -= 1
            table = self._table(year)
            done = table.total
        return table.last_at(done - remaining)

    @staticmethod
    def _day_index(table: _YearTable, d: date) -> int:
        return table.days_before[d.toordinal() - date(d.year, 1, 1).toordinal()]

    def _table(self, year: int) -> _YearTable:
        table = self._years.get(year)
        if table is None:
            table = self._build_year(year)
            self._years[year] = table
        return table

    def _build_year(self, year: int) -> _YearTable:
        starts: list[int] = []
        ends: list[int] = []
        cum_end: list[int] = []
        days_before = [0]
        cumulative = 0
        for d in _days_of(year):
            if self.is_business_day(d):
                start = _to_us(datetime.combine(d, self.workday_start, self._zone))
                end = _to_us(datetime.combine(d, self.workday_end, self._zone))
                # A window inside a DST gap can invert; count it as empty.
                end = max(start, end)
                cumulative += end - start
                starts.append(start)
                ends.append(end)
                cum_end.append(cumulative)
                days_before.append(days_before[-1] + 1)
            else:
                days_before.append(days_before[-1])
        return _YearTable(starts, ends, cum_end, days_before)


def _days_of(year: int) -> Iterable[date]:
    first = date(year, 1, 1).toordinal()
    # Ordinals, not date + timedelta, so 9999-12-31 does not overflow.
    last = date(year, 12, 31).toordinal()
    return (date.fromordinal(n) for n in range(first, last + 1))

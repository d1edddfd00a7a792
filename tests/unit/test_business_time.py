"""Business-time arithmetic: worked examples, DST, holidays and properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from engine.business_time import BusinessCalendar

NEW_YORK = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")

US = BusinessCalendar("America/New_York", holidays_country="US")
FR = BusinessCalendar("Europe/Paris", holidays_country="FR")
PLAIN_PARIS = BusinessCalendar("Europe/Paris")  # no public holidays
PLAIN_UTC = BusinessCalendar()
# Seven working days a week, with the window around the 02:00-03:00 DST change.
PARIS_NIGHTS = BusinessCalendar(
    "Europe/Paris", workday_start=time(1), workday_end=time(5), weekend=frozenset()
)
# Sunday-only weekend, a half-hour end, and Indian holidays.
KOLKATA = BusinessCalendar(
    "Asia/Kolkata",
    workday_start=time(10),
    workday_end=time(18, 30),
    weekend=frozenset({6}),
    holidays_country="IN",
)
# Lord Howe Island shifts by half an hour at 02:00, inside this window.
LORD_HOWE = BusinessCalendar(
    "Australia/Lord_Howe",
    workday_start=time(1),
    workday_end=time(3),
    weekend=frozenset({6}),
)


def ny(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


def paris(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=PARIS)


# -- the worked examples ------------------------------------------------------


def test_friday_17_to_monday_09_is_zero_business_hours() -> None:
    # 2024-03-01 is a Friday.
    assert US.business_hours_between(ny(2024, 3, 1, 17), ny(2024, 3, 4, 9)) == 0.0
    assert US.business_days_between(ny(2024, 3, 1, 17), ny(2024, 3, 4, 9)) == 0.0


def test_friday_17_inbound_answered_monday_0930_is_within_one_day_sla() -> None:
    latency = US.business_hours_between(ny(2024, 3, 1, 17), ny(2024, 3, 4, 9, 30))
    assert latency == 0.5
    assert latency <= 8


def test_tuesday_10_meeting_answered_next_tuesday_10_is_four_days_late() -> None:
    start, end = ny(2024, 3, 5, 10), ny(2024, 3, 12, 10)
    # Tue 7 h + Wed, Thu, Fri, Mon 8 h each + Tue 1 h.
    assert US.business_hours_between(start, end) == 40.0
    assert US.business_days_between(start, end) == 5.0
    assert US.business_days_between(start, end) - 1 == 4.0  # late vs a 1-day SLA


def test_a_public_holiday_in_between_is_not_counted() -> None:
    # Thursday 2024-07-04 is Independence Day: Wed 7 h + Fri 1 h.
    assert US.business_hours_between(ny(2024, 7, 3, 10), ny(2024, 7, 5, 10)) == 8.0


def test_a_time_before_opening_counts_from_opening() -> None:
    assert US.business_hours_between(ny(2024, 3, 4, 7), ny(2024, 3, 4, 10)) == 1.0


def test_a_time_after_closing_counts_until_the_next_opening() -> None:
    assert US.business_hours_between(ny(2024, 3, 4, 18), ny(2024, 3, 5, 8)) == 0.0
    assert US.business_hours_between(ny(2024, 3, 4, 18), ny(2024, 3, 5, 11)) == 2.0


def test_an_end_before_the_start_gives_the_negated_swapped_value() -> None:
    start, end = ny(2024, 3, 5, 10), ny(2024, 3, 12, 10)
    assert US.business_hours_between(end, start) == -40.0
    assert US.business_time_between(end, start) == -timedelta(hours=40)


def test_hours_are_counted_in_the_calendars_zone_whatever_the_input_offset() -> None:
    # Friday 22:00 UTC is 17:00 in New York; Monday 14:30 UTC is 09:30 there.
    start = datetime(2024, 3, 1, 22, tzinfo=UTC)
    end = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
    assert US.business_hours_between(start, end) == 0.5
    assert PLAIN_UTC.business_hours_between(start, end) == 5.5  # Mon 09:00-14:30


def test_a_span_across_new_year_skips_the_holiday() -> None:
    # Tue 16:00 -> Thu 10:00 with 1 January on the Wednesday.
    assert US.business_hours_between(ny(2024, 12, 31, 16), ny(2025, 1, 2, 10)) == 2.0


def test_two_years_without_holidays_have_522_business_days() -> None:
    start = datetime(2023, 1, 1, tzinfo=UTC)
    end = datetime(2025, 1, 1, tzinfo=UTC)
    # 2023: 260 weekdays; 2024 (leap, starts on a Monday): 262.
    assert PLAIN_UTC.business_days_between(start, end) == 522.0
    assert PLAIN_UTC.business_day_count(start.date(), end.date()) == 522


# -- deadlines ----------------------------------------------------------------


def test_a_one_day_sla_for_an_inbound_at_friday_16_expires_monday_16() -> None:
    deadline = US.add_business_hours(ny(2024, 3, 1, 16), 8)
    assert deadline == ny(2024, 3, 4, 16)
    assert deadline.tzinfo is NEW_YORK


def test_a_span_ending_at_closing_time_ends_at_closing_not_at_next_opening() -> None:
    assert US.add_business_hours(ny(2024, 3, 1, 9), 8) == ny(2024, 3, 1, 17)


def test_adding_from_outside_working_hours_starts_at_the_next_opening() -> None:
    assert US.add_business_hours(ny(2024, 3, 2, 10), 1) == ny(2024, 3, 4, 10)


def test_adding_zero_hours_returns_the_start_itself() -> None:
    saturday = ny(2024, 3, 2, 10)
    assert US.add_business_hours(saturday, 0) == saturday


def test_negative_hours_count_backwards_to_the_latest_instant() -> None:
    assert US.add_business_hours(ny(2024, 3, 4, 10), -2) == ny(2024, 3, 1, 16)
    assert US.add_business_hours(ny(2024, 3, 4, 9), -8) == ny(2024, 3, 1, 9)


def test_a_deadline_skips_a_public_holiday() -> None:
    # Monday 2025-07-14 is Bastille Day.
    deadline = FR.add_business_hours(paris(2025, 7, 11, 16), 8)
    assert deadline == paris(2025, 7, 15, 16)


def test_a_deadline_spanning_new_year_continues_in_the_next_year() -> None:
    assert US.add_business_hours(ny(2024, 12, 31, 16), 8) == ny(2025, 1, 2, 16)
    assert US.add_business_hours(ny(2025, 1, 2, 10), -2) == ny(2024, 12, 31, 16)


def test_a_deadline_exactly_at_the_years_last_closing_stays_in_that_year() -> None:
    assert US.add_business_hours(ny(2024, 12, 31, 16), 1) == ny(2024, 12, 31, 17)
    assert US.add_business_hours(ny(2025, 1, 2, 10), -1) == ny(2025, 1, 2, 9)


def test_fractional_hours_are_honoured() -> None:
    assert US.add_business_hours(ny(2024, 3, 4, 16, 50), 0.25) == ny(2024, 3, 5, 9, 5)


# -- daylight saving time -----------------------------------------------------


def test_the_spring_forward_weekend_in_paris_leaves_working_days_at_8_hours() -> None:
    # Clocks go forward on Sunday 2024-03-31; 65 real hours pass here.
    start, end = paris(2024, 3, 29, 16), paris(2024, 4, 1, 10)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=65)
    assert PLAIN_PARIS.business_hours_between(start, end) == 2.0


def test_easter_monday_after_the_spring_forward_is_a_french_holiday() -> None:
    assert not FR.is_business_day(date(2024, 4, 1))
    assert FR.business_hours_between(paris(2024, 3, 29, 16), paris(2024, 4, 2, 10)) == (
        2.0
    )
    assert FR.add_business_hours(paris(2024, 3, 29, 16), 8) == paris(2024, 4, 2, 16)


def test_the_fall_back_weekend_in_paris_leaves_working_days_at_8_hours() -> None:
    # Clocks go back on Sunday 2024-10-27.
    start, end = paris(2024, 10, 25, 9), paris(2024, 10, 28, 17)
    assert PLAIN_PARIS.business_hours_between(start, end) == 16.0
    assert PLAIN_PARIS.add_business_hours(start, 9) == paris(2024, 10, 28, 10)


def test_a_window_spanning_the_dst_change_counts_real_elapsed_time() -> None:
    def night(day: date) -> float:
        midnight = datetime.combine(day, time(0), PARIS)
        return PARIS_NIGHTS.business_hours_between(midnight, midnight.replace(hour=6))

    assert night(date(2024, 3, 30)) == 4.0
    assert night(date(2024, 3, 31)) == 3.0  # 01:00-05:00 loses an hour
    assert night(date(2024, 10, 27)) == 5.0  # and gains one in autumn


# -- days -----------------------------------------------------------------------


def test_weekends_holidays_and_extra_dates_are_not_business_days() -> None:
    cal = BusinessCalendar(
        "America/New_York",
        holidays_country="US",
        extra_holidays=frozenset({date(2024, 12, 24)}),
    )
    assert cal.is_business_day(date(2024, 12, 23))
    assert not cal.is_business_day(date(2024, 12, 24))  # extra date
    assert not cal.is_business_day(date(2024, 12, 25))  # Christmas
    assert not cal.is_business_day(date(2024, 12, 28))  # Saturday
    assert date(2024, 12, 24) in cal.holidays_in(2024)


def test_an_observed_holiday_is_not_a_business_day() -> None:
    # 2026-07-04 is a Saturday, observed on Friday 3 July.
    assert not US.is_business_day(date(2026, 7, 3))


def test_subdivision_holidays_differ_within_a_country() -> None:
    england = BusinessCalendar("Europe/London", holidays_country="GB")
    scotland = BusinessCalendar(
        "Europe/London", holidays_country="GB", holidays_subdivision="SCT"
    )
    assert england.is_business_day(date(2024, 1, 2))
    assert not scotland.is_business_day(date(2024, 1, 2))


def test_a_custom_weekend_is_honoured() -> None:
    assert KOLKATA.is_business_day(date(2024, 3, 2))  # Saturday works
    assert not KOLKATA.is_business_day(date(2024, 3, 3))  # Sunday


def test_business_day_count_is_half_open_so_monday_to_monday_is_five() -> None:
    assert US.business_day_count(date(2024, 3, 4), date(2024, 3, 11)) == 5
    assert US.business_day_count(date(2024, 3, 11), date(2024, 3, 4)) == -5
    assert US.business_day_count(date(2024, 3, 4), date(2024, 3, 4)) == 0


def test_business_day_count_skips_holidays_across_years() -> None:
    # Dec 26-29 and Jan 2-5: Christmas and New Year's Day are holidays.
    assert US.business_day_count(date(2023, 12, 25), date(2024, 1, 8)) == 8


def test_business_days_follow_the_length_of_the_working_day() -> None:
    cal = BusinessCalendar(workday_start=time(8), workday_end=time(18))
    start = datetime(2024, 3, 4, 8, tzinfo=UTC)
    end = datetime(2024, 3, 6, 8, tzinfo=UTC)
    assert cal.hours_per_day == 10.0
    assert cal.business_hours_between(start, end) == 20.0
    assert cal.business_days_between(start, end) == 2.0
    assert KOLKATA.hours_per_day == 8.5


# -- construction and misuse ------------------------------------------------------


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="naive"):
        US.business_hours_between(datetime(2024, 3, 4, 9), ny(2024, 3, 4, 10))
    with pytest.raises(ValueError, match="naive"):
        US.add_business_hours(datetime(2024, 3, 4, 9), 1)


def test_is_business_day_refuses_a_datetime_whose_zone_is_ambiguous() -> None:
    with pytest.raises(TypeError):
        US.is_business_day(ny(2024, 3, 4, 9))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"timezone": ""}, "not an IANA time zone"),
        ({"workday_start": time(17), "workday_end": time(9)}, "after workday_start"),
        ({"workday_start": time(9, tzinfo=UTC)}, "without zone"),
        ({"weekend": frozenset(range(7))}, "at least one working day"),
        ({"weekend": frozenset({7})}, "weekday numbers"),
        ({"holidays_subdivision": "ENG"}, "needs holidays_country"),
        ({"holidays_country": "XX"}, "not a country code"),
        ({"holidays_country": "GB", "holidays_subdivision": "XX"}, "ENG, NIR"),
    ],
)
def test_an_impossible_calendar_is_refused(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCalendar(**kwargs)  # type: ignore[arg-type]


def test_calendars_with_the_same_rules_are_equal_and_hashable() -> None:
    a = BusinessCalendar("Europe/Paris", weekend={5, 6})  # type: ignore[arg-type]
    b = BusinessCalendar("Europe/Paris")
    a.business_hours_between(paris(2024, 3, 4, 9), paris(2024, 3, 5, 9))  # warm cache
    assert a == b
    assert hash(a) == hash(b)
    assert a != FR


# -- properties -------------------------------------------------------------------

CALENDARS = st.sampled_from([US, FR, PLAIN_UTC, PARIS_NIGHTS, KOLKATA, LORD_HOWE])
INSTANTS = st.datetimes(
    min_value=datetime(2019, 6, 1),
    max_value=datetime(2027, 6, 1),
    timezones=st.just(UTC),
)
DURATIONS = st.integers(min_value=-3000 * 60, max_value=3000 * 60).map(
    lambda minutes: timedelta(minutes=minutes)
)


def reference_business_time(
    cal: BusinessCalendar, start: datetime, end: datetime
) -> timedelta:
    """Independent, slow version: walk the local days and sum the overlaps."""
    if end < start:
        return -reference_business_time(cal, end, start)
    total = timedelta(0)
    day = start.astimezone(cal.zone).date() - timedelta(days=1)
    while day <= end.astimezone(cal.zone).date() + timedelta(days=1):
        if cal.is_business_day(day):
            # Convert to UTC first: same-zone datetime arithmetic ignores DST.
            opens = datetime.combine(day, cal.workday_start, cal.zone).astimezone(UTC)
            closes = datetime.combine(day, cal.workday_end, cal.zone).astimezone(UTC)
            overlap = min(closes, end) - max(opens, start)
            total += max(overlap, timedelta(0))
        day += timedelta(days=1)
    return total


@given(CALENDARS, INSTANTS, st.integers(min_value=0, max_value=60 * 24 * 40))
def test_business_time_matches_a_day_by_day_reference(
    cal: BusinessCalendar, start: datetime, minutes: int
) -> None:
    end = start + timedelta(minutes=minutes, seconds=17)
    assert cal.business_time_between(start, end) == reference_business_time(
        cal, start, end
    )
    assert cal.business_time_between(end, start) == reference_business_time(
        cal, end, start
    )


@given(CALENDARS, INSTANTS, INSTANTS, INSTANTS)
def test_business_time_is_additive_and_antisymmetric(
    cal: BusinessCalendar, a: datetime, b: datetime, c: datetime
) -> None:
    ab, bc = cal.business_time_between(a, b), cal.business_time_between(b, c)
    assert ab + bc == cal.business_time_between(a, c)
    assert cal.business_time_between(b, a) == -ab
    hours = cal.business_hours_between
    assert hours(a, b) + hours(b, c) == pytest.approx(hours(a, c), abs=1e-9)


@given(CALENDARS, INSTANTS, INSTANTS)
def test_business_time_never_exceeds_the_real_elapsed_time(
    cal: BusinessCalendar, a: datetime, b: datetime
) -> None:
    a, b = min(a, b), max(a, b)
    assert timedelta(0) <= cal.business_time_between(a, b) <= b - a


@given(CALENDARS, INSTANTS, DURATIONS)
def test_adding_business_time_is_undone_by_measuring_it(
    cal: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    end = cal.add_business_time(start, duration)
    assert cal.business_time_between(start, end) == duration
    hours = duration / timedelta(hours=1)
    assert cal.business_hours_between(
        start, cal.add_business_hours(start, hours)
    ) == pytest.approx(hours, abs=1e-9)


@given(CALENDARS, INSTANTS, DURATIONS.filter(bool))
# Counting back onto the repeated hour at the end of summer time.
@example(PARIS_NIGHTS, datetime(2019, 12, 15, tzinfo=UTC), timedelta(minutes=-99001))
def test_a_deadline_is_the_first_instant_reaching_it_inside_working_hours(
    cal: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    end = cal.add_business_time(start, duration)
    local = end.astimezone(cal.zone)
    assert cal.is_business_day(local.date())
    assert cal.workday_start <= local.time() <= cal.workday_end
    # Earliest going forward, latest going backward.
    step = (
        timedelta(microseconds=1)
        if duration > timedelta(0)
        else -timedelta(microseconds=1)
    )
    # In UTC: local arithmetic drops the fold and lands an hour off at DST's end.
    assert abs(cal.business_time_between(start, end.astimezone(UTC) - step)) < abs(
        duration
    )


@given(
    CALENDARS,
    st.dates(min_value=date(2019, 6, 1), max_value=date(2027, 6, 1)),
    st.integers(min_value=-60, max_value=60),
)
def test_business_day_count_agrees_with_is_business_day(
    cal: BusinessCalendar, start: date, days: int
) -> None:
    end = start + timedelta(days=days)
    low, high = min(start, end), max(start, end)
    span = [low + timedelta(days=k) for k in range((high - low).days)]
    expected = sum(cal.is_business_day(d) for d in span)
    assert cal.business_day_count(start, end) == (expected if days >= 0 else -expected)

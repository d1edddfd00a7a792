"""The rule set: defaults, TOML loading, errors, hashing and calendars."""

from __future__ import annotations

import hashlib
import json
from datetime import date, time
from pathlib import Path

import pydantic
import pytest

import engine.rules
from engine.business_time import BusinessCalendar
from engine.errors import InputError
from engine.events import Role
from engine.rules import RulesError, RuleSet, load_rules, parse_rules

# Pinned on purpose: changing a default must change the hash, and this test
# makes that a deliberate act.
BUILTIN_HASH = "f4f93327786f4ef1cc9c94b25d7808db76e7bc27dd05cf9d45c4c04ca1b3a2d9"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- defaults ---------------------------------------------------------------------


def test_the_builtin_rules_carry_the_documented_defaults() -> None:
    rules = load_rules(None)
    assert rules.version == "builtin-1"
    assert rules.calendar.default_timezone == "UTC"
    assert (rules.calendar.workday_start, rules.calendar.workday_end) == (
        time(9),
        time(17),
    )
    assert rules.calendar.weekend == ("saturday", "sunday")
    assert rules.calendar.holidays_country is None
    assert rules.follow_up.sla_business_hours == 8.0
    assert rules.requested_timing_late_business_hours == 8.0
    assert rules.streaks.pushy_min_unanswered == 6
    assert rules.streaks.gave_up_max_unanswered == 2
    assert rules.dark_period.business_days == 10
    assert rules.champion.unanswered_streak == 3
    assert rules.champion.silence_business_days == 10
    assert rules.rubber_stamp.late_stage == "proposal"
    assert set(rules.rubber_stamp.decision_roles) == {
        Role.DECISION_MAKER,
        Role.ECONOMIC_BUYER,
    }
    assert rules.stages.order[0] == "prospecting"
    assert rules.stages.stall_business_days == 20
    assert rules.next_step.low_clarity_share == 0.5
    assert rules.accounts.neglect_calendar_days == 60
    assert rules.hygiene.logging_lag_business_days == 2


def test_the_builtin_rules_hash_is_pinned() -> None:
    assert RuleSet().rules_hash == BUILTIN_HASH


def test_the_rules_hash_is_the_sha256_of_sorted_compact_json() -> None:
    rules = RuleSet()
    text = rules.canonical_json()
    assert " " not in text
    assert list(json.loads(text)) == sorted(json.loads(text))
    assert rules.rules_hash == hashlib.sha256(text.encode()).hexdigest()


def test_the_canonical_json_round_trips_to_the_same_hash() -> None:
    rules = parse_rules(
        'version = "x"\n[calendar]\nholidays_country = "FR"\n'
        '[calendar.zones."Europe/London"]\nholidays_country = "GB"\n'
    )
    again = RuleSet.model_validate(json.loads(rules.canonical_json()))
    assert again == rules
    assert again.rules_hash == rules.rules_hash


# -- loading ----------------------------------------------------------------------


def test_a_partial_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, "[follow_up]\nsla_business_hours = 4\n"))
    assert rules.follow_up.sla_business_hours == 4.0
    assert rules.requested_timing_late_business_hours == 4.0  # follows the SLA
    assert rules.model_dump(exclude={"follow_up"}) == RuleSet().model_dump(
        exclude={"follow_up"}
    )
    assert rules.rules_hash != BUILTIN_HASH


def test_an_empty_file_gives_the_builtin_rules(tmp_path: Path) -> None:
    assert load_rules(write(tmp_path, "")).rules_hash == BUILTIN_HASH


def test_the_sample_in_the_module_docstring_loads() -> None:
    assert engine.rules.__doc__ is not None
    sample = engine.rules.__doc__.split("::", 1)[1]
    rules = parse_rules(sample)
    assert rules.version == "emea-2025-03"
    assert rules.calendar.workday_start == time(8, 30)
    assert rules.calendar.extra_holidays == (date(2025, 12, 24), date(2025, 12, 31))
    assert rules.stages.order[0] == "lead"


def test_an_integer_version_is_kept_as_text() -> None:
    assert parse_rules("version = 3").version == "3"


def test_equivalent_spellings_give_the_same_hash() -> None:
    plain = parse_rules(
        "[calendar]\nextra_holidays = [2025-01-02, 2025-01-03]\n"
        '[rubber_stamp]\ndecision_roles = ["decision_maker", "economic_buyer"]\n'
    )
    spelled = parse_rules(
        "[calendar]\n"
        'weekend = ["Sun", "SAT", "sat"]\n'
        'workday_start = "09:00"\n'
        "workday_end = 17:00:00\n"
        'extra_holidays = [2025-01-03, "2025-01-02", 2025-01-03]\n'
        "[follow_up]\nsla_business_hours = 8\n"
        '[rubber_stamp]\ndecision_roles = ["economic_buyer", "decision_maker"]\n'
        'late_stage = "Proposal"\n'
    )
    assert spelled.rules_hash == plain.rules_hash


def test_any_changed_threshold_changes_the_hash() -> None:
    changes = [
        "version = 'builtin-2'",
        "[streaks]\npushy_min_unanswered = 7",
        "[dark_period]\nbusiness_days = 11",
        "[calendar]\nweekend = ['friday', 'saturday']",
        "[accounts]\nneglect_calendar_days = 90",
    ]
    hashes = {parse_rules(text).rules_hash for text in changes}
    assert len(hashes) == len(changes)
    assert BUILTIN_HASH not in hashes


# -- errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[follow_up]\nsla_business_hours = 0",
            "follow_up.sla_business_hours: Input should be greater than 0",
        ),
        (
            "[follow_up]\nsla_hours = 3",
            "follow_up.sla_hours: Extra inputs are not permitted",
        ),
        ("colour = 'red'", "colour: Extra inputs are not permitted"),
        ("[next_step]\nlow_clarity_share = 1.5", "next_step.low_clarity_share:"),
        ("[calendar]\nweekend = ['funday']", "calendar.weekend.0: Input should be"),
        ("[calendar]\ndefault_timezone = 'Mars/Olympus'", "calendar.default_timezone"),
        ("[calendar]\nholidays_country = 'XX'", "calendar.holidays_country: 'XX'"),
        (
            "[calendar]\nholidays_country = 'GB'\nholidays_subdivision = 'XX'",
            "calendar: 'XX' is not a subdivision of GB",
        ),
        (
            "[calendar]\nworkday_start = '18:00'",
            "calendar: workday_end must be after",
        ),
        (
            "[calendar]\nworkday_start = '09:00Z'",
            "calendar.workday_start: must be a local time",
        ),
        ("[calendar.zones.'Mars/Olympus']", "calendar.zones.Mars/Olympus: 'Mars"),
        (
            "[streaks]\ngave_up_max_unanswered = 6",
            "streaks: gave_up_max_unanswered must be below",
        ),
        (
            "[streaks]\ntime_of_day_boundaries = [17:00:00, 12:00:00]",
            "streaks.time_of_day_boundaries: must be distinct",
        ),
        ("[stages]\norder = ['a', 'A']", "stages.order: must not repeat"),
        (
            "[rubber_stamp]\nlate_stage = 'Contract Sent'",
            "'contract_sent' is not in stages.order",
        ),
        ("[rubber_stamp]\ndecision_roles = ['boss']", "rubber_stamp.decision_roles.0"),
        ("sla = ", "not valid TOML"),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_every_problem_in_a_file_is_reported() -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules("[follow_up]\nsla_business_hours = -1\n[x]\n", "rules.toml")
    assert str(caught.value).splitlines() == [
        "rules.toml: follow_up.sla_business_hours: Input should be greater than 0",
        "rules.toml: x: Extra inputs are not permitted",
    ]


def test_a_missing_file_is_a_rules_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read rules file"):
        load_rules(tmp_path / "absent.toml")


def test_a_rules_error_is_both_a_value_error_and_an_input_error() -> None:
    assert issubclass(RulesError, ValueError)
    assert issubclass(RulesError, InputError)


# -- immutability and identity ------------------------------------------------


def test_rules_are_immutable() -> None:
    rules = RuleSet()
    with pytest.raises(pydantic.ValidationError):
        rules.version = "mine"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        rules.follow_up.sla_business_hours = 1  # type: ignore[misc]


def test_equal_rule_sets_are_equal_and_hash_alike() -> None:
    a, b = RuleSet(), parse_rules("[stages]\nstall_business_days = 20")
    assert a.rules_hash  # caches the hash on a only
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1


def test_a_copy_with_changes_is_validated_and_rehashed() -> None:
    rules = RuleSet()
    assert rules.rules_hash == BUILTIN_HASH
    changed = rules.model_copy(update={"follow_up": {"sla_business_hours": 4}})
    assert changed.follow_up.sla_business_hours == 4.0
    assert changed.rules_hash != BUILTIN_HASH
    with pytest.raises(pydantic.ValidationError):
        rules.model_copy(update={"follow_up": {"sla_business_hours": 0}})


# -- stages ----------------------------------------------------------------------


def test_stage_names_are_normalised_to_lower_snake_case() -> None:
    rules = parse_rules(
        "[stages]\norder = ['New Lead', 'Proposal Sent', 'Closed']\n"
        "[rubber_stamp]\nlate_stage = 'proposal-sent'\n"
    )
    assert rules.stages.order == ("new_lead", "proposal_sent", "closed")
    assert rules.stage_rank("PROPOSAL SENT") == 1


def test_proposal_and_later_stages_are_late_and_unknown_stages_are_not() -> None:
    rules = RuleSet()
    assert not rules.is_late_stage("Demo")
    assert rules.is_late_stage("Proposal")
    assert rules.is_late_stage("negotiation")
    assert not rules.is_late_stage("legal review")
    assert rules.stage_rank("legal review") is None


# -- calendars ----------------------------------------------------------------------


def test_the_calendar_for_no_time_zone_uses_the_default_zone() -> None:
    rules = parse_rules(
        "[calendar]\ndefault_timezone = 'Europe/Paris'\nholidays_country = 'FR'\n"
        "extra_holidays = [2025-12-24]\n"
    )
    calendar = rules.calendar_for(None)
    assert calendar == BusinessCalendar(
        "Europe/Paris",
        holidays_country="FR",
        extra_holidays=frozenset({date(2025, 12, 24)}),
    )
    assert not calendar.is_business_day(date(2025, 7, 14))
    assert not calendar.is_business_day(date(2025, 12, 24))


def test_calendars_are_cached_per_time_zone() -> None:
    rules = RuleSet()
    assert rules.calendar_for("Asia/Tokyo") is rules.calendar_for("Asia/Tokyo")
    assert rules.calendar_for(None) is rules.calendar_for(None)
    assert rules.calendar_for("Asia/Tokyo").timezone == "Asia/Tokyo"


def test_a_zone_override_replaces_the_holiday_region_and_adds_dates() -> None:
    rules = parse_rules(
        "[calendar]\nholidays_country = 'US'\nholidays_subdivision = 'CA'\n"
        "extra_holidays = [2025-12-24]\n"
        "[calendar.zones.'Europe/London']\nholidays_country = 'GB'\n"
        "extra_holidays = [2025-12-31]\nworkday_start = '08:00'\n"
        "weekend = ['sunday']\n"
    )
    london = rules.calendar_for("Europe/London")
    assert (london.holidays_country, london.holidays_subdivision) == ("GB", None)
    assert london.extra_holidays == {date(2025, 12, 24), date(2025, 12, 31)}
    assert london.workday_start == time(8)
    assert london.weekend == {6}
    elsewhere = rules.calendar_for("America/Chicago")
    assert (elsewhere.holidays_country, elsewhere.holidays_subdivision) == ("US", "CA")
    assert elsewhere.weekend == {5, 6}


def test_an_unknown_time_zone_has_no_calendar() -> None:
    with pytest.raises(ValueError, match="not an IANA time zone"):
        RuleSet().calendar_for("Mars/Olympus")

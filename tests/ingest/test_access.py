"""Access rules: release-date arithmetic, observing nights, override files, the five rules."""

from __future__ import annotations

import calendar
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auth.identity import is_public, observing_night
from ingest.access import (
    PROPRIETARY,
    PUBLIC,
    AccessDecision,
    add_period,
    decide_access,
    match_overrides,
    override_file,
    parse_overrides,
    parse_period,
    read_overrides,
)
from ingest.schedule import Observer, Run

DATA = Path(__file__).resolve().parent.parent / "data" / "access"
FIXTURE_NIGHT = DATA / "2012-01" / "18" / "shane"


# ---------------------------------------------------------------- release-date arithmetic


@pytest.mark.parametrize(
    ("start", "period", "expected"),
    [
        (date(2024, 1, 31), "1 month", date(2024, 3, 1)),  # the rule's own example
        (date(2023, 1, 31), "1 month", date(2023, 3, 1)),
        (date(2024, 1, 29), "1 month", date(2024, 2, 29)),  # leap day exists
        (date(2023, 1, 29), "1 month", date(2023, 3, 1)),
        (date(2024, 2, 29), "1 year", date(2025, 3, 1)),
        (date(2024, 2, 29), "4 years", date(2028, 2, 29)),
        (date(2024, 3, 31), "1 month", date(2024, 5, 1)),
        (date(2024, 11, 30), "3 months", date(2025, 3, 1)),  # Feb 30 → Mar 1
        (date(2024, 12, 31), "2 months", date(2025, 3, 1)),
        (date(2024, 12, 15), "1 month", date(2025, 1, 15)),
        (date(2012, 1, 18), "2 years", date(2014, 1, 18)),
        (date(2012, 1, 18), "18 months", date(2013, 7, 18)),
        (date(2024, 12, 31), "1 day", date(2025, 1, 1)),
        (date(2024, 2, 28), "2 days", date(2024, 3, 1)),
        (date(2024, 5, 5), "0 days", date(2024, 5, 5)),
        (date(2024, 5, 5), "1 Year", date(2025, 5, 5)),
    ],
)
def test_add_period(start: date, period: str, expected: date) -> None:
    assert add_period(start, period) == expected


@pytest.mark.parametrize("text", ["2", "years", "2 weeks", "-1 days", "1.5 years", ""])
def test_bad_period_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="release period"):
        parse_period(text)


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 1, 1)),
       st.integers(min_value=0, max_value=60))
def test_month_arithmetic_keeps_day_or_rolls_to_first(start: date, months: int) -> None:
    result = add_period(start, f"{months} months")
    year, month = divmod(start.year * 12 + start.month - 1 + months, 12)
    month += 1
    if start.day <= calendar.monthrange(year, month)[1]:
        assert result == date(year, month, start.day)
    else:
        # The missing day rolls to the 1st of the following month, never earlier.
        assert result.day == 1
        last = calendar.monthrange(year, month)[1]
        assert result - timedelta(days=1) == date(year, month, last)


@pytest.mark.parametrize(
    ("moment", "night"),
    [
        (datetime(2024, 1, 18, 19, 59, tzinfo=UTC), date(2024, 1, 17)),  # 11:59 PST
        (datetime(2024, 1, 18, 20, 0, tzinfo=UTC), date(2024, 1, 18)),  # noon PST
        (datetime(2024, 1, 19, 10, 0, tzinfo=UTC), date(2024, 1, 18)),  # 02:00 PST
        (datetime(2024, 7, 1, 19, 30, tzinfo=UTC), date(2024, 6, 30)),  # PST all year
    ],
)
def test_observing_night(moment: datetime, night: date) -> None:
    assert observing_night(moment) == night


def test_is_public_from_the_release_night_on() -> None:
    release = date(2024, 3, 1)
    assert not is_public(release, datetime(2024, 3, 1, 19, 0, tzinfo=UTC))  # still Feb 29's night
    assert is_public(release, datetime(2024, 3, 1, 20, 0, tzinfo=UTC))
    assert not is_public(None, datetime(2099, 1, 1, tzinfo=UTC))


# ---------------------------------------------------------------- override files


def test_highest_numbered_override_file_wins() -> None:
    assert override_file(FIXTURE_NIGHT) == FIXTURE_NIGHT / "override.3.access"
    rules = read_overrides(FIXTURE_NIGHT)
    assert [(r.pattern, r.kind, r.values) for r in rules] == [
        ("r2345*", "obstype", ("science",)),
        ("r3*", "access", ("ownerhint1",)),
        ("b3*", "access", ("public",)),
        ("b2345.fits", "obstype", ("arc",)),
    ]
    assert match_overrides(rules, "r2345.fits").obstype == "science"
    assert match_overrides(rules, "r2345.fits").access is None
    assert match_overrides(rules, "r3001.fits").access == ("ownerhint1",)
    assert match_overrides(rules, "b3.fits").access == ("public",)
    assert match_overrides(rules, "b2345.fits").obstype == "arc"
    nothing = match_overrides(rules, "r1234.fits")
    assert nothing.obstype is None and nothing.access is None


def _night_with(tmp_path: Path, *names: str) -> Path:
    night = tmp_path / "2012-01" / "18" / "shane"
    night.mkdir(parents=True)
    for name in names:
        shutil.copy(FIXTURE_NIGHT / name, night / name)
    return night


def test_plain_override_file_and_first_match_per_kind(tmp_path: Path) -> None:
    night = _night_with(tmp_path, "override.access")
    rules = read_overrides(night)
    both = match_overrides(rules, "r1234.fits")
    assert both.obstype == "flat"
    assert both.access == ("ownerhint1", "ownerhint2")
    assert match_overrides(rules, "r2001.fits").access == ("ownerhint1", "ownerhint2")
    assert match_overrides(rules, "b1234.fits").access is None


def test_override_1_beats_plain_and_empty_2_beats_both(tmp_path: Path) -> None:
    night = _night_with(tmp_path, "override.access", "override.1.access")
    rules = read_overrides(night)
    assert match_overrides(rules, "r1234.fits").obstype == "arc"
    assert match_overrides(rules, "r1234.fits").access == ("ownerhint3", "ownerhint4")
    shutil.copy(FIXTURE_NIGHT / "override.2.access", night / "override.2.access")
    assert override_file(night) == night / "override.2.access"
    assert read_overrides(night) == ()


def test_no_override_file(tmp_path: Path) -> None:
    assert override_file(tmp_path) is None
    assert read_overrides(tmp_path) == ()
    assert override_file(tmp_path / "missing") is None


def test_malformed_lines_are_skipped() -> None:
    rules = parse_overrides(
        "r1* obstype nonsense\nr2*\nr3* allow someone\n  # comment\nr4* obstype DARK  # why\n"
        "r5* access a b c\n"
    )
    assert [(r.pattern, r.kind, r.values, r.line) for r in rules] == [
        ("r4*", "obstype", ("dark",), 5),
        ("r5*", "access", ("a", "b", "c"), 6),
    ]


# ---------------------------------------------------------------- the rules


NIGHT = date(2012, 1, 18)
OBSERVERS = (
    Observer(1, "Ada", "Ownerhint1", "ada@example.org"),
    Observer(2, "Bob", "Smith", "ownerhint2@example.org"),
    Observer(3, "Cy", "Jones", "cy@example.org"),
    Observer(4, "Di", "Jones", "di@example.org"),
    Observer(5, "Ed", "Nickelman", "ed@example.org"),
)
RUNS = (
    Run("r-a", "Shane", date(2012, 1, 17), date(2012, 1, 19), date(2013, 6, 1), "2012A_K1", (1, 2)),
    Run("r-b", "Shane", NIGHT, NIGHT, None, "2012A_K2", (3,)),
    Run("r-c", "Nickel", NIGHT, NIGHT, date(2012, 7, 1), "2012A_N1", (5,)),
    Run("r-old", "Shane", date(2012, 1, 1), date(2012, 1, 2), date(2012, 2, 1), "X", (4,)),
)


# decisions are made as on the night after NIGHT, before any release date
DECIDED_AT = datetime(2012, 1, 20, tzinfo=UTC)


def decide(filename: str, frame_type: str | None = "science", *, instrument_dir: str = "shane",
           telescope: str | None = "Shane", **kw: Any) -> AccessDecision:
    args: dict[str, Any] = {"night": NIGHT, "filename": filename, "instrument_dir": instrument_dir,
            "telescope": telescope, "frame_type": frame_type, "runs": RUNS,
            "observers": OBSERVERS, "always_public": {"allsky": ("*.jpg",)},
            "release_period": "2 years", "now": DECIDED_AT}
    args.update(kw)
    return decide_access(**args)


def test_calibration_belongs_to_everyone_scheduled_on_the_telescope() -> None:
    d = decide("b100.fits", "bias")
    assert d.owner_ids == (1, 2, 3)  # not 5 (Nickel), not 4 (other run's nights)
    # earliest of 2013-06-01 and (no release date → night + 2 years)
    assert d.release_date == date(2013, 6, 1)
    assert d.data_rights == PROPRIETARY
    assert d.rule == "calibration"
    # the same file ingested after its release date is public for ObsCore clients at once
    later = decide("b100.fits", "bias", now=datetime(2013, 6, 2, 4, 0, tzinfo=UTC))
    assert (later.owner_ids, later.data_rights) == ((1, 2, 3), PUBLIC)


def test_science_frame_narrowed_by_program_or_observer_name() -> None:
    by_program = decide("r100.fits", program="2012a_k2")
    assert by_program.owner_ids == (3,)
    assert by_program.release_date == date(2014, 1, 18)  # run without release date
    by_name = decide("r101.fits", observer="A. Ownerhint1 and friends")
    assert by_name.owner_ids == (1, 2)
    assert by_name.release_date == date(2013, 6, 1)
    unknown = decide("r102.fits", observer="somebody else")
    assert unknown.owner_ids == (1, 2, 3)
    assert unknown.rule == "scheduled"


def test_nobody_scheduled_is_public_from_the_night() -> None:
    d = decide("r1.fits", night=date(2012, 1, 25))
    assert (d.owner_ids, d.release_date, d.data_rights, d.rule) == (
        (), date(2012, 1, 25), PUBLIC, "nobody_scheduled")
    nickel = decide("d1.fits", instrument_dir="nickel", telescope="Nickel",
                    night=date(2012, 1, 17))
    assert nickel.data_rights == PUBLIC


def test_nickel_run_owns_nickel_frames() -> None:
    d = decide("d10.fits", "flat", instrument_dir="nickel", telescope="Nickel")
    assert d.owner_ids == (5,)
    assert d.release_date == date(2012, 7, 1)


def test_always_public_types() -> None:
    d = decide("SC2_20190502185845.JPG", None, instrument_dir="allsky", telescope=None)
    assert d.data_rights == PUBLIC and d.release_date == NIGHT and d.rule == "always_public"
    # the same name in an instrument without public types follows the schedule
    assert decide("x.jpg").data_rights == PROPRIETARY


def test_default_period_is_configurable() -> None:
    d = decide("r100.fits", program="2012A_K2", release_period="6 months")
    assert d.release_date == date(2012, 7, 18)


def test_fixture_override_rules_applied() -> None:
    rules = read_overrides(FIXTURE_NIGHT)
    public = decide("b3001.fits", overrides=rules)
    assert public.data_rights == PUBLIC and public.rule == "override"
    owned = decide("r3001.fits", overrides=rules)
    # ownerhint1 is observer 1's last name; the release date is that of observer 1's run
    assert owned.owner_ids == (1,)
    assert owned.release_date == date(2013, 6, 1)
    retyped = decide("b2345.fits", "science", overrides=rules)
    assert retyped.obstype_override == "arc"
    assert retyped.owner_ids == (1, 2, 3)  # now a calibration: everyone of the night
    assert retyped.rule == "calibration"
    science = decide("r2345.fits", "arc", overrides=rules, program="2012A_K2")
    assert science.obstype_override == "science"
    assert science.owner_ids == (3,)


def test_override_names_resolution() -> None:
    rules = parse_overrides("r1* access ownerhint2 5\nr2* access jones\nr3* access nobody\n")
    by_email_and_id = decide("r1.fits", overrides=rules)
    assert by_email_and_id.owner_ids == (2, 5)
    # observer 5 has no Shane run that night: the earliest among the owners' runs is r-a's
    assert by_email_and_id.release_date == date(2013, 6, 1)
    # "jones" is ambiguous (3 and 4); only 3 is scheduled that night
    assert decide("r2.fits", overrides=rules).owner_ids == (3,)
    staff_only = decide("r3.fits", overrides=rules)
    assert staff_only.owner_ids == () and staff_only.release_date is None
    assert staff_only.data_rights == PROPRIETARY


def test_override_owner_without_run_gets_default_period() -> None:
    rules = parse_overrides("* access 5\n")
    d = decide("r9.fits", overrides=rules)
    assert d.owner_ids == (5,)
    assert d.release_date == date(2014, 1, 18)


def test_config_refuses_a_bad_period() -> None:
    from ingest.config import IngestConfig

    identity = {"authority": "test.lick", "base_url": "http://archive.test"}
    with pytest.raises(ValueError, match="release period"):
        IngestConfig(roots=(), release_period="2 fortnights", **identity)
    assert IngestConfig(roots=(), release_period="18 months", **identity).release_period \
        == "18 months"

"""recurring.schedule against python-dateutil's rrule as an independent oracle (DESIGN "Schedules").

The oracle is built from the raw inputs a test drew (unsorted, with repeats), never from the
normalised Schedule, so a normalisation bug cannot make both sides agree.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from dateutil.rrule import DAILY, MONTHLY, rrule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recurring import schedule as schedule_module
from recurring.schedule import DATE, DAY, FULL_DATE, MAX_FULL_DATES, Schedule, ScheduleError

# The autouse fixtures of tests/conftest.py (query guard, password hasher) do not touch pure code.
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

FIRST, LAST = date(1999, 1, 1), date(2101, 12, 31)
# Year ends, leap days and the century rule (2000 is a leap year, 2100 is not), each with some slack.
ANCHORS = [date(y, 1, 1) for y in (1999, 2000, 2001, 2024, 2025, 2100, 2101)] + [
    date(2000, 2, 29),
    date(2024, 2, 29),
    date(2100, 2, 28),
    date(2100, 3, 1),
]
dates = st.one_of(
    st.dates(FIRST, LAST),
    st.builds(lambda anchor, offset: anchor + timedelta(days=offset), st.sampled_from(ANCHORS), st.integers(-40, 40)),
)


@st.composite
def cases(draw: st.DrawFn, kinds: tuple[str, ...] = (DATE, DAY, FULL_DATE)) -> tuple[Schedule, dict]:
    """A schedule and the raw values it was built from (unsorted, possibly repeated)."""
    kind = draw(st.sampled_from(kinds))
    months = draw(st.lists(st.integers(1, 12), min_size=1, max_size=14))
    if kind == DATE:
        raw = {"days": draw(st.lists(st.integers(1, 28), min_size=1, max_size=30)), "months": months}
        return Schedule.by_date(raw["days"], raw["months"]), {"kind": kind, **raw}
    if kind == DAY:
        raw = {"weekdays": draw(st.lists(st.integers(0, 6), min_size=1, max_size=9)), "months": months}
        return Schedule.by_day(raw["weekdays"], raw["months"]), {"kind": kind, **raw}
    raw = {"dates": draw(st.lists(dates, min_size=1, max_size=40))}
    return Schedule.full_dates(raw["dates"]), {"kind": kind, **raw}


def oracle(raw: dict, start: date, n: int) -> list[date]:
    """The first n execute dates on or after `start`, computed by rrule (Full Date: the sorted list)."""
    if raw["kind"] == FULL_DATE:
        return sorted({d for d in raw["dates"] if d >= start})[:n]
    dtstart = datetime(start.year, start.month, start.day)
    if raw["kind"] == DATE:
        rule = rrule(MONTHLY, dtstart=dtstart, count=n, bymonth=raw["months"], bymonthday=raw["days"])
    else:
        rule = rrule(DAILY, dtstart=dtstart, count=n, bymonth=raw["months"], byweekday=raw["weekdays"])
    return [occurrence.date() for occurrence in rule]


# Properties against the oracle ------------------------------------------------------------------


@PROPERTY
@given(cases(), dates, st.integers(0, 40))
def test_next_dates_match_rrule(case: tuple[Schedule, dict], after: date, n: int) -> None:
    schedule, raw = case
    assert schedule.next_dates(after, n) == oracle(raw, after + timedelta(days=1), n)


@PROPERTY
@given(cases(), dates)
def test_is_execute_date_matches_rrule(case: tuple[Schedule, dict], day: date) -> None:
    schedule, raw = case
    assert schedule.is_execute_date(day) == (oracle(raw, day, 1) == [day])


@PROPERTY
@given(cases(), dates, st.integers(1, 20))
def test_is_execute_date_agrees_with_next_dates_day_by_day(case: tuple[Schedule, dict], after: date, n: int) -> None:
    """Every day from `after` to the last date listed is an execute date exactly when it is listed."""
    schedule, _ = case
    listed = schedule.next_dates(after, n)
    end = listed[-1] if listed else after + timedelta(days=60)
    day = after + timedelta(days=1)
    while day <= end:
        assert schedule.is_execute_date(day) == (day in listed), day
        day += timedelta(days=1)


@PROPERTY
@given(cases(), dates, st.data())
def test_next_date_skips_and_matches_rrule(case: tuple[Schedule, dict], start: date, data: st.DataObject) -> None:
    schedule, raw = case
    upcoming = oracle(raw, start, 6)
    skip = set(data.draw(st.lists(st.sampled_from(upcoming), max_size=6))) if upcoming else set()
    skip |= set(data.draw(st.lists(dates, max_size=3)))
    candidates = [d for d in oracle(raw, start, len(skip) + 1) if d not in skip]
    assert schedule.next_date(start, skip) == (candidates[0] if candidates else None)
    assert schedule.next_date(start) == (upcoming[0] if upcoming else None)


@PROPERTY
@given(cases())
def test_to_dict_round_trips_through_json(case: tuple[Schedule, dict]) -> None:
    schedule, _ = case
    stored = json.loads(json.dumps(schedule.to_dict()))
    assert Schedule.from_dict(stored) == schedule
    assert stored == schedule.to_dict()


@PROPERTY
@given(cases())
def test_constructors_normalise(case: tuple[Schedule, dict]) -> None:
    schedule, raw = case
    for name in ("days", "weekdays", "months", "dates"):
        expected = tuple(sorted(set(raw.get(name, ()))))
        assert getattr(schedule, name) == expected
    if "dates" in raw:
        raw = raw | {"dates": [d.isoformat() for d in raw["dates"]]}
    assert Schedule.from_dict(raw) == schedule  # from_dict normalises like the constructors


@PROPERTY
@given(st.lists(dates, min_size=1, max_size=20), dates)
def test_full_dates_refuse_only_dates_before_the_first_day_that_can_run(chosen: list[date], first_day: date) -> None:
    if min(chosen) < first_day:
        with pytest.raises(ScheduleError, match="the first day that can still run"):
            Schedule.full_dates(chosen, first_day=first_day)
    else:
        assert Schedule.full_dates(chosen, first_day=first_day).dates[0] == min(chosen)


# Named examples ---------------------------------------------------------------------------------


def test_five_mondays_in_december_2025_give_five_dates() -> None:
    mondays = Schedule.by_day([0], [12])
    in_december = [d for d in mondays.next_dates(date(2025, 11, 30), 10) if d.year == 2025]
    assert in_december == [date(2025, 12, day) for day in (1, 8, 15, 22, 29)]
    assert all(d.weekday() == 0 for d in in_december)
    assert mondays.next_dates(date(2025, 11, 30), 6)[-1] == date(2026, 12, 7)


def test_day_28_of_february_across_a_leap_year() -> None:
    february = Schedule.by_date([28], [2])
    assert february.next_dates(date(2027, 3, 1), 3) == [date(2028, 2, 28), date(2029, 2, 28), date(2030, 2, 28)]
    assert not february.is_execute_date(date(2028, 2, 29))
    assert february.next_date(date(2028, 2, 29)) == date(2029, 2, 28)


@pytest.mark.parametrize(("year", "days_in_february"), [(2000, 29), (2024, 29), (2025, 28), (2100, 28)])
def test_every_day_of_february_follows_the_leap_year_rules(year: int, days_in_february: int) -> None:
    every_day = Schedule.by_day(range(7), [2])
    february = every_day.next_dates(date(year, 1, 31), days_in_february + 1)
    assert february[:-1] == [date(year, 2, 1) + timedelta(days=i) for i in range(days_in_february)]
    assert february[-1] == date(year + 1, 2, 1)


def test_day_schedule_spans_new_year() -> None:
    fridays = Schedule.by_day([4], [12, 1])
    assert fridays.next_dates(date(2025, 12, 20), 7) == [
        date(2025, 12, 26),
        date(2026, 1, 2),
        date(2026, 1, 9),
        date(2026, 1, 16),
        date(2026, 1, 23),
        date(2026, 1, 30),
        date(2026, 12, 4),
    ]


def test_date_schedule_spans_new_year() -> None:
    assert Schedule.by_date([28], [12, 1]).next_dates(date(2025, 12, 28), 2) == [date(2026, 1, 28), date(2026, 12, 28)]


class CountingDate(date):
    """Counts the dates the module builds, to show it jumps over months instead of walking days."""

    made = 0

    def __new__(cls, *args: int) -> CountingDate:
        CountingDate.made += 1
        return super().__new__(cls, *args)


@pytest.mark.parametrize(
    ("schedule", "expected", "most_dates_built"),
    [
        (Schedule.by_date([10], [2]), date(2027, 2, 10), 2),
        (Schedule.by_day([0], [2]), date(2027, 2, 1), 3),
    ],
)
def test_february_only_asked_after_march_jumps_to_next_february(
    monkeypatch: pytest.MonkeyPatch, schedule: Schedule, expected: date, most_dates_built: int
) -> None:
    monkeypatch.setattr(schedule_module, "date", CountingDate)
    CountingDate.made = 0
    assert schedule.next_date(date(2026, 3, 1)) == expected
    assert CountingDate.made <= most_dates_built


def test_full_dates_run_out() -> None:
    chosen = Schedule.full_dates([date(2026, 12, 1), date(2027, 1, 1)])
    assert chosen.next_dates(date(2026, 11, 1), 5) == [date(2026, 12, 1), date(2027, 1, 1)]
    assert chosen.next_dates(date(2027, 1, 1), 5) == []
    assert chosen.next_date(date(2026, 12, 2)) == date(2027, 1, 1)
    assert chosen.next_date(date(2026, 12, 2), skip={date(2027, 1, 1)}) is None


def test_edges_of_the_calendar() -> None:
    assert Schedule.by_date([1], [1]).next_dates(date.max, 3) == []
    assert Schedule.by_date([1], [1]).next_date(date(9999, 1, 2)) is None
    assert Schedule.by_day([6], [12]).next_date(date(9999, 12, 27)) is None  # Dec 26 is the last Sunday
    assert Schedule.by_date([5], [3]).next_dates(date(2026, 1, 1), 0) == []
    with pytest.raises(ValueError, match="negative"):
        Schedule.by_date([5], [3]).next_dates(date(2026, 1, 1), -1)


@pytest.mark.parametrize(
    ("schedule", "text"),
    [
        (Schedule.by_date([15, 1], [10, 1, 4, 7]), "Day 1 and 15 of Jan, Apr, Jul, Oct"),
        (Schedule.by_date([20, 1, 10], range(1, 13)), "Day 1, 10 and 20 of every month"),
        (Schedule.by_day([4, 0], [12]), "Every Monday and Friday in Dec"),
        (Schedule.by_day([2], range(1, 13)), "Every Wednesday"),
        (Schedule.by_day(range(7), [1, 2]), "Every day in Jan, Feb"),
        (
            Schedule.full_dates([date(2027, 2, 1), date(2026, 12, 1), date(2027, 1, 1)]),
            "3 chosen dates, from 2026-12-01 to 2027-02-01",
        ),
        (Schedule.full_dates([date(2026, 12, 1)]), "1 chosen date: 2026-12-01"),
    ],
)
def test_describe(schedule: Schedule, text: str) -> None:
    assert schedule.describe() == text
    assert str(schedule) == text


def test_to_dict_shape() -> None:
    assert Schedule.by_date([15, 1], [4, 1]).to_dict() == {"kind": "date", "days": [1, 15], "months": [1, 4]}
    assert Schedule.by_day([0], [12]).to_dict() == {"kind": "day", "weekdays": [0], "months": [12]}
    assert Schedule.full_dates([date(2026, 12, 1)]).to_dict() == {"kind": "full_date", "dates": ["2026-12-01"]}


# Bad input --------------------------------------------------------------------------------------

TODAY = date(2026, 1, 6)
TOO_MANY = [date(2026, 1, 1) + timedelta(days=i) for i in range(MAX_FULL_DATES + 1)]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Schedule.by_date([], [1]), "Choose at least one execute day."),
        (lambda: Schedule.by_date([1], []), "Choose at least one month."),
        (lambda: Schedule.by_day([], [1]), "Choose at least one weekday."),
        (lambda: Schedule.by_day([0], []), "Choose at least one month."),
        (lambda: Schedule.full_dates([]), "Choose at least one date."),
        (lambda: Schedule.by_date([31], [1]), "Execute days must be 1 to 28: 31 is not."),
        (lambda: Schedule.by_date([1, 29], [1]), "Execute days must be 1 to 28: 29 is not."),
        (lambda: Schedule.by_date([0], [1]), "Execute days must be 1 to 28: 0 is not."),
        (lambda: Schedule.by_day([7], [1]), "Weekdays must be 0 (Monday) to 6 (Sunday): 7 is not."),
        (lambda: Schedule.by_day([-1], [1]), "Weekdays must be 0 (Monday) to 6 (Sunday): -1 is not."),
        (lambda: Schedule.by_date([1], [13]), "Months must be 1 to 12: 13 is not."),
        (lambda: Schedule.by_day([0], [0]), "Months must be 1 to 12: 0 is not."),
        (
            lambda: Schedule.full_dates([date(2026, 2, 1), date(2026, 1, 5)], first_day=TODAY),
            f"A Full Date cannot be before {TODAY}, the first day that can still run: 2026-01-05 is.",
        ),
        (lambda: Schedule.full_dates(TOO_MANY), "A Full Date schedule can have at most 366 dates, not 367."),
        (lambda: Schedule.by_date(["1"], [1]), "Execute days must be whole numbers from 1 to 28: '1' is not."),
        (lambda: Schedule.by_date([True], [1]), "Execute days must be whole numbers from 1 to 28: True is not."),
        (lambda: Schedule.by_date([1.0], [1]), "Execute days must be whole numbers from 1 to 28: 1.0 is not."),
        (lambda: Schedule.by_date(15, [1]), "Execute days must be a list."),
        (lambda: Schedule.by_date("15", [1]), "Execute days must be a list."),
        (lambda: Schedule.by_day([0], None), "Months must be a list."),
        (
            lambda: Schedule.full_dates(["2026-12-01"]),
            "Full Dates must be calendar dates: '2026-12-01' is not.",
        ),
        (
            lambda: Schedule.full_dates([datetime(2026, 12, 1, 9)]),
            "Full Dates must be calendar dates: datetime.datetime(2026, 12, 1, 9, 0) is not.",
        ),
        (lambda: Schedule("weekly", days=(1,)), "Unknown schedule type: 'weekly'."),
        (lambda: Schedule(DATE, days=(1,), months=(1,), weekdays=(0,)), "A Date schedule has no weekdays."),
        (lambda: Schedule(FULL_DATE, dates=(TODAY,), months=(1,)), "A Full Date schedule has no months."),
    ],
)
def test_bad_input_is_refused_with_a_sentence(build, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        build()
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "A schedule must be a mapping, not list."),
        ("date", "A schedule must be a mapping, not str."),
        ({}, "Unknown schedule type: None."),
        ({"kind": "weekly"}, "Unknown schedule type: 'weekly'."),
        ({"kind": ["date"]}, "Unknown schedule type: ['date']."),
        ({"kind": "date", "days": [1]}, "The schedule's months must be a list."),
        ({"kind": "date", "days": "1,15", "months": [1]}, "The schedule's days must be a list."),
        ({"kind": "date", "days": [], "months": [1]}, "Choose at least one execute day."),
        ({"kind": "date", "days": [31], "months": [1]}, "Execute days must be 1 to 28: 31 is not."),
        ({"kind": "date", "days": [1], "months": [1, 13]}, "Months must be 1 to 12: 13 is not."),
        (
            {"kind": "date", "days": ["1"], "months": [1]},
            "Execute days must be whole numbers from 1 to 28: '1' is not.",
        ),
        (
            {"kind": "date", "days": [1], "months": [1], "weekdays": [0]},
            "A Date schedule has no weekdays.",
        ),
        ({"kind": "day", "weekdays": [9], "months": [1]}, "Weekdays must be 0 (Monday) to 6 (Sunday): 9 is not."),
        (
            {"kind": "day", "weekdays": [0], "months": [False]},
            "Months must be whole numbers from 1 to 12: False is not.",
        ),
        ({"kind": "full_date", "dates": []}, "Choose at least one date."),
        ({"kind": "full_date", "dates": "2026-12-01"}, "The schedule's dates must be a list."),
        (
            {"kind": "full_date", "dates": ["2026-13-01"]},
            "Full Dates must be dates written YYYY-MM-DD: '2026-13-01' is not.",
        ),
        (
            {"kind": "full_date", "dates": ["20261201"]},
            "Full Dates must be dates written YYYY-MM-DD: '20261201' is not.",
        ),
        (
            {"kind": "full_date", "dates": [20261201]},
            "Full Dates must be dates written YYYY-MM-DD: 20261201 is not.",
        ),
        (
            {"kind": "full_date", "dates": [d.isoformat() for d in TOO_MANY]},
            "A Full Date schedule can have at most 366 dates, not 367.",
        ),
    ],
)
def test_from_dict_refuses_malformed_data(data, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        Schedule.from_dict(data)
    assert str(caught.value) == message


def test_past_full_dates_load_from_storage() -> None:
    """`today` is checked when a user chooses dates, not when a stored schedule is read back."""
    assert Schedule.from_dict({"kind": "full_date", "dates": ["2001-01-01"]}).dates == (date(2001, 1, 1),)

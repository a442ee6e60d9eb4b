"""Billing schedules (PRODUCT R2, R6): which calendar dates a recurring billing runs on.

Pure and stdlib-only so the scheduler, forms, previews and tests share one definition. Three kinds:

- Date: execute days 1-28 (every month has them) in the chosen months.
- Day: every chosen weekday (0 = Monday ... 6 = Sunday) in the chosen months.
- Full Date: a list of chosen calendar dates.

Every `Schedule` is validated and normalised (sorted, deduplicated tuples) when it is built, however it
is built, so the rest of the code can trust it. Dates here are merchant-local calendar dates.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

DATE = "date"
DAY = "day"
FULL_DATE = "full_date"
KINDS = (DATE, DAY, FULL_DATE)
KIND_LABELS = {DATE: "Date", DAY: "Day", FULL_DATE: "Full Date"}

MAX_FULL_DATES = 366

MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_ONE_DAY = timedelta(days=1)
# The fields each kind uses; the others must stay empty.
_FIELDS = {DATE: ("days", "months"), DAY: ("weekdays", "months"), FULL_DATE: ("dates",)}
_ALL_FIELDS = ("days", "weekdays", "months", "dates")


class ScheduleError(ValueError):
    """A schedule that cannot be used; the message is a sentence fit to show the user."""


@dataclass(frozen=True)
class Schedule:
    """One billing's schedule. Build it with `by_date`, `by_day`, `full_dates` or `from_dict`; the fields
    a kind does not use stay empty. Immutable and hashable, so equal schedules compare equal."""

    kind: str
    days: tuple[int, ...] = ()
    weekdays: tuple[int, ...] = ()
    months: tuple[int, ...] = ()
    dates: tuple[date, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ScheduleError(f"Unknown schedule type: {self.kind!r}.")
        label = KIND_LABELS[self.kind]
        for name in _ALL_FIELDS:
            if name not in _FIELDS[self.kind] and getattr(self, name):
                raise ScheduleError(f"A {label} schedule has no {name}.")
        if self.kind == DATE:
            self._set("days", _ints(self.days, "Execute days", 1, 28, "1 to 28", "Choose at least one execute day."))
        if self.kind == DAY:
            weekdays = _ints(
                self.weekdays, "Weekdays", 0, 6, "0 (Monday) to 6 (Sunday)", "Choose at least one weekday."
            )
            self._set("weekdays", weekdays)
        if self.kind in (DATE, DAY):
            self._set("months", _ints(self.months, "Months", 1, 12, "1 to 12", "Choose at least one month."))
        if self.kind == FULL_DATE:
            self._set("dates", _dates(self.dates))

    def _set(self, name: str, value: tuple) -> None:
        object.__setattr__(self, name, value)  # normalising a frozen dataclass while it is built

    # Constructors ---------------------------------------------------------------------------------

    @classmethod
    def by_date(cls, days: Iterable[int], months: Iterable[int]) -> Schedule:
        return cls(DATE, days=_tuple(days, "Execute days"), months=_tuple(months, "Months"))

    @classmethod
    def by_day(cls, weekdays: Iterable[int], months: Iterable[int]) -> Schedule:
        return cls(DAY, weekdays=_tuple(weekdays, "Weekdays"), months=_tuple(months, "Months"))

    @classmethod
    def full_dates(cls, dates: Iterable[date], *, first_day: date | None = None) -> Schedule:
        """With `first_day` (the first day a schedule may still run: the merchant's today, or tomorrow once
        today's run is over), dates before it are refused: they would never run."""
        schedule = cls(FULL_DATE, dates=_tuple(dates, "Full Dates"))
        past = [d.isoformat() for d in schedule.dates if first_day is not None and d < first_day]
        if past:
            raise ScheduleError(
                f"A Full Date cannot be before {first_day.isoformat()}, the first day that can still run: "
                f"{_join_and(past)} {'is' if len(past) == 1 else 'are'}."
            )
        return schedule

    # Queries --------------------------------------------------------------------------------------

    def is_execute_date(self, day: date) -> bool:
        if self.kind == DATE:
            return day.day in self.days and day.month in self.months
        if self.kind == DAY:
            return day.weekday() in self.weekdays and day.month in self.months
        i = bisect_left(self.dates, day)
        return i < len(self.dates) and self.dates[i] == day

    def next_dates(self, after: date, count: int) -> list[date]:
        """The first `count` execute dates strictly after `after`, ascending (fewer if a Full Date list runs out)."""
        if count < 0:
            raise ValueError(f"count must not be negative: {count}")
        result: list[date] = []
        if count == 0 or after == date.max:
            return result
        for day in self._iter_from(after + _ONE_DAY):
            result.append(day)
            if len(result) == count:
                break
        return result

    def next_date(self, on_or_after: date, skip: Container[date] = ()) -> date | None:
        """The first execute date on or after `on_or_after` that is not in `skip` (e.g. cancelled dates)."""
        for day in self._iter_from(on_or_after):
            if day not in skip:
                return day
        return None

    def _iter_from(self, start: date) -> Iterator[date]:
        """Execute dates >= start, ascending. Jumps month to month, never walks empty months day by day."""
        if self.kind == FULL_DATE:
            yield from self.dates[bisect_left(self.dates, start) :]
            return
        year = start.year
        while year <= date.max.year:
            for month in self.months:
                if year == start.year and month < start.month:
                    continue
                first = start.day if (year == start.year and month == start.month) else 1
                if self.kind == DATE:
                    for day in self.days:
                        if day >= first:
                            yield date(year, month, day)
                else:
                    weekday = date(year, month, first).weekday()
                    for day in range(first, _days_in_month(year, month) + 1):
                        if (weekday + day - first) % 7 in self.weekdays:
                            yield date(year, month, day)
            year += 1

    # Storage and display --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: only the fields this kind uses, dates as ISO strings."""
        data: dict[str, Any] = {"kind": self.kind}
        for name in _FIELDS[self.kind]:
            values = getattr(self, name)
            data[name] = [v.isoformat() for v in values] if name == "dates" else list(values)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schedule:
        """The inverse of `to_dict`; anything malformed raises ScheduleError."""
        if not isinstance(data, Mapping):
            raise ScheduleError(f"A schedule must be a mapping, not {type(data).__name__}.")
        kind = data.get("kind")
        if not isinstance(kind, str) or kind not in KINDS:
            raise ScheduleError(f"Unknown schedule type: {kind!r}.")
        fields = _FIELDS[kind]
        extra = sorted(str(key) for key in data if key != "kind" and key not in fields)
        if extra:
            raise ScheduleError(f"A {KIND_LABELS[kind]} schedule has no {', '.join(extra)}.")
        values: dict[str, tuple] = {}
        for name in fields:
            raw = data.get(name)
            if not isinstance(raw, list | tuple):
                raise ScheduleError(f"The schedule's {name} must be a list.")
            values[name] = tuple(_parse_date(v) for v in raw) if name == "dates" else tuple(raw)
        return cls(kind, **values)

    def describe(self) -> str:
        if self.kind == DATE:
            months = "every month" if len(self.months) == 12 else ", ".join(MONTH_NAMES[m - 1] for m in self.months)
            return f"Day {_join_and([str(d) for d in self.days])} of {months}"
        if self.kind == DAY:
            days = "day" if len(self.weekdays) == 7 else _join_and([WEEKDAY_NAMES[w] for w in self.weekdays])
            if len(self.months) == 12:
                return f"Every {days}"
            return f"Every {days} in {', '.join(MONTH_NAMES[m - 1] for m in self.months)}"
        first, last = self.dates[0].isoformat(), self.dates[-1].isoformat()
        if len(self.dates) == 1:
            return f"1 chosen date: {first}"
        return f"{len(self.dates)} chosen dates, from {first} to {last}"

    def __str__(self) -> str:
        return self.describe()


# Helpers ------------------------------------------------------------------------------------------


def _tuple(values: Iterable[Any], what: str) -> tuple:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ScheduleError(f"{what} must be a list.")
    return tuple(values)


def _ints(values: Iterable[Any], what: str, low: int, high: int, range_text: str, empty: str) -> tuple[int, ...]:
    values = _tuple(values, what)
    if not values:
        raise ScheduleError(empty)
    for value in values:
        # bool is an int subclass, but True is not a day.
        if not isinstance(value, int) or isinstance(value, bool):
            raise ScheduleError(f"{what} must be whole numbers from {range_text}: {value!r} is not.")
        if not low <= value <= high:
            raise ScheduleError(f"{what} must be {range_text}: {value} is not.")
    return tuple(sorted(set(values)))


def _dates(values: Iterable[Any]) -> tuple[date, ...]:
    values = _tuple(values, "Full Dates")
    if not values:
        raise ScheduleError("Choose at least one date.")
    for value in values:
        # A datetime is a date subclass but does not compare with dates.
        if not isinstance(value, date) or isinstance(value, datetime):
            raise ScheduleError(f"Full Dates must be calendar dates: {value!r} is not.")
    unique = tuple(sorted(set(values)))
    if len(unique) > MAX_FULL_DATES:
        raise ScheduleError(f"A Full Date schedule can have at most {MAX_FULL_DATES} dates, not {len(unique)}.")
    return unique


def _parse_date(value: Any) -> date:
    try:
        parsed = date.fromisoformat(value)
    except (TypeError, ValueError):
        parsed = None
    # fromisoformat also takes forms like "20261201"; stored dates are always YYYY-MM-DD.
    if parsed is None or parsed.isoformat() != value:
        raise ScheduleError(f"Full Dates must be dates written YYYY-MM-DD: {value!r} is not.")
    return parsed


def _days_in_month(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[month - 1]


def _join_and(items: list[str]) -> str:
    """["1"] -> "1"; ["1", "15"] -> "1 and 15"; ["1", "10", "20"] -> "1, 10 and 20"."""
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} and {items[-1]}"

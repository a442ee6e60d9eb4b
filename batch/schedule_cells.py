"""The schedule cells of a registration file (schedule_type, _days, _weekdays, _months, _dates).

A row whose cells are in a plain form (a list of valid days, weekdays or months; Full Dates that are
calendar dates from the first day on) is a valid schedule, found by column with pandas. Every other row
is parsed by ``parse_schedule`` (with Schedule's own rules), once per distinct combination of its five
cells, which names each bad cell and why.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recurring.schedule import MAX_FULL_DATES, Schedule, ScheduleError

SCHEDULE_COLUMNS = ("schedule_type", "schedule_days", "schedule_weekdays", "schedule_months", "schedule_dates")
DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# A weekday cell names a day by its first three letters or in full (not any word that starts like one).
WEEKDAY_NAMES = {name: number for number, day in enumerate(DAY_NAMES) for name in (day[:3], day)}

DAYS_LIST = r"(?:[1-9]|1[0-9]|2[0-8])(?:\|(?:[1-9]|1[0-9]|2[0-8]))*"
WEEKDAYS_LIST = r"(?i)(?:mon|tue|wed|thu|fri|sat|sun|[0-6])(?:\|(?:mon|tue|wed|thu|fri|sat|sun|[0-6]))*"
MONTHS_LIST = r"(?i)all|(?:[1-9]|1[0-2])(?:\|(?:[1-9]|1[0-2]))*"
DATE_TEXT = r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{2}/[0-9]{2}/[0-9]{4})"
DATES_LIST = rf"{DATE_TEXT}(?:\|{DATE_TEXT})*"

NOT_A_LIST = "Not a list of numbers or names separated by |."
NOT_DATES = "Not a date: YYYY-MM-DD or DD/MM/YYYY, separated by |."


def parse_dates(column: pd.Series) -> pd.Series:
    """YYYY-MM-DD or DD/MM/YYYY; NaT where neither (nor a calendar date)."""
    iso = pd.to_datetime(column, format="%Y-%m-%d", errors="coerce")
    dmy = pd.to_datetime(column, format="%d/%m/%Y", errors="coerce")
    return iso.fillna(dmy)


def _fullmatch(column: pd.Series, pattern: str, rows: np.ndarray) -> np.ndarray:
    """Per row: one of ``rows`` whose cell matches ``pattern`` whole (the regex runs on those rows only)."""
    found = np.zeros(len(column), dtype=bool)
    if rows.any():
        found[rows] = column[rows].str.fullmatch(pattern).to_numpy(dtype=bool, na_value=False)
    return found


def plain_schedules(frame: pd.DataFrame, today: date, empty: dict[str, np.ndarray]) -> np.ndarray:
    """The rows whose schedule cells are in a plain form: a valid schedule for sure. ``empty``: per
    column, its empty cells."""
    kind = frame["schedule_type"].str.lower()
    by_date = (kind == "date").to_numpy(dtype=bool) & empty["schedule_weekdays"] & empty["schedule_dates"]
    by_day = (kind == "day").to_numpy(dtype=bool) & empty["schedule_days"] & empty["schedule_dates"]
    by_date = _fullmatch(frame["schedule_days"], DAYS_LIST, by_date)
    by_day = _fullmatch(frame["schedule_weekdays"], WEEKDAYS_LIST, by_day)
    plain = _fullmatch(frame["schedule_months"], MONTHS_LIST, by_date | by_day)
    full = (kind == "full_date").to_numpy(dtype=bool) & empty["schedule_days"] & empty["schedule_weekdays"]
    full &= empty["schedule_months"]
    full = _fullmatch(frame["schedule_dates"], DATES_LIST, full)
    if full.any():
        plain[full] = _future_dates(frame["schedule_dates"][full], today)
    return plain


def _future_dates(cells: pd.Series, today: date) -> np.ndarray:
    """Per cell of DATES_LIST form: every date a calendar date, none before ``today``, few enough. Each
    distinct date is parsed once."""
    values = pa.array(cells.array)
    parts = pc.split_pattern(values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values, "|")
    dates = pc.list_flatten(parts)
    distinct = pc.unique(dates)
    parsed = parse_dates(pd.Series(distinct, dtype=cells.dtype))
    good_dates = distinct.filter((parsed >= pd.Timestamp(today)).to_numpy(dtype=bool))  # NaT: not a date
    bad = np.asarray(pc.list_parent_indices(parts))[~np.asarray(pc.is_in(dates, value_set=good_dates))]
    good = np.asarray(pc.list_value_length(parts)) <= MAX_FULL_DATES
    good[bad] = False
    return good


def schedule_faults(
    frame: pd.DataFrame, today: date, empty: dict[str, np.ndarray]
) -> dict[tuple[str, str], np.ndarray]:
    """(column, reason) -> the row positions with that bad schedule cell. ``empty``: per column, its
    empty cells."""
    rest = np.flatnonzero(~plain_schedules(frame, today, empty))
    if not len(rest):
        return {}
    cells = frame.iloc[rest][list(SCHEDULE_COLUMNS)].astype(object)
    faults: dict[tuple[str, str], list[np.ndarray]] = {}
    for combination, positions in cells.groupby(list(SCHEDULE_COLUMNS), sort=False).indices.items():
        for column, reason in parse_schedule(*combination, today=today)[1]:
            faults.setdefault((column, reason), []).append(rest[positions])
    return {fault: np.concatenate(positions) for fault, positions in faults.items()}


def _split(cell: str) -> list[str]:
    return [part for part in re.split(r"[|;,\s]+", cell.strip()) if part]


def _numbers(cell: str, names: dict[str, int] | None = None) -> list[int]:
    """The cell's |-separated numbers (or ``names``); ValueError / KeyError when a part is neither."""
    return [int(part) if part.isdigit() or not names else names[part.lower()] for part in _split(cell)]


def _months(cell: str) -> list[int]:
    return list(range(1, 13)) if cell.strip().lower() == "all" else _numbers(cell)


def _full_dates(cell: str) -> list[date]:
    parsed = parse_dates(pd.Series(_split(cell), dtype=str))
    if parsed.isna().any():
        raise ValueError(NOT_DATES)
    return [day.date() for day in parsed]


def parse_schedule(
    kind: str, days: str, weekdays: str, months: str, dates: str, *, today: date
) -> tuple[dict | None, list[tuple[str, str]]]:
    """(Schedule.to_dict(), []) or (None, [(column at fault, reason), ...]): every cell of the schedule
    type's columns is checked on its own (with Schedule's own rules), so each bad cell gets its reason.
    The cells of another type's columns are ignored."""
    kind = kind.strip().lower()
    if kind not in ("date", "day", "full_date"):
        return None, [("schedule_type", "Use date, day or full_date." if kind else "Required.")]
    cells: dict[str, Callable[[], Schedule]] = {  # per column of this type: a Schedule built with that cell
        "full_date": {"schedule_dates": lambda: Schedule.full_dates(_full_dates(dates), first_day=today)},
        "date": {"schedule_days": lambda: Schedule.by_date(_numbers(days), [1])},
        "day": {"schedule_weekdays": lambda: Schedule.by_day(_numbers(weekdays, WEEKDAY_NAMES), [1])},
    }[kind]
    if kind != "full_date":
        cells["schedule_months"] = lambda: Schedule.by_date([1], _months(months))
    faults = []
    for column, build in cells.items():
        try:
            build()
        except ScheduleError as error:
            faults.append((column, str(error)))
        except (ValueError, KeyError):
            faults.append((column, NOT_DATES if column == "schedule_dates" else NOT_A_LIST))
    if faults:
        return None, faults
    if kind == "full_date":
        return Schedule.full_dates(_full_dates(dates), first_day=today).to_dict(), []
    if kind == "date":
        return Schedule.by_date(_numbers(days), _months(months)).to_dict(), []
    return Schedule.by_day(_numbers(weekdays, WEEKDAY_NAMES), _months(months)).to_dict(), []

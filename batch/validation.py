"""Cell-by-cell validation of an upload (B2), vectorised by column with pandas.

``validate`` returns a frame of reasons the shape of the file ("" where the cell is valid), so every
invalid cell keeps its own reason. The common checks (required, formats, Luhn, ranges, duplicates in the
file and against what is stored) run per column, not per cell; schedules are parsed once per distinct
combination of their cells (a file repeats few of them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cached_property

import numpy as np
import pandas as pd

from billing_bo.lib.cards import mask_pans_in_text
from billing_bo.lib.money import format_rupiah
from recurring.schedule import MAX_FULL_DATES, Schedule, ScheduleError

try:  # pandas keeps text columns in Arrow when pyarrow is installed (requirements.txt pins it)
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - the string paths below work without it, slower
    pa = pc = None

PHONE = r"\+?[0-9]{8,15}"
EMAIL = r"[^@ \t\n\r\f\v]+@[^@ \t\n\r\f\v]+\.[^@ \t\n\r\f\v]+"
AMOUNT = r"[0-9]+|[0-9]{1,3}(?:\.[0-9]{3})+"
REFERENCE = r"[A-Za-z0-9][A-Za-z0-9_./-]{0,63}"
FORMULA = r"[=@\t\r]"
WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
TEXT_COLUMNS_WITH_PAN = ("customer_name", "holder_name", "description")


@dataclass
class Result:
    """Per cell: a reason code (0 = valid) per column and the table of reasons; per row: invalid."""

    codes: dict[str, np.ndarray]  # column -> int16 per row, an index into ``messages``
    messages: list[str]
    index: pd.Index
    invalid: pd.Series  # per row
    amounts: pd.Series  # Decimal-able integers, NaN where invalid
    execute_dates: pd.Series | None  # datetime64 per row (single payment)

    @property
    def invalid_count(self) -> int:
        return int(self.invalid.sum())

    @property
    def reasons(self) -> pd.DataFrame:
        """ "" or the reason, per cell (a frame the shape of the file)."""
        table = np.array(self.messages, dtype=object)
        return pd.DataFrame({column: table[codes] for column, codes in self.codes.items()}, index=self.index)

    @cached_property
    def errors(self) -> dict[int, dict[str, str]]:
        """Row position -> {column: reason}, for the invalid rows only."""
        found: dict[int, dict[str, str]] = {}
        for column, codes in self.codes.items():
            for position in np.flatnonzero(codes):
                found.setdefault(int(position), {})[column] = self.messages[codes[position]]
        return found

    @cached_property
    def errors_json(self) -> np.ndarray:
        """The errors of each row as a JSON object ("{}" for a valid row)."""
        text = np.full(len(self.index), "{}", dtype=object)
        for position, cells in self.errors.items():
            text[position] = json.dumps(cells, ensure_ascii=False)
        return text


def _isin(column: pd.Series, values) -> np.ndarray:
    """``column.isin(values)`` through Arrow's hash set when it can (pandas' own path builds a Python
    string per value)."""
    if pa is not None:
        found = pc.is_in(pa.array(column.astype(str)), value_set=pa.array(pd.Series(values, dtype=str)))
        return np.asarray(found.fill_null(False), dtype=bool)
    return _bool(column.isin(values))


def card_digits(column: pd.Series) -> pd.Series:
    """The card number without its spaces and dashes."""
    if pa is not None:
        stripped = pc.replace_substring_regex(pa.array(column.astype(str)), pattern=r"[\s-]", replacement="")
        return pd.Series(
            stripped.to_pandas(types_mapper=lambda _: pd.StringDtype("pyarrow", na_value=np.nan)), index=column.index
        )
    return column.str.replace(r"[\s-]", "", regex=True)


def _bool(mask) -> np.ndarray:
    if isinstance(mask, pd.Series):
        return mask.to_numpy(dtype=bool, na_value=False)
    return np.asarray(mask, dtype=bool)


def luhn_ok(digits: pd.Series) -> pd.Series:
    """Luhn over a column of digit strings (13-19 long), with numpy over a fixed-width digit matrix: no
    Python loop per card (and no Python string per card when pyarrow holds the column)."""
    if digits.empty:
        return pd.Series([], dtype=bool, index=digits.index)
    matrix = _digit_matrix(digits)
    doubled = matrix[:, -2::-2] * 2  # every second digit from the right, check digit excluded
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    total = matrix[:, -1::-2].sum(axis=1, dtype=np.int32) + doubled.sum(axis=1, dtype=np.int32)
    return pd.Series(total % 10 == 0, index=digits.index)


def _digit_matrix(digits: pd.Series) -> np.ndarray:
    """n x 19 uint8 digits, left-padded with 0."""
    if pa is not None:
        padded = pc.utf8_lpad(pa.array(digits.astype(str), type=pa.large_string()), width=19, padding="0")
        padded = padded.combine_chunks() if isinstance(padded, pa.ChunkedArray) else padded
        _, offsets, data = padded.buffers()
        start = np.frombuffer(offsets, dtype=np.int64)[padded.offset]
        raw = np.frombuffer(data, dtype=np.uint8, count=19 * len(padded), offset=int(start))
        return raw.reshape(-1, 19) - ord("0")
    padded = digits.str.rjust(19, "0").to_numpy(dtype="U19")
    return np.frombuffer(padded.astype("S19").tobytes(), dtype=np.uint8).reshape(-1, 19) - ord("0")


def parse_dates(column: pd.Series) -> pd.Series:
    """YYYY-MM-DD or DD/MM/YYYY; NaT where neither."""
    iso = pd.to_datetime(column, format="%Y-%m-%d", errors="coerce")
    dmy = pd.to_datetime(column, format="%d/%m/%Y", errors="coerce")
    return iso.fillna(dmy)


STARS = np.array(["*" * n for n in range(20)], dtype=object)


def mask_card_column(column: pd.Series) -> pd.Series:
    digits = card_digits(column)
    length = digits.str.len()
    long = length >= 13
    stars = pd.Series(STARS[length.clip(lower=10, upper=29).to_numpy(dtype=np.int64) - 10], index=column.index)
    masked = digits.str.slice(0, 6) + stars.astype(column.dtype) + digits.str.slice(-4)
    short = length.between(5, 12)
    return masked.where(long, ("*" * 4 + digits.str.slice(-4)).where(short, column))


def mask_pans_in_column(column: pd.Series) -> pd.Series:
    """``mask_pans_in_text`` on the cells that hold a run of 13 digits or more (the others cannot hold a PAN)."""
    suspect = column.str.contains(r"[0-9]{13}", regex=True)
    if not suspect.any():
        return column
    column = column.copy()
    column[suspect] = column[suspect].map(mask_pans_in_text)
    return column


class _Flags:
    def __init__(self, frame: pd.DataFrame):
        self.codes = {column: np.zeros(len(frame), dtype=np.int16) for column in frame.columns}
        self.messages = [""]
        self._numbers = {"": 0}

    def flag(self, column: str, mask, reason: str) -> None:
        """Record ``reason`` for the cells of ``column`` under ``mask`` that have no reason yet."""
        codes = self.codes[column]
        target = _bool(mask) & (codes == 0)
        if target.any():
            if reason not in self._numbers:
                self._numbers[reason] = len(self.messages)
                self.messages.append(reason)
            codes[target] = self._numbers[reason]


def validate(
    frame: pd.DataFrame,
    kind: str,
    *,
    today: date,
    min_amount: Decimal,
    max_amount: Decimal,
    stored_keys: Iterable[str],
) -> Result:
    """``stored_keys``: the keys (billing or invoice numbers) the merchant has already, as a set or a
    Series (a Series of a million keys is matched without a Python string per key)."""
    from .columns import COLUMNS

    flags = _Flags(frame)
    empty = {column: _bool(frame[column] == "") for column in frame.columns}

    # Formula cells (=HYPERLINK(...)): refused everywhere, before any other rule names the cell.
    for column in frame.columns:
        starts = _bool(frame[column].str.match(FORMULA))
        if not column.endswith("phone"):
            starts = starts | _bool(frame[column].str.startswith("+"))
        flags.flag(column, starts, "Formulas are not accepted: remove the leading = + @ or tab.")

    for spec in COLUMNS[kind]:
        if spec.required:
            flags.flag(spec.name, empty[spec.name], "Required.")

    # Card number: digits only (spaces and dashes allowed), 13-19 long, Luhn.
    digits = card_digits(frame["card_number"])
    well_formed = _bool(digits.str.fullmatch(r"[0-9]{13,19}"))
    flags.flag("card_number", ~well_formed & ~empty["card_number"], "Not a card number: 13 to 19 digits.")
    luhn = np.zeros(len(frame), dtype=bool)
    luhn[well_formed] = luhn_ok(digits[well_formed]).to_numpy()
    flags.flag("card_number", well_formed & ~luhn, "This card number fails the check digit (Luhn): a typo?")

    # Expiry MM/YY, not before this month.
    expiry_ok = _bool(frame["expiry"].str.fullmatch(r"(?:0[1-9]|1[0-2])/[0-9]{2}"))
    flags.flag("expiry", ~expiry_ok & ~empty["expiry"], "Not an expiry date: MM/YY.")
    expiry = frame["expiry"].where(expiry_ok, "00/00")
    months = (2000 + _ints(expiry.str.slice(3, 5))) * 12 + _ints(expiry.str.slice(0, 2))
    flags.flag("expiry", expiry_ok & (months < today.year * 12 + today.month), "This card has expired.")

    # Amount: whole Rupiah, plain or with . thousands separators, within the merchant's limits.
    amount_ok = _bool(frame["amount"].str.fullmatch(AMOUNT))
    flags.flag("amount", ~amount_ok & ~empty["amount"], "Not a whole Rupiah amount: 250000 or 250.000.")
    plain = frame["amount"].where(amount_ok, "0").str.replace(".", "", regex=False)
    amounts = pd.Series(
        np.where(amount_ok, pd.to_numeric(plain, errors="coerce").to_numpy(dtype=float), np.nan), index=frame.index
    )
    out_of_range = amount_ok & ((amounts < float(min_amount)) | (amounts > float(max_amount))).to_numpy()
    flags.flag("amount", out_of_range, f"Must be between {format_rupiah(min_amount)} and {format_rupiah(max_amount)}.")

    for column in ("phone", "holder_phone"):
        if column in frame:
            flags.flag(
                column,
                ~empty[column] & ~_bool(frame[column].str.fullmatch(PHONE)),
                "Not a mobile number: 8 to 15 digits, optional +.",
            )
    if "email" in frame:
        flags.flag("email", ~empty["email"] & ~_bool(frame["email"].str.fullmatch(EMAIL)), "Not an email address.")

    key = "billing_number" if kind == "registration" else "invoice_number"
    flags.flag(
        key, ~empty[key] & ~_bool(frame[key].str.fullmatch(REFERENCE)), "Use letters, digits, - _ . / (at most 64)."
    )
    flags.flag(key, ~empty[key] & _bool(frame[key].duplicated(keep=False)), "Appears more than once in this file.")
    used = "Registered already." if kind == "registration" else "This invoice number is used already."
    stored = stored_keys if isinstance(stored_keys, pd.Series) else pd.Series(list(stored_keys), dtype=str)
    flags.flag(key, ~empty[key] & _isin(frame[key], stored), used)

    execute_dates = None
    if kind == "registration":
        types = frame["type"].str.lower()
        flags.flag("type", ~empty["type"] & ~_isin(types, ["recurring", "reminder"]), "Use recurring or reminder.")
        _schedules(frame, flags, today)
    else:
        neither = empty["billing_number"] & empty["customer_id"]
        flags.flag("billing_number", neither, "Give a billing_number or a customer_id.")
        flags.flag(
            "billing_number",
            ~empty["billing_number"] & ~_bool(frame["billing_number"].str.fullmatch(REFERENCE)),
            "Use letters, digits, - _ . / (at most 64).",
        )
        execute_dates = parse_dates(frame["execute_date"])
        flags.flag(
            "execute_date", execute_dates.isna() & ~empty["execute_date"], "Not a date: YYYY-MM-DD or DD/MM/YYYY."
        )
        flags.flag("execute_date", execute_dates < pd.Timestamp(today), "This date is in the past.")

    invalid = np.zeros(len(frame), dtype=bool)
    for codes in flags.codes.values():
        invalid |= codes != 0
    return Result(
        codes=flags.codes,
        messages=flags.messages,
        index=frame.index,
        invalid=pd.Series(invalid, index=frame.index),
        amounts=amounts,
        execute_dates=execute_dates,
    )


def _ints(column: pd.Series) -> np.ndarray:
    """Digit strings to int64 (callers pass only digits)."""
    return column.astype("int64").to_numpy() if len(column) else np.zeros(0, dtype=np.int64)


SCHEDULE_COLUMNS = ("schedule_type", "schedule_days", "schedule_weekdays", "schedule_months", "schedule_dates")
# The plain forms of the schedule cells, matched by column: a row in these forms is a valid schedule for
# sure. Every other row is parsed by ``parse_schedule`` (once per distinct combination), which names the
# cell at fault and why.
DAYS_LIST = r"(?:[1-9]|1[0-9]|2[0-8])(?:\|(?:[1-9]|1[0-9]|2[0-8]))*"
WEEKDAYS_LIST = r"(?:mon|tue|wed|thu|fri|sat|sun|[0-6])(?:\|(?:mon|tue|wed|thu|fri|sat|sun|[0-6]))*"
MONTHS_LIST = r"all|(?:[1-9]|1[0-2])(?:\|(?:[1-9]|1[0-2]))*"
DATE_TEXT = r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{2}/[0-9]{2}/[0-9]{4})"
DATES_LIST = rf"{DATE_TEXT}(?:\|{DATE_TEXT})*"


def _schedules(frame: pd.DataFrame, flags: _Flags, today: date) -> None:
    kind = frame["schedule_type"].str.lower()
    months_ok = _bool(frame["schedule_months"].str.lower().str.fullmatch(MONTHS_LIST))
    plain = (_bool(kind == "date") & _bool(frame["schedule_days"].str.fullmatch(DAYS_LIST)) & months_ok) | (
        _bool(kind == "day") & _bool(frame["schedule_weekdays"].str.lower().str.fullmatch(WEEKDAYS_LIST)) & months_ok
    )
    full = _bool(kind == "full_date") & _bool(frame["schedule_dates"].str.fullmatch(DATES_LIST))
    if full.any():
        dates = frame["schedule_dates"][full]
        few = _bool(dates.str.count(r"\|") < MAX_FULL_DATES)
        parts = dates.str.split("|").explode()
        parsed = parse_dates(parts.astype(str))
        good = (parsed.notna() & (parsed >= pd.Timestamp(today))).groupby(level=0).all()
        full_ok = np.zeros(len(frame), dtype=bool)
        full_ok[frame.index.get_indexer(good.index[good.to_numpy(dtype=bool)])] = True
        full_ok[np.flatnonzero(full)[~few]] = False
        plain |= full_ok
    rest = ~plain
    if not rest.any():
        return
    cells = [frame[column][rest] for column in SCHEDULE_COLUMNS]
    combos = cells[0]
    for cell in cells[1:]:
        combos = combos + "\x1f" + cell
    faults: dict[tuple[str, str], list[str]] = {}
    for combo in combos.unique():
        _, column, reason = parse_schedule(*combo.split("\x1f"), today=today)
        if column:
            faults.setdefault((column, reason), []).append(combo)
    positions = np.flatnonzero(rest)
    for (column, reason), members in faults.items():
        mask = np.zeros(len(frame), dtype=bool)
        mask[positions[_bool(combos.isin(members))]] = True
        flags.flag(column, mask, reason)


def _split(cell: str) -> list[str]:
    return [part for part in re.split(r"[|;,\s]+", cell.strip()) if part]


def parse_schedule(
    kind: str, days: str, weekdays: str, months: str, dates: str, *, today: date
) -> tuple[dict | None, str, str]:
    """(Schedule.to_dict(), "", "") or (None, column at fault, reason)."""
    kind = kind.strip().lower()
    try:
        month_values = list(range(1, 13)) if months.strip().lower() == "all" else [int(m) for m in _split(months)]
        if kind == "date":
            return Schedule.by_date([int(d) for d in _split(days)], month_values).to_dict(), "", ""
        if kind == "day":
            values = [WEEKDAYS[w.lower()[:3]] if not w.isdigit() else int(w) for w in _split(weekdays)]
            return Schedule.by_day(values, month_values).to_dict(), "", ""
        if kind == "full_date":
            parsed = parse_dates(pd.Series(_split(dates), dtype=str))
            if parsed.isna().any():
                return None, "schedule_dates", "Not a date: YYYY-MM-DD or DD/MM/YYYY, separated by |."
            return Schedule.full_dates([d.date() for d in parsed], today=today).to_dict(), "", ""
    except ScheduleError as error:
        text = str(error)
        column = (
            "schedule_months"
            if "month" in text.lower()
            else "schedule_weekdays"
            if "weekday" in text.lower()
            else "schedule_dates"
            if "date" in text.lower() and kind == "full_date"
            else "schedule_days"
        )
        return None, column, text
    except (ValueError, KeyError):  # not numbers / unknown weekday names
        column = {"date": "schedule_days", "day": "schedule_weekdays"}.get(kind, "schedule_type")
        if any(not m.isdigit() for m in _split(months)) and months.strip().lower() != "all":
            column = "schedule_months"
        return None, column, "Not a list of numbers or names separated by |."
    if not kind:
        return None, "schedule_type", "Required."
    return None, "schedule_type", "Use date, day or full_date."

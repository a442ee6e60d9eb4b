"""Cell-by-cell validation of an upload (B2), vectorised by column with pandas.

``validate`` returns a frame of reasons the shape of the file ("" where the cell is valid), so every
invalid cell keeps its own reason. The common checks (required, formats, Luhn, ranges, duplicates in the
file and against what is stored) run per column, not per cell; schedules are parsed once per distinct
combination of their cells (a file repeats few of them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import numpy as np
import pandas as pd

from billing_bo.lib.money import format_rupiah
from recurring.schedule import Schedule, ScheduleError

PHONE = r"\+?\d{8,15}"
EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"
AMOUNT = r"\d+|\d{1,3}(?:\.\d{3})+"
REFERENCE = r"[A-Za-z0-9][A-Za-z0-9_./-]{0,63}"
FORMULA = r"[=@\t\r]"
WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
TEXT_COLUMNS_WITH_PAN = ("customer_name", "holder_name", "description")


@dataclass
class Result:
    reasons: pd.DataFrame  # "" or the reason, per cell
    invalid: pd.Series  # per row
    amounts: pd.Series  # Decimal-able integers, NaN where invalid
    schedules: pd.Series | None  # Schedule.to_dict() per row (registration)
    execute_dates: pd.Series | None  # datetime64 per row (single payment)

    @property
    def invalid_count(self) -> int:
        return int(self.invalid.sum())


def luhn_ok(digits: pd.Series) -> pd.Series:
    """Luhn over a column of digit strings (13-19 long), with numpy: no Python loop per card."""
    if digits.empty:
        return pd.Series([], dtype=bool, index=digits.index)
    padded = digits.str.rjust(19, "0").to_numpy(dtype="U19")
    matrix = np.frombuffer(padded.astype("S19").tobytes(), dtype=np.uint8).reshape(-1, 19) - ord("0")
    doubled = matrix[:, -2::-2] * 2  # every second digit from the right, check digit excluded
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    total = matrix[:, -1::-2].sum(axis=1) + doubled.sum(axis=1)
    return pd.Series(total % 10 == 0, index=digits.index)


def parse_dates(column: pd.Series) -> pd.Series:
    """YYYY-MM-DD or DD/MM/YYYY; NaT where neither."""
    iso = pd.to_datetime(column, format="%Y-%m-%d", errors="coerce")
    dmy = pd.to_datetime(column, format="%d/%m/%Y", errors="coerce")
    return iso.fillna(dmy)


def mask_card_column(column: pd.Series) -> pd.Series:
    digits = column.str.replace(r"[\s-]", "", regex=True)
    long = digits.str.len() >= 13
    masked = (
        digits.str.slice(0, 6) + digits.str.len().sub(10).clip(lower=0).map(lambda n: "*" * n) + digits.str.slice(-4)
    )
    short = digits.str.len().between(5, 12)
    return masked.where(long, ("*" * 4 + digits.str.slice(-4)).where(short, column))


class _Flags:
    def __init__(self, frame: pd.DataFrame):
        self.reasons = pd.DataFrame("", index=frame.index, columns=frame.columns)

    def flag(self, column: str, mask: pd.Series, reason: str) -> None:
        """Record ``reason`` for the cells of ``column`` under ``mask`` that have no reason yet."""
        target = mask & (self.reasons[column] == "")
        if target.any():
            self.reasons.loc[target, column] = reason


def validate(
    frame: pd.DataFrame,
    kind: str,
    *,
    today: date,
    min_amount: Decimal,
    max_amount: Decimal,
    stored_keys: set[str],
) -> Result:
    flags = _Flags(frame)
    empty = frame == ""

    # Formula cells (=HYPERLINK(...)): refused everywhere, before any other rule names the cell.
    for column in frame.columns:
        starts = frame[column].str.match(FORMULA) | (frame[column].str.startswith("+") & ~column.endswith("phone"))
        flags.flag(column, starts, "Formulas are not accepted: remove the leading = + @ or tab.")

    from .columns import COLUMNS

    for spec in COLUMNS[kind]:
        if spec.required:
            flags.flag(spec.name, empty[spec.name], "Required.")

    # Card number: digits only (spaces and dashes allowed), 13-19 long, Luhn.
    digits = frame["card_number"].str.replace(r"[\s-]", "", regex=True)
    well_formed = digits.str.fullmatch(r"\d{13,19}")
    flags.flag("card_number", ~well_formed & ~empty["card_number"], "Not a card number: 13 to 19 digits.")
    luhn = pd.Series(False, index=frame.index)
    luhn[well_formed] = luhn_ok(digits[well_formed])
    flags.flag("card_number", well_formed & ~luhn, "This card number fails the check digit (Luhn): a typo?")

    # Expiry MM/YY, not before this month.
    parts = frame["expiry"].str.extract(r"^(0[1-9]|1[0-2])/(\d{2})$")
    bad_expiry = parts[0].isna() & ~empty["expiry"]
    flags.flag("expiry", bad_expiry, "Not an expiry date: MM/YY.")
    months = (2000 + pd.to_numeric(parts[1], errors="coerce")) * 12 + pd.to_numeric(parts[0], errors="coerce")
    flags.flag("expiry", months < today.year * 12 + today.month, "This card has expired.")

    # Amount: whole Rupiah, plain or with . thousands separators, within the merchant's limits.
    amount_ok = frame["amount"].str.fullmatch(AMOUNT)
    flags.flag("amount", ~amount_ok & ~empty["amount"], "Not a whole Rupiah amount: 250000 or 250.000.")
    amounts = pd.to_numeric(frame["amount"].where(amount_ok).str.replace(".", "", regex=False), errors="coerce")
    out_of_range = amounts.notna() & ((amounts < float(min_amount)) | (amounts > float(max_amount)))
    flags.flag("amount", out_of_range, f"Must be between {format_rupiah(min_amount)} and {format_rupiah(max_amount)}.")

    for column in ("phone", "holder_phone"):
        if column in frame:
            flags.flag(
                column,
                ~empty[column] & ~frame[column].str.fullmatch(PHONE),
                "Not a mobile number: 8 to 15 digits, optional +.",
            )
    if "email" in frame:
        flags.flag("email", ~empty["email"] & ~frame["email"].str.fullmatch(EMAIL), "Not an email address.")

    key = "billing_number" if kind == "registration" else "invoice_number"
    flags.flag(key, ~empty[key] & ~frame[key].str.fullmatch(REFERENCE), "Use letters, digits, - _ . / (at most 64).")
    flags.flag(key, ~empty[key] & frame[key].duplicated(keep=False), "Appears more than once in this file.")
    used = "Registered already." if kind == "registration" else "This invoice number is used already."
    flags.flag(key, frame[key].isin(stored_keys), used)

    schedules = execute_dates = None
    if kind == "registration":
        types = frame["type"].str.lower()
        flags.flag("type", ~empty["type"] & ~types.isin(["recurring", "reminder"]), "Use recurring or reminder.")
        schedules = _schedules(frame, flags, today)
    else:
        neither = empty["billing_number"] & empty["customer_id"]
        flags.flag("billing_number", neither, "Give a billing_number or a customer_id.")
        flags.flag(
            "billing_number",
            ~empty["billing_number"] & ~frame["billing_number"].str.fullmatch(REFERENCE),
            "Use letters, digits, - _ . / (at most 64).",
        )
        execute_dates = parse_dates(frame["execute_date"])
        flags.flag(
            "execute_date", execute_dates.isna() & ~empty["execute_date"], "Not a date: YYYY-MM-DD or DD/MM/YYYY."
        )
        flags.flag("execute_date", execute_dates < pd.Timestamp(today), "This date is in the past.")

    reasons = flags.reasons
    return Result(
        reasons=reasons,
        invalid=(reasons != "").any(axis=1),
        amounts=amounts,
        schedules=schedules,
        execute_dates=execute_dates,
    )


SCHEDULE_COLUMNS = ("schedule_type", "schedule_days", "schedule_weekdays", "schedule_months", "schedule_dates")


def _schedules(frame: pd.DataFrame, flags: _Flags, today: date) -> pd.Series:
    """Parse each distinct schedule once; flag the column at fault on every row that uses it."""
    combos = frame[list(SCHEDULE_COLUMNS)].agg("\x1f".join, axis=1)
    parsed: dict[str, tuple[dict | None, str, str]] = {}
    for combo in combos.unique():
        parsed[combo] = parse_schedule(*combo.split("\x1f"), today=today)
    results = combos.map(parsed)
    for column in SCHEDULE_COLUMNS:
        for reason in {r for _, c, r in parsed.values() if c == column}:
            mask = results.map(lambda result, column=column, reason=reason: result[1] == column and result[2] == reason)
            flags.flag(column, mask, reason)
    return results.map(lambda result: result[0])


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

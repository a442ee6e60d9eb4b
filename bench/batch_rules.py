"""The peers' validation of a registration row: the app's rules (batch/validation.py) written the way a
per-row importer writes them, one cell at a time in plain Python (compiled regexes, datetime, the Luhn
helper of billing_bo.lib.cards). B2's "plain per-row loop" runs ``row_errors`` over the file; B1's
django-import-export resource calls ``cell_error`` from its widgets.

The rules run in the app's order of priority: a formula start, a control character in a free-text
column, a cell longer than its field, then required and the column's format. The reason texts of the
first two, the free-text columns and the fields' lengths are the app's own (batch.validation).

Same cells, same first reason per cell as the app for the kinds of bad cells B1/B2 plant (one bad cell
per row: a row with two bad schedule cells gets one reason in both).
"""

from __future__ import annotations

import re
from datetime import date, datetime

from batch.validation import CONTROL_REASON, FORMULA_REASON, LINE_BREAKS_ALLOWED, TEXT_COLUMNS, max_lengths
from billing_bo.lib.cards import luhn_valid
from billing_bo.lib.money import format_rupiah
from recurring.schedule import MAX_FULL_DATES

PHONE = re.compile(r"\+?[0-9]{8,15}")
EMAIL = re.compile(r"[^@ \t\n\r\f\v]+@[^@ \t\n\r\f\v]+\.[^@ \t\n\r\f\v]+")
AMOUNT = re.compile(r"[0-9]+|[0-9]{1,3}(?:\.[0-9]{3})+")
REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,63}")
CARD = re.compile(r"[0-9]{13,19}")
EXPIRY = re.compile(r"(0[1-9]|1[0-2])/([0-9]{2})")
SEPARATORS = re.compile(r"[|;,\s]+")
FORMULA_STARTS = ("=", "@")  # in any column; + too except in a phone, - too in a text column (cells are stripped)
# Per free-text column: a control character it may not hold (C0, DEL, C1; a description keeps line breaks).
CONTROL = {
    column: re.compile(
        r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]" if column in LINE_BREAKS_ALLOWED else r"[\x00-\x1f\x7f-\x9f]"
    )
    for column in TEXT_COLUMNS
}
WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
REQUIRED = {
    "billing_number",
    "customer_id",
    "customer_name",
    "card_number",
    "expiry",
    "holder_name",
    "amount",
    "type",
    "schedule_type",
}
SCHEDULE = ("schedule_type", "schedule_days", "schedule_weekdays", "schedule_months", "schedule_dates")


class Rules:
    def __init__(self, *, today: date, min_amount, max_amount, stored: set[str]):
        self.today, self.stored, self.seen = today, stored, set()
        self.min_amount, self.max_amount = int(min_amount), int(max_amount)
        self.max_lengths = max_lengths("registration")  # the billing's text fields' lengths
        self.range_text = f"Must be between {format_rupiah(min_amount)} and {format_rupiah(max_amount)}."

    def row_errors(self, row: dict[str, str]) -> dict[str, str]:
        errors = {}
        schedule_fault = self.schedule_fault(row)
        for column, value in row.items():
            reason = self.cell_error(column, value.strip(), row, schedule_fault)
            if reason:
                errors[column] = reason
        return errors

    def cell_error(self, column: str, value: str, row: dict[str, str], schedule_fault=None) -> str:
        first = value[:1]
        if (
            first in FORMULA_STARTS
            or (first == "+" and not column.endswith("phone"))
            or (first == "-" and column in TEXT_COLUMNS)
        ):
            return FORMULA_REASON
        control = CONTROL.get(column)
        if control is not None and control.search(value):
            return CONTROL_REASON
        most = self.max_lengths.get(column)
        if most is not None and len(value) > most:
            return f"At most {most} characters."
        if not value:
            return "Required." if column in REQUIRED else ""
        if column == "card_number":
            digits = value.replace(" ", "").replace("-", "")
            if not CARD.fullmatch(digits):
                return "Not a card number: 13 to 19 digits."
            if not luhn_valid(digits):
                return "This card number fails the check digit (Luhn): a typo?"
        elif column == "expiry":
            match = EXPIRY.fullmatch(value)
            if not match:
                return "Not an expiry date: MM/YY."
            if (2000 + int(match[2])) * 12 + int(match[1]) < self.today.year * 12 + self.today.month:
                return "This card has expired."
        elif column == "amount":
            if not AMOUNT.fullmatch(value):
                return "Not a whole Rupiah amount: 250000 or 250.000."
            if not self.min_amount <= int(value.replace(".", "")) <= self.max_amount:
                return self.range_text
        elif column in ("phone", "holder_phone"):
            if not PHONE.fullmatch(value):
                return "Not a mobile number: 8 to 15 digits, optional +."
        elif column == "email":
            if not EMAIL.fullmatch(value):
                return "Not an email address."
        elif column == "billing_number":
            if not REFERENCE.fullmatch(value):
                return "Use letters, digits, - _ . / (at most 64)."
            if value in self.seen:
                return "Appears more than once in this file."
            self.seen.add(value)
            if value in self.stored:
                return "Registered already."
        elif column == "type":
            if value.lower() not in ("recurring", "reminder"):
                return "Use recurring or reminder."
        elif column in SCHEDULE:
            fault = self.schedule_fault(row) if schedule_fault is None else schedule_fault
            if fault and fault[0] == column:
                return fault[1]
        return ""

    def schedule_fault(self, row: dict[str, str]) -> tuple[str, str] | tuple[()]:
        """(column, reason) of the schedule cell at fault, or ()."""
        kind = row["schedule_type"].strip().lower()
        months = row["schedule_months"].strip()
        if kind in ("date", "day"):
            if kind == "date":
                column, low, high, values = "schedule_days", 1, 28, row["schedule_days"]
                parts = SEPARATORS.split(values.strip())
            else:
                column, low, high = "schedule_weekdays", 0, 6
                parts = [WEEKDAYS.get(part.lower()[:3], part) for part in SEPARATORS.split(row[column].strip())]
            if not self._numbers([str(part) for part in parts if part != ""], low, high):
                return (column, "Not a list of numbers 1-28 / weekdays separated by |.")
            if months.lower() != "all" and not self._numbers(
                [part for part in SEPARATORS.split(months) if part], 1, 12
            ):
                return ("schedule_months", "Months must be 1 to 12.")
            return ()
        if kind == "full_date":
            parts = [part for part in SEPARATORS.split(row["schedule_dates"].strip()) if part]
            dates = [self._date(part) for part in parts]
            if not parts or None in dates:
                return ("schedule_dates", "Not a date: YYYY-MM-DD or DD/MM/YYYY, separated by |.")
            if min(dates) < self.today or len(set(dates)) > MAX_FULL_DATES:
                return ("schedule_dates", "A Full Date cannot be in the past.")
            return ()
        return ("schedule_type", "Use date, day or full_date.") if kind else ()

    @staticmethod
    def _numbers(parts: list[str], low: int, high: int) -> bool:
        return bool(parts) and all(part.isdigit() and low <= int(part) <= high for part in parts)

    @staticmethod
    def _date(text: str) -> date | None:
        for layout in ("%Y-%m-%d", "%d/%m/%Y"):
            try:
                return datetime.strptime(text, layout).date()
            except ValueError:
                continue
        return None

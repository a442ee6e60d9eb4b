"""The columns of the two upload files (B1), in one place: the templates, the page and the README read these."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Column:
    name: str
    required: bool
    help: str
    # Two example cells, or for a date column a function of the merchant's today giving them, so the
    # template a user downloads today still validates unchanged on any later day.
    example: tuple[str, str] | Callable[[date], tuple[str, str]]

    def examples(self, today: date) -> tuple[str, str]:
        return self.example(today) if callable(self.example) else self.example


def _expiries(today: date) -> tuple[str, str]:
    """Cards expiring three and four years from now (MM/YY), as a freshly issued card does."""
    return f"12/{(today.year + 3) % 100:02d}", f"06/{(today.year + 4) % 100:02d}"


def _execute_dates(today: date) -> tuple[str, str]:
    """A few days and a few weeks ahead, one in each accepted format."""
    return f"{today + timedelta(days=3):%Y-%m-%d}", f"{today + timedelta(days=17):%d/%m/%Y}"


def _invoice_numbers(today: date) -> tuple[str, str]:
    return f"INV-{today:%Y%m}-0001", f"INV-{today:%Y%m}-0002"


# The card, the same in both files.
CARD = (
    Column(
        "card_number",
        True,
        "13-19 digits (spaces allowed); shown masked after upload",
        ("4111 1111 1111 1111", "5555 5555 5555 4444"),
    ),
    Column("expiry", True, "MM/YY, not in the past", _expiries),
    Column("holder_name", True, "Name on the card", ("ANDI WIJAYA", "SITI RAHMAWATI")),
    Column("holder_phone", False, "Card holder's mobile number", ("+6281234567890", "")),
)

REGISTRATION = (
    Column("billing_number", True, "Unique per merchant; letters, digits, - and _", ("GYM-1001", "GYM-1002")),
    Column("customer_id", True, "Your customer's ID", ("CUST-501", "CUST-502")),
    Column("customer_name", True, "Customer's full name", ("Andi Wijaya", "Siti Rahmawati")),
    Column("email", False, "Customer's email", ("andi@example.com", "siti@example.com")),
    Column("phone", False, "Customer's mobile number, 8-15 digits, optional +", ("+6281234567890", "081298765432")),
    *CARD,
    Column("amount", True, "Whole Rupiah: 250000 or 250.000", ("250000", "1.250.000")),
    Column("type", True, "recurring (charged) or reminder (notification only)", ("recurring", "reminder")),
    Column("schedule_type", True, "date, day or full_date", ("date", "day")),
    Column("schedule_days", False, "date: execute days 1-28, separated by |", ("1|15", "")),
    Column("schedule_weekdays", False, "day: mon|tue|wed|thu|fri|sat|sun (or 0-6, 0 = Monday)", ("", "mon|fri")),
    Column("schedule_months", False, "date and day: 1-12 separated by |, or all", ("all", "1|4|7|10")),
    Column("schedule_dates", False, "full_date: YYYY-MM-DD or DD/MM/YYYY separated by |", ("", "")),
)

SINGLE_PAYMENT = (
    Column("invoice_number", True, "Unique per merchant", _invoice_numbers),
    # The first row names the merchant's first billing when it has one (``example_rows``).
    Column("billing_number", False, "One of your billings' numbers (this or customer_id)", ("", "")),
    Column("customer_id", False, "Customer ID (this or billing_number)", ("CUST-501", "CUST-502")),
    *CARD,
    Column("amount", True, "Whole Rupiah: 250000 or 250.000", ("499000", "1.250.000")),
    Column("execute_date", True, "YYYY-MM-DD or DD/MM/YYYY, today or later", _execute_dates),
    Column("description", False, "Shown on reports", ("Personal training pack", "Annual fee")),
)

COLUMNS = {"registration": REGISTRATION, "single_payment": SINGLE_PAYMENT}


def names(kind: str) -> list[str]:
    return [column.name for column in COLUMNS[kind]]


def example_rows(kind: str, today: date, billing_number: str = "") -> list[list[str]]:
    """The template's two example rows of a kind, valid on ``today`` (the merchant's local date) for a
    merchant whose billings include ``billing_number``: the single payment template's first row names it
    (a billing_number must be one of the merchant's billings); without one, that row gives a customer_id."""
    cells = {column.name: column.examples(today) for column in COLUMNS[kind]}
    if kind == "single_payment" and billing_number:
        cells["billing_number"] = (billing_number, "")
        cells["customer_id"] = ("", cells["customer_id"][1])
    return [[pair[i] for pair in cells.values()] for i in (0, 1)]


def pack(cells: dict[str, str]) -> list[str] | dict[str, str]:
    """A row's cells as ``[kind, cell, cell, ...]`` in the kind's column order when its keys are exactly
    one kind's columns (what a stored row holds: the names are not repeated on every row), else as given."""
    keys = list(cells)
    for kind in COLUMNS:
        if keys == names(kind):
            return [kind, *cells.values()]
    return cells


def unpack(value):
    """``pack``'s inverse: ``[kind, cell, ...]`` back to ``{column: cell}``; anything else as it is."""
    if isinstance(value, list) and value and value[0] in COLUMNS and len(value) == len(COLUMNS[value[0]]) + 1:
        return dict(zip(names(value[0]), value[1:], strict=True))
    return value

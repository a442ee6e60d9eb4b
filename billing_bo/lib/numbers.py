"""Counts are written as amounts are (``billing_bo.lib.money``): with thousands dots, ``20.000``."""

from __future__ import annotations

from decimal import Decimal


def format_number(number: Decimal | int | None) -> str:
    value = int(Decimal(number or 0).to_integral_value())
    return f"{value:,}".replace(",", ".")

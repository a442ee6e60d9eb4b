"""Money is whole Rupiah, shown as ``Rp 1.250.000``."""

from __future__ import annotations

from decimal import Decimal


def format_number(number: Decimal | int | None) -> str:
    """A whole number with thousands dots, as the app writes Rupiah: ``20.000``."""
    value = int(Decimal(number or 0).to_integral_value())
    return f"{value:,}".replace(",", ".")


def format_rupiah(amount: Decimal | int | None) -> str:
    value = int(Decimal(amount or 0).to_integral_value())
    sign = "-" if value < 0 else ""
    return f"{sign}Rp {format_number(abs(value))}"

"""Money is whole Rupiah, shown as ``Rp 1.250.000``."""

from __future__ import annotations

from decimal import Decimal


def format_rupiah(amount: Decimal | int | None) -> str:
    value = int(Decimal(amount or 0).to_integral_value())
    sign = "-" if value < 0 else ""
    return f"{sign}Rp {abs(value):,}".replace(",", ".")

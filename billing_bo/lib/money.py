"""Money is whole Rupiah, shown as ``Rp 1.250.000``, typed as ``1250000`` or ``1.250.000``."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms

# The amount columns of every model: whole Rupiah up to 10^14 - 1.
MONEY = {"max_digits": 14, "decimal_places": 0}


def format_number(number: Decimal | int | None) -> str:
    """A whole number with thousands dots, as amounts and counts are written: ``20.000``."""
    value = int(Decimal(number or 0).to_integral_value())
    return f"{value:,}".replace(",", ".")


def format_rupiah(amount: Decimal | int | None) -> str:
    value = int(Decimal(amount or 0).to_integral_value())
    sign = "-" if value < 0 else ""
    return f"{sign}Rp {format_number(abs(value))}"


def parse_rupiah(value: str) -> Decimal:
    """``1.250.000``, ``1250000`` or ``Rp 1.250.000`` -> Decimal("1250000"); anything else is refused."""
    text = re.sub(r"^\s*(rp\.?)?\s*", "", str(value), flags=re.IGNORECASE).strip()
    if not re.fullmatch(r"\d{1,3}(\.\d{3})+|\d+", text):
        raise forms.ValidationError("Enter a whole Rupiah amount, e.g. 1250000 or 1.250.000.")
    return Decimal(text.replace(".", ""))


class RupiahField(forms.Field):
    """Whole Rupiah typed the way people write it; cleans to a Decimal."""

    widget = forms.TextInput(attrs={"inputmode": "numeric"})

    def to_python(self, value):
        value = (value or "").strip()
        return parse_rupiah(value) if value else None

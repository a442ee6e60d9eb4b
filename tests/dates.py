"""Dates that stay valid on any run date (TESTING "Time"): computed from today, which is the frozen
day inside ``time_machine.travel`` and the real one elsewhere, so no calendar can overtake them."""

from __future__ import annotations

import calendar
from datetime import date


def card_year(years: int = 4) -> int:
    """The expiry year of a card issued today that is valid ``years`` more years."""
    return date.today().year + years


def card_expiry(years: int = 4, month: int = 12) -> str:
    """The same card's expiry as a cardholder types it: MM/YY."""
    return f"{month:02d}/{card_year(years) % 100:02d}"


def next_leap_year(after: int | None = None) -> int:
    year = (after if after is not None else date.today().year) + 1
    while not calendar.isleap(year):
        year += 1
    return year

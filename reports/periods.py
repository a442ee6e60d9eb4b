"""Dashboard periods (D1): a week (Monday to Sunday) or a calendar month, stepped back from today."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

WEEKLY = "weekly"
MONTHLY = "monthly"
KINDS = (WEEKLY, MONTHLY)


@dataclass(frozen=True)
class Period:
    kind: str
    start: date
    end: date  # inclusive
    back: int  # how many periods before the current one

    @property
    def label(self) -> str:
        if self.kind == MONTHLY:
            return self.start.strftime("%B %Y")
        return f"{self.start:%d %b} – {self.end:%d %b %Y}"

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def period_for(kind: str, today: date, back: int = 0) -> Period:
    if kind not in KINDS:
        kind = WEEKLY
    back = max(0, back)
    if kind == WEEKLY:
        start = today - timedelta(days=today.weekday()) - timedelta(weeks=back)
        return Period(kind, start, start + timedelta(days=6), back)
    year, month = today.year, today.month - back
    while month < 1:
        year, month = year - 1, month + 12
    last = calendar.monthrange(year, month)[1]
    return Period(kind, date(year, month, 1), date(year, month, last), back)

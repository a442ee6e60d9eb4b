"""Dashboard periods (D1): a week (Monday to Sunday) or a calendar month, stepped back from today.

Days are merchant-local dates (execute dates are), so a period is a plain date range; ``bounds`` gives the
aware datetimes of its first and last local midnight for timestamps such as a billing's ``created_at``.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

WEEKLY = "weekly"
MONTHLY = "monthly"
KINDS = (WEEKLY, MONTHLY)
MAX_BACK = 520  # ten years of weeks: further back is a typo, not a period anyone keeps data for


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

    @property
    def rollup_period(self) -> str:
        """The ``reports.models.Period`` that keeps this period's unique billing numbers."""
        return "month" if self.kind == MONTHLY else "week"

    def bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """[first local midnight, the midnight after the last day) in ``tz``."""
        return (
            datetime.combine(self.start, time.min, tzinfo=tz),
            datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=tz),
        )


def period_for(kind: str, today: date, back: int = 0) -> Period:
    if kind not in KINDS:
        kind = WEEKLY
    back = min(max(0, back), MAX_BACK)
    if kind == WEEKLY:
        start = today - timedelta(days=today.weekday()) - timedelta(weeks=back)
        return Period(kind, start, start + timedelta(days=6), back)
    year, month = today.year, today.month - back
    while month < 1:
        year, month = year - 1, month + 12
    last = calendar.monthrange(year, month)[1]
    return Period(kind, date(year, month, 1), date(year, month, last), back)


def period_from_params(params, today: date) -> Period:
    """The period a request asks for (``period``, ``back``); anything unreadable means the current week."""
    try:
        back = int(params.get("back", "0"))
    except (TypeError, ValueError):
        back = 0
    return period_for(params.get("period", WEEKLY), today, back)

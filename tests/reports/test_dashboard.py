from __future__ import annotations

from datetime import date

import pytest
import time_machine

from reports.periods import MONTHLY, WEEKLY, period_for
from tests.conftest import verified_client


@pytest.mark.parametrize(
    ("kind", "today", "back", "start", "end"),
    [
        (WEEKLY, date(2026, 11, 25), 0, date(2026, 11, 23), date(2026, 11, 29)),
        (WEEKLY, date(2026, 11, 23), 1, date(2026, 11, 16), date(2026, 11, 22)),
        (WEEKLY, date(2026, 1, 1), 0, date(2025, 12, 29), date(2026, 1, 4)),
        (MONTHLY, date(2026, 11, 25), 0, date(2026, 11, 1), date(2026, 11, 30)),
        (MONTHLY, date(2026, 3, 31), 1, date(2026, 2, 1), date(2026, 2, 28)),
        (MONTHLY, date(2026, 1, 15), 13, date(2024, 12, 1), date(2024, 12, 31)),
        ("nonsense", date(2026, 11, 25), -4, date(2026, 11, 23), date(2026, 11, 29)),
    ],
)
def test_periods_are_monday_weeks_and_calendar_months(kind, today, back, start, end):
    period = period_for(kind, today, back)
    assert (period.start, period.end) == (start, end)
    assert len(period.days) == (end - start).days + 1


def test_dashboard_shows_the_period_of_the_merchants_local_day(alice):
    # 2026-11-29 20:00 UTC is Monday 30 November 03:00 in Jakarta: a new week there.
    with time_machine.travel("2026-11-29 20:00:00+00:00", tick=False):
        response = verified_client(alice).get("/")
    assert response.status_code == 200
    assert response.context["period"].start == date(2026, 11, 30)
    page = response.content.decode()
    assert "Weekly" in page and "Monthly" in page and "No transactions" in page
    assert "Alpha Gym" in page


def test_dashboard_steps_back_and_ignores_a_bad_step(alice):
    client = verified_client(alice)
    with time_machine.travel("2026-11-25 05:00:00+00:00", tick=False):
        assert client.get("/", {"period": "monthly", "back": "2"}).context["period"].start == date(2026, 9, 1)
        assert client.get("/", {"period": "monthly", "back": "x"}).context["period"].start == date(2026, 11, 1)

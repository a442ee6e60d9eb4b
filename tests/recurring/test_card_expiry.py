"""Which billings' cards are expiring (issue #19): valid through the last day of the expiry month in the
merchant's time zone; expiring within the policy's days or before the next execute date. Dates are derived
from today's year and the clock is frozen (time_machine)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone as dj_timezone

from recurring import card_expiry
from recurring.models import Billing, RetryPolicy
from recurring.schedule import Schedule
from tests.conftest import verified_client
from tests.dates import next_leap_year
from tests.recurring.conftest import make_billing

YEAR = date.today().year + 1  # a year to come: frozen inside it, nothing in it is "past"
MONTHLY = Schedule.by_date([5], range(1, 13))


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def policy(merchant, days: int) -> None:
    RetryPolicy.objects.update_or_create(
        merchant=merchant, defaults={"retry_codes": ["51"], "retry_after_days": [1, 3], "expiring_days": days}
    )


def billing_with(merchant, card_expiry: date, next_execute_date: date | None, **fields) -> Billing:
    billing = make_billing(merchant, MONTHLY, **fields)
    Billing.objects.filter(pk=billing.pk).update(card_expiry=card_expiry, next_execute_date=next_execute_date)
    billing.refresh_from_db()
    return billing


def expiring_numbers(merchant) -> set[str]:
    return set(card_expiry.expiring_billings(merchant).values_list("billing_number", flat=True))


@pytest.mark.parametrize(
    ("time_zone", "expiring"),
    [("Asia/Jakarta", True), ("Asia/Jayapura", True), ("America/New_York", False), ("UTC", False)],
)
def test_the_day_before_the_card_runs_out_is_counted_in_the_merchants_own_time_zone(merchant, time_zone, expiring):
    """A card of February runs out after the 28th; with 1 day's notice it is expiring from the 27th, which
    comes earlier east of UTC (Jakarta +7, Jayapura +9) than west of it."""
    merchant.time_zone = time_zone
    merchant.save(update_fields=["time_zone"])
    policy(merchant, days=1)
    last_day = card_expiry.month_end(date(YEAR, 2, 1))
    billing = billing_with(merchant, last_day, next_execute_date=last_day - timedelta(days=1))
    # 20:00 UTC two days before the last day: already the next day in Indonesia, still that day in New York
    instant = datetime.combine(last_day - timedelta(days=2), datetime.min.time(), UTC) + timedelta(hours=20)
    with time_machine.travel(instant, tick=False):
        assert merchant.local_today() == dj_timezone.localtime(instant, merchant.tzinfo).date()
        assert (billing.billing_number in expiring_numbers(merchant)) is expiring
        assert card_expiry.marker(merchant)(billing) is expiring


def test_a_card_that_runs_out_before_the_next_execute_date_is_expiring_across_the_year_end(merchant):
    policy(merchant, days=0)
    runs_out_in_december = billing_with(merchant, date(YEAR, 12, 31), next_execute_date=date(YEAR + 1, 1, 5))
    valid_in_january = billing_with(merchant, date(YEAR + 1, 1, 31), next_execute_date=date(YEAR + 1, 1, 5))
    valid_on_the_day = billing_with(merchant, date(YEAR + 1, 1, 31), next_execute_date=date(YEAR + 1, 1, 31))
    with time_machine.travel(utc(YEAR, 12, 20, 3), tick=False):
        assert expiring_numbers(merchant) == {runs_out_in_december.billing_number}
        marked = card_expiry.marker(merchant)
        assert [marked(b) for b in (runs_out_in_december, valid_in_january, valid_on_the_day)] == [True, False, False]


def test_within_the_policys_days_a_card_is_expiring_whatever_the_next_date(merchant):
    policy(merchant, days=30)  # the default
    assert RetryPolicy.for_merchant(merchant).expiring_days == 30
    in_30_days = billing_with(merchant, date(YEAR, 3, 31), next_execute_date=date(YEAR, 3, 5))
    in_31_days = billing_with(merchant, date(YEAR, 4, 30), next_execute_date=date(YEAR, 4, 5))
    ran_out = billing_with(merchant, date(YEAR, 1, 31), next_execute_date=None)  # its Full Dates are spent
    with time_machine.travel(utc(YEAR, 3, 1, 3), tick=False):
        assert expiring_numbers(merchant) == {in_30_days.billing_number, ran_out.billing_number}
        assert not card_expiry.marker(merchant)(in_31_days)


def test_only_charged_billings_are_marked(merchant):
    policy(merchant, days=30)
    runs_out = date(YEAR, 2, 28)
    kept = billing_with(merchant, runs_out, date(YEAR, 3, 5))
    billing_with(merchant, runs_out, date(YEAR, 3, 5), status=Billing.Status.INACTIVE)
    billing_with(merchant, runs_out, date(YEAR, 3, 5), billing_type=Billing.Type.REMINDER)
    billing_with(merchant, runs_out, date(YEAR, 3, 5), deleted_at=dj_timezone.now())
    with time_machine.travel(utc(YEAR, 2, 10, 3), tick=False):
        assert expiring_numbers(merchant) == {kept.billing_number}


def test_cards_expiring_this_month_and_in_30_days_follow_the_merchants_month(merchant):
    """At 20:00 UTC on 31 January it is 1 February in Jakarta: "this month" is February there."""
    leap = next_leap_year(YEAR - 1)
    end_of_february = date(leap, 2, 29)
    for amount in (100_000, 250_000):
        billing_with(merchant, end_of_february, date(leap, 3, 5), amount=amount)
    billing_with(merchant, date(leap, 1, 31), date(leap, 2, 5), amount=40_000)  # runs out in January
    billings = Billing.objects.filter(merchant=merchant)
    with time_machine.travel(utc(leap, 1, 31, 20), tick=False):
        merchant.time_zone = "Asia/Jakarta"
        figures = card_expiry.widget(billings, merchant.local_today())
        assert merchant.local_today() == date(leap, 2, 1)
        assert figures["this_month"] == card_expiry.AtRisk(3, Decimal(390_000))  # January's ran out already
        assert figures["next_30_days"] == card_expiry.AtRisk(3, Decimal(390_000))
        merchant.time_zone = "America/New_York"
        figures = card_expiry.widget(billings, merchant.local_today())
        assert merchant.local_today() == date(leap, 1, 31)
        assert figures["this_month"] == card_expiry.AtRisk(1, Decimal(40_000))
        assert figures["next_30_days"] == card_expiry.AtRisk(3, Decimal(390_000))  # 29 Feb is 29 days away


def test_manage_recurring_marks_expiring_cards_and_lists_them_alone(merchant, alice):
    policy(merchant, days=30)
    today = merchant.local_today()
    expiring = billing_with(merchant, today, next_execute_date=today + timedelta(days=3))
    valid = billing_with(merchant, today + timedelta(days=400), next_execute_date=today + timedelta(days=3))
    client = verified_client(alice)
    page = client.get("/recurring/").content.decode()
    assert page.count('data-testid="card-expiring"') == 1
    listed = client.get("/recurring/?card=expiring").content.decode()
    assert expiring.billing_number in listed and valid.billing_number not in listed

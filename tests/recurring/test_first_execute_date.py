"""The first execute date (R2, R9): a billing whose schedule has today is charged today when it is registered
or changed before today's scheduler run ends, else from its next date; every path uses the same rule
(``scheduler.next_schedulable_day``) and says the date."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from payments.models import Transaction
from recurring import scheduler
from recurring.models import Billing
from recurring.schedule import Schedule
from tests.conftest import make_persona, verified_client
from tests.recurring.conftest import make_billing
from tests.recurring.test_views import CARD, create_link

MONDAY = date(2026, 11, 30)
NEXT_MONDAY = MONDAY + timedelta(days=7)
MONDAYS = {"schedule-kind": "day", "schedule-weekdays": ["0"], "schedule-months": [str(m) for m in range(1, 13)]}


@pytest.fixture
def frozen():
    with time_machine.travel(datetime(2026, 11, 30, 9, tzinfo=ZoneInfo("Asia/Jakarta")), tick=False):
        yield


@pytest.fixture
def rita(merchant):
    return make_persona(merchant, "rita", menus=["manage_recurring", "registration"])


def register(alice, **schedule):
    path = create_link(verified_client(alice), customer_id="CUST-900", amount="350.000")
    return Client().post(path, {**CARD, **(schedule or MONDAYS)})


@pytest.mark.django_db
def test_a_billing_registered_on_an_execute_day_before_the_days_run_is_charged_that_day(merchant, alice, frozen):
    page = register(alice).content.decode()
    billing = Billing.objects.get(source="hosted")
    assert billing.next_execute_date == MONDAY
    assert "First charge on 30 November 2026" in page
    scheduler.run_day(merchant, MONDAY)
    assert Transaction.objects.get(billing=billing).execute_date == MONDAY


@pytest.mark.django_db
def test_a_billing_registered_after_the_days_run_starts_from_its_next_date_and_says_so(merchant, alice, frozen):
    scheduler.run_day(merchant, MONDAY)
    page = register(alice).content.decode()
    billing = Billing.objects.get(source="hosted")
    assert billing.next_execute_date == NEXT_MONDAY
    assert "First charge on 7 December 2026" in page


@pytest.mark.django_db
def test_a_full_date_of_today_after_the_days_run_is_refused_on_the_hosted_page(merchant, alice, frozen):
    scheduler.run_day(merchant, MONDAY)
    page = register(alice, **{"schedule-kind": "full_date", "schedule-dates": "2026-11-30"}).content.decode()
    assert "2026-12-01, the first day that can still run" in page
    assert not Billing.objects.exists()


@pytest.mark.django_db
def test_edit_date_with_a_full_date_of_today_before_the_run_charges_today_and_after_it_is_refused(
    merchant, rita, frozen
):
    billing = make_billing(merchant, Schedule.by_date([15], [1]))
    client, url = verified_client(rita), reverse("recurring:schedule", args=[billing.pk])
    response = client.post(url, {"kind": "full_date", "dates": "2026-11-30"}, follow=True)
    billing.refresh_from_db()
    assert billing.next_execute_date == MONDAY
    assert "Next execute date: 2026-11-30." in response.content.decode()

    other = make_billing(merchant, Schedule.by_date([15], [1]))
    scheduler.run_day(merchant, MONDAY)
    page = client.post(reverse("recurring:schedule", args=[other.pk]), {"kind": "full_date", "dates": "2026-11-30"})
    assert "2026-12-01, the first day that can still run" in page.content.decode()
    other.refresh_from_db()
    assert other.schedule == Schedule.by_date([15], [1])


@pytest.mark.django_db
def test_a_link_whose_fixed_full_dates_have_all_run_is_refused_and_registers_nothing(merchant, alice, frozen):
    path = create_link(
        verified_client(alice),
        customer_id="CUST-900",
        amount="350.000",
        fix_schedule="on",
        **{"schedule-kind": "full_date", "schedule-dates": "2026-11-30"},
    )
    scheduler.run_day(merchant, MONDAY)
    page = Client().post(path, CARD)
    assert page.status_code == 400 and "no date left to run" in page.content.decode()
    assert not Billing.objects.exists()

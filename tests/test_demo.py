"""The demo (``seed_demo``) is made by the product's rules: schedules, the retry policy, the scheduler's days."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command

from accounts.models import Merchant
from payments.models import Transaction
from recurring import scheduler
from recurring.models import Billing, RetryPolicy, SchedulerRun


@pytest.fixture
def demo(db, monkeypatch):
    from payments import tasks

    queued: list[int] = []
    monkeypatch.setattr(tasks.charge_many, "delay", lambda ids: queued.extend(ids))
    call_command("seed_demo", stdout=StringIO())
    merchant = Merchant.objects.get(code="demo")
    return merchant, queued


def test_demo_billings_are_charged_only_on_their_execute_dates_since_their_registration(demo):
    merchant, _ = demo
    executions = Transaction.objects.filter(merchant=merchant, billing__isnull=False).select_related("billing")
    assert executions.count() >= 20
    for tx in executions:
        assert tx.billing.schedule.is_execute_date(tx.execute_date), tx
        assert tx.execute_date >= tx.billing.created_at.astimezone(merchant.tzinfo).date(), tx
        assert tx.invoice_number == scheduler.invoice_number(tx.billing.billing_number, tx.execute_date)


def test_demo_retries_follow_the_policy_and_none_is_left_stale(demo):
    merchant, queued = demo
    today, days = merchant.local_today(), RetryPolicy.for_merchant(merchant).retry_after_days
    rows = Transaction.objects.filter(merchant=merchant)
    retried = rows.filter(billing__isnull=False, attempts__gt=1)
    assert retried.exists()  # the soft-declining billing was retried
    assert all(tx.attempts <= 1 + len(days) for tx in retried)
    assert not rows.filter(status__in=["success", "failed"], next_retry_date__isnull=False).exists()
    for tx in rows.filter(next_retry_date__isnull=False):
        assert tx.status == "scheduled" and tx.next_retry_date > today
        assert (tx.next_retry_date - tx.execute_date).days in days
    assert not rows.filter(status="scheduled", execute_date__lte=today, next_retry_date__isnull=True).exists()
    # the first tick of `make run` finds the demo's days run: nothing old is charged again
    assert SchedulerRun.objects.filter(merchant=merchant, day=today, finished_at__isnull=False).exists()
    scheduler.tick()
    assert queued == []


def test_demo_holders_have_varied_phones_and_registrations_span_earlier_months(demo):
    merchant, _ = demo
    billings = Billing.objects.filter(merchant=merchant)
    assert len(set(billings.values_list("phone", flat=True))) == billings.count()
    holder_phones = Counter(Transaction.objects.filter(merchant=merchant).values_list("holder_phone", flat=True))
    assert len(holder_phones) >= 6
    first_of_month = merchant.local_today().replace(day=1)
    registered = {b.created_at.astimezone(merchant.tzinfo).date() for b in billings}
    assert len({(day.year, day.month) for day in registered}) >= 3
    assert min(registered) < first_of_month - timedelta(days=60)


def test_demo_has_expiring_cards_and_a_declined_charge_recovered_on_an_updated_card(demo):
    from recurring import card_expiry
    from recurring.models import CardChange
    from reports import dashboard
    from reports.periods import period_from_params

    merchant, _ = demo
    today = merchant.local_today()
    assert card_expiry.expiring_billings(merchant).count() >= 3
    assert card_expiry.widget(Billing.objects.filter(merchant=merchant), today)["this_month"].count >= 3
    assert len([message for message in mail.outbox if "is expiring" in message.subject]) >= 3
    recovered = Transaction.objects.get(merchant=merchant, billing__billing_number="GYM-0009", execute_date=today)
    assert (recovered.status, recovered.declined_code, recovered.attempts) == ("success", "54", 2)
    assert CardChange.objects.get(billing=recovered.billing).card_masked == "478801******0546"
    figures = dashboard.recovered(Transaction.objects.filter(merchant=merchant), period_from_params({}, today))
    assert figures.count >= 1 and figures.amount >= recovered.amount

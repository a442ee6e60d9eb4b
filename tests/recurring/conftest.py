"""Recurring fixtures: billings with tokenized test cards on the simulated bank."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from django.core.cache import cache

from accounts.models import Merchant
from payments import services as payments
from payments import tasks
from recurring.models import Billing
from recurring.schedule import Schedule
from recurring.services import refresh_next_date
from tests.dates import card_year

APPROVE = "4111111111111111"
EVERY_DAY = Schedule.by_day(range(7), range(1, 13))
_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def bank(settings, tmp_path):
    settings.SIMULATED_BANK_PATH = str(tmp_path / "bank.sqlite3")
    settings.SIMULATED_BANK_LATENCY_MS = 0
    settings.SIMULATED_BANK_TIMEOUT_RATE = 0
    settings.SIMULATED_BANK_TRANSIENT_RATE = 0


@pytest.fixture(autouse=True)
def fresh_cache():
    """The hosted page counts failed cards per client address in the cache (recurring/card_attempts.py)."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """Transaction ids the scheduler queued for charging (the broker is not under test here)."""
    ids: list[int] = []
    monkeypatch.setattr(tasks.charge_many, "delay", lambda chunk: ids.extend(chunk))
    return ids


def make_billing(
    merchant: Merchant,
    schedule: Schedule = EVERY_DAY,
    *,
    pan: str = APPROVE,
    amount: int = 250_000,
    **fields,
) -> Billing:
    number = next(_numbers)
    billing = Billing(
        merchant=merchant,
        billing_number=fields.pop("billing_number", f"GYM-{number:05d}"),
        customer_id=fields.pop("customer_id", f"CUST-{number:05d}"),
        customer_name=fields.pop("customer_name", "Budi Santoso"),
        email=fields.pop("email", "budi@example.com"),
        phone="+628123456789",
        amount=Decimal(amount),
        source=fields.pop("source", Billing.Source.BATCH),
        **payments.tokenize_card(pan, 12, card_year(), "123", "Budi Santoso", "+628123456789"),
        **fields,
    )
    billing.schedule = schedule
    if billing.next_execute_date is None:
        refresh_next_date(billing)
    billing.save()
    return billing

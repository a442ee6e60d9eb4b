"""Reports fixtures: transactions as the payments app leaves them (for searches, without the bank), the
simulated bank for real charges (for rollups), and an independent count of what the dashboard shows."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest

from accounts.audit import Actor
from accounts.models import Merchant
from billing_bo.lib.cards import card_fingerprint, mask_pan
from payments import services as payments
from payments.acquirer.simulated_cards import brand_for, issuer_for
from payments.models import Transaction
from reports.models import BillingPeriod, DailyRollup, PeriodTotal
from tests.payments.conftest import charged, make_transaction
from tests.recurring.conftest import make_billing

CARD_A = "4111111111111111"  # BCA, approves at the simulated bank
CARD_B = "5555555555554444"  # Bank Mandiri, approves
DECLINE_05 = "4511010000000052"  # CIMB Niaga: 05 Do not honor
INSUFFICIENT_51 = "4622010000000512"  # Danamon: 51 Insufficient funds (retried by the default policy)
# What the dashboard counts, written out here rather than imported, so the tests are an independent check.
REPORTED = ("success", "failed", "voided", "refunded", "partially_refunded")
STILL_SUCCESSFUL = ("success", "partially_refunded")

_invoices = itertools.count(1)


@pytest.fixture(autouse=True)
def bank(settings, tmp_path):
    settings.SIMULATED_BANK_PATH = str(tmp_path / "bank.sqlite3")
    settings.SIMULATED_BANK_LATENCY_MS = 0
    settings.SIMULATED_BANK_LATENCY_P99_MS = 0
    settings.SIMULATED_BANK_TIMEOUT_RATE = 0
    settings.SIMULATED_BANK_TRANSIENT_RATE = 0


def card_fields(pan: str, holder: str = "Budi Santoso", phone: str = "+628123456789") -> dict:
    return {
        "card_token": f"tok-{pan[-4:]}",
        "card_masked": mask_pan(pan),
        "card_fingerprint": card_fingerprint(pan),
        "card_issuer": issuer_for(pan),
        "card_brand": brand_for(pan),
        "holder_name": holder,
        "holder_phone": phone,
    }


def make_row(
    merchant: Merchant,
    *,
    pan: str = CARD_A,
    amount: int = 150_000,
    execute_date: date,
    status: str = Transaction.Status.SUCCESS,
    kind: str = Transaction.Kind.SINGLE_PAYMENT,
    holder: str = "Budi Santoso",
    phone: str = "+628123456789",
    **fields,
) -> Transaction:
    """A finished transaction written directly (no bank, no signal): for search and export tests."""
    number = next(_invoices)
    return Transaction.objects.create(
        merchant=merchant,
        invoice_number=fields.pop("invoice_number", f"INV-R{number:06d}"),
        billing_number=fields.pop("billing_number", f"BILL-R{number:05d}"),
        kind=kind,
        amount=Decimal(amount),
        execute_date=execute_date,
        status=status,
        **card_fields(pan, holder, phone),
        **fields,
    )


def actor(persona) -> Actor:
    """``persona`` acting, for services that act on a user's behalf (void, refund)."""
    return Actor.of(persona.user, ip_address="127.0.0.1")


def rollup_state(merchant: Merchant | None = None) -> dict:
    """The rollups as comparable values, rows at zero left out (a retried failure leaves one behind)."""
    scope = {"merchant": merchant} if merchant else {}
    daily = {
        (r.merchant_id, r.day, r.kind, r.status, r.response_code, r.bank_message, r.issuer): (r.count, r.amount)
        for r in DailyRollup.objects.filter(**scope)
        if r.count or r.amount
    }
    billings = {
        (r.merchant_id, r.period, r.start, r.billing_number): r.count
        for r in BillingPeriod.objects.filter(**scope)
        if r.count
    }
    totals: dict = {}
    for r in PeriodTotal.objects.filter(**scope):
        key = (r.merchant_id, r.period, r.start)
        totals[key] = totals.get(key, 0) + r.unique_billings
    return {"daily": daily, "billings": billings, "totals": {k: v for k, v in totals.items() if v}}


@dataclass
class Direct:
    """The dashboard's figures computed straight from transactions (the oracle)."""

    total_data: int
    success_amount: Decimal
    unique_billings: int
    success: int
    failed: int
    single_success: int
    single_failed: int


def direct_figures(merchant: Merchant, start: date, end: date) -> Direct:
    rows = list(
        Transaction.objects.filter(merchant=merchant, execute_date__gte=start, execute_date__lte=end).values(
            "status", "amount", "billing_number", "kind"
        )
    )
    reported = [r for r in rows if r["status"] in REPORTED]
    good = [r for r in reported if r["status"] in STILL_SUCCESSFUL]
    bad = [r for r in reported if r["status"] == "failed"]
    return Direct(
        total_data=len(reported),
        success_amount=sum((r["amount"] for r in good), Decimal("0")),
        unique_billings=len({r["billing_number"] for r in reported if r["billing_number"]}),
        success=len(good),
        failed=len(bad),
        single_success=sum(1 for r in good if r["kind"] == "single_payment"),
        single_failed=sum(1 for r in bad if r["kind"] == "single_payment"),
    )


def mixed_history(merchant: Merchant, other_merchant: Merchant, admin, other_admin, today: date) -> None:
    """Through the real services: approvals this week, last week and last month, declines, a soft decline
    retried by the policy, a void, partial and full refunds; and a few charges at another merchant with
    the same card and billing number."""
    from datetime import timedelta

    day = timedelta(days=1)
    charged(merchant, amount=150_000, billing_number="GYM-1", execute_date=today)
    charged(merchant, amount=150_000, billing_number="GYM-1", execute_date=today - day)
    charged(merchant, amount=350_000, billing_number="GYM-2", pan=CARD_B, execute_date=today - 9 * day)
    charged(merchant, amount=425_000, billing_number="GYM-2", execute_date=today - 40 * day)
    voided = charged(merchant, amount=499_000, billing_number="GYM-3", execute_date=today)
    refunded = charged(merchant, amount=200_000, billing_number="GYM-4", execute_date=today)
    partly = charged(merchant, amount=1_250_000, billing_number="", execute_date=today - day)
    declined = make_transaction(merchant, pan=DECLINE_05, billing_number="GYM-5", execute_date=today - day)
    payments.charge(declined.pk)
    billing = make_billing(merchant, pan=INSUFFICIENT_51)
    retried = make_transaction(
        merchant,
        pan=INSUFFICIENT_51,
        billing=billing,
        billing_number=billing.billing_number,
        kind=Transaction.Kind.RECURRING,
        execute_date=today - day,
    )
    payments.charge(retried.pk)  # fails; the policy's retry still to come (3 days after its date) is due
    make_transaction(merchant, billing_number="GYM-6", execute_date=today + 2 * day)  # scheduled, not counted
    payments.void(actor(admin), voided.pk, "Duplicate")
    payments.refund(actor(admin), refunded.pk, Decimal("50000"), "Partial")
    payments.refund(actor(admin), refunded.pk, Decimal("150000"), "The rest")
    payments.refund(actor(admin), partly.pk, Decimal("250000"), "Partial")
    theirs = charged(other_merchant, amount=75_000, billing_number="GYM-1", execute_date=today)
    payments.void(actor(other_admin), theirs.pk, "Theirs")
    charged(other_merchant, amount=80_000, billing_number="GYM-9", pan=DECLINE_05, execute_date=today)
    charged(other_merchant, amount=90_000, billing_number="GYM-1", pan=CARD_A, execute_date=today)

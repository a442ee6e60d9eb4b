"""The daily rollup and the unique-billing bookkeeping: kept by the transaction_changed receiver as
commutative deltas, equal to a rebuild from transactions after any mix of outcomes."""

from __future__ import annotations

import copy
import itertools
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import transaction as db

from payments import services as payments
from payments.models import Transaction
from recurring.models import Billing
from reports.models import BillingPeriod, DailyRollup, PeriodTotal
from reports.rollups import apply_change, rebuild
from tests.payments.conftest import charged, make_transaction
from tests.recurring.conftest import make_billing
from tests.reports.conftest import CARD_A, CARD_B, DECLINE_05, INSUFFICIENT_51, actor, mixed_history, rollup_state

JAKARTA = ZoneInfo("Asia/Jakarta")
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=JAKARTA)  # a Wednesday
TODAY = NOW.date()
Status = Transaction.Status


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def test_an_approved_charge_counts_once_in_its_bucket_with_its_amount(merchant, frozen):
    tx = charged(merchant, amount=250_000, billing_number="GYM-1")

    row = DailyRollup.objects.get(merchant=merchant)
    assert (row.day, row.kind, row.status, row.response_code, row.issuer) == (
        TODAY,
        "single_payment",
        "success",
        "00",
        "BCA",
    )
    assert (row.count, row.amount) == (1, Decimal("250000"))
    assert row.bank_message == tx.bank_message == "Approved"
    assert {(r.period, r.start, r.count) for r in BillingPeriod.objects.filter(merchant=merchant)} == {
        ("week", TODAY - timedelta(days=2), 1),
        ("month", TODAY.replace(day=1), 1),
    }


def test_scheduled_and_processing_rows_are_not_counted(merchant, frozen):
    make_transaction(merchant)
    assert not DailyRollup.objects.exists()


def test_a_void_moves_the_charge_to_the_voided_bucket_and_keeps_the_billing_counted(merchant, alice, frozen):
    tx = charged(merchant, amount=100_000, billing_number="GYM-1")
    payments.void(actor(alice), tx.pk, "Customer cancelled")

    state = {(r.status, r.count, r.amount) for r in DailyRollup.objects.filter(merchant=merchant) if r.count}
    assert state == {("voided", 1, Decimal("100000"))}
    assert rollup_state(merchant)["totals"] == {
        (merchant.pk, "week", TODAY - timedelta(days=2)): 1,
        (merchant.pk, "month", TODAY.replace(day=1)): 1,
    }


def test_a_soft_decline_retried_until_the_policy_ends_counts_one_failure(merchant, frozen):
    billing = make_billing(merchant, pan=INSUFFICIENT_51)
    tx = make_transaction(
        merchant,
        pan=INSUFFICIENT_51,
        billing=billing,
        billing_number=billing.billing_number,
        kind=Transaction.Kind.RECURRING,
        execute_date=TODAY,
    )
    payments.charge(tx.pk)  # failed, then back to scheduled for the first retry (R10)
    tx.refresh_from_db()
    assert tx.status == Status.SCHEDULED
    assert sum(r.count for r in DailyRollup.objects.filter(merchant=merchant)) == 0
    for retry_day in (1, 3):  # the first retry fails: scheduled again; the last fails for good
        with time_machine.travel(NOW + timedelta(days=retry_day), tick=False):
            payments.charge(tx.pk)
    tx.refresh_from_db()
    assert tx.status == Status.FAILED
    counted = [(r.status, r.response_code, r.count) for r in DailyRollup.objects.filter(merchant=merchant) if r.count]
    assert counted == [("failed", "51", 1)]
    assert rollup_state(merchant)["billings"] == {
        (merchant.pk, "week", tx.execute_date - timedelta(days=tx.execute_date.weekday()), billing.billing_number): 1,
        (merchant.pk, "month", tx.execute_date.replace(day=1), billing.billing_number): 1,
    }


def test_incremental_rollups_equal_a_rebuild_after_a_mix_of_outcomes(merchant, other_merchant, alice, charlie, frozen):
    mixed_history(merchant, other_merchant, alice, charlie, TODAY)
    incremental = rollup_state()
    assert incremental["daily"], "the receiver wrote nothing"

    rebuild()

    assert rollup_state() == incremental
    statuses = {key[3] for key in incremental["daily"]}
    assert statuses == {"success", "failed", "voided", "refunded", "partially_refunded"}


def test_rebuild_of_one_merchant_leaves_the_others_rows_alone(merchant, other_merchant, alice, charlie, frozen):
    mixed_history(merchant, other_merchant, alice, charlie, TODAY)
    before = rollup_state()
    DailyRollup.objects.filter(merchant=merchant).update(count=999)  # drift at Alpha only
    DailyRollup.objects.filter(merchant=other_merchant).update(amount=1)  # and a marker at Beta

    call_command("rebuild_rollups", "--merchant", merchant.code, stdout=None)

    after = rollup_state()
    assert {k: v for k, v in after["daily"].items() if k[0] == merchant.pk} == {
        k: v for k, v in before["daily"].items() if k[0] == merchant.pk
    }
    assert all(amount == 1 for key, (_, amount) in after["daily"].items() if key[0] == other_merchant.pk)


def test_rebuild_command_refuses_an_unknown_merchant(db):
    with pytest.raises(CommandError, match="No merchant"):
        call_command("rebuild_rollups", "--merchant", "nope")


def test_deltas_in_any_order_give_the_same_rollup(merchant, frozen):
    """The receiver may see a retry's "failed -1" before its "failed +1" (nested signals): any order of
    the same changes must add up to the same rows."""
    tx = make_transaction(merchant, billing_number="GYM-7", status=Status.FAILED)
    Transaction.objects.filter(pk=tx.pk).update(response_code="51", bank_message="Insufficient funds")
    tx.refresh_from_db()
    success = copy.copy(tx)
    success.status = Status.SUCCESS
    voided = copy.copy(tx)
    voided.status = Status.VOIDED
    scheduled = copy.copy(tx)
    scheduled.status = Status.SCHEDULED
    changes = [
        (tx, Status.PROCESSING),  # failed +1
        (scheduled, Status.FAILED),  # failed -1 (the retry)
        (success, Status.PROCESSING),  # success +1
        (voided, Status.SUCCESS),  # success -1, voided +1
    ]
    results = set()
    for order in itertools.islice(itertools.permutations(changes), 0, None, 5):
        DailyRollup.objects.all().delete()
        BillingPeriod.objects.all().delete()
        PeriodTotal.objects.all().delete()
        for changed, old in order:
            apply_change(changed, old)
        results.add(frozenset(rollup_state()["daily"].items()) | frozenset(rollup_state()["totals"].items()))
    assert len(results) == 1
    (only,) = results
    assert {key[3] for key, _ in only if len(key) == 7} == {"voided"}


def test_a_rolled_back_change_leaves_no_delta(merchant, frozen):
    tx = make_transaction(merchant, billing_number="GYM-8")
    tx.status = Status.SUCCESS
    with pytest.raises(RuntimeError), db.atomic():
        apply_change(tx, Status.PROCESSING)
        raise RuntimeError("the charge's transaction failed")
    assert not DailyRollup.objects.exists() and not PeriodTotal.objects.exists()


def test_unique_billings_count_a_billing_once_and_drop_it_when_its_last_charge_leaves(merchant, frozen):
    tx1 = make_transaction(merchant, billing_number="GYM-1")
    tx2 = make_transaction(merchant, billing_number="GYM-1", execute_date=TODAY - timedelta(days=1))
    for tx in (tx1, tx2):
        tx.status = Status.FAILED
        apply_change(tx, Status.PROCESSING)
    month = (merchant.pk, "month", TODAY.replace(day=1))
    assert rollup_state()["totals"][month] == 1
    for tx in (tx1, tx2):
        retry = copy.copy(tx)
        retry.status = Status.SCHEDULED
        apply_change(retry, Status.FAILED)
    assert month not in rollup_state()["totals"]
    assert Billing.objects.count() == 0  # single payments name billing numbers without billings


# A chunk of charges (tasks.charge_many): each answer written in its own database transaction with its
# rollup deltas.

ISSUER_UNAVAILABLE_91 = "4844010000000910"  # transient: back to scheduled for a new attempt, not counted


def chunk_of_mixed_outcomes(merchant):
    """Due rows on approving, declining (05), soft-declining (51, a billing's: retried by the policy) and
    transient (91) cards, sharing billing numbers, in this week, last week and last month."""
    billing = make_billing(merchant, pan=INSUFFICIENT_51)
    cards = (CARD_A, CARD_B, DECLINE_05, CARD_A, ISSUER_UNAVAILABLE_91)
    rows = [
        make_transaction(
            merchant,
            pan=cards[number % len(cards)],
            amount=100_000 + 25_000 * (number % 4),
            billing_number=f"GYM-{number % 3}" if number % 5 else "",
            execute_date=TODAY - timedelta(days=(0, 1, 9, 40)[number % 4]),
        )
        for number in range(16)
    ]
    rows.append(
        make_transaction(
            merchant,
            pan=INSUFFICIENT_51,
            billing=billing,
            billing_number=billing.billing_number,
            kind=Transaction.Kind.RECURRING,
            execute_date=TODAY,  # retried tomorrow (R10)
        )
    )
    return rows


def test_rollups_equal_a_rebuild_after_a_chunk_settled_with_mixed_outcomes(
    merchant, other_merchant, alice, charlie, frozen, settings
):
    from payments import tasks

    settings.CHARGE_THREADS = 1
    mixed_history(merchant, other_merchant, alice, charlie, TODAY)  # billing numbers already counted
    rows = chunk_of_mixed_outcomes(merchant)

    counts = tasks.charge_many([tx.pk for tx in rows])

    assert counts == {"done": 14, "retry_new_attempt": 3}  # 91 thrice; the 51 retried by its policy
    statuses = {tx.status for tx in Transaction.objects.filter(pk__in=[tx.pk for tx in rows])}
    assert statuses == {Status.SUCCESS, Status.FAILED, Status.SCHEDULED}
    incremental = rollup_state()
    rebuild()
    assert rollup_state() == incremental


def test_a_charge_whose_rollup_write_fails_keeps_no_outcome_and_no_delta_and_is_charged_once_later(
    merchant, frozen, settings, monkeypatch
):
    from payments import tasks
    from reports import rollups

    settings.CHARGE_THREADS = 1
    rows = [make_transaction(merchant, billing_number=f"GYM-{number}") for number in range(4)]

    def fail(tx, old_status):
        raise RuntimeError("the database went away at the commit")

    with monkeypatch.context() as patched:
        patched.setattr(rollups, "apply_change", fail)
        patched.setattr(tasks.charge, "apply_async", lambda args, countdown: None)
        assert tasks.charge_many([tx.pk for tx in rows]) == {"retry_same_key": 4}

    stored = Transaction.objects.filter(pk__in=[tx.pk for tx in rows])
    assert {tx.status for tx in stored} == {Status.PROCESSING}  # the answers rolled back with the deltas
    assert rollup_state() == {"daily": {}, "billings": {}, "totals": {}}
    for tx in rows:  # the single task each id goes on as: asks the bank by the attempt's key
        payments.charge(tx.pk)
    stored = Transaction.objects.filter(pk__in=[tx.pk for tx in rows])
    assert {tx.status for tx in stored} == {Status.SUCCESS}
    sales = payments.get_acquirer().count_sales_by_key()
    assert sales == {tx.idempotency_key: 1 for tx in stored}
    assert sum(count for count, _ in rollup_state()["daily"].values()) == 4

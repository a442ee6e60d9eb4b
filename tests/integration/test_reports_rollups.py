"""The dashboard rollups under concurrency on PostgreSQL (row locks are real here, unlike SQLite):
charges settling in parallel threads on the same buckets lose no delta, and a rebuild running meanwhile
neither loses nor double-counts a change."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.db import transaction as db

from payments.models import Transaction
from reports.models import BillingPeriod, DailyRollup, PeriodTotal
from reports.rollups import apply_change, rebuild
from tests.reports.conftest import make_row, rollup_state

pytestmark = pytest.mark.django_db(transaction=True)  # threads must see committed rows
Status = Transaction.Status
THREADS = 8


def settle(tx: Transaction, new: str, old: str) -> None:
    """What payments does: change the row and announce it, in one database transaction."""
    with db.atomic():
        Transaction.objects.filter(pk=tx.pk, status=old).update(status=new)
        tx.status = new
        apply_change(tx, old)


def in_threads(work, items) -> None:
    def run(chunk):
        try:
            for item in chunk:
                work(item)
        finally:
            connections.close_all()

    chunks = [items[i::THREADS] for i in range(THREADS)]
    with ThreadPoolExecutor(THREADS) as pool:
        for future in [pool.submit(run, chunk) for chunk in chunks]:
            future.result()


def test_parallel_charges_on_the_same_buckets_lose_no_delta(merchant):
    today = merchant.local_today()
    txs = [
        make_row(
            merchant,
            execute_date=today - timedelta(days=i % 2),
            status=Status.PROCESSING,
            amount=100_000,
            billing_number=f"B-{i % 25}",
            response_code="00",
            bank_message="Approved",
        )
        for i in range(400)
    ]
    in_threads(lambda tx: settle(tx, Status.SUCCESS, Status.PROCESSING), txs)
    in_threads(lambda tx: settle(tx, Status.VOIDED, Status.SUCCESS), txs[::4])

    counted = {(r.status, r.count, r.amount) for r in DailyRollup.objects.filter(merchant=merchant) if r.count}
    per_status: dict[str, tuple[int, Decimal]] = {}
    for status, count, amount in counted:
        before = per_status.get(status, (0, Decimal(0)))
        per_status[status] = (before[0] + count, before[1] + amount)
    assert per_status == {"success": (300, Decimal(30_000_000)), "voided": (100, Decimal(10_000_000))}
    month = sum(
        t.unique_billings
        for t in PeriodTotal.objects.filter(merchant=merchant, period="month", start=today.replace(day=1))
    )
    if (today - timedelta(days=1)).month == today.month:
        assert month == 25
    assert sum(r.count for r in BillingPeriod.objects.filter(merchant=merchant, period="month")) == 400
    incremental = rollup_state(merchant)
    rebuild([merchant.pk])
    assert rollup_state(merchant) == incremental


def test_a_rebuild_while_charges_settle_matches_a_rebuild_after_them(merchant):
    today = merchant.local_today()
    txs = [
        make_row(
            merchant,
            execute_date=today,
            status=Status.PROCESSING,
            amount=50_000,
            billing_number=f"B-{i % 40}",
            response_code="00",
            bank_message="Approved",
        )
        for i in range(300)
    ]
    done = threading.Event()

    def rebuild_repeatedly():
        try:
            while not done.is_set():
                rebuild([merchant.pk])
        finally:
            connection.close()

    rebuilder = threading.Thread(target=rebuild_repeatedly)
    rebuilder.start()
    try:
        in_threads(lambda tx: settle(tx, Status.SUCCESS if tx.pk % 3 else Status.FAILED, Status.PROCESSING), txs)
    finally:
        done.set()
        rebuilder.join()
    concurrent = rollup_state(merchant)
    rebuild([merchant.pk])
    assert rollup_state(merchant) == concurrent
    assert sum(count for count, _ in concurrent["daily"].values()) == 300


def test_one_statement_deltas_of_a_mix_of_outcomes_equal_a_rebuild(merchant, other_merchant, alice, charlie, bank_path):
    """Real charges, declines, a retried soft decline, a void and refunds on PostgreSQL, where every change
    writes its deltas in one statement: the rollups equal a rebuild from transactions."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import time_machine

    from tests.reports.conftest import mixed_history

    now = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Jakarta"))
    with time_machine.travel(now, tick=False):
        mixed_history(merchant, other_merchant, alice, charlie, now.date())
    incremental = rollup_state()
    assert {key[3] for key in incremental["daily"]} == {"success", "failed", "voided", "refunded", "partially_refunded"}
    assert incremental["totals"], "no unique billing numbers were counted"

    rebuild()

    assert rollup_state() == incremental


def test_the_single_statement_writes_what_the_per_table_statements_write(merchant, monkeypatch):
    """The same changes (entering, moving between and leaving the reported statuses, billing numbers crossing
    zero in a week and a month) through the one-statement path and through the table-by-table path that
    SQLite uses give the same rollup rows."""
    from reports import rollups

    today = merchant.local_today()
    steps = [(Status.SUCCESS, Status.PROCESSING), (Status.VOIDED, Status.SUCCESS), (Status.SCHEDULED, Status.VOIDED)]
    txs = [
        make_row(
            merchant,
            execute_date=today - timedelta(days=i % 9),
            status=Status.PROCESSING,
            amount=10_000 * (i + 1),
            billing_number=f"B-{i % 3}" if i % 4 else "",
            response_code="00",
            bank_message="Approved",
        )
        for i in range(12)
    ]

    def replay():
        for depth in range(len(steps)):
            for number, tx in enumerate(txs):
                if number % len(steps) >= depth:
                    new, old = steps[depth]
                    tx.status = new
                    with db.atomic():
                        apply_change(tx, old)
        return rollup_state(merchant)

    one_statement = replay()
    for model in (DailyRollup, BillingPeriod, PeriodTotal):
        model.objects.filter(merchant=merchant).delete()

    def per_table(cursor, tx, rows, move):
        if rows:
            rollups._upsert(cursor, DailyRollup, rollups.BUCKET, ("count", "amount"), rows)
        if move:
            rollups._move_billing(cursor, tx, move)

    monkeypatch.setattr(rollups, "_apply_in_one_statement", per_table)
    assert replay() == one_statement
    assert one_statement["daily"] and one_statement["totals"]


def test_chunks_charged_in_threads_beside_single_charges_equal_a_rebuild(merchant, bank_path, monkeypatch):
    """charge_many's path on PostgreSQL (a chunk claimed at once, then charged on a thread pool, each answer
    written with its rollup deltas in its own database transaction) while another thread charges rows of
    the same buckets and billing numbers one by one: no delta lost or doubled, each sale made once."""
    from payments import services, tasks
    from tests.payments.conftest import make_transaction
    from tests.reports.conftest import CARD_B, DECLINE_05

    today = merchant.local_today()
    cards = ("4111111111111111", CARD_B, DECLINE_05)
    txs = [
        make_transaction(
            merchant,
            pan=cards[i % 3],
            amount=50_000 + 10_000 * (i % 5),
            billing_number=f"B-{i % 30}",
            execute_date=today - timedelta(days=i % 2),
        )
        for i in range(360)
    ]
    chunked, singles = [tx.pk for tx in txs[:240]], [tx.pk for tx in txs[240:]]

    def one_by_one():
        try:
            for transaction_id in singles:
                services.charge(transaction_id)
        finally:
            connection.close()

    single_thread = threading.Thread(target=one_by_one)
    single_thread.start()
    try:
        steps = {}
        for first in range(0, len(chunked), 80):
            steps |= tasks.charge_chunk(chunked[first : first + 80], threads=6)
    finally:
        single_thread.join()

    assert set(steps.values()) == {services.Step.DONE}
    stored = Transaction.objects.filter(pk__in=[tx.pk for tx in txs])
    assert {tx.status for tx in stored} == {Status.SUCCESS, Status.FAILED}
    approved = {tx.idempotency_key: 1 for tx in stored if tx.status == Status.SUCCESS}
    assert services.get_acquirer().count_sales_by_key() == approved
    incremental = rollup_state(merchant)
    assert sum(count for count, _ in incremental["daily"].values()) == 360
    rebuild([merchant.pk])
    assert rollup_state(merchant) == incremental

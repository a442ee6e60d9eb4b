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

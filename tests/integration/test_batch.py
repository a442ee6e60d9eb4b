"""Batches on real services (TESTING 27, DESIGN "Batches"): PostgreSQL, the Redis broker and a real Celery
worker process that validates and processes an uploaded file, is SIGKILLed in the middle of processing
and started again.

Sizes: ``IT_NOISY_ROWS`` rows in the file merchant A validates while merchant B searches (default
100,000, as TESTING 27 says). ``IT_BATCH_ROWS`` rows in the file that is validated and processed across
the kill: 5,000 by default, because processing runs at only ~250-600 rows/s on 2 cores (per-row work in
``batch.pipeline._process_chunk``), so 100,000 rows take 3-7 minutes; ``IT_BATCH_ROWS=100000`` runs the
full size. Figures (rows/s, p95) are printed: run with ``-s`` to see them.
"""

from __future__ import annotations

import math
import os
import sqlite3
import statistics
import time
from collections import Counter
from contextlib import closing
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from batch import services
from batch.models import Batch, BatchRow
from payments.models import Transaction
from tests.batch.conftest import PAYMENT_ROW, csv_bytes, rows_of, upload_file
from tests.conftest import verified_client
from tests.integration.test_payments import actor, bulk_transactions, wait_for

pytestmark = pytest.mark.django_db(transaction=True)  # the worker must see committed rows

PROCESS_ROWS = int(os.environ.get("IT_BATCH_ROWS", "5000"))
NOISY_ROWS = int(os.environ.get("IT_NOISY_ROWS", "100000"))
VALIDATE_TIMEOUT = 180.0
PROCESS_TIMEOUT = 600.0
FINISHED = (Batch.Status.VALIDATED, Batch.Status.INVALID, Batch.Status.REJECTED, Batch.Status.DONE, Batch.Status.FAILED)


@pytest.fixture
def worker_files(settings, tmp_path) -> dict[str, str]:
    """One upload folder for the test process (which stores the raw file) and the worker (which reads it,
    then deletes it): the worker's VAR_DIR, outside the project's var/. The worker gets this process's
    fingerprint key, so card fingerprints agree."""
    var = tmp_path / "var"
    settings.BATCH_UPLOAD_DIR = var / "uploads"
    return {"VAR_DIR": str(var), "CARD_FINGERPRINT_KEY": settings.CARD_FINGERPRINT_KEY}


def payment_file(rows: int, prefix: str, execute_date) -> bytes:
    """A single-payment CSV of ``rows`` valid rows (approving card, unique invoice numbers)."""
    return csv_bytes(
        rows_of("single_payment", rows, execute_date=execute_date.isoformat(), description=f"{prefix} pack"),
        kind="single_payment",
    ).replace(b"INV-0001-", f"{prefix}-".encode())


def batch_status(batch: Batch) -> str:
    return Batch.objects.values_list("status", flat=True).get(pk=batch.pk)


def wait_until_finished(batch: Batch, timeout: float, worker) -> Batch:
    wait_for(lambda: batch_status(batch) in FINISHED, timeout, f"batch {batch.pk} to finish its step", interval=0.05)
    batch.refresh_from_db()
    if batch.status in (Batch.Status.REJECTED, Batch.Status.FAILED):
        pytest.fail(f"batch {batch.status}: {batch.message}\n{worker.log_text()[-3000:]}", pytrace=False)
    return batch


# DESIGN "Batches" on PostgreSQL: validate, process, SIGKILL mid-chunk, resume -------------------------


def bank_cards(bank_path) -> int:
    """Cards tokenized at the simulated bank so far (its own file, read-only)."""
    if not bank_path.exists():
        return 0
    with closing(sqlite3.connect(f"file:{bank_path}?mode=ro", uri=True, timeout=10)) as bank:
        return bank.execute("SELECT COUNT(*) FROM cards").fetchone()[0]


def test_a_large_payment_file_validates_and_processes_once_across_a_sigkilled_worker(
    merchant, alice, start_worker, worker_files, bank_path
):
    """Upload (by the merchant admin) -> validation in the worker -> Process ->
    the worker SIGKILLed inside a chunk's database transaction -> a new worker -> the batch janitor
    re-queues the batch once its lease has run out -> processing resumes after the committed chunks."""
    rows = PROCESS_ROWS
    chunk = settings.BATCH_CHUNK
    chunks = -(-rows // chunk)
    tomorrow = merchant.local_today() + timedelta(days=1)
    made = time.monotonic()
    content = payment_file(rows, "PAY", tomorrow)
    made = time.monotonic() - made
    worker = start_worker(concurrency=2, **worker_files)
    admin = actor(alice.user)

    started = time.monotonic()
    batch = services.upload(admin, upload_file("payments.csv", content), Batch.Kind.SINGLE_PAYMENT)
    try:
        uploaded = time.monotonic() - started
        assert services.raw_path(batch).exists()
        batch = wait_until_finished(batch, VALIDATE_TIMEOUT, worker)
        validated = time.monotonic() - started

        assert batch.status == Batch.Status.VALIDATED, batch.message
        assert (batch.total_rows, batch.invalid_rows, batch.rows_done) == (rows, 0, rows)
        assert batch.total_amount == Decimal(int(PAYMENT_ROW["amount"]) * rows)
        assert BatchRow.objects.filter(batch=batch, status=BatchRow.Status.VALID).count() == rows

        # Process; a third of the way through, once the next chunk has tokenized its cards (so it is in its
        # database transaction), SIGKILL the worker (main process and pool children).
        started = time.monotonic()
        assert services.start_processing(admin, batch)
        done = Batch.objects.filter(pk=batch.pk).values_list("chunks_done", flat=True)
        wait_for(lambda: done.get() >= max(1, chunks // 3), PROCESS_TIMEOUT, "a third of the chunks", interval=0.02)
        wait_for(
            lambda: bank_cards(bank_path) >= min((done.get() + 1) * chunk, rows), 60, "the next chunk's cards", 0.005
        )
        worker.kill()
        killed_after = time.monotonic() - started
        batch.refresh_from_db()
        at_kill, cards_at_kill = batch.chunks_done, bank_cards(bank_path)
        assert batch.status == Batch.Status.PROCESSING
        assert 0 < at_kill < chunks, f"the worker must die in the middle: {at_kill} of {chunks} chunks"
        # Whole chunks only: every committed chunk, nothing of the one in flight.
        assert Transaction.objects.filter(merchant=merchant, batch=batch).count() == at_kill * chunk
        assert BatchRow.objects.filter(batch=batch, status=BatchRow.Status.CREATED).count() == at_kill * chunk
        assert cards_at_kill > at_kill * chunk  # the chunk in flight had its cards tokenized

        worker.start()
        # Stuck in processing: Process refuses it, and the janitor leaves it while the dead worker's lease
        # lasts; once the lease has run out (the janitor's ``now`` ahead), the janitor re-queues it.
        assert services.start_processing(admin, batch) is False
        assert services.janitor() == 0
        resumed = time.monotonic()
        assert services.janitor(now=timezone.now() + timedelta(seconds=settings.BATCH_LEASE_SECONDS + 1)) == 1
        batch = wait_until_finished(batch, PROCESS_TIMEOUT, worker)
        resumed = time.monotonic() - resumed
        assert not services.raw_path(batch).exists()  # the raw file (card numbers) is deleted when done
        assert [path for path in settings.BATCH_UPLOAD_DIR.rglob("*") if path.is_file()] == []
    finally:
        services.raw_path(batch).unlink(missing_ok=True)

    assert (batch.status, batch.chunks_done, batch.rows_done) == (Batch.Status.DONE, chunks, rows)
    txs = Transaction.objects.filter(merchant=merchant, batch=batch)
    assert txs.count() == rows
    assert not txs.values("invoice_number").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert set(txs.values_list("invoice_number", flat=True)) == {f"PAY-{i:04d}" for i in range(rows)}
    assert Counter(txs.values_list("status", "execute_date", "amount")) == {
        (Transaction.Status.SCHEDULED, tomorrow, Decimal(PAYMENT_ROW["amount"])): rows
    }
    assert Counter(BatchRow.objects.filter(batch=batch).values_list("status", flat=True)) == {
        BatchRow.Status.CREATED: rows
    }
    orphaned = cards_at_kill - at_kill * chunk
    assert bank_cards(bank_path) == rows + orphaned  # the resumed chunk tokenized its rows again
    remaining = rows - at_kill * chunk
    print(
        f"\n[batch {rows:,} rows, chunks of {chunk}] file built in {made:.2f} s, uploaded in {uploaded:.2f} s; "
        f"validated in the worker {validated:.2f} s after upload ({rows / validated:,.0f} rows/s); processing "
        f"killed after {killed_after:.2f} s in chunk {at_kill + 1}/{chunks} ({at_kill * chunk / killed_after:,.0f} "
        f"rows/s; {orphaned} cards of the chunk in flight tokenized in vain); resumed by the janitor: "
        f"{remaining:,} rows in {resumed:.2f} s ({remaining / resumed:,.0f} rows/s); "
        f"{rows:,} transactions, 0 duplicate invoices, {rows:,} rows created, raw file deleted"
    )


def test_a_batch_whose_raw_file_is_missing_fails_in_the_worker_with_a_reason_and_is_not_requeued(
    merchant, alice, start_worker, worker_files
):
    """The web stored the upload where the worker cannot find it (no shared volume, a file deleted by hand):
    the real worker ends the check with a reason the page shows, and the janitor leaves it there."""
    content = payment_file(3, "GONE", merchant.local_today() + timedelta(days=1))
    batch = services.upload(actor(alice.user), upload_file("gone.csv", content), Batch.Kind.SINGLE_PAYMENT)
    services.raw_path(batch).unlink()  # queued already: the worker below takes the task
    worker = start_worker(concurrency=1, **worker_files)
    wait_for(lambda: batch_status(batch) != Batch.Status.UPLOADED, VALIDATE_TIMEOUT, "the worker", interval=0.05)
    wait_for(lambda: batch_status(batch) == Batch.Status.CHECK_FAILED, 30, "a final state", interval=0.05)
    batch.refresh_from_db()
    assert "no longer on the server" in batch.message, worker.log_text()[-3000:]
    assert batch.lease_until is None and not BatchRow.objects.filter(batch=batch).exists()
    assert services.janitor(now=timezone.now() + timedelta(seconds=settings.BATCH_LEASE_SECONDS + 1)) == 0
    assert batch_status(batch) == Batch.Status.CHECK_FAILED


# TESTING 27: noisy neighbour --------------------------------------------------------------------------


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[-1] if len(samples) > 1 else samples[0]


def test_merchant_b_searches_all_report_while_merchant_a_validates_a_large_file(
    merchant, other_merchant, alice, charlie, start_worker, worker_files
):
    """Merchant A (Alpha) validates a large file in the worker while merchant B (Beta) repeats an All
    Report search with the Django test client in this process. Both merchants hold transactions with the
    same invoice and billing numbers, so a leak would show in B's totals and rows."""
    seeded = 1000
    bulk_transactions(merchant, seeded, prefix="SHARED")
    b_ids = {tx.pk for tx in bulk_transactions(other_merchant, seeded, prefix="SHARED")}
    today = other_merchant.local_today()
    client = verified_client(charlie)
    searches = [
        (
            f"{reverse('reports:all')}?{urlencode({'start_date': today - timedelta(days=30), 'end_date': today})}",
            seeded,
        ),
        (f"{reverse('reports:all')}?{urlencode({'billing_number': 'BILL-SHARED-000123'})}", 1),
    ]

    def search(number: int) -> float:
        url, expected = searches[number % len(searches)]
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200
        assert response.context["totals"].count == expected
        ids = {row["id"] for row in response.context["page"].rows}
        assert ids and ids <= b_ids, "merchant B sees a row that is not B's"
        return elapsed

    assert Transaction.objects.filter(merchant=merchant, billing_number="BILL-SHARED-000123").count() == 1
    worker = start_worker(concurrency=2, **worker_files)  # idle: the same processes, no work
    for number in range(5):  # warm up: templates, connections
        search(number)
    idle = [search(number) for number in range(40)]

    content = payment_file(NOISY_ROWS, "NOISE", merchant.local_today() + timedelta(days=1))
    started = time.monotonic()
    batch = services.upload(actor(alice.user), upload_file("noise.csv", content), Batch.Kind.SINGLE_PAYMENT)
    try:
        loaded: list[float] = []
        phases: Counter[str] = Counter()
        while (status := batch_status(batch)) not in FINISHED:
            phases[status] += 1
            loaded.append(search(len(loaded)))
            assert time.monotonic() - started < VALIDATE_TIMEOUT, "validation did not finish"
        validated = time.monotonic() - started
        batch = wait_until_finished(batch, 1, worker)
        assert (batch.status, batch.total_rows) == (Batch.Status.VALIDATED, NOISY_ROWS)
        during = len(loaded)
        assert during >= 1, "no search ran while A's file was validated"
        while len(loaded) < 10:  # enough samples for a p95 also when validation was quick
            loaded.append(search(len(loaded)))
        idle_p95, loaded_p95 = p95(idle), p95(loaded)
        assert math.isfinite(idle_p95) and math.isfinite(loaded_p95)
        assert not Transaction.objects.filter(merchant=other_merchant).exclude(pk__in=b_ids).exists()
        print(
            f"\n[noisy neighbour] A validated {NOISY_ROWS:,} rows in {validated:.2f} s "
            f"({NOISY_ROWS / validated:,.0f} rows/s); B's All Report p95 idle {idle_p95 * 1000:.1f} ms "
            f"(p50 {statistics.median(idle) * 1000:.1f}, n={len(idle)}) vs under load {loaded_p95 * 1000:.1f} ms "
            f"(p50 {statistics.median(loaded) * 1000:.1f}, max {max(loaded) * 1000:.1f}, n={len(loaded)}, "
            f"{during} while validating, "
            f"phases {dict(phases)}); ratio {loaded_p95 / idle_p95:.1f}x"
        )
    finally:
        services.raw_path(batch).unlink(missing_ok=True)  # validated, never processed: holds card numbers

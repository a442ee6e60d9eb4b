"""Charging on real services (TESTING 18, 20, 22, 23, 25): PostgreSQL, the Redis broker, real Celery
worker processes that are SIGKILLed and started again, and the simulated bank in a file shared with them.

Figures (throughput, attempts, janitor passes) are printed: run with ``-s`` to see them.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from datetime import timedelta
from decimal import Decimal

import psycopg2
import pytest
from celery.result import ResultSet
from django.conf import settings
from django.db import connection, connections
from django.db import transaction as db
from django.utils import timezone

from accounts.audit import Actor
from accounts.models import Merchant
from payments import janitor, services
from payments.acquirer import get_acquirer
from payments.models import Adjustment, Transaction
from payments.tasks import charge, charge_many
from tests.dates import card_year
from tests.integration.conftest import database_url
from tests.payments.conftest import APPROVE, charged, make_transaction

pytestmark = pytest.mark.django_db(transaction=True)  # workers and threads must see committed rows

Status = Transaction.Status
OPEN = (Status.SCHEDULED, Status.PROCESSING)
IDLE_SECONDS = 1.0  # queue empty and nothing settled for this long: what is left is stuck or lost
JANITOR_EVERY = 3.0  # queue empty: a pass at least this often (retries of charges in doubt trickle in)
SETTLE_TIMEOUT = 90.0
MAX_JANITOR_PASSES = 30
TIMES_OUT_AFTER_PROCESSING = "4266010000000992"


def janitor_step() -> timedelta:
    """How far ahead of the clock a janitor pass runs, per pass: past CHARGE_REQUEUE_SECONDS (queued,
    never claimed: lost) and CHARGE_STUCK_SECONDS (processing: ask the bank), and past the previous
    pass's ``now`` (the janitor stamps rows it requeues with it) by more than CHARGE_STUCK_SECONDS."""
    step = timedelta(seconds=settings.CHARGE_REQUEUE_SECONDS + settings.CHARGE_STUCK_SECONDS + 60)
    # Never so far that a charge the bank has not seen yet counts as given up (closed as failed).
    assert step * (MAX_JANITOR_PASSES + 1) < timedelta(seconds=settings.CHARGE_GIVE_UP_SECONDS)
    return step


def bulk_transactions(merchant: Merchant, count: int, prefix: str, pan: str = APPROVE) -> list[Transaction]:
    """``count`` due transactions on one card, tokenized once (as ``make_transaction`` would, per row)."""
    card = services.tokenize_card(pan, 12, card_year(), "123", "Budi Santoso", "+628123456789")
    today = merchant.local_today()
    rows = [
        Transaction(
            merchant=merchant,
            invoice_number=f"{prefix}-{number:06d}",
            billing_number=f"BILL-{prefix}-{number:06d}",
            kind=Transaction.Kind.SINGLE_PAYMENT,
            amount=Decimal(150_000),
            execute_date=today,
            **card,
        )
        for number in range(1, count + 1)
    ]
    return Transaction.objects.bulk_create(rows, batch_size=1000)


def open_count(ids: list[int]) -> int:
    return Transaction.objects.filter(pk__in=ids, status__in=OPEN).count()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}", pytrace=False)
        time.sleep(interval)


def settle(ids: list[int], broker, timeout: float = SETTLE_TIMEOUT) -> list[dict[str, int]]:
    """Wait until no row of ``ids`` is scheduled or processing. Whenever the broker's queue is empty
    and nothing settled for IDLE_SECONDS (or JANITOR_EVERY passed since the last pass), run a janitor
    pass with a ``now`` ahead of the clock: what a SIGKILLed worker held is stuck or lost by then, and a
    charge in doubt is asked about before its back-off ends. Returns the janitor passes' counts."""
    passes: list[dict[str, int]] = []
    deadline = time.monotonic() + timeout
    last_open, last_change = -1, time.monotonic()
    last_pass = last_change
    while (left := open_count(ids)) > 0:
        moment = time.monotonic()
        if left != last_open:
            last_open, last_change = left, moment
        if broker.llen("celery") == 0 and (moment - last_change >= IDLE_SECONDS or moment - last_pass >= JANITOR_EVERY):
            assert len(passes) < MAX_JANITOR_PASSES, f"{left} still open after {len(passes)} janitor passes"
            passes.append(janitor.run(now=timezone.now() + janitor_step() * (len(passes) + 1)))
            last_change = last_pass = moment
        if moment > deadline:
            statuses = Counter(Transaction.objects.filter(pk__in=ids).values_list("status", flat=True))
            pytest.fail(f"not settled within {timeout:.0f} s: {dict(statuses)}; janitor {passes}", pytrace=False)
        time.sleep(0.1)
    return passes


def assert_charged_exactly_once(txs: list[Transaction]) -> None:
    """The bank holds one approved sale per transaction: one per idempotency key, and one per invoice
    (the invoice number is the sale's description), so a second sale under another key shows too."""
    bank = get_acquirer()
    by_key = bank.count_sales_by_key()
    assert by_key, "the bank recorded no sale"
    assert set(by_key.values()) == {1}, {key: n for key, n in by_key.items() if n != 1}
    approved = [op for op in bank.operations(kind="sale") if op["approved"]]
    by_invoice = Counter(op["description"] for op in approved)
    assert by_invoice == {tx.invoice_number: 1 for tx in txs}, {inv: n for inv, n in by_invoice.items() if n != 1}
    reference = {op["idempotency_key"]: op["reference"] for op in approved}
    for tx in txs:
        assert reference.get(tx.idempotency_key) == tx.acquirer_reference, tx.invoice_number


def actor(user) -> Actor:
    return Actor.of(user)


# TESTING 25 (at 2,000) / the charge path under a SIGKILL: enqueue_charges -> charge_many chunks -------


@pytest.mark.parametrize("timeout_rate", [0.0, 0.1], ids=["no-faults", "10pct-timeouts"])
def test_charges_survive_a_sigkilled_worker_with_one_sale_each(merchant, start_worker, broker, timeout_rate):
    count = 2000
    txs = bulk_transactions(merchant, count, prefix=f"K{int(timeout_rate * 100)}")
    ids = [tx.pk for tx in txs]
    worker = start_worker(
        concurrency=2,
        SIMULATED_BANK_LATENCY_MS=20,
        SIMULATED_BANK_LATENCY_P99_MS=50,
        SIMULATED_BANK_TIMEOUT_RATE=timeout_rate,
    )

    started = time.monotonic()
    services.enqueue_charges(ids)  # autocommit: on_commit sends at once
    done = Transaction.objects.filter(pk__in=ids).exclude(status__in=OPEN)
    wait_for(lambda: done.count() >= count // 4, 30, "a quarter of the charges to settle", interval=0.02)
    worker.kill()
    killed_after = time.monotonic() - started
    settled_at_kill, processing_at_kill = (
        done.count(),
        Transaction.objects.filter(pk__in=ids, status=Status.PROCESSING).count(),
    )
    assert 0 < settled_at_kill < count, "the worker must die in the middle of the run"

    worker.start()
    passes = settle(ids, broker)
    elapsed = time.monotonic() - started

    txs = list(Transaction.objects.filter(pk__in=ids).select_related("merchant"))
    statuses = Counter(tx.status for tx in txs)
    assert statuses == {Status.SUCCESS: count}, statuses  # none failed wrongly, none left open
    assert_charged_exactly_once(txs)
    assert not any(p["given_up"] for p in passes)
    more_attempts = sum(1 for tx in txs if tx.attempts != 1)
    timeouts_seen = worker.log_text().count("charge in doubt: bank timed out")
    if timeout_rate:
        assert timeouts_seen > 0, "the bank was told to time out; no charge saw it"
    print(
        f"\n[charges {count}, timeout rate {timeout_rate:.0%}] killed after {killed_after:.2f} s with "
        f"{settled_at_kill} settled ({settled_at_kill / killed_after:.0f}/s) and {processing_at_kill} processing; "
        f"all settled in {elapsed:.2f} s ({count / elapsed:.0f}/s overall, incl. restart and janitor); "
        f"time-outs seen by workers {timeouts_seen}; janitor passes {len(passes)} {passes}; "
        f"transactions with attempts != 1: {more_attempts}; sales per key max {max(get_acquirer().count_sales_by_key().values())}"
    )


# TESTING 18: crash after the bank approved, before the outcome is committed -----------------------


def test_a_worker_killed_after_the_bank_approved_and_before_commit_charges_once(merchant, start_worker, broker):
    bank = get_acquirer()
    redelivered, janitored = make_transaction(merchant), make_transaction(merchant)
    ids = [redelivered.pk, janitored.pk]
    # The bank answers after 1 s: time enough to take the row locks between the claim and the outcome.
    worker = start_worker(SIMULATED_BANK_LATENCY_MS=1000)

    with closing(psycopg2.connect(database_url(settings.DATABASES["default"]["NAME"]))) as holder:
        services.enqueue_charges(ids)
        claimed = Transaction.objects.filter(pk__in=ids, status=Status.PROCESSING)
        wait_for(lambda: claimed.count() == 2, 20, "the worker to claim both charges", interval=0.01)
        keys = [tx.idempotency_key for tx in claimed]
        # Hold the rows from another session: the worker gets the bank's approval, then blocks writing
        # it. Kill it there, then let go (its uncommitted write dies with its session).
        with holder.cursor() as cursor:
            cursor.execute("SELECT id FROM payments_transaction WHERE id = ANY(%s) FOR UPDATE", (ids,))
            assert not bank.operations(kind="sale"), "locked too late: the bank answered already"
            wait_for(lambda: all(bank.operations(key, kind="sale") for key in keys), 20, "the bank to approve both")
            # Each answer is written in its own transaction on a pool thread: they block on the locked
            # rows with both outcomes still to write.
            wait_for(lambda: waiting_on_locks() >= 1, 20, "the worker to block writing the outcomes")
            worker.kill()
        holder.rollback()
    wait_for(lambda: waiting_on_locks() == 0, 20, "the killed worker's sessions to end")

    for tx in Transaction.objects.filter(pk__in=ids):
        assert (tx.status, tx.attempts, tx.approval_code) == (Status.PROCESSING, 1, ""), "outcome not committed"
    assert bank.count_sales_by_key() == {key: 1 for key in keys}

    worker.start()
    # Redelivery (Redis hands an unacknowledged task out again after its visibility timeout): same key.
    assert charge.delay(redelivered.pk).get(timeout=30) == services.Step.DONE.value
    # The janitor settles the other by asking the bank for its key.
    counts = janitor.run(now=timezone.now() + timedelta(seconds=settings.CHARGE_STUCK_SECONDS + 1))
    assert counts["settled"] == 1 and counts["requeued"] == 0, counts

    txs = list(Transaction.objects.filter(pk__in=ids).select_related("merchant"))
    assert [(tx.status, tx.attempts) for tx in txs] == [(Status.SUCCESS, 1)] * 2
    assert_charged_exactly_once(txs)
    assert janitor.run(now=timezone.now() + timedelta(hours=1)) == {
        "settled": 0,
        "requeued": 0,
        "given_up": 0,
        "adjustments": 0,
    }


def waiting_on_locks() -> int:
    """Sessions of the test database (other than this one) waiting for a row lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_a_sale_recorded_before_a_time_out_is_settled_once_after_the_worker_dies(merchant, start_worker, broker):
    # The bank approves and records, then times out: the worker leaves the charge in doubt and
    # schedules a retry; SIGKILL loses that retry. The janitor settles it from the bank's record.
    tx = make_transaction(merchant, pan=TIMES_OUT_AFTER_PROCESSING)
    worker = start_worker()
    services.enqueue_charges([tx.pk])
    bank = get_acquirer()
    wait_for(lambda: bool(bank.operations(kind="sale")), 20, "the bank to record the sale")
    wait_for(lambda: Transaction.objects.filter(pk=tx.pk, error_code="timeout").exists(), 20, "the charge in doubt")
    worker.kill()
    tx.refresh_from_db()
    assert (tx.status, tx.error_code) == (Status.PROCESSING, "timeout")

    worker.start()
    counts = janitor.run(now=timezone.now() + timedelta(seconds=settings.CHARGE_STUCK_SECONDS + 1))

    assert counts["settled"] == 1, counts
    tx.refresh_from_db()
    assert (tx.status, tx.attempts) == (Status.SUCCESS, 1)
    assert_charged_exactly_once([tx])


# TESTING 20: every charge task delivered twice -------------------------------------------------------


def test_a_thousand_charges_delivered_twice_each_charge_once(merchant, start_worker, broker):
    # 1,000 ids, each delivered twice and side by side so the two deliveries meet in the two worker
    # processes: 800 as charge_many chunks (the path enqueue_charges takes), 200 as single charge tasks
    # (the retry path). Single tasks cost a database connection each (Celery's Django fixup closes it
    # after every task), so most ids go by chunk to keep the lane short.
    count, singles = 1000, 200
    txs = bulk_transactions(merchant, count, prefix="DUP")
    ids = [tx.pk for tx in txs]
    start_worker(concurrency=2, SIMULATED_BANK_LATENCY_MS=5)

    started = time.monotonic()
    results = []
    for first in range(singles, count, settings.CHARGE_CHUNK):
        chunk = ids[first : first + settings.CHARGE_CHUNK]
        results += [charge_many.delay(chunk), charge_many.delay(chunk)]
    for transaction_id in ids[:singles]:
        results += [charge.delay(transaction_id), charge.delay(transaction_id)]
    outcomes = ResultSet(results).join_native(timeout=90)  # one round trip for many results
    elapsed = time.monotonic() - started

    steps: Counter[str] = Counter()
    for outcome in outcomes:
        steps.update(outcome if isinstance(outcome, dict) else {outcome: 1})
    txs = list(Transaction.objects.filter(pk__in=ids).select_related("merchant"))
    assert Counter(tx.status for tx in txs) == {Status.SUCCESS: count}
    assert [tx for tx in txs if tx.attempts != 1] == []
    assert_charged_exactly_once(txs)
    assert sum(steps.values()) == 2 * count  # every delivery ran: one charged, the other found it done
    print(
        f"\n[duplicate delivery] {count} transactions delivered twice ({2 * (count - singles) // settings.CHARGE_CHUNK} "
        f"charge_many chunks, {2 * singles} charge tasks) in {elapsed:.2f} s ({2 * count / elapsed:.0f} charge runs/s); "
        f"runs by result {dict(steps)}; duplicate sales 0"
    )


# TESTING 22: concurrent void / refund on PostgreSQL --------------------------------------------------


def race(*calls: Callable[[], object]) -> tuple[list[object], list[BaseException]]:
    """Run the calls at the same moment, one thread (and database connection) each."""
    start = threading.Barrier(len(calls))
    results: list[object] = []
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            start.wait(timeout=10)
            results.append(call())
        except BaseException as error:  # reported by the test
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


def test_two_concurrent_voids_void_once(merchant, alice, bank_path, settings):
    tx = charged(merchant)
    settings.SIMULATED_BANK_LATENCY_MS = 100  # the first void holds the row lock across the bank call

    results, errors = race(*[lambda: services.void(actor(alice.user), tx.pk, "double click")] * 2)

    assert len(results) == 1 and len(errors) == 1, (results, errors)
    assert isinstance(errors[0], services.ActionRefused), errors
    assert list(Adjustment.objects.filter(transaction=tx).values_list("kind", "status")) == [("void", "approved")]
    tx.refresh_from_db()
    assert tx.status == Status.VOIDED
    voids = [op for op in get_acquirer().operations(kind="void") if op["approved"]]
    assert len(voids) == 1
    print(f"\n[two voids] one approved, one refused: {errors[0]}")


def test_two_concurrent_partial_refunds_never_refund_more_than_the_amount(merchant, alice, bank_path, settings):
    tx = charged(merchant, amount=100_000)
    settings.SIMULATED_BANK_LATENCY_MS = 100

    refund = lambda: services.refund(actor(alice.user), tx.pk, Decimal(60_000), "goodwill")  # noqa: E731
    results, errors = race(refund, refund)

    assert len(results) == 1 and len(errors) == 1, (results, errors)
    assert isinstance(errors[0], services.ActionRefused), errors
    tx.refresh_from_db()
    assert (tx.status, tx.refunded_amount) == (Status.PARTIALLY_REFUNDED, Decimal(60_000))
    approved = Adjustment.objects.filter(transaction=tx, kind="refund", status="approved")
    assert sum(a.amount for a in approved) == Decimal(60_000) <= tx.amount
    bank_refunds = [op for op in get_acquirer().operations(kind="refund") if op["approved"]]
    assert sum(op["amount"] for op in bank_refunds) == 60_000
    print(f"\n[two refunds of 60,000 on 100,000] refunded {tx.refunded_amount:,.0f}; refused: {errors[0]}")


# TESTING 23: enqueue after commit, proven on the real broker -----------------------------------------


def queued_charge_ids(broker) -> list[list[int]]:
    """The transaction ids of every charge_many message waiting in the default queue."""
    chunks = []
    for raw in broker.lrange("celery", 0, -1):
        message = json.loads(raw)
        assert message["headers"]["task"] == "payments.charge_many"
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        chunks.append(args[0])
    return chunks


class Rollback(Exception):
    pass


def test_enqueue_in_a_rolled_back_transaction_queues_nothing(merchant, broker, bank_path):
    with pytest.raises(Rollback), db.atomic():
        tx = make_transaction(merchant)
        services.enqueue_charges([tx.pk])
        raise Rollback

    assert broker.llen("celery") == 0
    assert not Transaction.objects.filter(pk=tx.pk).exists()

    # The same, committed: one message, and only once the transaction commits.
    with db.atomic():
        tx = make_transaction(merchant)
        services.enqueue_charges([tx.pk])
        assert broker.llen("celery") == 0
    assert queued_charge_ids(broker) == [[tx.pk]]

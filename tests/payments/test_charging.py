"""Charges move money at most once (P3): claims, idempotency keys, retries, the janitor (TESTING 18-23)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from billing_bo.lib.cards import card_fingerprint
from payments import janitor, services, tasks
from payments.models import Transaction
from payments.services import Step
from payments.signals import transaction_changed
from tests.payments.conftest import APPROVE, charged, make_transaction

DO_NOT_HONOR = "4511010000000052"
INVALID_CARD = "4700010000000145"
INSUFFICIENT = "4622010000000512"
EXPIRED = "4788010000000546"
ISSUER_UNAVAILABLE = "4844010000000910"
MALFUNCTION = "4899010000000963"
ALWAYS_TIMES_OUT = "4147010000000989"
TIMES_OUT_AFTER_SALE = "4266010000000992"

Status = Transaction.Status


def approved_sales(bank, invoice_number: str) -> int:
    return sum(1 for op in bank.operations(kind="sale") if op["approved"] and op["description"] == invoice_number)


def test_an_approved_charge_records_the_banks_answer_and_announces_it(merchant, bank):
    seen = []
    transaction_changed.connect(
        lambda sender, transaction, old_status, **kw: seen.append((transaction.pk, old_status)),
        weak=False,
        dispatch_uid="t1",
    )
    try:
        tx = charged(merchant)
    finally:
        transaction_changed.disconnect(dispatch_uid="t1")
    assert tx.status == Status.SUCCESS
    assert (tx.response_code, tx.bank_message, tx.card_issuer) == ("00", "Approved", "BCA")
    assert len(tx.approval_code) == 6 and tx.acquirer_reference and tx.processed_at
    assert tx.attempts == 1
    assert seen == [(tx.pk, Status.PROCESSING)]
    assert bank.count_sales_by_key() == {tx.idempotency_key: 1}


@pytest.mark.parametrize(
    ("pan", "code", "message"),
    [
        (DO_NOT_HONOR, "05", "Do not honor"),
        (INVALID_CARD, "14", "Invalid card number"),
        (INSUFFICIENT, "51", "Insufficient funds"),
        (EXPIRED, "54", "Expired card"),
    ],
)
def test_a_hard_decline_fails_at_once_and_is_never_retried_by_the_task(merchant, pan, code, message):
    tx = make_transaction(merchant, pan=pan)
    assert services.charge(tx.pk) == Step.DONE
    tx.refresh_from_db()
    assert (tx.status, tx.response_code, tx.bank_message, tx.attempts) == (Status.FAILED, code, message, 1)
    assert services.charge(tx.pk) == Step.NOT_DUE


@pytest.mark.parametrize("pan", [ISSUER_UNAVAILABLE, MALFUNCTION])
def test_a_transient_decline_is_retried_as_new_attempts_with_new_keys_up_to_the_limit(merchant, bank, pan):
    tx = make_transaction(merchant, pan=pan)
    keys = []
    for attempt in range(1, settings.CHARGE_MAX_ATTEMPTS + 1):
        step = services.charge(tx.pk)
        tx.refresh_from_db()
        keys.append(tx.idempotency_key)
        expected = Step.RETRY_NEW_ATTEMPT if attempt < settings.CHARGE_MAX_ATTEMPTS else Step.DONE
        assert (step, tx.attempts) == (expected, attempt)
    assert tx.status == Status.FAILED and tx.response_code in ("91", "96")
    assert len(set(keys)) == settings.CHARGE_MAX_ATTEMPTS
    assert len(bank.operations(kind="sale")) == settings.CHARGE_MAX_ATTEMPTS


def test_charging_twice_charges_once(merchant, bank):
    tx = make_transaction(merchant)
    assert services.charge(tx.pk) == Step.DONE
    assert services.charge(tx.pk) == Step.NOT_DUE
    assert approved_sales(bank, tx.invoice_number) == 1


def test_a_redelivered_task_after_a_crash_finds_the_sale_and_records_it_once(merchant, bank):
    """TESTING 18 (unit form): the bank approved, the worker died before writing the outcome."""
    tx = make_transaction(merchant)
    claimed, resumed = services.claim(tx.pk)
    assert claimed is not None and not resumed
    bank.sale(claimed.card_token, int(claimed.amount), claimed.idempotency_key, claimed.invoice_number)  # then: crash

    assert services.charge(tx.pk) == Step.DONE  # the redelivered task
    tx.refresh_from_db()
    assert tx.status == Status.SUCCESS and tx.attempts == 1
    assert approved_sales(bank, tx.invoice_number) == 1


def test_a_time_out_leaves_the_charge_in_doubt_and_the_retry_reuses_the_key(merchant, bank, settings):
    """TESTING 19: processing, not failed, and never a new key, until the bank is asked by key."""
    tx = make_transaction(merchant)
    settings.SIMULATED_BANK_TIMEOUT_RATE = 1.0
    assert services.charge(tx.pk) == Step.RETRY_SAME_KEY
    tx.refresh_from_db()
    assert (tx.status, tx.error_code, tx.attempts) == (Status.PROCESSING, "timeout", 1)
    key = tx.idempotency_key

    settings.SIMULATED_BANK_TIMEOUT_RATE = 0
    assert services.charge(tx.pk) == Step.DONE
    tx.refresh_from_db()
    assert (tx.status, tx.idempotency_key, tx.error_code) == (Status.SUCCESS, key, "")
    assert approved_sales(bank, tx.invoice_number) == 1


def test_a_sale_recorded_before_a_time_out_is_found_not_repeated(merchant, bank):
    tx = make_transaction(merchant, pan=TIMES_OUT_AFTER_SALE)
    assert services.charge(tx.pk) == Step.RETRY_SAME_KEY
    assert services.charge(tx.pk) == Step.DONE
    tx.refresh_from_db()
    assert tx.status == Status.SUCCESS
    assert approved_sales(bank, tx.invoice_number) == 1


def test_an_unreachable_bank_is_retried_with_the_same_key(merchant, bank, settings):
    tx = make_transaction(merchant)
    settings.SIMULATED_BANK_TRANSIENT_RATE = 1.0
    assert services.charge(tx.pk) == Step.RETRY_SAME_KEY
    tx.refresh_from_db()
    assert (tx.status, tx.error_code) == (Status.PROCESSING, "unavailable")
    assert bank.operations() == []
    settings.SIMULATED_BANK_TRANSIENT_RATE = 0
    assert services.charge(tx.pk) == Step.DONE


def test_a_charge_before_its_execute_date_does_nothing(merchant, bank):
    tx = make_transaction(merchant, execute_date=merchant.local_today() + timedelta(days=1))
    assert services.charge(tx.pk) == Step.NOT_DUE
    tx.refresh_from_db()
    assert tx.status == Status.SCHEDULED and tx.attempts == 0 and bank.operations() == []


def test_the_janitor_settles_a_charge_in_doubt_by_asking_the_bank(merchant, bank):
    tx = make_transaction(merchant, pan=TIMES_OUT_AFTER_SALE)
    services.charge(tx.pk)
    later = timezone.now() + timedelta(seconds=settings.CHARGE_STUCK_SECONDS + 1)
    assert janitor.run(now=later)["settled"] == 1
    tx.refresh_from_db()
    assert tx.status == Status.SUCCESS and approved_sales(bank, tx.invoice_number) == 1


def test_the_janitor_sends_an_unknown_key_again_with_the_same_key(
    merchant, bank, monkeypatch, django_capture_on_commit_callbacks
):
    tx = make_transaction(merchant, pan=ALWAYS_TIMES_OUT)
    services.charge(tx.pk)
    sent = []
    monkeypatch.setattr(tasks.charge_many, "delay", lambda ids: sent.append(list(ids)))
    later = timezone.now() + timedelta(seconds=settings.CHARGE_STUCK_SECONDS + 1)
    with django_capture_on_commit_callbacks(execute=True):
        counts = janitor.run(now=later)
    assert counts["requeued"] == 1 and sent == [[tx.pk]]
    tx.refresh_from_db()
    assert tx.status == Status.PROCESSING and tx.attempts == 1  # the same attempt, the same key


def test_the_janitor_closes_a_charge_the_bank_never_saw_after_a_day(merchant, bank):
    tx = make_transaction(merchant, pan=ALWAYS_TIMES_OUT)
    services.charge(tx.pk)
    much_later = timezone.now() + timedelta(seconds=settings.CHARGE_GIVE_UP_SECONDS + 1)
    assert janitor.run(now=much_later)["given_up"] == 1
    tx.refresh_from_db()
    assert (tx.status, tx.error_code) == (Status.FAILED, "timeout")
    assert bank.count_sales_by_key() == {}


def test_the_janitor_requeues_charges_queued_long_ago_and_never_claimed(
    merchant, monkeypatch, django_capture_on_commit_callbacks
):
    tx = make_transaction(merchant, queued_at=timezone.now() - timedelta(seconds=settings.CHARGE_REQUEUE_SECONDS + 5))
    fresh = make_transaction(merchant, queued_at=timezone.now())
    sent = []
    monkeypatch.setattr(tasks.charge_many, "delay", lambda ids: sent.append(list(ids)))
    with django_capture_on_commit_callbacks(execute=True):
        janitor.run()
    assert sent == [[tx.pk]] and fresh.pk not in sent[0]


def test_charges_are_queued_only_after_commit(merchant, monkeypatch, django_capture_on_commit_callbacks):
    """TESTING 23: a rolled-back transaction queues no task."""
    from django.db import transaction as db

    sent = []
    monkeypatch.setattr(tasks.charge_many, "delay", lambda ids: sent.append(list(ids)))
    tx = make_transaction(merchant)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), db.atomic():
            services.enqueue_charges([tx.pk])
            raise RuntimeError("rolled back")
    assert callbacks == [] and sent == []
    with django_capture_on_commit_callbacks(execute=True):
        services.enqueue_charges([tx.pk])
    assert sent == [[tx.pk]]


def test_rows_written_as_queued_are_sent_without_a_second_write(
    merchant, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(tasks.charge_many, "delay", lambda ids: sent.append(list(ids)))
    unmarked, marked = make_transaction(merchant), make_transaction(merchant)
    with django_capture_on_commit_callbacks(execute=True):
        services.enqueue_charges([unmarked.pk])
        services.enqueue_charges([marked.pk], marked=True)
    assert sent == [[unmarked.pk], [marked.pk]]
    assert Transaction.objects.get(pk=unmarked.pk).queued_at is not None
    assert Transaction.objects.get(pk=marked.pk).queued_at is None  # left as its writer wrote it


def test_charge_many_charges_a_chunk_and_hands_retries_to_single_tasks(merchant, bank, monkeypatch, settings):
    settings.CHARGE_THREADS = 1  # threads need PostgreSQL: the integration lane runs them
    good = [make_transaction(merchant) for _ in range(6)]
    doubtful = make_transaction(merchant, pan=ALWAYS_TIMES_OUT)
    retried = []
    monkeypatch.setattr(tasks.charge, "apply_async", lambda args, countdown: retried.append((args, countdown)))
    counts = tasks.charge_many([tx.pk for tx in good] + [doubtful.pk])
    assert counts == {"done": 6, "retry_same_key": 1}
    assert retried == [((doubtful.pk,), settings.CHARGE_RETRY_COUNTDOWNS[0])]
    assert Transaction.objects.filter(status=Status.SUCCESS).count() == 6


def test_a_claim_loses_to_a_worker_that_claimed_after_it_read_the_row(merchant, bank):
    from django.db import connection

    tx = make_transaction(merchant)
    raced = []

    def another_worker_claims_after_the_read(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not raced and sql.startswith("SELECT") and '"payments_transaction"' in sql:
            raced.append(sql)
            # Between this worker's read and its claim, another run claimed the row and put it back as a retry.
            Transaction.objects.filter(pk=tx.pk).update(attempts=1)
        return result

    with connection.execute_wrapper(another_worker_claims_after_the_read):
        assert services.claim(tx.pk) == (None, False)
    assert raced and Transaction.objects.get(pk=tx.pk).status == Status.SCHEDULED


def test_a_claim_returns_the_row_as_it_wrote_it(merchant, bank):
    tx = make_transaction(merchant)
    claimed, resumed = services.claim(tx.pk)
    stored = Transaction.objects.get(pk=tx.pk)
    assert not resumed
    assert (claimed.status, claimed.attempts, claimed.claimed_at) == (Status.PROCESSING, 1, stored.claimed_at)
    assert (stored.status, stored.attempts) == (Status.PROCESSING, 1)


def test_a_charge_that_raises_in_a_chunk_is_logged_and_retried_alone(merchant, bank, monkeypatch, settings, caplog):
    settings.CHARGE_THREADS = 1
    good, broken = make_transaction(merchant), make_transaction(merchant)
    real_ask = services.ask_bank

    def ask_bank(tx, resumed):
        if tx.pk == broken.pk:
            raise RuntimeError("database went away")
        return real_ask(tx, resumed)

    monkeypatch.setattr(services, "ask_bank", ask_bank)
    retried = []
    monkeypatch.setattr(tasks.charge, "apply_async", lambda args, countdown: retried.append(args))
    assert tasks.charge_many([good.pk, broken.pk]) == {"done": 1, "retry_same_key": 1}
    assert retried == [(broken.pk,)]
    assert f"charge raised tx={broken.pk}" in caplog.text


def test_a_chunk_is_claimed_at_once_and_what_the_claim_left_is_charged_one_by_one(merchant, bank, settings):
    settings.CHARGE_THREADS = 1
    due = [make_transaction(merchant) for _ in range(3)]
    later = make_transaction(merchant, execute_date=merchant.local_today() + timedelta(days=1))
    settled = charged(merchant)
    claimed, rest = services.claim_many([tx.pk for tx in due] + [later.pk, settled.pk, 999_999])
    assert sorted((tx.pk, tx.status, tx.attempts, resumed) for tx, resumed in claimed) == [
        (tx.pk, Status.PROCESSING, 1, False) for tx in due
    ]
    assert rest == [later.pk, settled.pk, 999_999]
    assert {tx.status for tx in Transaction.objects.filter(pk__in=[tx.pk for tx in due])} == {Status.PROCESSING}
    assert tasks.charge_many([tx.pk for tx in due] + [later.pk, settled.pk]) == {"done": 3, "not_due": 2}
    stored = Transaction.objects.filter(pk__in=[tx.pk for tx in [*due, settled]])
    assert bank.count_sales_by_key() == {tx.idempotency_key: 1 for tx in stored}


def test_a_redelivered_chunk_resumes_its_rows_in_processing_with_the_same_key(merchant, bank, settings):
    settings.CHARGE_THREADS = 1
    txs = [make_transaction(merchant) for _ in range(3)]
    services.claim_many([tx.pk for tx in txs])  # the worker died after its claim, before any bank call
    assert tasks.charge_many([tx.pk for tx in txs]) == {"done": 3}
    stored = Transaction.objects.filter(pk__in=[tx.pk for tx in txs])
    assert [tx.attempts for tx in stored] == [1, 1, 1]
    assert bank.count_sales_by_key() == {tx.idempotency_key: 1 for tx in stored}


def test_task_back_off_stays_below_the_brokers_visibility_timeout():
    """TESTING 21: a countdown longer than the visibility timeout would make Redis deliver the task twice."""
    assert max(settings.CHARGE_RETRY_COUNTDOWNS) < settings.REDIS_VISIBILITY_TIMEOUT
    assert tasks.charge.max_retries == len(settings.CHARGE_RETRY_COUNTDOWNS)
    assert tasks.charge.acks_late and tasks.charge.reject_on_worker_lost


def test_no_full_card_number_reaches_a_log_line(merchant, bank, caplog, settings):
    caplog.set_level(logging.DEBUG)
    settings.SIMULATED_BANK_TIMEOUT_RATE = 0
    for pan in (APPROVE, DO_NOT_HONOR, TIMES_OUT_AFTER_SALE):
        tx = make_transaction(merchant, pan=pan, description=f"card {pan}")
        services.charge(tx.pk)
        services.charge(tx.pk)
    text = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    assert "charge" in text
    for pan in (APPROVE, DO_NOT_HONOR, TIMES_OUT_AFTER_SALE):
        assert pan not in text


def test_the_card_is_kept_as_token_mask_and_keyed_fingerprint_only(merchant):
    tx = make_transaction(merchant)
    assert tx.card_masked == "411111******1111"
    assert tx.card_token.startswith("tok_")
    assert tx.card_fingerprint == card_fingerprint("4111 1111 1111 1111")
    assert APPROVE not in " ".join(str(v) for v in Transaction.objects.filter(pk=tx.pk).values().first().values())

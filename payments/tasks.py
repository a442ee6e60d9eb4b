"""Celery tasks of payments: thin wrappers over payments.services, payments.callbacks and payments.janitor (STYLE 13)."""

from __future__ import annotations

import logging
import queue
from concurrent.futures import ThreadPoolExecutor

from celery import shared_task
from django.conf import settings
from django.db import connection

from . import callbacks, services
from .janitor import run as run_janitor

logger = logging.getLogger(__name__)
RETRY_STEPS = (services.Step.RETRY_SAME_KEY, services.Step.RETRY_NEW_ATTEMPT)


@shared_task(
    bind=True,
    name="payments.charge",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=len(settings.CHARGE_RETRY_COUNTDOWNS),
)
def charge(self, transaction_id: int) -> str:
    """One transaction; retried with back-off while the bank is in doubt, unreachable or soft-declining."""
    step = services.charge(transaction_id)
    if step in RETRY_STEPS and self.request.retries < self.max_retries:
        raise self.retry(countdown=settings.CHARGE_RETRY_COUNTDOWNS[self.request.retries])
    return step.value  # out of retries: the janitor settles what is still in doubt


@shared_task(name="payments.charge_many", acks_late=True, reject_on_worker_lost=True)
def charge_many(transaction_ids: list[int]) -> dict[str, int]:
    """A chunk of charges with CHARGE_THREADS bank calls in flight (the bank's latency dominates a charge).

    Each id is safe to run twice, so a redelivered chunk only settles what the lost run left. Ids that
    need another try go on as single ``charge`` tasks with their back-off.
    """
    results = charge_chunk(transaction_ids, settings.CHARGE_THREADS)
    for transaction_id, step in results.items():
        if step in RETRY_STEPS:
            charge.apply_async((transaction_id,), countdown=settings.CHARGE_RETRY_COUNTDOWNS[0])
    counts: dict[str, int] = {}
    for step in results.values():
        counts[step.value] = counts.get(step.value, 0) + 1
    return counts


def charge_chunk(transaction_ids: list[int], threads: int) -> dict[int, services.Step]:
    """Claim the chunk in one statement, then charge the claimed rows (bank call and outcome) on ``threads``
    threads, each taking the next waiting row when it is free; the ids the claim left (not due, gone, held
    by another run) go through ``services.charge`` one by one, which settles each of them."""
    claimed, rest = services.claim_many(transaction_ids)
    waiting: queue.SimpleQueue = queue.SimpleQueue()
    for row in claimed:
        waiting.put(row)
    if threads <= 1:  # SQLite (the embedded default) takes one writer at a time anyway
        results = _charge_waiting(waiting)
    else:
        results = {}
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="charge") as pool:
            shares = [pool.submit(_on_own_connection, _charge_waiting, waiting) for _ in range(threads)]
        for share in shares:
            results |= share.result()
    return results | {
        transaction_id: _guarded(transaction_id, services.charge, transaction_id) for transaction_id in rest
    }


def _charge_waiting(waiting: queue.SimpleQueue) -> dict[int, services.Step]:
    """Charge claimed rows from ``waiting`` until none is left."""
    steps = {}
    while True:
        try:
            tx, resumed = waiting.get_nowait()
        except queue.Empty:
            return steps
        steps[tx.pk] = _guarded(tx.pk, services.charge_claimed, tx, resumed)


def _on_own_connection(function, *args):
    """``function`` on a pool thread, closing the thread's database connection after it (Django's
    connections are per thread, and the thread ends with the chunk)."""
    try:
        return function(*args)
    finally:
        connection.close()


def _guarded(transaction_id: int, function, *args) -> services.Step:
    """An unexpected error is logged and the id goes on as a single ``charge`` task with its back-off (the
    charge is safe to run again; a row it left in processing is the janitor's)."""
    try:
        return function(*args)
    except Exception:
        logger.exception("charge raised tx=%s; retried as a single task", transaction_id)
        return services.Step.RETRY_SAME_KEY


@shared_task(name="payments.janitor")
def janitor() -> dict[str, int]:
    return run_janitor()


# ignore_result: nobody reads a delivery task's result (the delivery's row and attempts say what happened).
@shared_task(name="payments.deliver_callback", acks_late=True, ignore_result=True)
def deliver_callback(delivery_id: int) -> str:
    return callbacks.deliver(delivery_id)


@shared_task(name="payments.deliver_callbacks", acks_late=True, ignore_result=True)
def deliver_callbacks(delivery_ids: list[int]) -> dict[str, int]:
    """A chunk of deliveries in one message (the scheduler's reminders); each is attempted on its own."""
    return callbacks.deliver_many(delivery_ids)


@shared_task(name="payments.send_due_callbacks")
def send_due_callbacks() -> int:
    return callbacks.send_due()

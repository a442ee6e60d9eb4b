"""Celery tasks of payments: thin wrappers over payments.services and payments.callbacks (STYLE 13)."""

from __future__ import annotations

import queue
import threading

from celery import shared_task
from django.conf import settings
from django.db import connection

from . import callbacks, services

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
    results = _charge_concurrently(transaction_ids, settings.CHARGE_THREADS)
    for transaction_id, step in results.items():
        if step in RETRY_STEPS:
            charge.apply_async((transaction_id,), countdown=settings.CHARGE_RETRY_COUNTDOWNS[0])
    counts: dict[str, int] = {}
    for step in results.values():
        counts[step.value] = counts.get(step.value, 0) + 1
    return counts


def _charge_concurrently(transaction_ids: list[int], threads: int) -> dict[int, services.Step]:
    if threads <= 1:  # SQLite (the embedded default) takes one writer at a time anyway
        return {transaction_id: services.charge(transaction_id) for transaction_id in transaction_ids}
    work: queue.SimpleQueue[int] = queue.SimpleQueue()
    for transaction_id in transaction_ids:
        work.put(transaction_id)
    results: dict[int, services.Step] = {}

    def run() -> None:
        try:
            while True:
                try:
                    transaction_id = work.get_nowait()
                except queue.Empty:
                    return
                results[transaction_id] = services.charge(transaction_id)
        finally:
            connection.close()  # each thread opened its own connection

    pool = [threading.Thread(target=run) for _ in range(min(threads, len(transaction_ids)))]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return results


@shared_task(name="payments.janitor")
def janitor() -> dict[str, int]:
    return services.janitor()


@shared_task(name="payments.deliver_callback", acks_late=True)
def deliver_callback(delivery_id: int) -> str:
    return callbacks.deliver(delivery_id)


@shared_task(name="payments.send_due_callbacks")
def send_due_callbacks() -> int:
    return callbacks.send_due()

"""Celery tasks of payments: thin wrappers over payments.services and payments.callbacks (STYLE 13)."""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections

from . import callbacks, services

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
    results = _charge_concurrently(transaction_ids, settings.CHARGE_THREADS)
    for transaction_id, step in results.items():
        if step in RETRY_STEPS:
            charge.apply_async((transaction_id,), countdown=settings.CHARGE_RETRY_COUNTDOWNS[0])
    counts: dict[str, int] = {}
    for step in results.values():
        counts[step.value] = counts.get(step.value, 0) + 1
    return counts


def _charge_concurrently(transaction_ids: list[int], threads: int) -> dict[int, services.Step]:
    """Claim the chunk at once, then the bank calls, ``threads`` at a time; ids the claim left (not due,
    gone, held by another run) go through ``services.charge`` one by one.

    The answers are written by ``services.record_outcomes``, several in one database transaction (their
    rollup deltas in one upsert per table). With threads, on this process's recorder thread while the
    other bank calls go on: a group whenever ``threads`` or more answers wait and the recorder is free,
    the rest once every call has returned."""
    if threads <= 1:  # SQLite (the embedded default) takes one writer at a time anyway
        claimed, rest = services.claim_many(transaction_ids)
        results = _record([_ask(tx, resumed) for tx, resumed in claimed])
        return results | {
            transaction_id: _guarded(services.charge, transaction_id, transaction_id) for transaction_id in rest
        }
    pool = _process_pool("charge", threads)
    claimed, rest = pool.submit(_in_thread, services.claim_many, transaction_ids).result()
    asked = [pool.submit(_in_thread, _ask, tx, resumed) for tx, resumed in claimed]
    singles = {
        transaction_id: pool.submit(_in_thread, _guarded, services.charge, transaction_id, transaction_id)
        for transaction_id in rest
    }
    recorder = _process_pool("record", 1)  # the one thread writing answers
    writes: list[Future] = []
    waiting: list[tuple] = []
    for future in as_completed(asked):
        waiting.append(future.result())
        if len(waiting) >= threads and (not writes or writes[-1].done()):
            writes.append(recorder.submit(_in_thread, _record, waiting))
            waiting = []
    if waiting:
        writes.append(recorder.submit(_in_thread, _record, waiting))
    results: dict[int, services.Step] = {}
    for write in writes:
        results |= write.result()
    return results | {transaction_id: future.result() for transaction_id, future in singles.items()}


def _ask(tx, resumed: bool) -> tuple:
    """The bank's answer for a claimed row, or the step when there is none to write (or the call raised)."""
    return tx, _guarded(services.ask_bank, tx.pk, tx, resumed)


def _record(answers: list[tuple]) -> dict[int, services.Step]:
    """Write the answers in one database transaction; rows without an answer keep their step. When the
    write raises, nothing of it is kept: those ids go on as single ``charge`` tasks (which find the rows in
    processing and ask the bank by their key), as an error in a charge does."""
    steps = {tx.pk: answer for tx, answer in answers if isinstance(answer, services.Step)}
    outcomes = [(tx, answer) for tx, answer in answers if not isinstance(answer, services.Step)]
    if not outcomes:
        return steps
    try:
        return steps | services.record_outcomes(outcomes)
    except Exception:
        logger.exception("recording outcomes raised tx=%s; retried as single tasks", [tx.pk for tx, _ in outcomes])
        return steps | dict.fromkeys((tx.pk for tx, _ in outcomes), services.Step.RETRY_SAME_KEY)


def _in_thread(function, *args):
    """A pool thread keeps its database connection from chunk to chunk (CONN_MAX_AGE); one that is too
    old or broken is replaced first."""
    close_old_connections()
    return function(*args)


def _guarded(function, transaction_id: int, *args) -> services.Step:
    """An unexpected error is logged and the id goes on as a single ``charge`` task with its back-off (the
    charge is safe to run again; a row it left in processing is the janitor's)."""
    try:
        return function(*args)
    except Exception:
        logger.exception("charge raised tx=%s; retried as a single task", transaction_id)
        return services.Step.RETRY_SAME_KEY


_pools: dict[str, tuple[int, ThreadPoolExecutor]] = {}


def _process_pool(name: str, threads: int) -> ThreadPoolExecutor:
    """This worker process's pool ``name`` of ``threads`` threads, started once (a forked pool child builds
    its own: threads do not survive fork). Each thread keeps its connection from chunk to chunk: opening
    and closing a connection per thread per chunk cost more than the bank calls."""
    pid, pool = _pools.get(name, (0, None))
    if pool is None or pid != os.getpid() or pool._max_workers != threads:
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        _pools[name] = (os.getpid(), pool)
    return pool


@shared_task(name="payments.janitor")
def janitor() -> dict[str, int]:
    return services.janitor()


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

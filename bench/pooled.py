"""Diagnosis only (not a contender of the targets): ``charge_many`` as bench/b4.py's analysis proposes
it for payments/tasks.py, i.e. with a thread pool that lives as long as the worker process, so each
thread keeps its database connection (CONN_MAX_AGE) and its bank connection across chunks instead of
opening new ones for every chunk. Same services, same retries; registered on the project's app:

    celery -A bench.pooled worker --concurrency 2      # runs payments.* and bench.charge_many_pooled
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from billing_bo.celery import app

_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


def _threads() -> ThreadPoolExecutor:
    """This process's pool (a forked child makes its own: threads do not survive fork)."""
    global _pool, _pool_pid
    from django.conf import settings

    if _pool is None or _pool_pid != os.getpid():
        _pool, _pool_pid = ThreadPoolExecutor(max_workers=settings.CHARGE_THREADS), os.getpid()
    return _pool


@app.task(name="bench.charge_many_pooled", acks_late=True, reject_on_worker_lost=True)
def charge_many_pooled(transaction_ids: list[int]) -> dict[str, int]:
    from django.conf import settings
    from django.db import close_old_connections

    from payments import services, tasks

    def one(transaction_id: int) -> services.Step:
        close_old_connections()  # drops a connection past CONN_MAX_AGE or broken, keeps a good one
        return services.charge(transaction_id)

    steps = dict(zip(transaction_ids, _threads().map(one, transaction_ids), strict=True))
    counts: dict[str, int] = {}
    for transaction_id, step in steps.items():
        if step in tasks.RETRY_STEPS:
            tasks.charge.apply_async((transaction_id,), countdown=settings.CHARGE_RETRY_COUNTDOWNS[0])
        counts[step.value] = counts.get(step.value, 0) + 1
    return counts

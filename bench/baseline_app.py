"""B4 baseline, "Celery defaults": a Celery app with nothing configured but the broker, and one naive
task per charge (load the row, save it as processing, call the bank, save the outcome).

Kept out of the project's apps on purpose: it is a yardstick, not a way to charge. It does use the same
idempotency key as the real path and retries a time-out at once with that key, so it is correct on the
simulated bank; what it lacks is concurrency beyond the prefork pool (one bank call per process).

    celery -A bench.baseline_app worker      # default concurrency: one process per core
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_bo.settings")
django.setup()

from celery import Celery  # noqa: E402
from django.utils import timezone  # noqa: E402

from payments.acquirer import AcquirerTimeout, AcquirerUnavailable, get_acquirer  # noqa: E402
from payments.models import Transaction  # noqa: E402

QUEUE = "bench-b4-baseline"
INLINE_TRIES = 5

# Not the current app: the bench process also sends the project's shared tasks, through billing_bo's app.
app = Celery("bench_baseline", broker=os.environ["REDIS_URL"], set_as_current=False)
app.conf.task_default_queue = QUEUE  # its own queue; every other setting is Celery's default


@app.task(name="bench.naive_charge")
def naive_charge(transaction_id: int) -> str:
    tx = Transaction.objects.select_related("merchant").get(pk=transaction_id)
    if tx.status != Transaction.Status.SCHEDULED:
        return "skipped"
    tx.status = Transaction.Status.PROCESSING
    tx.attempts += 1
    tx.claimed_at = timezone.now()
    tx.save()
    outcome = None
    for _ in range(INLINE_TRIES):
        try:
            outcome = get_acquirer().sale(
                tx.card_token, int(tx.amount), tx.idempotency_key, tx.description or tx.invoice_number
            )
            break
        except (AcquirerTimeout, AcquirerUnavailable):
            continue  # same key: the bank returns the first outcome if it did process it
    if outcome is None:
        return "in doubt"
    tx.status = Transaction.Status.SUCCESS if outcome.approved else Transaction.Status.FAILED
    tx.response_code = outcome.response_code
    tx.bank_message = outcome.message[:120]
    tx.approval_code = outcome.approval_code
    tx.acquirer_reference = outcome.reference
    tx.processed_at = timezone.now()
    tx.save()
    return tx.status

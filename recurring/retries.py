"""R10: a soft decline of a billing's charge is tried again on the merchant's retry days.

The count is per execution, never per billing: an execution is retried on the policy's days after ITS
execute date, each day at most once and only days still to come, so it has at most ``1 + len(days)``
attempts however many executions of the billing fail at the same time. When the days are spent (or the
decline is hard) it stays failed, and an execution that ends (success or failed for good) keeps no next
retry date. The billing shows its earliest pending retry (attempt and day), recomputed from its rows.
"""

from __future__ import annotations

import copy
from datetime import date

from django.dispatch import receiver

from payments.models import Transaction
from payments.signals import transaction_changed

from .models import Billing, RetryPolicy

Status = Transaction.Status
PENDING = (Status.SCHEDULED, Status.PROCESSING)


@receiver(transaction_changed, dispatch_uid="recurring.retries.retry_on_soft_decline")
def retry_on_soft_decline(sender, transaction: Transaction, old_status: str, batch=None, **kwargs) -> None:
    if transaction.billing_id is None or transaction.status not in (Status.SUCCESS, Status.FAILED):
        return
    tried = max(transaction.due_date, transaction.merchant.local_today())
    if schedule_retry(transaction, tried=tried, batch=batch) is None and transaction.next_retry_date is not None:
        # A retried execution ended: no next retry to show.
        Transaction.objects.filter(
            merchant_id=transaction.merchant_id, pk=transaction.pk, status=transaction.status
        ).update(next_retry_date=None)
        show_pending_retry(transaction.billing_id)


def schedule_retry(transaction: Transaction, *, tried: date, batch=None) -> date | None:
    """Put a failed execution of a billing, whose attempt was made on ``tried``, back to scheduled for its
    policy's next retry day; that day, or None when the decline is hard or the policy's days are spent."""
    if transaction.billing_id is None or transaction.status != Status.FAILED:
        return None
    policy = RetryPolicy.for_merchant(transaction.merchant)
    if transaction.response_code not in policy.retry_codes:
        return None
    retry_day = policy.next_retry(transaction.execute_date, after=tried)
    if retry_day is None:
        return None
    flipped = Transaction.objects.filter(
        merchant_id=transaction.merchant_id, pk=transaction.pk, status=Status.FAILED
    ).update(status=Status.SCHEDULED, next_retry_date=retry_day, queued_at=None)
    show_pending_retry(transaction.billing_id)
    if flipped:
        # Announce the change like any other, so listeners that count by status (reports) stay exact.
        # A copy: the other receivers of the outer signal must still see the failed attempt.
        retried = copy.copy(transaction)
        retried.status, retried.next_retry_date, retried.queued_at = Status.SCHEDULED, retry_day, None
        # In the outer change's batch, if any (its receivers gather this change with the others).
        transaction_changed.send(sender=Transaction, transaction=retried, old_status=Status.FAILED, batch=batch)
    return retry_day


def show_pending_retry(billing_id: int) -> None:
    """The billing's retry fields (R10, on every billing row): its earliest pending retry, attempts made so
    far and the day; zero and none when no execution of it waits for a retry."""
    pending = (
        Transaction.objects.filter(billing_id=billing_id, status__in=PENDING, next_retry_date__isnull=False)
        .order_by("next_retry_date", "pk")
        .values_list("attempts", "next_retry_date")
        .first()
    )
    attempts, day = pending or (0, None)
    Billing.objects.filter(pk=billing_id).update(retry_attempts=attempts, next_retry_date=day)

"""R10: a soft decline of a billing's charge is tried again on the merchant's retry days.

The count is per execution, never per billing: an execution is retried on the policy's days after ITS
execute date, each day at most once and only days still to come, so it has at most ``1 + len(days)``
attempts however many executions of the billing fail at the same time. When the days are spent (or the
decline is hard) it stays failed, and an execution that ends (success or failed for good) keeps no next
retry date. The billing shows its earliest pending retry (attempt and day), recomputed from its rows.
This module decides the day; payments moves the row (``schedule_retry``, ``clear_retry_date``).
"""

from __future__ import annotations

from datetime import date

from django.dispatch import receiver

from payments import services as payments
from payments.models import Transaction
from payments.signals import transaction_changed

from .models import Billing, RetryPolicy

Status = Transaction.Status
PENDING = (Status.SCHEDULED, Status.PROCESSING)


@receiver(transaction_changed, dispatch_uid="recurring.retries.retry_on_soft_decline")
def retry_on_soft_decline(sender, transaction: Transaction, old_status: str, **kwargs) -> None:
    if transaction.billing_id is None or transaction.status not in (Status.SUCCESS, Status.FAILED):
        return
    tried = max(transaction.due_date, transaction.merchant.local_today())
    if retry_by_policy(transaction, tried=tried) is None and transaction.next_retry_date is not None:
        payments.clear_retry_date(transaction)  # a retried execution ended: no next retry to show
        show_pending_retry(transaction.merchant_id, transaction.billing_id)


def retry_by_policy(transaction: Transaction, *, tried: date) -> date | None:
    """Have payments put a failed execution of a billing, whose attempt was made on ``tried``, back to
    scheduled for its policy's next retry day; that day, or None when the decline is hard or the policy's
    days are spent."""
    if transaction.billing_id is None or transaction.status != Status.FAILED:
        return None
    policy = RetryPolicy.for_merchant(transaction.merchant)
    if transaction.response_code not in policy.retry_codes:
        return None
    retry_day = policy.next_retry(transaction.execute_date, after=tried)
    if retry_day is None:
        return None
    payments.schedule_retry(transaction, retry_day)
    show_pending_retry(transaction.merchant_id, transaction.billing_id)
    return retry_day


def show_pending_retry(merchant_id: int, billing_id: int) -> None:
    """The billing's retry fields (R10, on every billing row): its earliest pending retry, attempts made so
    far and the day; zero and none when no execution of it waits for a retry."""
    pending = (
        Transaction.objects.filter(
            merchant_id=merchant_id, billing_id=billing_id, status__in=PENDING, next_retry_date__isnull=False
        )
        .order_by("next_retry_date", "pk")
        .values_list("attempts", "next_retry_date")
        .first()
    )
    attempts, day = pending or (0, None)
    Billing.objects.filter(merchant_id=merchant_id, pk=billing_id).update(retry_attempts=attempts, next_retry_date=day)

"""Who hears about a card that stops working (issue #19): the cardholder by e-mail with a card update link
(when the billing has an address), the merchant by callback (``billing.card_expiring``,
``billing.card_declined``; ``billing.card_updated`` is sent by ``card_updates``).

Once per billing, reason and period (``CardNotice``, unique): the period of an expiring card is its expiry
month, that of a declined charge the execution's invoice number. The notice row, the link, the callback and
the e-mail are one database transaction: a second run (a task retried, the daily run after the decline's
own task) finds the row and does nothing; an e-mail that fails to send rolls the row back, so the next run
tries again. The daily beat task ``recurring.card_notices`` walks every merchant; a hard decline also
queues ``recurring.card_declined_notice`` at once.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from django.db import IntegrityError
from django.db import transaction as db
from django.db.models import F
from django.dispatch import receiver

from accounts.models import Merchant
from payments import callbacks
from payments.models import Transaction
from payments.signals import transaction_changed

from . import emails
from .card_expiry import expiring_billings
from .card_updates import create_link
from .models import Billing, CardNotice, CardUpdateLink, RetryPolicy

logger = logging.getLogger(__name__)
Reason = CardUpdateLink.Reason


def billing_data(billing: Billing) -> dict:
    return {
        "billing_number": billing.billing_number,
        "customer_id": billing.customer_id,
        "customer_name": billing.customer_name,
        "amount": int(billing.amount),
        "currency": "IDR",
        "card": billing.card_masked,
        "card_expiry": f"{billing.card_expiry:%Y-%m}" if billing.card_expiry else None,
        "issuer": billing.card_issuer,
        "next_execute_date": billing.next_execute_date.isoformat() if billing.next_execute_date else None,
    }


def tell(billing: Billing, reason: str, period: str, execution: Transaction | None = None) -> CardNotice | None:
    """Tell the cardholder and the merchant about ``billing``'s card, unless this billing, reason and period
    were told already (then None)."""
    try:
        with db.atomic():
            notice = CardNotice.objects.create(
                merchant_id=billing.merchant_id, billing=billing, reason=reason, period=period, email=billing.email
            )
            data = billing_data(billing)
            if execution is not None:
                data |= {
                    "invoice_number": execution.invoice_number,
                    "execute_date": execution.execute_date.isoformat(),
                    "response_code": execution.response_code,
                    "message": execution.bank_message,
                }
            data["cardholder_emailed"] = bool(billing.email)
            event = "billing.card_expiring" if reason == Reason.EXPIRING else "billing.card_declined"
            callbacks.notify(billing.merchant, event, data)
            if billing.email:
                notice.link, url = create_link(billing, reason)
                notice.save(update_fields=["link"])
                if reason == Reason.EXPIRING:
                    emails.send_card_expiring(billing, notice.link, url)
                else:
                    emails.send_card_declined(billing, notice.link, url, execution)
    except IntegrityError:
        return None  # told already (this run's retry, or another run)
    logger.info(
        "card notice billing=%s reason=%s period=%s emailed=%s", billing.pk, reason, period, bool(billing.email)
    )
    return notice


def notify_expiring(merchant: Merchant, today: date | None = None) -> int:
    """The expiring cards' notices of ``merchant`` on its local ``today``; how many were new."""
    told = 0
    for billing in expiring_billings(merchant, today).select_related("merchant").order_by("pk"):
        told += tell(billing, Reason.EXPIRING, f"{billing.card_expiry:%Y-%m}") is not None
    return told


def declined_executions(merchant: Merchant, today: date | None = None):
    """``merchant``'s executions declined by a code of its policy's ``card_update_codes``, within the retry
    window, whose billing is charged and still has the card that was declined."""
    today = today or merchant.local_today()
    policy = RetryPolicy.for_merchant(merchant)
    return Transaction.objects.filter(
        merchant=merchant,
        kind=Transaction.Kind.RECURRING,
        status=Transaction.Status.FAILED,
        response_code__in=policy.card_update_codes,
        execute_date__gte=today - timedelta(days=policy.retry_window_days),
        billing__status=Billing.Status.ACTIVE,
        billing__deleted_at__isnull=True,
        card_token=F("billing__card_token"),
    )


def notify_declined(merchant: Merchant, today: date | None = None, execution_id: int | None = None) -> int:
    """The declined charges' notices of ``merchant`` (only ``execution_id``'s when given); how many were new."""
    rows = declined_executions(merchant, today).select_related("billing__merchant").order_by("pk")
    if execution_id is not None:
        rows = rows.filter(pk=execution_id)
    return sum(tell(tx.billing, Reason.DECLINED, tx.invoice_number, tx) is not None for tx in rows)


def run() -> dict[str, int]:
    """Every merchant's notices for its local today (the daily beat task; safe to run any number of times)."""
    told = {"expiring": 0, "declined": 0}
    for merchant in Merchant.objects.order_by("pk"):
        told["expiring"] += notify_expiring(merchant)
        told["declined"] += notify_declined(merchant)
    return told


@receiver(transaction_changed, dispatch_uid="recurring.card_notices.on_hard_decline")
def on_hard_decline(sender, transaction: Transaction, old_status: str, **kwargs) -> None:
    """A charge of a billing declined by a card update code: its notice goes out at once (after commit),
    not only at the next daily run."""
    if transaction.billing_id is None or transaction.status != Transaction.Status.FAILED:
        return
    if transaction.response_code not in RetryPolicy.for_merchant(transaction.merchant).card_update_codes:
        return
    from . import tasks

    execution_id = transaction.pk
    db.on_commit(lambda: tasks.card_declined_notice.delay(execution_id))

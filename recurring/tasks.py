from __future__ import annotations

from celery import shared_task

from accounts.models import Merchant
from payments.models import Transaction

from . import card_notices as notices
from . import scheduler


@shared_task(name="recurring.tick")
def tick() -> list[str]:
    """Celery beat, every few minutes: run each merchant's days that have come (R7, R8)."""
    return [f"{run.merchant_id}:{run.day}:{'done' if run.finished_at else 'busy'}" for run in scheduler.tick()]


@shared_task(name="recurring.card_notices", acks_late=True)
def card_notices() -> dict[str, int]:
    """Celery beat (hourly; each notice goes once per billing, reason and period): expiring cards and
    declined charges are told to the cardholder and the merchant (recurring/card_notices.py)."""
    return notices.run()


# An e-mail server that fails (OSError, smtplib's errors) rolls the notice back: tried again, then hourly.
@shared_task(name="recurring.card_declined_notice", acks_late=True, autoretry_for=(OSError,), max_retries=3)
def card_declined_notice(transaction_id: int) -> int:
    """The notice of one charge declined by a card update code, queued when it was recorded."""
    merchant_id = Transaction.objects.filter(pk=transaction_id).values_list("merchant_id", flat=True).first()
    if merchant_id is None:
        return 0
    return notices.notify_declined(Merchant.objects.get(pk=merchant_id), execution_id=transaction_id)

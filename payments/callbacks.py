"""Signed notifications to the merchant's server (P8), with retries on a back-off schedule.

``notify`` stores a delivery and queues its first attempt after commit. Each attempt is logged. A
failed attempt sets ``next_attempt_at`` from CALLBACK_RETRY_COUNTDOWNS and the beat task ``send_due``
queues it again when the time comes (no long Celery countdowns, which a broker may redeliver).
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction as db
from django.dispatch import receiver
from django.utils import timezone

from accounts import audit
from accounts.audit import Actor
from accounts.models import Merchant
from billing_bo.lib import outbound
from billing_bo.lib.cards import mask_pans_in_text
from billing_bo.lib.signing import sign

from .models import CallbackAttempt, CallbackDelivery, Transaction
from .services import ActionRefused
from .signals import transaction_changed

logger = logging.getLogger(__name__)
LEASE = timedelta(minutes=2)  # how long one sender holds a delivery before another may try
IDENTIFIERS = frozenset({"invoice_number", "billing_number", "customer_id"})
NO_SECRET = "Not sent: no signing secret; issue one in Setting Account."
NO_URL = "Not sent: no callback URL is set."

EVENTS = {
    Transaction.Status.SUCCESS: "payment.succeeded",
    Transaction.Status.FAILED: "payment.failed",
    Transaction.Status.VOIDED: "payment.voided",
    Transaction.Status.REFUNDED: "payment.refunded",
    Transaction.Status.PARTIALLY_REFUNDED: "payment.refunded",
}


def notify(merchant: Merchant, event: str, data: dict) -> CallbackDelivery | None:
    deliveries = notify_many(merchant, event, [data])
    return deliveries[0] if deliveries else None


def notify_many(merchant: Merchant, event: str, items: list[dict]) -> list[CallbackDelivery]:
    """One delivery per item of ``items`` (stored in one statement), queued after commit: a lone delivery as
    a ``deliver_callback`` task, more in ``deliver_callbacks`` tasks of CALLBACK_CHUNK (one broker message
    per chunk, not per delivery; each delivery is still attempted and retried on its own). Nothing is stored
    before the merchant has both a callback URL and a signing secret (never signed with an empty key)."""
    if not merchant.callback_url or not merchant.callback_secret or not items:
        return []
    now = timezone.now()
    deliveries = CallbackDelivery.objects.bulk_create(
        CallbackDelivery(
            merchant=merchant,
            event=event,
            url=merchant.callback_url,
            payload={"event": event, "created_at": now.isoformat(), "data": masked(data)},
            next_attempt_at=now,
        )
        for data in items
    )

    def send():
        from . import tasks

        ids = [delivery.pk for delivery in deliveries]
        if len(ids) == 1:
            tasks.deliver_callback.delay(ids[0])
            return
        for start in range(0, len(ids), settings.CALLBACK_CHUNK):
            tasks.deliver_callbacks.delay(ids[start : start + settings.CALLBACK_CHUNK])

    db.on_commit(send)
    return deliveries


def masked(value, key: str = ""):
    """``value`` with every card number in its text masked (a name or message may hold one a person typed);
    the references the merchant matches on (IDENTIFIERS) are kept as they are, as on their own rows."""
    if isinstance(value, str):
        return value if key in IDENTIFIERS else mask_pans_in_text(value)
    if isinstance(value, dict):
        return {name: masked(item, name) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(item, key) for item in value]
    return value


def transaction_data(tx: Transaction) -> dict:
    return {
        "invoice_number": tx.invoice_number,
        "billing_number": tx.billing_number,
        "customer_id": tx.customer_id,
        "kind": tx.kind,
        "amount": int(tx.amount),
        "refunded_amount": int(tx.refunded_amount),
        "currency": "IDR",
        "status": tx.status,
        "response_code": tx.response_code,
        "approval_code": tx.approval_code,
        "message": tx.bank_message,
        "card": tx.card_masked,
        "issuer": tx.card_issuer,
        "execute_date": tx.execute_date.isoformat(),
        "processed_at": tx.processed_at.isoformat() if tx.processed_at else None,
    }


@receiver(transaction_changed, dispatch_uid="payments.callbacks.on_transaction_changed")
def on_transaction_changed(sender, transaction: Transaction, old_status: str, **kwargs) -> None:
    event = EVENTS.get(transaction.status)
    if event:
        notify(transaction.merchant, event, transaction_data(transaction))


def deliver(delivery_id: int) -> str:
    """One attempt, if the delivery is due and no other sender holds it."""
    now = timezone.now()
    taken = CallbackDelivery.objects.filter(
        pk=delivery_id, status=CallbackDelivery.Status.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + LEASE)
    if not taken:
        return "not due"
    delivery = CallbackDelivery.objects.select_related("merchant").get(pk=delivery_id)
    url = delivery.merchant.callback_url  # the current one: a URL fixed since the first attempt is used
    started = time.monotonic()
    status_code, error = _send(delivery, url)
    duration_ms = int((time.monotonic() - started) * 1000)
    ok = status_code is not None and 200 <= status_code < 300

    number = delivery.attempts + 1
    CallbackAttempt.objects.create(
        delivery=delivery,
        merchant=delivery.merchant,
        number=number,
        status_code=status_code,
        error=error,
        duration_ms=duration_ms,
    )
    schedule = settings.CALLBACK_RETRY_COUNTDOWNS
    if ok:
        fields = {"status": CallbackDelivery.Status.DELIVERED, "delivered_at": timezone.now(), "next_attempt_at": None}
    elif number > len(schedule):
        fields = {"status": CallbackDelivery.Status.FAILED, "next_attempt_at": None}
    else:
        fields = {"next_attempt_at": timezone.now() + timedelta(seconds=schedule[number - 1])}
    if url:
        fields["url"] = url  # the log shows where the last attempt went
    CallbackDelivery.objects.filter(pk=delivery.pk).update(attempts=number, **fields)
    logger.info("callback delivery=%s attempt=%s status=%s error=%s", delivery.pk, number, status_code, error or "-")
    return "delivered" if ok else "failed"


def _send(delivery: CallbackDelivery, url: str) -> tuple[int | None, str]:
    """POST the delivery to ``url``, signed; the answer's status code (None when none came) and the error."""
    if not url:
        return None, NO_URL
    if not delivery.merchant.callback_secret:
        return None, NO_SECRET
    body = json.dumps(delivery.payload, cls=DjangoJSONEncoder, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "BillingBackOffice-Callbacks/1",
        "X-Billing-Event": delivery.event,
        "X-Billing-Delivery": str(delivery.pk),
        "X-Billing-Timestamp": str(timestamp),
        "X-Billing-Signature": sign(delivery.merchant.callback_secret, timestamp, body),
    }
    try:  # the address is checked again here (DNS can change); a redirect is an answer, not followed
        status_code = outbound.post(url, body, headers, timeout=settings.CALLBACK_TIMEOUT_SECONDS)
    except outbound.RefusedAddress as exc:
        return None, f"Not sent: {exc}"[:255]
    except (OSError, http.client.HTTPException) as exc:
        return None, (str(exc) or type(exc).__name__)[:255]
    return status_code, "" if 200 <= status_code < 300 else f"HTTP {status_code}"


def resend(actor: Actor, delivery: CallbackDelivery) -> None:
    """One more attempt of a failed delivery of ``actor``'s merchant, at once, to its current URL (audited);
    raises ActionRefused for any other delivery (a second click finds it pending) or while callbacks are off."""
    merchant = actor.merchant
    if not merchant.callback_url or not merchant.callback_secret:
        raise ActionRefused("Set a callback URL and issue a signing secret first.")
    with db.atomic():
        resent = CallbackDelivery.objects.filter(
            pk=delivery.pk, merchant=merchant, status=CallbackDelivery.Status.FAILED
        ).update(status=CallbackDelivery.Status.PENDING, next_attempt_at=timezone.now())
        if not resent:
            raise ActionRefused("Only a failed delivery can be resent.")
        audit.record(
            "payments.callback.resent",
            actor=actor,
            target=delivery,
            data={"event": delivery.event, "url": merchant.callback_url},
        )
        db.on_commit(lambda: _queue(delivery.pk))


def _queue(delivery_id: int) -> None:
    from . import tasks

    tasks.deliver_callback.delay(delivery_id)


def deliver_many(delivery_ids: list[int]) -> dict[str, int]:
    """One attempt each, as ``deliver``, one after the other. An error in one is logged and the others go on;
    the one that raised is still pending, so ``send_due`` queues it again once it is due (at once when no
    attempt was taken, after LEASE when one was), and its failed attempts follow CALLBACK_RETRY_COUNTDOWNS."""
    outcomes: dict[str, int] = {}
    for delivery_id in delivery_ids:
        try:
            outcome = deliver(delivery_id)
        except Exception:
            logger.exception("callback delivery=%s raised; send_due queues it again", delivery_id)
            outcome = "error"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def send_due(now=None) -> int:
    """Queue the pending deliveries whose next attempt has come (beat, every minute)."""
    from . import tasks

    now = now or timezone.now()
    due = list(
        CallbackDelivery.objects.filter(status=CallbackDelivery.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:1000]
    )
    for delivery_id in due:
        tasks.deliver_callback.delay(delivery_id)
    return len(due)

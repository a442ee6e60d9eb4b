"""The janitor (Celery beat, ``payments.janitor``): settles what crashes and time-outs left behind.

A charge in doubt (processing past CHARGE_STUCK_SECONDS) is settled from the bank's record of its key;
one the bank never saw is sent again with the same key, or closed as failed after
CHARGE_GIVE_UP_SECONDS; a charge queued long ago and never claimed is queued again; a void or refund
without an answer is answered from the bank's record.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from .acquirer import Acquirer, AcquirerTimeout, AcquirerUnavailable, Outcome, get_acquirer
from .models import Adjustment, Transaction
from .services import apply_adjustment, enqueue_charges, record_outcome
from .signals import transaction_changed

logger = logging.getLogger(__name__)
Status = Transaction.Status
NO_ANSWER = "No answer from the bank"


def run(now: datetime | None = None) -> dict[str, int]:
    """Ask the bank about charges in doubt and adjustments without an answer; requeue lost charge tasks."""
    now = now or timezone.now()
    acquirer = get_acquirer()
    counts = {"settled": 0, "requeued": 0, "given_up": 0, "adjustments": 0}
    requeue = _settle_in_doubt(acquirer, now, counts)
    lost_before = now - timedelta(seconds=settings.CHARGE_REQUEUE_SECONDS)
    lost = Transaction.objects.filter(status=Status.SCHEDULED, queued_at__lt=lost_before).values_list("pk", flat=True)
    requeue.extend(lost[: settings.JANITOR_BATCH])
    counts["requeued"] = len(requeue)
    enqueue_charges(requeue)
    counts["adjustments"] = _answer_adjustments(acquirer, now)
    if any(counts.values()):
        logger.info("janitor %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def _settle_in_doubt(acquirer: Acquirer, now: datetime, counts: dict[str, int]) -> list[int]:
    """Settle the charges stuck in processing (counted in ``counts``); returns those to send again."""
    stuck_before = now - timedelta(seconds=settings.CHARGE_STUCK_SECONDS)
    stuck = Transaction.objects.filter(status=Status.PROCESSING, claimed_at__lt=stuck_before).select_related("merchant")
    requeue: list[int] = []
    for tx in stuck.order_by("claimed_at")[: settings.JANITOR_BATCH]:
        try:
            outcome = acquirer.find(tx.idempotency_key)
        except (AcquirerTimeout, AcquirerUnavailable):
            continue
        if outcome is not None:
            record_outcome(tx, outcome)
            counts["settled"] += 1
        elif tx.claimed_at < now - timedelta(seconds=settings.CHARGE_GIVE_UP_SECONDS):
            counts["given_up"] += _give_up(tx, now)
        else:
            # Unknown key: the charge never reached the bank. Send it again with the same key (a late
            # request with this key would be recognised by the bank, so this cannot charge twice).
            Transaction.objects.filter(pk=tx.pk, status=Status.PROCESSING).update(claimed_at=now)
            requeue.append(tx.pk)
    return requeue


def _give_up(tx: Transaction, now: datetime) -> bool:
    """The bank never saw this key in all this time: no money moved. Close it as failed, announced."""
    fields = {"status": Status.FAILED, "error_code": "timeout", "bank_message": NO_ANSWER, "processed_at": now}
    written = Transaction.objects.filter(pk=tx.pk, status=Status.PROCESSING, attempts=tx.attempts).update(**fields)
    if written:
        for name, value in fields.items():
            setattr(tx, name, value)
        transaction_changed.send(sender=Transaction, transaction=tx, old_status=Status.PROCESSING)
    return bool(written)


def _answer_adjustments(acquirer: Acquirer, now: datetime) -> int:
    """Record the bank's answer to voids and refunds left pending; returns how many were answered."""
    pending = Adjustment.objects.filter(
        status=Adjustment.Status.PENDING, created_at__lt=now - timedelta(seconds=settings.CHARGE_STUCK_SECONDS)
    )
    answered = 0
    for adjustment in pending[: settings.JANITOR_BATCH]:
        try:
            outcome = acquirer.find(adjustment.idempotency_key)
        except (AcquirerTimeout, AcquirerUnavailable):
            continue
        if outcome is None:
            outcome = Outcome(approved=False, response_code="", message="The bank never received this request")
        apply_adjustment(adjustment, outcome)
        answered += 1
    return answered

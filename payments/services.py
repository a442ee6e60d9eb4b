"""Charging, voiding and refunding (PRODUCT P3-P5, P7; DESIGN "Transactions and charging").

A charge moves money at most once whatever crashes or redeliveries happen:
- a worker claims a transaction with a conditional UPDATE (scheduled -> processing, attempt + 1);
- the acquirer gets the attempt's idempotency key, so a redelivered task (which finds the row still
  processing) asks the bank for that key first and, if the bank never saw it, sends the same key again;
- the outcome is written with a conditional UPDATE on (processing, attempt), so two runs of one attempt
  write it once;
- a transient decline (91, 96) is a definitive answer for its key: a retry is a new attempt, new key;
- a time-out leaves the row processing ("in doubt") until a retry or the janitor asks the bank by key.
"""

from __future__ import annotations

import copy
import enum
import logging
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import transaction as db
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts import audit
from accounts.audit import Actor
from billing_bo.lib.cards import card_fingerprint
from billing_bo.lib.phones import normalise_phone

from .acquirer import AcquirerTimeout, AcquirerUnavailable, Outcome, get_acquirer
from .acquirer.base import TRANSIENT_CODES
from .models import Adjustment, Transaction
from .signals import transaction_changed

logger = logging.getLogger(__name__)
Status = Transaction.Status


def tokenize_card(
    pan: str, expiry_month: int, expiry_year: int, cvv: str | None, holder_name: str, holder_phone: str = ""
) -> dict:
    """Hand the card to the acquirer and return what the back office may keep of it (P2): the fields
    of ``CardSnapshot``. Raises ``CardRejected`` with the bank's reason. The number and CVV end here."""
    card = get_acquirer().tokenize(pan, expiry_month, expiry_year, cvv, holder_name)
    return {
        "card_token": card.token,
        "card_masked": card.masked,
        "card_fingerprint": card_fingerprint(pan),
        "card_expiry": card.expiry,
        "card_issuer": card.issuer,
        "card_brand": card.brand,
        "holder_name": holder_name,
        "holder_phone": normalise_phone(holder_phone),
    }


class Step(enum.Enum):
    DONE = "done"  # a final outcome was recorded (or another run recorded it)
    NOT_DUE = "not_due"  # nothing to do: not scheduled, not due, or not found
    RETRY_SAME_KEY = "retry_same_key"  # in doubt or bank unreachable: ask again with the same key
    RETRY_NEW_ATTEMPT = "retry_new_attempt"  # transient decline: back to scheduled for a new attempt


def claim(transaction_id: int) -> tuple[Transaction | None, bool]:
    """Move a due transaction to processing for a new attempt, or pick up the attempt a crashed run left.

    Returns the row and whether it was resumed (already processing: the bank may know its key).
    """
    tx = Transaction.objects.select_related("merchant").filter(pk=transaction_id).first()
    if tx is None:
        return None, False
    if tx.status == Status.PROCESSING:
        return tx, True
    if tx.status != Status.SCHEDULED or tx.due_date > tx.merchant.local_today():
        return None, False
    now = timezone.now()
    fields = {"status": Status.PROCESSING, "attempts": tx.attempts + 1, "claimed_at": now, "error_code": ""}
    # The row as read, still scheduled: another worker has not claimed it since (or claimed and settled it).
    claimed = Transaction.objects.filter(pk=transaction_id, status=Status.SCHEDULED, attempts=tx.attempts).update(
        **fields
    )
    if not claimed:  # another worker won the claim
        return None, False
    for name, value in fields.items():
        setattr(tx, name, value)
    return tx, False


def claim_many(transaction_ids: list[int]) -> tuple[list[tuple[Transaction, bool]], list[int]]:
    """``claim`` for a chunk in two queries: the due rows nobody else holds, locked, moved to processing.

    Returns the claimed rows (with ``resumed`` as ``claim`` gives it) and the ids left over: not found, not
    due, or locked by another run at this moment. ``charge`` settles each of those on its own (it finds
    them done, not due, or in processing and resumes them with the same key).
    """
    claimed: list[tuple[Transaction, bool]] = []
    fresh: list[Transaction] = []
    with db.atomic():
        rows = (
            Transaction.objects.select_related("merchant")
            .select_for_update(of=("self",), skip_locked=True)
            .filter(pk__in=transaction_ids, status__in=(Status.SCHEDULED, Status.PROCESSING))
        )
        for tx in rows:
            if tx.status == Status.PROCESSING:
                claimed.append((tx, True))
            elif tx.due_date <= tx.merchant.local_today():
                fresh.append(tx)
        if fresh:
            fields = {"status": Status.PROCESSING, "claimed_at": timezone.now(), "error_code": ""}
            Transaction.objects.filter(pk__in=[tx.pk for tx in fresh]).update(attempts=F("attempts") + 1, **fields)
            for tx in fresh:  # under the row lock: the stored row is this one plus the update
                for name, value in fields.items():
                    setattr(tx, name, value)
                tx.attempts += 1
                claimed.append((tx, False))
    taken = {tx.pk for tx, _ in claimed}
    return claimed, [transaction_id for transaction_id in transaction_ids if transaction_id not in taken]


def charge(transaction_id: int) -> Step:
    """One charge attempt of ``transaction_id``; safe to run twice, concurrently, or after a crash."""
    tx, resumed = claim(transaction_id)
    if tx is None:
        return Step.NOT_DUE
    return charge_claimed(tx, resumed)


def charge_claimed(tx: Transaction, resumed: bool) -> Step:
    """The bank call and its outcome for a row ``claim`` or ``claim_many`` gave."""
    outcome = ask_bank(tx, resumed)
    return outcome if isinstance(outcome, Step) else record_outcome(tx, outcome)


def ask_bank(tx: Transaction, resumed: bool) -> Outcome | Step:
    """The bank's answer for the claimed attempt of ``tx`` (asked by its key first when ``resumed``), or
    ``Step.RETRY_SAME_KEY`` when the bank timed out or could not be reached (noted on the row). Writes no
    outcome: ``record_outcome`` does."""
    acquirer = get_acquirer()
    key = tx.idempotency_key
    try:
        outcome = acquirer.find(key) if resumed else None
        if outcome is None:
            outcome = acquirer.sale(tx.card_token, int(tx.amount), key, tx.description or tx.invoice_number)
    except AcquirerTimeout:
        logger.warning("charge in doubt: bank timed out tx=%s attempt=%s", tx.pk, tx.attempts)
        _note_fault(tx, "timeout")
        return Step.RETRY_SAME_KEY
    except AcquirerUnavailable:
        logger.warning("charge not sent: bank unavailable tx=%s attempt=%s", tx.pk, tx.attempts)
        _note_fault(tx, "unavailable")
        return Step.RETRY_SAME_KEY
    return outcome


def _note_fault(tx: Transaction, error_code: str) -> None:
    Transaction.objects.filter(pk=tx.pk, status=Status.PROCESSING, attempts=tx.attempts).update(error_code=error_code)


def record_outcome(tx: Transaction, outcome: Outcome) -> Step:
    """Write the bank's answer for the current attempt once, in one database transaction; announce it
    when it is final (the receivers' writes, such as the rollups, commit or roll back with it)."""
    now = timezone.now()
    fields = {
        "response_code": outcome.response_code,
        "bank_message": outcome.message[:120],
        "approval_code": outcome.approval_code,
        "acquirer_reference": outcome.reference,
        "card_issuer": outcome.issuer or tx.card_issuer,
        "error_code": "",
        "processed_at": now,
    }
    retry = (
        not outcome.approved and outcome.response_code in TRANSIENT_CODES and tx.attempts < settings.CHARGE_MAX_ATTEMPTS
    )
    if outcome.approved:
        fields["status"] = Status.SUCCESS
    elif retry:
        fields.update(status=Status.SCHEDULED, processed_at=None, queued_at=now)
    else:
        fields.update(status=Status.FAILED, declined_code=tx.declined_code or outcome.response_code)
    with db.atomic():
        written = Transaction.objects.filter(pk=tx.pk, status=Status.PROCESSING, attempts=tx.attempts).update(**fields)
        if not written:
            return Step.DONE  # another run of this attempt wrote it first
        for name, value in fields.items():
            setattr(tx, name, value)
        if not retry:
            transaction_changed.send(sender=Transaction, transaction=tx, old_status=Status.PROCESSING)
    logger.info(
        "charge outcome tx=%s attempt=%s code=%s status=%s", tx.pk, tx.attempts, outcome.response_code, tx.status
    )
    return Step.RETRY_NEW_ATTEMPT if retry else Step.DONE


def enqueue_charges(transaction_ids: list[int], *, marked: bool = False) -> None:
    """Queue charge tasks after the surrounding database transaction commits (never for a rolled-back row).

    ``marked``: the rows were written with ``queued_at`` set already (the scheduler inserts them so), so
    they are not written a second time.
    """
    if not transaction_ids:
        return
    from . import tasks

    def send():
        if not marked:
            Transaction.objects.filter(pk__in=transaction_ids).update(queued_at=timezone.now())
        for chunk_start in range(0, len(transaction_ids), settings.CHARGE_CHUNK):
            tasks.charge_many.delay(transaction_ids[chunk_start : chunk_start + settings.CHARGE_CHUNK])

    db.on_commit(send)


# Changes recurring asks for (R5, R10, P6): payments writes every status of a transaction.


def schedule_retry(tx: Transaction, day: date) -> bool:
    """Put a failed charge back to scheduled for a new attempt on ``day`` (the retry policy is recurring's,
    R10) and announce it like any other change, so listeners that count by status (reports) stay exact.
    False when the row is not failed any more."""
    moved = Transaction.objects.filter(merchant_id=tx.merchant_id, pk=tx.pk, status=Status.FAILED).update(
        status=Status.SCHEDULED, next_retry_date=day, queued_at=None
    )
    if moved:
        # A copy: when this runs inside a receiver of the failure, the others must still see the failure.
        retried = copy.copy(tx)
        retried.status, retried.next_retry_date, retried.queued_at = Status.SCHEDULED, day, None
        transaction_changed.send(sender=Transaction, transaction=retried, old_status=Status.FAILED)
    return bool(moved)


def clear_retry_date(tx: Transaction) -> None:
    """A retried charge that ended (success, or failed for good) keeps no next retry date."""
    Transaction.objects.filter(merchant_id=tx.merchant_id, pk=tx.pk, status=tx.status).update(next_retry_date=None)


def charge_again_on_new_card(tx: Transaction, card: dict, day: date) -> bool:
    """A failed charge whose card was replaced (a card update, recurring) goes back to scheduled on ``card``
    (the fields of ``CardSnapshot``) for a new attempt on ``day``, queued after commit: the attempt number
    moves on when it is claimed, so the bank gets a new idempotency key. Announced like ``schedule_retry``.
    False when the row is not failed any more: a second update of the card never charges it again."""
    moved = Transaction.objects.filter(merchant_id=tx.merchant_id, pk=tx.pk, status=Status.FAILED).update(
        status=Status.SCHEDULED, next_retry_date=day, queued_at=None, **card
    )
    if moved:
        retried = copy.copy(tx)
        retried.status, retried.next_retry_date, retried.queued_at = Status.SCHEDULED, day, None
        for name, value in card.items():
            setattr(retried, name, value)
        transaction_changed.send(sender=Transaction, transaction=retried, old_status=Status.FAILED)
        enqueue_charges([tx.pk])
    return bool(moved)


def replace_card_of_scheduled(transactions: QuerySet[Transaction], card: dict) -> int:
    """Those of ``transactions`` nothing was sent to the bank for yet (a pending retry) take ``card`` (the
    fields of ``CardSnapshot``); a row queued meanwhile keeps the card it was queued with."""
    return transactions.filter(status=Status.SCHEDULED, queued_at__isnull=True).update(**card)


def cancel_scheduled(transactions: QuerySet[Transaction]) -> int:
    """Cancel those of ``transactions`` nothing was sent to the bank for (scheduled and not queued), under
    their row locks, each announced. Returns how many were cancelled; a row queued meanwhile stays."""
    with db.atomic():
        rows = list(
            transactions.select_for_update().filter(status=Status.SCHEDULED, queued_at__isnull=True).order_by("pk")
        )
        Transaction.objects.filter(pk__in=[tx.pk for tx in rows]).update(
            status=Status.CANCELLED, updated_at=timezone.now()
        )
        for tx in rows:
            tx.status = Status.CANCELLED
            transaction_changed.send(sender=Transaction, transaction=tx, old_status=Status.SCHEDULED)
    return len(rows)


# Void and refund (P4, P5, P7)


class ActionRefused(Exception):
    """The rules of P7 (or the bank) refuse the action; the message says why, for the screen."""


def _adjust(actor: Actor, tx_id: int, kind: str, amount: Decimal | None, reason: str) -> Adjustment:
    acquirer = get_acquirer()
    with db.atomic():
        # The row lock makes a second click or tab wait here, then see the first one's result.
        # Only a row of the actor's merchant: another merchant's is Transaction.DoesNotExist.
        tx = (
            Transaction.objects.select_for_update()
            .select_related("merchant")
            .get(merchant_id=actor.merchant.pk, pk=tx_id)
        )
        adjustments = Adjustment.objects.filter(merchant_id=tx.merchant_id, transaction=tx)
        if adjustments.filter(status=Adjustment.Status.PENDING).exists():
            raise ActionRefused("A void or refund of this transaction is waiting for the bank's answer.")
        if kind == Adjustment.Kind.VOID:
            refusal, amount = tx.void_refused_because(), tx.amount
        else:
            refusal = tx.refund_refused_because(amount)
        if refusal:
            raise ActionRefused(refusal)
        number = adjustments.filter(kind=kind).count() + 1
        adjustment = Adjustment.objects.create(
            merchant=tx.merchant,
            transaction=tx,
            kind=kind,
            amount=amount,
            idempotency_key=f"{tx.merchant_id}:{tx.invoice_number}:{kind}:{number}",
            reason=reason,
            requested_by=actor.user,
        )
        try:
            if kind == Adjustment.Kind.VOID:
                outcome = acquirer.void(tx.acquirer_reference, adjustment.idempotency_key)
            else:
                outcome = acquirer.refund(tx.acquirer_reference, int(amount), adjustment.idempotency_key)
        except AcquirerTimeout:
            outcome = None  # in doubt: stays pending; the janitor asks the bank by key
        except AcquirerUnavailable as exc:
            raise ActionRefused("The bank cannot be reached right now. Nothing was changed; try again.") from exc
        audit.record(
            f"payments.transaction.{'void' if kind == Adjustment.Kind.VOID else 'refund'}_requested",
            actor=actor,
            target=tx,
            reason=reason,
            data=_audit_data(tx, amount),
        )
        if outcome is not None:
            adjustment = apply_adjustment(adjustment, outcome, actor=actor)
    return adjustment


def void(actor: Actor, tx_id: int, reason: str) -> Adjustment:
    """P4: ``actor`` voids transaction ``tx_id`` of its merchant in full."""
    return _adjust(actor, tx_id, Adjustment.Kind.VOID, None, reason)


def refund(actor: Actor, tx_id: int, amount: Decimal, reason: str) -> Adjustment:
    """P5: ``actor`` refunds ``amount`` of transaction ``tx_id`` of its merchant."""
    return _adjust(actor, tx_id, Adjustment.Kind.REFUND, amount, reason)


def _audit_data(tx: Transaction, amount: Decimal) -> dict:
    return {
        "invoice_number": tx.invoice_number,
        "billing_number": tx.billing_number,
        "customer_id": tx.customer_id,
        "approval_code": tx.approval_code,
        "amount": str(amount),
    }


def apply_adjustment(adjustment: Adjustment, outcome: Outcome, *, actor: Actor | None = None) -> Adjustment:
    """Record the bank's answer to a void or refund once (the caller holds, or takes here, the row lock).
    Audited as done by ``actor``, else (the janitor's late answer) by the user who asked. Returns the
    adjustment as stored after the answer."""
    with db.atomic():
        mine = Adjustment.objects.filter(merchant_id=adjustment.merchant_id, pk=adjustment.pk)
        written = mine.filter(status=Adjustment.Status.PENDING).update(
            status=Adjustment.Status.APPROVED if outcome.approved else Adjustment.Status.DECLINED,
            response_code=outcome.response_code,
            bank_message=outcome.message[:120],
            acquirer_reference=outcome.reference,
            answered_at=timezone.now(),
        )
        if not written:
            return mine.get()
        adjustment = mine.select_related("requested_by").get()
        tx = (
            Transaction.objects.select_for_update()
            .select_related("merchant")
            .get(merchant_id=adjustment.merchant_id, pk=adjustment.transaction_id)
        )
        verb = "voided" if adjustment.kind == Adjustment.Kind.VOID else "refunded"
        if not outcome.approved:
            audit.record(
                f"payments.transaction.{verb[:-2]}_declined",
                actor=actor or adjustment.requested_by,
                merchant=tx.merchant,
                target=tx,
                data={**_audit_data(tx, adjustment.amount), "response_code": outcome.response_code},
            )
            return adjustment
        old_status = tx.status
        if adjustment.kind == Adjustment.Kind.VOID:
            tx.status = Status.VOIDED
        else:
            tx.refunded_amount += adjustment.amount
            tx.status = Status.REFUNDED if tx.refunded_amount >= tx.amount else Status.PARTIALLY_REFUNDED
        tx.save(update_fields=["status", "refunded_amount", "updated_at"])
        audit.record(
            f"payments.transaction.{verb}",
            actor=actor or adjustment.requested_by,
            merchant=tx.merchant,
            target=tx,
            reason=adjustment.reason,
            data=_audit_data(tx, adjustment.amount),
        )
        transaction_changed.send(sender=Transaction, transaction=tx, old_status=old_status)
    return adjustment

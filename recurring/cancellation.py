"""Cancel Execute Date (P6): what runs on a date for a billing number and/or an invoice number, and its
cancellation. Two kinds of rows answer: a billing's execution (``services.find_execution`` /
``services.cancel_execution``) and a scheduled single payment (a batch-uploaded charge with no billing;
its billing number, when the file gave one, is only a reference). Both are cancelled only while nothing
was sent to the bank, after a code and a reason (the view), by payments (``cancel_scheduled``), and audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import transaction as db

from accounts import audit
from accounts.audit import Actor
from accounts.models import Merchant
from payments import services as payments
from payments.models import Transaction

from . import services
from .models import Billing

SCHEDULED, CANCELLED = "scheduled", "cancelled"
ACTIONS = ("recurring.execution.cancelled", "recurring.single_payment.cancelled")  # their audit entries


@dataclass
class Due:
    """One row of the search: ``state`` is "scheduled", "cancelled", or why it cannot be cancelled."""

    execute_date: date
    invoice: str
    billing_number: str
    customer: str
    amount: Decimal
    state: str
    billing: Billing | None = None
    payment: Transaction | None = None  # a single payment


def find(merchant: Merchant, day: date, billing_number: str, invoice: str) -> list[Due] | str:
    """The rows due on ``day`` for the numbers given (at least one), or a sentence saying nothing is."""
    payments = Transaction.objects.filter(
        merchant_id=merchant.pk, kind=Transaction.Kind.SINGLE_PAYMENT, billing__isnull=True, execute_date=day
    )
    if invoice:
        payments = payments.filter(invoice_number=invoice)
    if billing_number:
        payments = payments.filter(billing_number__iexact=billing_number)
    found = [_payment_row(tx) for tx in payments.order_by("invoice_number")[:20]]
    if invoice and found:
        return found  # an invoice number names one row
    billing = _billing(merchant, billing_number, invoice)
    if billing is not None:
        state, tx = services.find_execution(billing, day, invoice)
        if not found or state in (SCHEDULED, CANCELLED) or tx is not None:
            found.insert(0, _execution_row(billing, day, state, tx))
    if found:
        return found
    if billing_number and not invoice:
        return f"No billing or single payment has the number {billing_number} on {day:%Y-%m-%d}."
    return f"Nothing with these numbers is due on {day:%Y-%m-%d}."


def cancel(actor: Actor, due: Due, reason: str) -> None:
    """``actor`` cancels the one row the search found; raises services.RecurringError with the reason it cannot."""
    if due.billing is not None:
        services.cancel_execution(actor, due.billing, due.execute_date, due.invoice, reason)
        return
    with db.atomic():
        mine = Transaction.objects.filter(merchant_id=actor.merchant.pk, pk=due.payment.pk)
        tx = mine.select_for_update().get()
        state = payment_state(tx)
        if state != SCHEDULED:
            raise services.RecurringError("This payment is cancelled already." if state == CANCELLED else state)
        payments.cancel_scheduled(mine)  # under the row lock taken above: it is still scheduled
        audit.record(
            "recurring.single_payment.cancelled",
            actor=actor,
            target=tx,
            reason=reason,
            data={
                "invoice_number": tx.invoice_number,
                "billing_number": tx.billing_number,
                "customer_id": tx.customer_id,
                "execute_date": tx.execute_date.isoformat(),
                "amount": str(tx.amount),
            },
        )


def payment_state(tx: Transaction) -> str:
    if tx.status == Transaction.Status.CANCELLED:
        return CANCELLED
    if tx.status == Transaction.Status.SCHEDULED and tx.queued_at is None:
        return SCHEDULED
    if tx.status in (Transaction.Status.SCHEDULED, Transaction.Status.PROCESSING):
        return "This payment is being charged: it cannot be cancelled."
    return f"This payment is {tx.get_status_display().lower()} already: it cannot be cancelled."


def _billing(merchant: Merchant, billing_number: str, invoice: str) -> Billing | None:
    billings = Billing.objects.filter(merchant_id=merchant.pk)
    if billing_number:  # ignoring case; of two that differ only in case, the one typed exactly
        matches = billings.filter(billing_number__iexact=billing_number)
        return matches.filter(billing_number=billing_number).first() or matches.first()
    # An invoice number alone: the billing whose execution it is, if one was created.
    tx = Transaction.objects.filter(merchant_id=merchant.pk, invoice_number=invoice, billing__isnull=False).first()
    return billings.filter(pk=tx.billing_id).first() if tx else None


def _execution_row(billing: Billing, day: date, state: str, tx: Transaction | None) -> Due:
    invoice = tx.invoice_number if tx else services.invoice_number(billing.billing_number, day)
    amount = tx.amount if tx else billing.amount
    return Due(day, invoice, billing.billing_number, billing.customer_name, amount, state, billing=billing)


def _payment_row(tx: Transaction) -> Due:
    customer = tx.holder_name or tx.customer_id
    return Due(
        tx.execute_date, tx.invoice_number, tx.billing_number, customer, tx.amount, payment_state(tx), payment=tx
    )

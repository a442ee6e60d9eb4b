"""Domain operations on billings (R1-R6, R9, P6). Each change is audited with before and after.

The back-office operations take the ``Actor`` who acts (accounts.audit); the hosted page's take the
registration link. A transaction's status is changed by payments (``cancel_scheduled``), never here."""

from __future__ import annotations

import secrets
from datetime import date, timedelta

from django.core import signing
from django.db import IntegrityError
from django.db import transaction as db
from django.urls import reverse
from django.utils import timezone

from accounts import audit
from accounts.audit import Actor
from billing_bo.lib.phones import normalise_phone
from payments import callbacks
from payments import services as payments
from payments.models import Transaction

from . import card_attempts
from .models import Billing, CancelledExecution, RegistrationLink
from .schedule import Schedule
from .scheduler import invoice_number, next_schedulable_day


class RecurringError(Exception):
    """A rule refuses the change; the message says why, for the screen."""


def snapshot(billing: Billing) -> dict:
    return {
        "status": billing.status,
        "billing_type": billing.billing_type,
        "schedule": billing.schedule.describe(),
        "next_execute_date": billing.next_execute_date.isoformat() if billing.next_execute_date else None,
        "deleted": billing.is_deleted,
    }


def refresh_next_date(billing: Billing) -> None:
    """Recompute ``next_execute_date`` after a change of schedule, status or type (DESIGN)."""
    if billing.status != Billing.Status.ACTIVE or billing.is_deleted:
        billing.next_execute_date = None
        return
    skip = (
        set(
            CancelledExecution.objects.filter(merchant_id=billing.merchant_id, billing_id=billing.pk).values_list(
                "execute_date", flat=True
            )
        )
        if billing.pk
        else set()
    )
    billing.next_execute_date = billing.schedule.next_date(next_schedulable_day(billing.merchant), skip=skip)


def _audited_change(actor: Actor, billing: Billing, action: str, change, reason: str = "") -> Billing:
    with db.atomic():
        billing = Billing.objects.select_for_update().get(merchant_id=billing.merchant_id, pk=billing.pk)
        if billing.is_deleted:
            raise RecurringError("This billing is deleted: it cannot be changed.")
        before = snapshot(billing)
        change(billing)
        refresh_next_date(billing)
        billing.save()
        after = snapshot(billing)
        audit.record(
            action,
            actor=actor,
            target=billing,
            reason=reason,
            data={
                "billing_number": billing.billing_number,
                "customer_id": billing.customer_id,
                "changes": {k: {"before": before[k], "after": after[k]} for k in after if before[k] != after[k]},
            },
        )
    return billing


def change_schedule(actor: Actor, billing: Billing, schedule: Schedule) -> Billing:
    def change(b: Billing) -> None:
        b.schedule = schedule

    return _audited_change(actor, billing, "recurring.billing.schedule_changed", change)


def set_status(actor: Actor, billing: Billing, status: str) -> Billing:
    def change(b: Billing) -> None:
        b.status = status

    action = "recurring.billing.activated" if status == Billing.Status.ACTIVE else "recurring.billing.inactivated"
    return _audited_change(actor, billing, action, change)


def change_type(actor: Actor, billing: Billing, billing_type: str) -> Billing:
    def change(b: Billing) -> None:
        b.billing_type = billing_type

    return _audited_change(actor, billing, "recurring.billing.type_changed", change)


def delete(actor: Actor, billing: Billing, reason: str) -> Billing:
    """R5: a soft delete; the billing's transactions stay, and those not sent to the bank are cancelled."""

    def change(b: Billing) -> None:
        b.deleted_at = timezone.now()
        payments.cancel_scheduled(Transaction.objects.filter(merchant_id=b.merchant_id, billing=b))

    return _audited_change(actor, billing, "recurring.billing.deleted", change, reason=reason)


def find_execution(billing: Billing, execute_date: date, invoice: str) -> tuple[str, Transaction | None]:
    """P6: what runs for ``billing`` on ``execute_date``. Returns (state, transaction) where state is
    "scheduled", "cancelled", or a refusal sentence."""
    expected = invoice_number(billing.billing_number, execute_date)
    tx = Transaction.objects.filter(merchant_id=billing.merchant_id, billing=billing, execute_date=execute_date).first()
    if invoice and invoice != (tx.invoice_number if tx else expected):
        return f"The invoice number of {billing.billing_number} on {execute_date:%Y-%m-%d} is {expected}.", None
    if CancelledExecution.objects.filter(
        merchant_id=billing.merchant_id, billing=billing, execute_date=execute_date
    ).exists():
        return "cancelled", tx
    if tx is not None:
        if tx.status == Transaction.Status.SCHEDULED and tx.queued_at is None:
            return "scheduled", tx
        return f"This execution is {tx.get_status_display().lower()} already: it cannot be cancelled.", tx
    if billing.is_deleted or billing.status != Billing.Status.ACTIVE:
        return "This billing is not active: nothing is scheduled.", None
    if execute_date < next_schedulable_day(billing.merchant) or not billing.schedule.is_execute_date(execute_date):
        return f"{billing.billing_number} has no execution scheduled on {execute_date:%Y-%m-%d}.", None
    return "scheduled", None


def cancel_execution(
    actor: Actor, billing: Billing, execute_date: date, invoice: str, reason: str
) -> CancelledExecution:
    """P6: the scheduler skips this date; an execution already created (not queued) is cancelled."""
    with db.atomic():
        billing = Billing.objects.select_for_update().get(merchant_id=billing.merchant_id, pk=billing.pk)
        state, tx = find_execution(billing, execute_date, invoice)
        if state != "scheduled":
            raise RecurringError("This execution is cancelled already." if state == "cancelled" else state)
        cancelled = CancelledExecution.objects.create(
            merchant_id=billing.merchant_id,
            billing=billing,
            execute_date=execute_date,
            invoice_number=invoice_number(billing.billing_number, execute_date),
            reason=reason,
            cancelled_by=actor.user,
        )
        if tx is not None:
            payments.cancel_scheduled(Transaction.objects.filter(merchant_id=billing.merchant_id, pk=tx.pk))
        if billing.next_execute_date == execute_date:
            refresh_next_date(billing)
            billing.save(update_fields=["next_execute_date", "updated_at"])
        audit.record(
            "recurring.execution.cancelled",
            actor=actor,
            target=billing,
            reason=reason,
            data={
                "billing_number": billing.billing_number,
                "customer_id": billing.customer_id,
                "invoice_number": cancelled.invoice_number,
                "execute_date": execute_date.isoformat(),
            },
        )
    return cancelled


# Hosted registration (R9)

LINK_SALT = "recurring.registration-link"


def create_link(
    actor: Actor, *, customer_id: str, amount, schedule: Schedule | None, valid_days: int
) -> tuple[RegistrationLink, str]:
    """R9: a signed link for a cardholder of ``actor``'s merchant, and its address."""
    link = RegistrationLink.objects.create(
        merchant=actor.merchant,
        nonce=secrets.token_urlsafe(24),
        customer_id=customer_id,
        amount=amount,
        schedule_data=schedule.to_dict() if schedule else None,
        expires_at=timezone.now() + timedelta(days=valid_days),
        created_by=actor.user,
    )
    token = signing.dumps(link.nonce, salt=LINK_SALT)
    url = actor.absolute_url(reverse("recurring:hosted", args=[token]))
    audit.record(
        "recurring.link.created",
        actor=actor,
        target=link,
        data={"customer_id": customer_id, "amount": str(amount or ""), "expires_at": link.expires_at.isoformat()},
    )
    return link, url


def link_from_token(token: str) -> RegistrationLink | None:
    """The link of a token, if the signature holds, it has not expired and was neither used nor spent; else None."""
    try:
        nonce = signing.loads(token, salt=LINK_SALT, max_age=timedelta(days=31))
    except signing.BadSignature:
        return None
    link = RegistrationLink.objects.select_related("merchant").filter(nonce=nonce).first()
    if link is None or link.used_at is not None or link.spent_at is not None or link.expires_at <= timezone.now():
        return None
    return link


def register_on_link(link: RegistrationLink, address: str | None, *, card: dict, **registration) -> Billing:
    """R9 from the hosted page, for a cardholder at client ``address``: the card goes to the acquirer within
    the caps of ``card_attempts`` (``card``: the arguments of ``payments.tokenize_card``), then the billing
    is created by ``register_hosted(link, **registration)``. Raises ``card_attempts.CardDeclined`` (its
    ``spent`` says the link is spent) or ``RecurringError``."""
    tokens = card_attempts.tokenize_on_link(link, address, **card)
    return register_hosted(link, card=tokens, **registration)


def register_hosted(
    link: RegistrationLink,
    *,
    card: dict,
    customer_id: str,
    customer_name: str,
    email: str,
    phone: str,
    amount,
    schedule: Schedule,
) -> Billing:
    """Create the billing of a hosted registration once per link, and tell the merchant (callback)."""
    with db.atomic():
        locked = RegistrationLink.objects.select_for_update().get(merchant_id=link.merchant_id, pk=link.pk)
        if locked.used_at is not None:
            raise RecurringError("This registration link was used already.")
        billing = _create_billing(
            link.merchant,
            billing_number=_generated_number(link.merchant),
            source=Billing.Source.HOSTED,
            card=card,
            customer_id=customer_id,
            customer_name=customer_name,
            email=email,
            phone=phone,
            amount=amount,
            schedule=schedule,
            no_date_left="The schedule of this link has no date left to run: ask the merchant for a new link.",
        )
        locked.used_at = timezone.now()
        locked.billing = billing
        locked.save(update_fields=["used_at", "billing"])
        audit.record(
            "recurring.billing.created",
            merchant=link.merchant,
            username=f"cardholder via link {link.pk}",
            target=billing,
            data={
                "billing_number": billing.billing_number,
                "customer_id": customer_id,
                "card": billing.card_masked,
                "source": "hosted",
            },
        )
    return billing


def register_billing(
    actor: Actor,
    *,
    card: dict,
    billing_number: str,
    billing_type: str = Billing.Type.RECURRING,
    **registration,
) -> Billing:
    """A billing registered by ``actor`` (the merchant's own system, through the API): the card goes to the
    acquirer (``card``: the arguments of ``payments.tokenize_card``; raises ``CardRejected``), then the
    billing is created with the hosted registration's rules. ``billing_number`` "" means one is made."""
    merchant = actor.merchant
    if refusal := merchant.charge_amount_refused_because(registration["amount"]):
        raise RecurringError(refusal)
    if (
        billing_number
        and Billing.objects.filter(merchant_id=merchant.pk, billing_number__iexact=billing_number).exists()
    ):
        raise RecurringError(f"The billing number {billing_number} is used already.")
    tokens = payments.tokenize_card(**card)
    try:
        billing = _register(actor, billing_number, billing_type, tokens, registration)
    except IntegrityError as exc:  # the same number registered meanwhile
        raise RecurringError(f"The billing number {billing_number} is used already.") from exc
    return billing


def _register(actor: Actor, billing_number: str, billing_type: str, tokens: dict, registration: dict) -> Billing:
    merchant = actor.merchant
    with db.atomic():
        billing = _create_billing(
            merchant,
            billing_number=billing_number or _generated_number(merchant),
            source=Billing.Source.API,
            billing_type=billing_type,
            card=tokens,
            no_date_left="The schedule has no date left to run.",
            **registration,
        )
        audit.record(
            "recurring.billing.created",
            actor=actor,
            target=billing,
            data={
                "billing_number": billing.billing_number,
                "customer_id": billing.customer_id,
                "card": billing.card_masked,
                "source": "api",
            },
        )
    return billing


def _generated_number(merchant) -> str:
    return f"REG-{timezone.localdate(timezone=merchant.tzinfo):%Y%m%d}-{secrets.token_hex(3).upper()}"


def _create_billing(
    merchant,
    *,
    billing_number: str,
    source: str,
    card: dict,
    customer_id: str,
    customer_name: str,
    email: str,
    phone: str,
    amount,
    schedule: Schedule,
    no_date_left: str,
    billing_type: str = Billing.Type.RECURRING,
) -> Billing:
    """Create a billing (inside the caller's database transaction) and tell the merchant (callback)."""
    if refusal := merchant.charge_amount_refused_because(amount):
        raise RecurringError(refusal)
    billing = Billing(
        merchant=merchant,
        billing_number=billing_number,
        customer_id=customer_id,
        customer_name=customer_name,
        email=email,
        phone=normalise_phone(phone),
        amount=amount,
        billing_type=billing_type,
        source=source,
        **card,
    )
    billing.schedule = schedule
    refresh_next_date(billing)
    if billing.next_execute_date is None:  # Full Dates that have all passed
        raise RecurringError(no_date_left)
    billing.save()
    callbacks.notify(
        merchant,
        "billing.registered",
        {
            "billing_number": billing.billing_number,
            "customer_id": customer_id,
            "customer_name": customer_name,
            "amount": int(amount),
            "card": billing.card_masked,
            "issuer": billing.card_issuer,
            "schedule": schedule.describe(),
            "next_execute_date": billing.next_execute_date.isoformat() if billing.next_execute_date else None,
        },
    )
    return billing

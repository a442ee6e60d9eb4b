"""The cardholder updates a billing's card on a hosted page (issue #19: keep the revenue).

A card update link is signed, expires (CARD_UPDATE_LINK_DAYS) and works once, like the registration
link; the page reuses the card-testing caps of ``card_attempts``. The new card goes to the acquirer (the
number and CVV end there); the billing keeps its number and history and takes the new token, masked
number, fingerprint, expiry and issuer; the card it had is kept in its card history (``CardChange``).

Recovery: an execution of the billing that failed within the retry window (its execute date at most the
policy's last retry day ago) is charged again on the new card, as a new attempt with a new idempotency
key, once (``payments.charge_again_on_new_card`` moves it only from failed); a retry still pending takes
the new card.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction as db
from django.urls import reverse
from django.utils import timezone

from accounts import audit
from accounts.audit import Actor
from payments import callbacks
from payments import services as payments
from payments.models import CardSnapshot, Transaction

from . import card_attempts, emails
from .models import Billing, CardChange, CardUpdateLink, RetryPolicy
from .retries import show_pending_retry

LINK_SALT = "recurring.card-update-link"
CARD_FIELDS = tuple(field.name for field in CardSnapshot._meta.fields)


class CardUpdateRefused(Exception):
    """The update cannot be made (the link was used meanwhile, the billing was deleted); says why."""


def link_url(link: CardUpdateLink, actor: Actor | None = None) -> str:
    token = signing.dumps(link.nonce, salt=LINK_SALT)
    path = reverse("recurring:card_update", args=[token])
    return actor.absolute_url(path) if actor else settings.SITE_URL.rstrip("/") + path


def create_link(billing: Billing, reason: str, *, actor: Actor | None = None) -> tuple[CardUpdateLink, str]:
    """A new card update link of ``billing`` and its address. Audited when a user asks for it (``actor``);
    the notices record their own rows (``CardNotice``)."""
    link = CardUpdateLink.objects.create(
        merchant_id=billing.merchant_id,
        billing=billing,
        nonce=secrets.token_urlsafe(24),
        reason=reason,
        expires_at=timezone.now() + timedelta(days=settings.CARD_UPDATE_LINK_DAYS),
        created_by=actor.user if actor else None,
    )
    if actor is not None:
        audit.record(
            "recurring.card_link.created",
            actor=actor,
            target=billing,
            data={
                "billing_number": billing.billing_number,
                "customer_id": billing.customer_id,
                "link": link.pk,
                "expires_at": link.expires_at.isoformat(),
            },
        )
    return link, link_url(link, actor)


def link_from_token(token: str) -> CardUpdateLink | None:
    """The link of a token if the signature holds, it has not expired, was neither used nor spent, and its
    billing is not deleted; else None."""
    try:
        nonce = signing.loads(token, salt=LINK_SALT, max_age=timedelta(days=settings.CARD_UPDATE_LINK_DAYS + 1))
    except signing.BadSignature:
        return None
    link = CardUpdateLink.objects.select_related("merchant", "billing").filter(nonce=nonce).first()
    if link is None or link.used_at is not None or link.spent_at is not None or link.expires_at <= timezone.now():
        return None
    if link.billing.is_deleted:
        return None
    return link


def update_on_link(link: CardUpdateLink, address: str | None, *, card: dict) -> Billing:
    """From the hosted page, for a cardholder at client ``address``: the card (the arguments of
    ``payments.tokenize_card``) goes to the acquirer within the caps of ``card_attempts``, then the billing
    takes it. Raises ``card_attempts.CardDeclined`` or ``CardUpdateRefused``."""
    new_card = card_attempts.tokenize_on_link(link, address, **card)
    return apply_new_card(link, new_card)


def apply_new_card(link: CardUpdateLink, new_card: dict) -> Billing:
    """The billing of ``link`` takes ``new_card`` (the fields of ``CardSnapshot``) once per link: its old card
    goes to its card history, failed executions in the retry window are charged again, the merchant is told
    (``billing.card_updated``), and it is audited."""
    merchant = link.merchant
    with db.atomic():
        locked = CardUpdateLink.objects.select_for_update().get(merchant_id=merchant.pk, pk=link.pk)
        if locked.used_at is not None:
            raise CardUpdateRefused("This card update link was used already.")
        billing = Billing.objects.select_for_update().get(merchant_id=merchant.pk, pk=link.billing_id)
        if billing.is_deleted:
            raise CardUpdateRefused("This billing is deleted: its card cannot be changed.")
        old_masked = billing.card_masked
        CardChange.objects.create(
            merchant_id=merchant.pk,
            billing=billing,
            replaced_via=f"card update link {link.pk}",
            **{name: getattr(billing, name) for name in CARD_FIELDS},
        )
        for name in CARD_FIELDS:
            setattr(billing, name, new_card[name])
        billing.save(update_fields=[*CARD_FIELDS, "updated_at"])
        locked.used_at = timezone.now()
        locked.save(update_fields=["used_at"])
        recovered = recover(billing, new_card)
        data = {
            "billing_number": billing.billing_number,
            "customer_id": billing.customer_id,
            "old_card": old_masked,
            "card": billing.card_masked,
            "issuer": billing.card_issuer,
            "expiry": f"{billing.card_expiry:%m/%Y}",
            "charged_again": [tx.invoice_number for tx in recovered],
        }
        audit.record(
            "recurring.billing.card_updated",
            merchant=merchant,
            username=f"cardholder via card update link {link.pk}",
            target=billing,
            data=data,
        )
        callbacks.notify(merchant, "billing.card_updated", data)
    return billing


def recover(billing: Billing, new_card: dict) -> list[Transaction]:
    """Charge again, on ``new_card``, the billing's executions that failed within the retry window; pending
    retries take the new card. Returns the executions sent back to scheduled."""
    today = billing.merchant.local_today()
    window = RetryPolicy.for_merchant(billing.merchant).retry_window_days
    rows = Transaction.objects.filter(merchant_id=billing.merchant_id, billing=billing)
    card = {name: new_card[name] for name in CARD_FIELDS}
    failed = rows.filter(
        status=Transaction.Status.FAILED,
        kind=Transaction.Kind.RECURRING,
        execute_date__gte=today - timedelta(days=window),
    ).order_by("execute_date", "pk")
    recovered = [tx for tx in failed if payments.charge_again_on_new_card(tx, card, today)]
    payments.replace_card_of_scheduled(rows, card)
    show_pending_retry(billing.merchant_id, billing.pk)
    return recovered


def card_history(billing: Billing) -> list[CardChange]:
    return list(CardChange.objects.filter(merchant_id=billing.merchant_id, billing=billing))


def send_link(actor: Actor, billing: Billing) -> CardUpdateLink:
    """``actor`` e-mails a new card update link to ``billing``'s cardholder (Manage Recurring, audited).
    Raises ``CardUpdateRefused`` when the billing has no e-mail address or is deleted."""
    if billing.is_deleted:
        raise CardUpdateRefused("This billing is deleted: its card cannot be changed.")
    if not billing.email:
        raise CardUpdateRefused(f"Billing {billing.billing_number} has no e-mail address: copy the link instead.")
    with db.atomic():
        link, url = create_link(billing, CardUpdateLink.Reason.MANUAL, actor=actor)
        emails.send_card_link(billing, link, url)
        audit.record(
            "recurring.card_link.sent",
            actor=actor,
            target=billing,
            data={"billing_number": billing.billing_number, "customer_id": billing.customer_id, "link": link.pk},
        )
    return link

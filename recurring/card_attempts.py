"""Card testing on the hosted pages (R9 registration, and the card update page): a link (a
``RegistrationLink`` or a ``CardUpdateLink``) and a client address get a few card tries.

A fraudster holding one link must not learn, card after card, which numbers the bank knows. So:
- each link takes at most ``PER_LINK`` card attempts, counted before the bank is asked (a conditional
  UPDATE, so parallel posts cannot exceed it); the last failed one spends the link;
- each client address has at most ``PER_ADDRESS`` failed attempts in ``ADDRESS_WINDOW_SECONDS``
  (Django's cache; an attempt holds a place while the bank answers, a success gives it back); a link
  tried from an address over the limit is spent;
- the cardholder reads one generic decline, whatever the bank said; the bank's code goes to the log only.
A spent link is refused like a used one; the merchant sees why (audited; registration links also in the
Registration menu).
"""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db.models import F
from django.utils import timezone

from accounts import audit
from payments import services as payments
from payments.acquirer import CardRejected

from .models import CardUpdateLink, RegistrationLink

Link = RegistrationLink | CardUpdateLink
logger = logging.getLogger(__name__)

PER_LINK = 5
PER_ADDRESS = 10
ADDRESS_WINDOW_SECONDS = 3600
DECLINED = "The card could not be registered. Check the details you entered, or use another card."


class CardDeclined(Exception):
    """The generic decline; ``spent`` says the link cannot be used again."""

    def __init__(self, spent: bool = False):
        super().__init__(DECLINED)
        self.spent = spent


def tokenize_on_link(link: Link, address: str | None, **card) -> dict:
    """``payments.tokenize_card(**card)`` for a cardholder on ``link`` from ``address``, within the caps.
    Raises CardDeclined (nothing of the bank's answer in it)."""
    address_key = f"recurring:hosted-card-failures:{address or 'unknown'}"
    cache.add(address_key, 0, ADDRESS_WINDOW_SECONDS)
    if _incr(address_key) > PER_ADDRESS:
        spend(link, "too many failed card attempts from the cardholder's network")
        raise CardDeclined(spent=True)
    links = type(link).objects
    taken = links.filter(
        merchant_id=link.merchant_id,
        pk=link.pk,
        used_at__isnull=True,
        spent_at__isnull=True,
        card_attempts__lt=PER_LINK,
    ).update(card_attempts=F("card_attempts") + 1)
    if not taken:
        _give_back(address_key)  # no card was tried
        raise CardDeclined(spent=True)
    try:
        result = payments.tokenize_card(**card)
    except CardRejected as rejected:
        attempts = links.filter(merchant_id=link.merchant_id, pk=link.pk).values_list("card_attempts", flat=True).get()
        logger.info("hosted card declined link=%s code=%s attempt=%s", link.pk, rejected.response_code, attempts)
        if attempts >= PER_LINK:
            spend(link, f"{attempts} failed card attempts")
            raise CardDeclined(spent=True) from None
        raise CardDeclined() from None
    _give_back(address_key)
    return result


def spend(link: Link, reason: str) -> None:
    """Refuse the link from now on, saying why to the merchant (once, audited)."""
    spent = (
        type(link)
        .objects.filter(merchant_id=link.merchant_id, pk=link.pk, used_at__isnull=True, spent_at__isnull=True)
        .update(spent_at=timezone.now(), spent_reason=reason)
    )
    if spent:
        audit.record(
            "recurring.link.spent",
            merchant=link.merchant,
            username=f"cardholder via link {link.pk}",
            target=link,
            data={"reason": reason, "customer_id": link.customer_id},
        )


def _incr(key: str) -> int:
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, ADDRESS_WINDOW_SECONDS)
        return 1


def _give_back(key: str) -> None:
    try:
        cache.decr(key)
    except ValueError:
        pass

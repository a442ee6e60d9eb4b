"""The cardholder's e-mails about a billing's card (one function per e-mail, STYLE 18): a card update link
when the card is expiring, after a declined charge, or when the merchant sends it. Amounts in Rupiah,
dates in the merchant's time zone, the merchant's name throughout."""

from __future__ import annotations

from django.utils import timezone

from accounts.emails import send_templated
from payments.models import Transaction

from .models import Billing, CardUpdateLink


def _context(billing: Billing, link: CardUpdateLink, url: str) -> dict:
    merchant = billing.merchant
    return {
        "merchant": merchant,
        "billing": billing,
        "url": url,
        "expires": timezone.localtime(link.expires_at, merchant.tzinfo),  # merchant-local
        "time_zone": merchant.time_zone,
    }


def send_card_expiring(billing: Billing, link: CardUpdateLink, url: str) -> None:
    """The card runs out soon (or before the next charge): update it."""
    send_templated("card_expiring", billing.email, _context(billing, link, url))


def send_card_declined(billing: Billing, link: CardUpdateLink, url: str, execution: Transaction) -> None:
    """A charge was declined (invalid or expired card): update the card and it is charged again."""
    send_templated("card_declined", billing.email, {**_context(billing, link, url), "execution": execution})


def send_card_link(billing: Billing, link: CardUpdateLink, url: str) -> None:
    """The merchant sends the link from Manage Recurring."""
    send_templated("card_link", billing.email, _context(billing, link, url))

"""Which billings' cards are expiring (issue #19: keep the revenue).

A card is valid through the last day of its expiry month (``card_expiry`` holds that day), in the
merchant's time zone: on the merchant-local ``today`` a billing's card is *expiring* when it runs out
before the billing's next execute date, or within the policy's ``expiring_days`` of today (default 30).
A card that ran out already is expiring too: its next charge will be declined. Only active, not deleted
Recurring billings count (a Reminder charges nothing).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, F, Q, QuerySet, Sum

from accounts.models import Merchant

from .models import Billing, RetryPolicy


def is_expiring(card_expiry: date | None, next_execute_date: date | None, today: date, days: int) -> bool:
    """The rule on one billing's values: its card's last valid day, its next execute date, the merchant's
    local today and the policy's ``expiring_days``."""
    if card_expiry is None:
        return False
    if card_expiry <= today + timedelta(days=days):
        return True
    return next_execute_date is not None and card_expiry < next_execute_date


def expiring_q(today: date, days: int) -> Q:
    """The same rule as a filter on billings."""
    return Q(card_expiry__isnull=False) & (
        Q(card_expiry__lte=today + timedelta(days=days))
        | Q(next_execute_date__isnull=False, card_expiry__lt=F("next_execute_date"))
    )


def charged_billings(billings: QuerySet[Billing]) -> QuerySet[Billing]:
    """Those of ``billings`` that are charged: active, not deleted, Recurring (uses billing_card_expiry_idx)."""
    return billings.filter(status=Billing.Status.ACTIVE, deleted_at__isnull=True, billing_type=Billing.Type.RECURRING)


def expiring_billings(merchant: Merchant, today: date | None = None) -> QuerySet[Billing]:
    """``merchant``'s charged billings whose card is expiring on ``today`` (its local today by default)."""
    today = today or merchant.local_today()
    days = RetryPolicy.for_merchant(merchant).expiring_days
    return charged_billings(Billing.objects.filter(merchant=merchant)).filter(expiring_q(today, days))


def marker(merchant: Merchant, today: date | None = None):
    """A function telling, for a billing of ``merchant`` (or its values), whether to mark it "card
    expiring": the policy is read once per page, not per row."""
    today = today or merchant.local_today()
    days = RetryPolicy.for_merchant(merchant).expiring_days

    def expiring(billing: Billing) -> bool:
        charged = (
            billing.status == Billing.Status.ACTIVE
            and billing.deleted_at is None
            and billing.billing_type == Billing.Type.RECURRING
        )
        return charged and is_expiring(billing.card_expiry, billing.next_execute_date, today, days)

    return expiring


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


@dataclass(frozen=True)
class AtRisk:
    count: int = 0
    amount: Decimal = Decimal("0")


def at_risk(billings: QuerySet[Billing], until: date) -> AtRisk:
    """The charged billings of ``billings`` whose card runs out by ``until`` (or ran out already): how many,
    and the amount of one charge of each (what the next run would lose)."""
    found = charged_billings(billings).filter(card_expiry__lte=until).aggregate(n=Count("id"), amount=Sum("amount"))
    return AtRisk(count=found["n"] or 0, amount=found["amount"] or Decimal("0"))


def widget(billings: QuerySet[Billing], today: date) -> dict[str, AtRisk]:
    """The dashboard's "Cards expiring": cards that run out by the end of this month, and within 30 days."""
    return {"this_month": at_risk(billings, month_end(today)), "next_30_days": at_risk(billings, today + timedelta(30))}

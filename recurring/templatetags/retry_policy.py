"""``{% retry_policy_card %}``: Setting Account's card of the merchant's retry policy (accounts imports no
recurring code; its template loads this tag)."""

from __future__ import annotations

from django import template

from ..models import RetryPolicy
from ..retry_policy import HARD_DECLINES, SOFT_DECLINES

register = template.Library()


@register.inclusion_tag("recurring/retry_policy_card.html", takes_context=True)
def retry_policy_card(context):
    policy = RetryPolicy.for_merchant(context["request"].user.merchant)
    labels = {**SOFT_DECLINES, **HARD_DECLINES}
    return {
        "policy": policy,
        "retried": [f"{code} {labels.get(code, '')}".strip() for code in policy.retry_codes],
        "updated": [f"{code} {labels.get(code, '')}".strip() for code in policy.card_update_codes],
    }

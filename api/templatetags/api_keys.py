"""``{% api_keys_card %}``: Setting Account's card of the merchant's API keys (accounts imports no api code;
its template loads this tag)."""

from __future__ import annotations

from django import template

from ..models import ApiKey

register = template.Library()


@register.inclusion_tag("api/api_keys_card.html", takes_context=True)
def api_keys_card(context):
    user = context["request"].user
    keys = ApiKey.objects.filter(merchant_id=user.merchant_id).order_by("revoked_at", "-created_at")[:50]
    return {"keys": keys}

"""Card updates (issue #19): the cardholder's hosted page and the billing's card page in Manage Recurring
(its card, its card history, and the card update link to copy or e-mail)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from accounts.audit import Actor, client_ip
from accounts.tenancy import get_merchant_row, menu_required, merchant_rows
from billing_bo.lib.redirects import redirect_to_next

from . import card_attempts, card_expiry, card_updates
from .forms import CardForm
from .models import Billing, CardNotice, CardUpdateLink

MANAGE = "manage_recurring"


@login_not_required
@never_cache
@sensitive_post_parameters("card_number", "cvv", "expiry")
@require_http_methods(["GET", "POST"])
def card_update(request, token: str):
    """The cardholder's page: the merchant's name, the billing and its old card (masked), a new card."""
    link = card_updates.link_from_token(token)
    if link is None:
        return render(request, "recurring/card_invalid.html", status=400)
    merchant, billing = link.merchant, link.billing
    form = CardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            billing = card_updates.update_on_link(link, client_ip(request), card=form.card(billing.holder_phone))
        except card_attempts.CardDeclined as declined:
            if declined.spent:
                reason = (
                    f"{card_attempts.DECLINED} This link cannot be used any more: ask {merchant.name} for a new one."
                )
                return render(request, "recurring/card_invalid.html", {"reason": reason}, status=400)
            form.add_error(None, str(declined))
        except card_updates.CardUpdateRefused as refusal:
            return render(request, "recurring/card_invalid.html", {"reason": str(refusal)}, status=400)
        else:
            return render(request, "recurring/card_updated.html", {"merchant": merchant, "billing": billing})
    return render(request, "recurring/card_update.html", {"merchant": merchant, "billing": billing, "form": form})


@never_cache
@require_http_methods(["GET", "POST"])
@menu_required(MANAGE)
def billing_card(request, pk: int):
    """The billing's card and card history; a POST (``action=copy``) makes a new card update link to copy."""
    billing = get_merchant_row(request, Billing, pk=pk)
    url = None
    if request.method == "POST":
        if billing.is_deleted:
            messages.error(request, f"Billing {billing.billing_number} is deleted: its card cannot be changed.")
            return redirect("recurring:billings")
        _, url = card_updates.create_link(billing, CardUpdateLink.Reason.MANUAL, actor=Actor.from_request(request))
    context = {
        "billing": billing,
        "url": url,
        "expiring": card_expiry.marker(request.user.merchant)(billing),
        "history": card_updates.card_history(billing),
        "links": merchant_rows(request, CardUpdateLink).filter(billing=billing)[:10],
        "notices": merchant_rows(request, CardNotice).filter(billing=billing)[:10],
    }
    return render(request, "recurring/billing_card.html", context)


@require_POST
@menu_required(MANAGE)
def billing_card_send(request, pk: int):
    """E-mail a new card update link to the billing's cardholder (audited)."""
    billing = get_merchant_row(request, Billing, pk=pk)
    try:
        card_updates.send_link(Actor.from_request(request), billing)
    except card_updates.CardUpdateRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, f"A card update link for {billing.billing_number} was e-mailed to {billing.email}.")
    return redirect_to_next(request, "recurring:billings")

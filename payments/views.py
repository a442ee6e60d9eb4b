from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_tables2 import RequestConfig

from accounts.audit import Actor
from accounts.stepup import step_up_response
from accounts.tenancy import admin_required, get_merchant_row, menu_required, merchant_rows
from billing_bo.lib.money import format_rupiah
from billing_bo.lib.redirects import redirect_to_next

from . import callbacks, services
from .forms import RefundForm, TransactionSearchForm
from .models import Adjustment, CallbackAttempt, CallbackDelivery, Transaction
from .tables import CallbackDeliveryTable, VoidRefundTable

MENU = "void_transaction"


@require_GET
@menu_required(MENU)
def void_search(request):
    """Void Transaction (P4) and Refund (P5): search, then act from the result row."""
    form = TransactionSearchForm(request.GET or None)
    table = None
    if form.is_bound and form.is_valid():
        rows = merchant_rows(request, Transaction)
        for field, lookup in (
            ("billing_number", "billing_number__iexact"),  # billing numbers ignore case (an index on UPPER)
            ("invoice_number", "invoice_number"),
            ("approval_code", "approval_code"),
        ):
            value = form.cleaned_data[field].strip()
            if value:
                rows = rows.filter(**{lookup: value})
        table = VoidRefundTable(rows)
        RequestConfig(request, paginate={"per_page": 25}).configure(table)
    return render(request, "payments/void_search.html", {"form": form, "table": table})


def _report(request, tx: Transaction, adjustment: Adjustment) -> None:
    noun = "void" if adjustment.kind == Adjustment.Kind.VOID else f"refund of {format_rupiah(adjustment.amount)}"
    if adjustment.status == Adjustment.Status.APPROVED:
        messages.success(request, f"The {noun} of {tx.invoice_number} is approved.")
    elif adjustment.status == Adjustment.Status.DECLINED:
        messages.error(
            request,
            f"The bank declined the {noun} of {tx.invoice_number}: {adjustment.response_code} {adjustment.bank_message}.",
        )
    else:
        messages.warning(
            request,
            f"The bank has not answered the {noun} of {tx.invoice_number} yet; it will be confirmed automatically.",
        )


def _adjustment_view(request, tx: Transaction, *, perform, refusal: str, **step_up):
    """Void and Refund share this flow: refuse at once what P7 forbids, else the step-up confirmation;
    ``perform(reason, **action_form_data)`` asks the bank, and the outcome is reported on the search page."""

    def act(reason: str, **data):
        try:
            adjustment = perform(reason, **data)
        except services.ActionRefused as refused:
            messages.error(request, str(refused))
        else:
            _report(request, tx, adjustment)
        return redirect_to_next(request, "payments:void")

    if refusal and request.method == "GET":
        messages.error(request, refusal)
        return redirect_to_next(request, "payments:void")
    return step_up_response(request, act=act, **step_up)


@never_cache
@require_http_methods(["GET", "POST"])
@menu_required(MENU)
def void_transaction(request, pk: int):
    tx = get_merchant_row(request, Transaction, pk=pk)
    return _adjustment_view(
        request,
        tx,
        perform=lambda reason: services.void(Actor.from_request(request), tx.pk, reason),
        refusal=tx.void_refused_because(),
        action="payments.transaction.voided",
        title=f"Void {tx.invoice_number}",
        message=f"{format_rupiah(tx.amount)} on card {tx.card_masked} goes back to the cardholder in full.",
    )


@never_cache
@require_http_methods(["GET", "POST"])
@menu_required(MENU)
def refund_transaction(request, pk: int):
    tx = get_merchant_row(request, Transaction, pk=pk)
    return _adjustment_view(
        request,
        tx,
        perform=lambda reason, amount: services.refund(Actor.from_request(request), tx.pk, amount, reason),
        refusal=tx.refund_refused_because(),
        action="payments.transaction.refunded",
        title=f"Refund {tx.invoice_number}",
        message=f"Up to {format_rupiah(tx.refundable_amount)} can be refunded to card {tx.card_masked}.",
        action_form=RefundForm(request.POST or None, transaction=tx),
    )


@require_GET
@admin_required
def callback_list(request):
    """P8: every callback sent to the merchant's server, with its attempts."""
    table = CallbackDeliveryTable(merchant_rows(request, CallbackDelivery))
    RequestConfig(request, paginate={"per_page": 25}).configure(table)
    return render(request, "payments/callbacks.html", {"table": table})


@require_GET
@admin_required
def callback_detail(request, pk: int):
    delivery = get_merchant_row(request, CallbackDelivery, pk=pk)
    attempts = merchant_rows(request, CallbackAttempt).filter(delivery=delivery)
    return render(request, "payments/callback_detail.html", {"delivery": delivery, "attempts": attempts})


@require_POST
@admin_required
def callback_resend(request, pk: int):
    """P8: one more attempt of a failed delivery, to the callback URL saved now."""
    delivery = get_merchant_row(request, CallbackDelivery, pk=pk)
    try:
        callbacks.resend(Actor.from_request(request), delivery)
    except services.ActionRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"The callback is queued again; it goes to {request.user.merchant.callback_url}.")
    return redirect("payments:callback_detail", pk=delivery.pk)

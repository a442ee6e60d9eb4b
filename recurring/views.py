from __future__ import annotations

from datetime import date, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_tables2 import RequestConfig

from accounts.stepup import step_up_response
from accounts.tenancy import admin_required, get_merchant_row, menu_required, merchant_rows
from billing_bo.lib.redirects import redirect_to_next
from payments import services as payments
from payments.acquirer import CardRejected

from . import services
from .forms import (
    BillingSearchForm,
    CancelSearchForm,
    ChangeTypeForm,
    HostedRegistrationForm,
    RegistrationLinkForm,
    ScheduleForm,
)
from .models import Billing, CancelledExecution, RegistrationLink
from .scheduler import next_schedulable_day
from .tables import BillingTable, RegistrationTable

MANAGE = "manage_recurring"
REGISTRATION = "registration"
CANCEL = "void_transaction"  # Cancel Execute Date sits with Void Transaction (PRODUCT menu 5)


def _search(request, rows):
    form = BillingSearchForm(request.GET or None)
    if form.is_bound and form.is_valid():
        for field in ("customer_id", "billing_number"):
            value = form.cleaned_data[field].strip()
            if value:
                rows = rows.filter(**{field: value})
    return form, rows


def _live_billing(request, pk: int) -> Billing:
    billing = get_merchant_row(request, Billing, pk=pk)
    if billing.is_deleted:
        messages.error(request, f"Billing {billing.billing_number} is deleted: it cannot be changed.")
    return billing


# Manage Recurring (R1-R6)


@require_GET
@menu_required(MANAGE)
def billing_list(request):
    form, rows = _search(request, merchant_rows(request, Billing).filter(deleted_at__isnull=True))
    table = BillingTable(rows)
    RequestConfig(request, paginate={"per_page": 25}).configure(table)
    return render(request, "recurring/billing_list.html", {"form": form, "table": table})


@require_http_methods(["GET", "POST"])
@menu_required(MANAGE)
def billing_schedule(request, pk: int):
    """Edit Date (R2, R6): a form per schedule type with a live preview of the next 12 dates."""
    billing = _live_billing(request, pk)
    if billing.is_deleted:
        return redirect("recurring:billings")
    today = billing.merchant.local_today()
    form = ScheduleForm(request.POST or None, initial=ScheduleForm.initial_for(billing.schedule), today=today)
    if request.method == "POST" and form.is_valid():
        try:
            billing = services.change_schedule(request, billing, form.cleaned_data["schedule"])
        except services.RecurringError as refusal:
            messages.error(request, str(refusal))
        else:
            messages.success(
                request, f"The schedule of {billing.billing_number} is saved: {billing.schedule.describe()}."
            )
        return redirect("recurring:billings")
    preview = billing.schedule.next_dates(next_schedulable_day(billing.merchant) - timedelta(days=1), 12)
    return render(request, "recurring/billing_schedule.html", {"billing": billing, "form": form, "preview": preview})


@require_POST
@menu_required(MANAGE)
def billing_status(request, pk: int):
    """R3: Inactivate / Activate."""
    billing = _live_billing(request, pk)
    if not billing.is_deleted:
        new = Billing.Status.INACTIVE if billing.status == Billing.Status.ACTIVE else Billing.Status.ACTIVE
        billing = services.set_status(request, billing, new)
        state = "active again" if new == Billing.Status.ACTIVE else "inactive: no execution runs"
        messages.success(request, f"Billing {billing.billing_number} is {state}.")
    return redirect_to_next(request, "recurring:billings")


@require_http_methods(["GET", "POST"])
@menu_required(MANAGE)
def billing_type(request, pk: int):
    """R4: Recurring (charged) or Reminder (a notification only)."""
    billing = _live_billing(request, pk)
    if billing.is_deleted:
        return redirect("recurring:billings")
    form = ChangeTypeForm(request.POST or None, initial={"billing_type": billing.billing_type})
    if request.method == "POST" and form.is_valid():
        billing = services.change_type(request, billing, form.cleaned_data["billing_type"])
        messages.success(request, f"Billing {billing.billing_number} is now {billing.get_billing_type_display()}.")
        return redirect("recurring:billings")
    return render(request, "recurring/billing_type.html", {"billing": billing, "form": form})


@never_cache
@require_http_methods(["GET", "POST"])
@menu_required(MANAGE)
def billing_delete(request, pk: int):
    """R5: after step-up (A7); the billing's transactions stay."""
    billing = _live_billing(request, pk)
    if billing.is_deleted:
        return redirect("recurring:billings")

    def act(reason: str):
        services.delete(request, billing, reason)
        messages.success(request, f"Billing {billing.billing_number} is deleted. Its transactions are kept.")
        return redirect("recurring:billings")

    return step_up_response(
        request,
        action="recurring.billing.deleted",
        title=f"Delete billing {billing.billing_number}",
        message="No execution runs after this; the transactions made so far stay in the reports.",
        act=act,
    )


@require_GET
def schedule_preview(request):
    """R6: the next execute dates of a schedule, as JSON (documented in the README).

    Parameters are those of the Edit Date form: kind, days, weekdays, months (repeated, or comma-separated),
    dates (YYYY-MM-DD, comma-separated), and optionally count (1-60, default 12) and after (YYYY-MM-DD).
    """
    if not (request.user.has_menu(MANAGE) or request.user.has_menu(REGISTRATION)):
        raise PermissionDenied
    return _preview(request, request.user.merchant)


@login_not_required
@require_GET
def hosted_preview(request, token: str):
    """The same preview for the cardholder's page, allowed by a valid registration link."""
    link = services.link_from_token(token)
    if link is None:
        return JsonResponse({"error": "This registration link cannot be used."}, status=400)
    return _preview(request, link.merchant)


def _preview(request, merchant):
    data = request.GET.copy()
    for name in ("days", "weekdays", "months"):
        data.setlist(name, [v for value in request.GET.getlist(name) for v in value.split(",") if v.strip()])
    form = ScheduleForm(data, today=merchant.local_today())
    if not form.is_valid():
        errors = [error for field_errors in form.errors.values() for error in field_errors]
        return JsonResponse({"error": " ".join(errors)}, status=400)
    try:
        count = min(max(int(request.GET.get("count", "12")), 1), 60)
        after = (
            date.fromisoformat(request.GET["after"])
            if request.GET.get("after")
            else next_schedulable_day(merchant) - timedelta(days=1)
        )
    except ValueError:
        return JsonResponse({"error": "count must be a number and after a date (YYYY-MM-DD)."}, status=400)
    schedule = form.cleaned_data["schedule"]
    return JsonResponse(
        {
            "schedule": schedule.to_dict(),
            "description": schedule.describe(),
            "dates": [d.isoformat() for d in schedule.next_dates(after, count)],
        }
    )


# Cancel Execute Date (P6)


@never_cache
@require_http_methods(["GET", "POST"])
@menu_required(CANCEL)
def cancel_execute_date(request):
    form = CancelSearchForm(request.GET or None)  # the search stays in the URL; a POST carries code and reason
    found = None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        billing = merchant_rows(request, Billing).filter(billing_number=data["billing_number"].strip()).first()
        if billing is None:
            form.add_error("billing_number", "No billing has this number.")
        else:
            state, tx = services.find_execution(billing, data["execute_date"], data["invoice_number"].strip())
            found = {
                "billing": billing,
                "state": state,
                "transaction": tx,
                "date": data["execute_date"],
                "invoice": tx.invoice_number
                if tx
                else services.invoice_number(billing.billing_number, data["execute_date"]),
            }
            if request.method == "POST":

                def act(reason: str):
                    try:
                        services.cancel_execution(
                            request, billing, data["execute_date"], data["invoice_number"].strip(), reason
                        )
                    except services.RecurringError as refusal:
                        messages.error(request, str(refusal))
                    else:
                        messages.success(
                            request,
                            f"The execution of {billing.billing_number} on {data['execute_date']:%Y-%m-%d} is cancelled.",
                        )
                    return redirect("recurring:cancel")

                return step_up_response(
                    request,
                    action="recurring.execution.cancelled",
                    title=f"Cancel {found['invoice']}",
                    message=f"{billing.billing_number} will not run on {data['execute_date']:%Y-%m-%d}.",
                    act=act,
                )
    recent = (
        merchant_rows(request, CancelledExecution)
        .select_related("billing", "cancelled_by")
        .order_by("-cancelled_at")[:20]
    )
    return render(request, "recurring/cancel.html", {"form": form, "found": found, "recent": recent})


# Registration (R9)


@require_GET
@menu_required(REGISTRATION)
def registration_list(request):
    rows = merchant_rows(request, Billing).filter(deleted_at__isnull=True)
    source = request.GET.get("source")
    if source in Billing.Source.values:
        rows = rows.filter(source=source)
    form, rows = _search(request, rows)
    table = RegistrationTable(rows)
    RequestConfig(request, paginate={"per_page": 25}).configure(table)
    links = (
        merchant_rows(request, RegistrationLink).select_related("billing")[:10]
        if request.user.is_merchant_admin
        else []
    )
    context = {"form": form, "table": table, "links": links, "source": source, "now": timezone.now()}
    return render(request, "recurring/registrations.html", context)


@require_http_methods(["GET", "POST"])
@admin_required
def registration_link(request):
    """R9: a merchant admin creates a signed, expiring link for a cardholder."""
    today = request.user.merchant.local_today()
    form = RegistrationLinkForm(request.POST or None)
    schedule_form = ScheduleForm(request.POST or None, prefix="schedule", today=today, initial={"kind": "date"})
    url = None
    if request.method == "POST" and form.is_valid():
        fixed = form.cleaned_data["fix_schedule"]
        if not fixed or schedule_form.is_valid():
            _, url = services.create_link(
                request,
                customer_id=form.cleaned_data["customer_id"].strip(),
                amount=form.cleaned_data["amount"],
                schedule=schedule_form.cleaned_data["schedule"] if fixed else None,
                valid_days=form.cleaned_data["valid_days"],
            )
    return render(
        request, "recurring/registration_link.html", {"form": form, "schedule_form": schedule_form, "url": url}
    )


@login_not_required
@never_cache
@sensitive_post_parameters("card_number", "cvv", "expiry")
@require_http_methods(["GET", "POST"])
def hosted_register(request, token: str):
    """The cardholder's page (R9): the merchant's name, no back-office navigation."""
    link = services.link_from_token(token)
    if link is None:
        return render(request, "recurring/hosted_invalid.html", status=400)
    merchant = link.merchant
    fixed = {"customer_id": link.customer_id, "amount": link.amount}
    form = HostedRegistrationForm(request.POST or None, fixed=fixed)
    schedule_form = None
    if link.schedule is None:
        schedule_form = ScheduleForm(
            request.POST or None, prefix="schedule", today=merchant.local_today(), initial={"kind": "date"}
        )
    if request.method == "POST" and form.is_valid() and (schedule_form is None or schedule_form.is_valid()):
        data = form.cleaned_data
        month, year = form.expiry_parts()
        try:
            card = payments.tokenize_card(
                data["card_number"], month, year, data["cvv"], data["holder_name"], data["phone"]
            )
        except CardRejected as rejected:
            form.add_error(
                "card_number" if rejected.response_code != "N7" else "cvv",
                f"The bank refused this card: {rejected.message}.",
            )
        else:
            try:
                billing = services.register_hosted(
                    link,
                    card=card,
                    customer_id=link.customer_id or data["customer_id"],
                    customer_name=data["customer_name"],
                    email=data["email"],
                    phone=data["phone"],
                    amount=link.amount or data["amount"],
                    schedule=link.schedule or schedule_form.cleaned_data["schedule"],
                )
            except services.RecurringError as refusal:
                return render(request, "recurring/hosted_invalid.html", {"reason": str(refusal)}, status=400)
            return render(request, "recurring/hosted_done.html", {"merchant": merchant, "billing": billing})
    return render(
        request,
        "recurring/hosted_register.html",
        {"merchant": merchant, "link": link, "form": form, "schedule_form": schedule_form},
    )

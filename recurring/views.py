from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_tables2 import RequestConfig

from accounts.audit import Actor, client_ip
from accounts.models import AuditEntry
from accounts.stepup import step_up_response
from accounts.tenancy import admin_required, get_merchant_row, menu_required, merchant_rows
from billing_bo.lib.redirects import redirect_to_next, safe_next

from . import cancellation, card_attempts, card_expiry, services
from .forms import (
    BillingSearchForm,
    CancelSearchForm,
    ChangeTypeForm,
    HostedRegistrationForm,
    RegistrationLinkForm,
    ScheduleForm,
)
from .models import Billing, RegistrationLink, RetryPolicy
from .scheduler import next_schedulable_day
from .tables import BillingTable, RegistrationTable

MANAGE = "manage_recurring"
REGISTRATION = "registration"
CANCEL = "void_transaction"  # Cancel Execute Date sits with Void Transaction (PRODUCT menu 5)
PREVIEW_DEFAULT_COUNT, PREVIEW_MAX_COUNT = 12, 60
NOTHING_FOUND = "Nothing found: no billing matches this search."


def _search(request, rows):
    """The Customer ID / Billing Number search; returns the form, the rows and what an empty result says."""
    form = BillingSearchForm(request.GET or None)
    searched = False
    if form.is_bound and form.is_valid():
        for field, lookup in (("customer_id", "customer_id"), ("billing_number", "billing_number__iexact")):
            value = form.cleaned_data[field].strip()
            if value:
                rows = rows.filter(**{lookup: value})  # billing numbers ignore case (an index on UPPER)
                searched = True
    return form, rows, NOTHING_FOUND if searched else "No billing yet."


def _schedule_and_next(billing: Billing) -> str:
    """The saved schedule and the first date it runs (the same rule as the scheduler's)."""
    when = billing.next_execute_date
    if billing.status != Billing.Status.ACTIVE:
        return f"{billing.schedule.describe()}. The billing is inactive: nothing runs until it is activated."
    if when is None:
        return f"{billing.schedule.describe()}. No execute date is left to run."
    return f"{billing.schedule.describe()}. Next execute date: {when:%Y-%m-%d}."


def _live_billing(request, pk: int) -> Billing:
    billing = get_merchant_row(request, Billing, pk=pk)
    if billing.is_deleted:
        messages.error(request, f"Billing {billing.billing_number} is deleted: it cannot be changed.")
    return billing


# Manage Recurring (R1-R6)


@require_GET
@menu_required(MANAGE)
def billing_list(request):
    rows = merchant_rows(request, Billing).filter(deleted_at__isnull=True)
    merchant = request.user.merchant
    expiring_only = request.GET.get("card") == "expiring"
    if expiring_only:  # the dashboard's Cards expiring links here
        policy = RetryPolicy.for_merchant(merchant)
        rows = card_expiry.charged_billings(rows).filter(
            card_expiry.expiring_q(merchant.local_today(), policy.expiring_days)
        )
    form, rows, empty_text = _search(request, rows)
    if expiring_only:
        empty_text = "No card is expiring."
    table = BillingTable(rows, empty_text=empty_text, expiring=card_expiry.marker(merchant))
    RequestConfig(request, paginate={"per_page": 25}).configure(table)
    context = {"form": form, "table": table, "expiring_only": expiring_only}
    return render(request, "recurring/billing_list.html", context)


@require_http_methods(["GET", "POST"])
@menu_required(MANAGE)
def billing_schedule(request, pk: int):
    """Edit Date (R2, R6): a form per schedule type with a live preview of the next 12 dates."""
    billing = _live_billing(request, pk)
    if billing.is_deleted:
        return redirect("recurring:billings")
    first_day = next_schedulable_day(billing.merchant)
    form = ScheduleForm(request.POST or None, initial=ScheduleForm.initial_for(billing.schedule), first_day=first_day)
    # back to the list the user came from (its search kept), else to the list showing this billing
    back = (
        safe_next(request) or f"{reverse('recurring:billings')}?{urlencode({'billing_number': billing.billing_number})}"
    )
    if request.method == "POST" and form.is_valid():
        try:
            billing = services.change_schedule(Actor.from_request(request), billing, form.cleaned_data["schedule"])
        except services.RecurringError as refusal:
            messages.error(request, str(refusal))
        else:
            messages.success(
                request, f"The schedule of {billing.billing_number} is saved: {_schedule_and_next(billing)}"
            )
        return redirect(back)
    # After a failed save the preview shows the submitted schedule's errors, not the billing's old dates.
    preview, preview_error = [], form.error_text() if form.is_bound else ""
    if not form.is_bound:
        preview = billing.schedule.next_dates(first_day - timedelta(days=1), 12)
    context = {"billing": billing, "form": form, "preview": preview, "preview_error": preview_error, "back": back}
    return render(request, "recurring/billing_schedule.html", context)


@require_POST
@menu_required(MANAGE)
def billing_status(request, pk: int):
    """R3: Inactivate / Activate."""
    billing = _live_billing(request, pk)
    if not billing.is_deleted:
        new = Billing.Status.INACTIVE if billing.status == Billing.Status.ACTIVE else Billing.Status.ACTIVE
        billing = services.set_status(Actor.from_request(request), billing, new)
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
        billing = services.change_type(Actor.from_request(request), billing, form.cleaned_data["billing_type"])
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
        services.delete(Actor.from_request(request), billing, reason)
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
    dates (YYYY-MM-DD, comma-separated), and optionally count (1-60, default 12; anything else is a 400) and
    after (YYYY-MM-DD).
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
    form = ScheduleForm(data, first_day=next_schedulable_day(merchant))
    if not form.is_valid():
        return JsonResponse({"error": form.error_text()}, status=400)
    count = request.GET.get("count", str(PREVIEW_DEFAULT_COUNT)).strip()
    if not (count.isascii() and count.isdigit() and 1 <= int(count) <= PREVIEW_MAX_COUNT):
        return JsonResponse({"error": f"count must be a whole number from 1 to {PREVIEW_MAX_COUNT}."}, status=400)
    try:
        after = (
            date.fromisoformat(request.GET["after"])
            if request.GET.get("after")
            else next_schedulable_day(merchant) - timedelta(days=1)
        )
    except ValueError:
        return JsonResponse({"error": "after must be a date (YYYY-MM-DD)."}, status=400)
    schedule = form.cleaned_data["schedule"]
    return JsonResponse(
        {
            "schedule": schedule.to_dict(),
            "description": schedule.describe(),
            "dates": [d.isoformat() for d in schedule.next_dates(after, int(count))],
        }
    )


# Cancel Execute Date (P6)


@never_cache
@require_http_methods(["GET", "POST"])
@menu_required(CANCEL)
def cancel_execute_date(request):
    """P6: the search stays in the URL; each row's Delete posts a code and a reason to its own search."""
    form = CancelSearchForm(request.GET or None)
    found = []
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        day = data["execute_date"]
        found = cancellation.find(request.user.merchant, day, data["billing_number"], data["invoice_number"])
        if isinstance(found, str):
            form.add_error(None, found)
            found = []
        elif request.method == "POST" and len(found) == 1:
            due = found[0]

            def act(reason: str):
                try:
                    cancellation.cancel(Actor.from_request(request), due, reason)
                except services.RecurringError as refusal:
                    messages.error(request, str(refusal))
                else:
                    messages.success(request, f"{due.invoice} on {day:%Y-%m-%d} is cancelled: it will not be charged.")
                return redirect("recurring:cancel")

            return step_up_response(
                request,
                action="recurring.execution.cancelled",
                title=f"Cancel {due.invoice}",
                message=f"{due.invoice} will not run on {day:%Y-%m-%d}.",
                act=act,
            )
    # Both kinds of cancellation, from User Activity (who, when, why).
    recent = merchant_rows(request, AuditEntry).filter(action__in=cancellation.ACTIONS).order_by("-created_at")[:20]
    return render(request, "recurring/cancel.html", {"form": form, "found": found, "recent": recent})


# Registration (R9)


@require_GET
@menu_required(REGISTRATION)
def registration_list(request):
    rows = merchant_rows(request, Billing).filter(deleted_at__isnull=True)
    source = request.GET.get("source")
    if source in Billing.Source.values:
        rows = rows.filter(source=source)
    form, rows, empty_text = _search(request, rows)
    table = RegistrationTable(rows, empty_text=empty_text)
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
    first_day = next_schedulable_day(request.user.merchant)
    form = RegistrationLinkForm(request.POST or None, merchant=request.user.merchant)
    schedule_form = ScheduleForm(request.POST or None, prefix="schedule", first_day=first_day, initial=ScheduleForm.NEW)
    url = None
    if request.method == "POST" and form.is_valid():
        fixed = form.cleaned_data["fix_schedule"]
        if not fixed or schedule_form.is_valid():
            _, url = services.create_link(
                Actor.from_request(request),
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
    if link.amount is not None and (refusal := merchant.charge_amount_refused_because(link.amount)):
        return render(request, "recurring/hosted_invalid.html", {"reason": refusal}, status=400)
    fixed = {"customer_id": link.customer_id, "amount": link.amount}
    form = HostedRegistrationForm(request.POST or None, fixed=fixed, merchant=merchant)
    schedule_form = None
    if link.schedule is None:
        schedule_form = ScheduleForm(
            request.POST or None, prefix="schedule", first_day=next_schedulable_day(merchant), initial=ScheduleForm.NEW
        )
    if request.method == "POST" and form.is_valid() and (schedule_form is None or schedule_form.is_valid()):
        data = form.cleaned_data
        try:
            billing = services.register_on_link(
                link,
                client_ip(request),
                card=form.card(data["phone"]),
                customer_id=link.customer_id or data["customer_id"],
                customer_name=data["customer_name"],
                email=data["email"],
                phone=data["phone"],
                amount=link.amount or data["amount"],
                schedule=link.schedule or schedule_form.cleaned_data["schedule"],
            )
        except card_attempts.CardDeclined as declined:
            if declined.spent:
                return render(request, "recurring/hosted_invalid.html", {"reason": _spent_text(merchant)}, status=400)
            form.add_error(None, str(declined))
        except services.RecurringError as refusal:
            return render(request, "recurring/hosted_invalid.html", {"reason": str(refusal)}, status=400)
        else:
            return render(request, "recurring/hosted_done.html", {"merchant": merchant, "billing": billing})
    return render(
        request,
        "recurring/hosted_register.html",
        {"merchant": merchant, "link": link, "form": form, "schedule_form": schedule_form},
    )


def _spent_text(merchant) -> str:
    return f"{card_attempts.DECLINED} This link cannot be used any more: ask {merchant.name} for a new one."

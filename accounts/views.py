from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST
from django_tables2 import RequestConfig

from . import services
from .audit import ACTIONS
from .filters import AuditEntryFilter
from .forms import SignInForm
from .models import AuditEntry
from .tables import AuditEntryTable
from .tenancy import get_merchant_row, menu_required, merchant_rows


def _next_url(request, fallback: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return fallback


@login_not_required
@sensitive_post_parameters("password", "code")
@never_cache
def sign_in(request):
    if request.user.is_authenticated and request.user.is_verified():
        return redirect("reports:dashboard")
    form = SignInForm(request.POST or None)
    error = ""
    if request.method == "POST":
        if form.is_valid():
            result = services.sign_in(
                request, form.cleaned_data["username"], form.cleaned_data["password"], form.cleaned_data["code"]
            )
            if result.user is not None:
                fallback = "/" if result.user.merchant_id else "/admin/"
                return redirect(_next_url(request, fallback))
            error = result.error
        else:
            error = services.SIGN_IN_ERROR
    return render(
        request,
        "accounts/sign_in.html",
        {"form": form, "error": error, "next": request.POST.get("next") or request.GET.get("next", "")},
    )


@require_POST
def sign_out(request):
    services.sign_out(request)
    messages.info(request, "You are signed out.")
    return redirect("accounts:sign_in")


@require_GET
@menu_required("user_activity")
def activity_list(request):
    entries = merchant_rows(request, AuditEntry)
    filterset = AuditEntryFilter(request.GET or None, queryset=entries)
    if not filterset.is_bound:
        rows = entries
    else:  # an invalid search shows its errors and no rows
        rows = filterset.qs if filterset.is_valid() else entries.none()
    table = AuditEntryTable(rows)
    RequestConfig(request, paginate={"per_page": 25}).configure(table)
    return render(request, "accounts/activity_list.html", {"filter": filterset, "table": table})


@require_GET
@menu_required("user_activity")
def activity_detail(request, pk: int):
    entry = get_merchant_row(request, AuditEntry, pk=pk)
    return render(
        request,
        "accounts/activity_detail.html",
        {"entry": entry, "action_label": ACTIONS.get(entry.action, entry.action)},
    )

"""Dashboard (D1-D9), All Report with exports (T1, T2, T4, T5) and Batch Report (T3).

Access (U7): the Dashboard is every signed-in user's landing page, but each widget shows only data of a
menu the user holds: the transaction figures and charts (D2-D7, D9) are All Report data (``all_report``),
Registration Recurring (D8) is Manage Recurring data (``manage_recurring``). A missing menu shows a card
that says so instead of the figures, and the chart endpoints refuse (403) on their own.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods
from django_tables2 import RequestConfig

from accounts import audit
from accounts.tenancy import get_merchant_row, menu_required, merchant_rows
from batch.models import Batch, BatchRow
from billing_bo.lib.money import format_number, format_rupiah
from payments.models import Transaction
from recurring import card_expiry
from recurring.models import Billing

from . import dashboard as figures
from .filters import AllReportFilter
from .models import DailyRollup, PeriodTotal
from .pagination import KeysetPaginator, page_links
from .periods import KINDS, period_from_params
from .services import (
    batch_outcomes,
    export_body,
    parse_sort,
    rows,
    totals,
    totals_from_token,
    totals_token,
    with_card_expiring,
    with_file_names,
)
from .tables import AllReportTable, BatchRowTable, BatchTable

ALL_REPORT = "all_report"
BATCH_REPORT = "batch_report"
REGISTRATIONS_MENU = "manage_recurring"


# Dashboard (D1-D9)


@require_GET
def dashboard(request):
    """The landing page. Figures come from the rollups of the merchant's period (merchant-local days)."""
    merchant = request.user.merchant
    if merchant is None:  # platform operators work in the admin
        return redirect("admin:index")
    period = period_from_params(request.GET, merchant.local_today())
    user = request.user
    context = {
        "period": period,
        "kinds": KINDS,
        "period_query": urlencode({"period": period.kind, "back": period.back}),
        "can_transactions": user.has_menu(ALL_REPORT),
        "can_registrations": user.has_menu(REGISTRATIONS_MENU),
    }
    if context["can_transactions"]:
        context["summary"] = figures.summary(
            merchant_rows(request, DailyRollup), merchant_rows(request, PeriodTotal), period
        )
        context["recovered"] = figures.recovered(merchant_rows(request, Transaction), period)
    if context["can_registrations"]:
        billings = merchant_rows(request, Billing)
        context["registrations"] = figures.registrations(billings, period, merchant.tzinfo)
        context["cards_expiring"] = card_expiry.widget(billings, merchant.local_today())
    return render(request, "reports/dashboard.html", context)


# All Report (T1, T2, T4, T5)


def _filterset(request, data) -> AllReportFilter:
    merchant = request.user.merchant
    return AllReportFilter(data, merchant_rows(request, Transaction), request=request, today=merchant.local_today())


def _has_raw_card_number(params) -> bool:
    value = (params.get("card_no") or "").replace(" ", "").replace("-", "")
    return value.isdigit()


def _with_file_names(request, found):
    return with_file_names(request.user.merchant_id, found)


def _report_page(request, context: dict, status: int = 200):
    context = {
        "default_days": settings.REPORTS_DEFAULT_RANGE_DAYS,
        "max_days": settings.REPORTS_MAX_RANGE_DAYS,
        **context,
    }
    return render(request, "reports/all_report.html", context, status=status)


# A result URL with this parameter shows the search form above the result ("Show Search Form").
EDIT = "form"


@never_cache
@require_http_methods(["GET", "POST"])
@menu_required(ALL_REPORT)
def all_report(request):
    """The search form posts (so a typed card number never lands in a URL or a log) and redirects to the
    result URL, which carries every filter (the card as a signed fingerprint token)."""
    if request.method == "POST":
        filterset = _filterset(request, request.POST)
        if filterset.is_valid():
            query = filterset.query()
            if request.POST.get("sort"):
                query["sort"] = request.POST["sort"]
            return redirect(f"{reverse('reports:all')}?{urlencode(query)}")
        return _report_page(request, {"filter": filterset, "show_form": True})
    if not request.GET:
        filterset = _filterset(request, None)
        return _report_page(request, {"filter": filterset, "show_form": True})
    filterset = _filterset(request, request.GET)
    if not filterset.is_valid():  # a clear error, and no query at all
        return _report_page(request, {"filter": filterset, "show_form": True})
    if _has_raw_card_number(request.GET):
        # a hand-made URL with a card number: move the number out of the address bar
        query = {**filterset.query(), **{k: v for k, v in request.GET.items() if k in ("sort",)}}
        return redirect(f"{reverse('reports:all')}?{urlencode(query)}")
    return _result_page(request, filterset)


def _result_page(request, filterset: AllReportFilter):
    """A page of the transactions ``filterset`` finds, with their totals (counted on the first page only)."""
    sort, keys, descending = parse_sort(request.GET.get("sort"))
    filtered = filterset.qs
    query, merchant_id = filterset.query(), request.user.merchant_id
    # The first page counts; its page links carry the totals, so paging on does not count again (T5).
    found = totals_from_token(request.GET.get("totals", ""), merchant_id, query) or totals(filtered)
    link_params = request.GET.copy()
    link_params.pop(EDIT, None)
    for name in ("start_date", "end_date"):  # a default window, written out: kept while paging, and shown
        if name in query:  # in the search form (Show Search Form), where it can be changed
            link_params[name] = query[name]
    link_params["totals"] = totals_token(merchant_id, query, found)
    paginator = KeysetPaginator(
        rows(filtered), keys, descending=descending, sort=sort, per_page=settings.REPORTS_PAGE_SIZE
    )
    page = paginator.page(request.GET)
    page.rows = with_card_expiring(request.user.merchant, list(_with_file_names(request, page.rows)))
    table = AllReportTable(page.rows, sort=sort, request=request)
    # the export links carry the totals too: a CSV export records them without counting again
    export_query = urlencode({**filterset.query(), "sort": sort, "totals": link_params["totals"]})
    # The search form is written only when asked for: "Show Search Form" opens this page again with it
    # (T2), so a result page does not pay for fourteen widgets nobody sees.
    show_form = EDIT in request.GET
    edit_params = link_params.copy()
    edit_params[EDIT] = "1"
    return _report_page(
        request,
        {
            "filter": filterset,
            "criteria": filterset.criteria(),
            "totals": found,
            "table": table,
            "page": page,
            "links": page_links(link_params, page),
            "export_query": export_query,
            "sort": sort,
            "show_form": show_form,
            "edit_query": edit_params.urlencode(),
        },
    )


EXPORT_CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@require_GET
@menu_required(ALL_REPORT)
def all_report_export(request):
    """T4: the current result (same filters, same order, every row) as CSV or XLSX, streamed."""
    fmt = request.GET.get("format", "csv")
    if fmt not in EXPORT_CONTENT_TYPES:
        fmt = "csv"
    filterset = _filterset(request, request.GET)
    if not filterset.is_valid():
        return _report_page(request, {"filter": filterset, "show_form": True}, status=400)
    sort = parse_sort(request.GET.get("sort"))[0]
    filtered = filterset.qs
    # The audit entry gives the rows of the result: a CSV export from the result page takes the totals its
    # link carries (the figures the user saw); an XLSX counts now, as the sheet's row limit depends on it.
    token = request.GET.get("totals", "") if fmt == "csv" else ""
    found = totals_from_token(token, request.user.merchant_id, filterset.query()) or totals(filtered)
    if fmt == "xlsx" and found.count > settings.REPORTS_XLSX_MAX_ROWS:
        rows_found, limit = format_number(found.count), format_number(settings.REPORTS_XLSX_MAX_ROWS)
        messages.error(
            request, f"{rows_found} rows are more than a spreadsheet holds ({limit}): export CSV, or narrow the search."
        )
        return redirect(f"{reverse('reports:all')}?{urlencode({**filterset.query(), 'sort': sort})}")
    criteria = filterset.criteria()
    audit.record(
        "reports.exported",
        request=request,
        data={"report": "all_report", "format": fmt, "rows": found.count, "criteria": dict(criteria)},
    )
    content_type = EXPORT_CONTENT_TYPES[fmt]
    body = export_body(fmt, filtered, request.user.merchant_id, sort, large=found.count > 500_000)
    merchant = request.user.merchant
    start, end = filterset.form.cleaned_data["start_date"], filterset.form.cleaned_data["end_date"]
    dates = "-".join(f"{day:%Y%m%d}" if day else "all" for day in (start, end))  # open ends: a file's search
    filename = f"all-report-{merchant.code}-{dates}.{fmt}"
    response = StreamingHttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


# Batch Report (T3)


@require_GET
@menu_required(BATCH_REPORT)
def batch_list(request):
    batches = merchant_rows(request, Batch).select_related("uploaded_by")
    table = BatchTable(batches)
    RequestConfig(request, paginate={"per_page": 25}).configure(table)
    return render(request, "reports/batch_list.html", {"table": table})


@require_GET
@menu_required(BATCH_REPORT)
def batch_detail(request, pk: int):
    batch = get_merchant_row(request, Batch, pk=pk)
    batch_rows = merchant_rows(request, BatchRow).filter(batch=batch)
    page = KeysetPaginator(
        batch_rows, ("row_number",), descending=False, sort="row", per_page=settings.REPORTS_PAGE_SIZE
    ).page(request.GET)
    outcomes, by_status = batch_outcomes(batch, [row.reference for row in page.rows if row.reference])
    table = BatchRowTable(page.rows, outcomes=outcomes, request=request)
    return render(
        request,
        "reports/batch_detail.html",
        {
            "batch": batch,
            "table": table,
            "page": page,
            "links": page_links(request.GET, page),
            "by_status": by_status,
            "total_amount": format_rupiah(batch.total_amount),
        },
    )

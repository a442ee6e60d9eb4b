from __future__ import annotations

import csv
import io

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.audit import Actor
from accounts.tenancy import check_menu, get_merchant_row, menu_required, merchant_rows
from billing_bo.uploads import file_too_large_message
from recurring.models import Billing

from . import services
from .columns import COLUMNS, example_rows, names
from .forms import UploadForm
from .models import Batch, BatchRow

MENU_OF = {Batch.Kind.SINGLE_PAYMENT: "batch_transaction", Batch.Kind.REGISTRATION: "registration"}
TITLE_OF = {Batch.Kind.SINGLE_PAYMENT: "Batch Transaction", Batch.Kind.REGISTRATION: "Batch Registration"}


def _upload_page(request, kind: str):
    form = UploadForm(request.POST or None, request.FILES or None)
    if getattr(request, "upload_over_limit", False):  # dropped while it streamed in (billing_bo/uploads.py)
        form.is_valid()
        form.errors["file"] = form.error_class([file_too_large_message()])
    elif request.method == "POST" and form.is_valid():
        try:
            batch = services.upload(Actor.from_request(request), form.cleaned_data["file"], kind)
        except services.UploadRefused as refusal:
            form.add_error("file", str(refusal))
        else:
            return redirect("batch:detail", pk=batch.pk)
    history = merchant_rows(request, Batch).filter(kind=kind).select_related("uploaded_by")[:20]
    return render(
        request,
        "batch/upload.html",
        {"form": form, "kind": kind, "title": TITLE_OF[kind], "columns": COLUMNS[kind], "history": history},
    )


@require_http_methods(["GET", "POST"])
@menu_required("batch_transaction")
def single_payment(request):
    """Batch Transaction (B1, B5): single payments charged on their execute date."""
    return _upload_page(request, Batch.Kind.SINGLE_PAYMENT)


@require_http_methods(["GET", "POST"])
@menu_required("registration")
def registration(request):
    """Batch Registration (B1): billings with their schedules."""
    return _upload_page(request, Batch.Kind.REGISTRATION)


def _batch(request, pk: int) -> Batch:
    batch = get_merchant_row(request, Batch.objects.select_related("uploaded_by"), pk=pk)
    check_menu(request, MENU_OF[batch.kind])
    return batch


@require_GET
def detail(request, pk: int):
    """The preview (B2, B3) while validating, then the rows and their outcome (B4)."""
    batch = _batch(request, pk)
    rows = merchant_rows(request, BatchRow).filter(batch=batch)
    only_invalid = request.GET.get("show") != "all" and batch.invalid_rows > 0
    if only_invalid:
        rows = rows.filter(status=BatchRow.Status.INVALID)
    page = Paginator(rows.order_by("row_number"), 50).get_page(request.GET.get("page"))
    columns = names(batch.kind)
    table = [
        {"row": row, "cells": [(column, row.data.get(column, ""), row.errors.get(column, "")) for column in columns]}
        for row in page
    ]
    context = {
        "batch": batch,
        "columns": columns,
        "table": table,
        "page": page,
        "only_invalid": only_invalid,
        "title": TITLE_OF[batch.kind],
        "percent": min(100, 100 * batch.rows_done // batch.total_rows) if batch.total_rows else 0,
    }
    return render(request, "batch/detail.html", context)


@require_GET
def progress(request, pk: int):
    batch = _batch(request, pk)
    return JsonResponse(
        {
            "status": batch.status,
            "status_label": batch.get_status_display(),
            "rows_done": batch.rows_done,
            "total_rows": batch.total_rows,
            "invalid_rows": batch.invalid_rows,
            "message": batch.message,
        }
    )


@require_POST
def process(request, pk: int):
    batch = _batch(request, pk)
    if refusal := services.process_refused_because(batch):
        messages.error(request, refusal)
    elif services.start_processing(Actor.from_request(request), batch):
        messages.success(request, f"Processing {batch.file_name} started.")
    else:
        batch.refresh_from_db()
        messages.error(request, services.process_refused_because(batch) or "Processing started already.")
    return redirect("batch:detail", pk=batch.pk)


@require_GET
def template(request, kind: str, file_format: str):
    """The template of a kind (B1): the header and two example rows, as CSV or XLSX."""
    if kind not in COLUMNS or file_format not in ("csv", "xlsx"):
        raise Http404
    check_menu(request, MENU_OF[kind])
    header = names(kind)
    billing_number = ""
    if kind == Batch.Kind.SINGLE_PAYMENT:  # the first example row charges the merchant's first billing
        first = merchant_rows(request, Billing).order_by("billing_number").values_list("billing_number", flat=True)
        billing_number = first.first()
    examples = example_rows(kind, request.user.merchant.local_today(), billing_number or "")
    filename = f"{kind}-template.{file_format}"
    if file_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        writer.writerows(examples)
        response = HttpResponse(buffer.getvalue().encode("utf-8-sig"), content_type="text/csv; charset=utf-8")
    else:
        from openpyxl import Workbook
        from openpyxl.utils import get_column_letter

        workbook = Workbook()
        sheet = workbook.active
        sheet.title = kind
        sheet.append(header)
        for example in examples:
            sheet.append(example)
        # Text, the whole columns and the cells written: Excel must not turn card numbers, amounts or dates
        # that a user types into numbers or dates.
        for index in range(1, len(header) + 1):
            sheet.column_dimensions[get_column_letter(index)].number_format = "@"
        for cells in sheet.iter_rows():
            for cell in cells:
                cell.number_format = "@"
        buffer = io.BytesIO()
        workbook.save(buffer)
        response = HttpResponse(
            buffer.getvalue(), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

"""Result tables: All Report (T1, T5), Batch Report (T3) and a batch's rows."""

from __future__ import annotations

import django_tables2 as tables
from django.utils.html import format_html
from django_tables2 import RequestConfig
from django_tables2.data import TableData

from batch.models import Batch, BatchRow
from billing_bo.lib.cards import mask_pans_in_text
from billing_bo.lib.money import format_number, format_rupiah

from .services import COLUMNS, SORTS, screen_text

NUM = {"td": {"class": "num"}, "th": {"class": "num"}}


class PageRows(TableData):
    """One keyset page, already in the order the table shows: the table must not sort it again."""

    def __len__(self):
        return len(self.data)

    def order_by(self, aliases):
        pass


def _status_pill(value: str, label: str) -> str:
    return format_html('<span class="status status-{}">{}</span>', value, label)


class AllReportTable(tables.Table):
    """Rows are dicts from ``reports.services.rows``; the columns are ``reports.services.COLUMNS``. A cell's
    content is made once per row by ``_cells`` and printed by reports/all_report_table.html: a
    ``render_<column>`` method here would not be called."""

    class Meta:
        attrs = {"class": "table compact report-table", "data-testid": "all-report-table"}
        template_name = "reports/all_report_table.html"
        row_attrs = {"data-invoice": lambda record: record["invoice_number"]}
        orderable = True

    def __init__(self, page_rows: list[dict], *, sort: str, **kwargs):
        extra = []
        for column in COLUMNS:
            attrs = NUM if column.number else {}
            extra.append(
                (column.name, tables.Column(verbose_name=column.label, orderable=column.name in SORTS, attrs=attrs))
            )
        request = kwargs.pop("request", None)
        page_rows = [dict(row) for row in page_rows]
        super().__init__(PageRows(page_rows), extra_columns=extra, order_by=sort, **kwargs)
        # Each row's cells, written once per row for reports/all_report_table.html (see there).
        td_attrs = [(column.name, column.attrs["td"].as_html()) for column in self.columns]
        for row in page_rows:
            row["cells"] = self._cells(row, td_attrs)
        if request is not None:
            # The rows are one keyset page already: django-tables2 must not cut it into its own pages
            # (it would show the first 25 and a pager of its own).
            RequestConfig(request, paginate=False).configure(self)

    def _cells(self, row: dict, td_attrs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """(td attributes, content) of each cell of ``row`` in column order, ``td_attrs`` being each
        column's (name, td attributes). The template escapes the content; the status pill is markup whose
        text format_html escaped."""
        cells = []
        for name, attrs in td_attrs:
            text = screen_text(row, name)
            if name == "status" and text:
                text = _status_pill(row["status"], text)
            elif name == "card_masked" and row.get("card_expiring"):
                text = format_html(
                    '{} <span class="status status-warn" data-testid="card-expiring">Card expiring</span>', text
                )
            cells.append((attrs, text or self.default))
        return cells


class BatchTable(tables.Table):
    """Batch Report (T3): uploaded files, newest first."""

    uploaded_at = tables.DateTimeColumn(verbose_name="Uploaded", format="Y-m-d H:i")
    file_name = tables.Column(verbose_name="File Name")
    kind = tables.Column(verbose_name="Batch Type")
    status = tables.Column(verbose_name="Status")
    total_rows = tables.Column(verbose_name="Total Data", attrs=NUM)
    total_amount = tables.Column(verbose_name="Total Amount", attrs=NUM)
    invalid_rows = tables.Column(verbose_name="Invalid Data", attrs=NUM)
    detail = tables.LinkColumn(
        "reports:batch_detail", args=[tables.A("pk")], text="Detail", orderable=False, empty_values=()
    )

    class Meta:
        model = Batch
        fields = ("uploaded_at", "file_name", "kind", "status", "total_rows", "total_amount", "invalid_rows")
        order_by = ("-uploaded_at",)
        attrs = {"class": "table", "data-testid": "batch-table"}
        row_attrs = {"data-file": lambda record: record.file_name}

    def render_total_amount(self, value):
        return format_rupiah(value)

    def render_total_rows(self, value):
        return format_number(value)

    def render_invalid_rows(self, value):
        return format_number(value)

    def render_status(self, record):
        return _status_pill(record.status, record.get_status_display())

    def order_uploaded_at(self, queryset, is_descending):
        # ties (one upload second) keep a stable order across pages
        return queryset.order_by(*(("-uploaded_at", "-id") if is_descending else ("uploaded_at", "id"))), True


class BatchRowTable(tables.Table):
    """The rows of one batch with their outcome; cards masked (first 6, last 4)."""

    row_number = tables.Column(verbose_name="Row", attrs=NUM, orderable=False)
    reference = tables.Column(verbose_name="Billing / Invoice Number", orderable=False)
    holder = tables.Column(verbose_name="Card Holder Name", accessor="data__holder_name", orderable=False)
    card = tables.Column(verbose_name="Card No", accessor="data__card_number", orderable=False)
    amount = tables.Column(verbose_name="Amount", attrs=NUM, orderable=False)
    status = tables.Column(verbose_name="Row Status", orderable=False)
    payment = tables.Column(verbose_name="Payment / Billing", empty_values=(), orderable=False)
    outcome = tables.Column(verbose_name="Outcome", orderable=False)

    class Meta:
        model = BatchRow
        fields = ("row_number", "reference", "holder", "card", "amount", "status", "payment", "outcome")
        attrs = {"class": "table compact", "data-testid": "batch-row-table"}
        row_attrs = {"data-row": lambda record: record.row_number}

    def __init__(self, rows, *, outcomes: dict[str, tuple[str, str]], **kwargs):
        self.outcomes = outcomes
        super().__init__(PageRows(rows), **kwargs)

    def render_card(self, value):
        return mask_pans_in_text(str(value))

    def render_holder(self, value):
        return mask_pans_in_text(str(value))

    def render_amount(self, value):
        return format_rupiah(value)

    def render_status(self, record):
        return _status_pill(record.status, record.get_status_display())

    def render_payment(self, record):
        found = self.outcomes.get(record.reference)
        return _status_pill(*found) if found else "—"

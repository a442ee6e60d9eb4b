"""Result tables: All Report (T1, T5), Batch Report (T3) and a batch's rows."""

from __future__ import annotations

from html import escape as escape_text
from urllib.parse import urlencode

import django_tables2 as tables
from django.utils.formats import localize
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django_tables2 import RequestConfig
from django_tables2.data import TableData
from django_tables2.rows import BoundRow
from django_tables2.utils import AttributeDict, signature

from batch.models import Batch, BatchRow
from billing_bo.lib.cards import mask_pans_in_text
from billing_bo.lib.money import format_rupiah
from billing_bo.lib.numbers import format_number

from .services import COLUMNS, SORTS, display

NUM = {"td": {"class": "num"}, "th": {"class": "num"}}
_EVEN_ODD = ("even", "odd")


class PageRows(TableData):
    """One keyset page, already in the order the table shows: the table must not sort it again."""

    def __len__(self):
        return len(self.data)

    def order_by(self, aliases):
        pass


_SIGNATURES: dict = {}


def _arguments(render) -> tuple:
    """django-tables2's ``signature(render)`` (the argument names a renderer takes), found once per function
    for the process: inspecting it costs more than rendering the cell."""
    key = getattr(render, "__func__", render)
    if key not in _SIGNATURES:
        _SIGNATURES[key] = signature(render)
    return _SIGNATURES[key]


def _cell_text(content) -> str:
    """``{{ cell }}`` of django-tables2's template: localised, then escaped unless it is safe HTML."""
    if type(content) is str:  # most cells: plain text from the database (SafeString is a subclass)
        return escape_text(content)
    if type(content) is SafeString:  # a renderer's markup (the status pill)
        return content
    return conditional_escape(localize(content))


def _attrs_html(attrs: dict) -> str:
    """``AttributeDict(attrs).as_html()`` (skipping None and django-tables2's nested keys) without its
    per-attribute ``format_html``: a row's attributes are written fifty times a page."""
    parts = []
    for key, value in attrs.items():
        if value is None or key in AttributeDict.blacklist:
            continue
        value = escape_text(value) if type(value) is str else conditional_escape(value)
        parts.append(f'{conditional_escape(key)}="{value}"')
    return " ".join(parts)


def _status_pill(value: str, label: str) -> str:
    return format_html('<span class="status status-{}">{}</span>', value, label)


class AllReportTable(tables.Table):
    """Rows are dicts from ``reports.services.rows``; the columns are ``reports.services.COLUMNS``."""

    class Meta:
        attrs = {"class": "table compact report-table", "data-testid": "all-report-table"}
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
        super().__init__(PageRows(page_rows), extra_columns=extra, order_by=sort, **kwargs)
        if request is not None:
            # The rows are one keyset page already: django-tables2 must not cut it into its own pages
            # (it would show the first 25 and a pager of its own).
            RequestConfig(request, paginate=False).configure(self)

    def html(self) -> str:
        """The whole table as django-tables2's stock template writes it (its wrapper, ``head_html`` and
        ``body_html``; no footer and no pager of its own: the rows are one keyset page). The page writes it
        with ``{{ table.html }}``: the template language around the two parts cost as much as the rows."""
        body = self.body_html()
        if not body and self.empty_text:
            body = format_html('<tr><td colspan="{}">{}</td></tr>', len(self.columns), self.empty_text)
        table = AttributeDict(self.attrs).as_html()
        tbody = f"<tbody {AttributeDict(self.attrs.get('tbody') or {}).as_html()}>{body}</tbody>"
        # every part is escaped where it is made
        return mark_safe(f'<div class="table-container"><table {table}>{self.head_html()}{tbody}</table></div>')  # noqa: S308

    def head_html(self) -> str:
        """The header as django-tables2's template writes it (each column's th attributes, the sort link of
        an orderable column: the current query with the column's next order), without the template
        language: a tenth of an All Report page's time went to the 19 headers (T5)."""
        if not self.show_header:
            return ""
        query, field = dict(self.request.GET), self.prefixed_order_by_field
        # urlencode({**query, field: next}): the parameters around the sort one are encoded once
        names = list(query)
        at = names.index(field) if field in query else len(names)
        before = urlencode({name: query[name] for name in names[:at]}, doseq=True)
        after = urlencode({name: query[name] for name in names[at + 1 :]}, doseq=True)
        cells = []
        for column in self.columns:
            th, header = column.attrs["th"].as_html(), _cell_text(column.header)
            if column.orderable:
                sort = urlencode({field: column.order_by_alias.next})
                href = escape_text("?" + "&".join(part for part in (before, sort, after) if part))
                cells.append(f'<th {th}><a href="{href}">{header}</a></th>')
            else:
                cells.append(f"<th {th}>{header}</th>")
        thead = AttributeDict(self.attrs.get("thead") or {}).as_html()
        return mark_safe(f"<thead {thead}><tr>{''.join(cells)}</tr></thead>")  # noqa: S308 - escaped above

    def body_html(self) -> str:
        """The rows exactly as django-tables2's template writes them (row attributes with even/odd, each
        column's td attributes, each cell from the column's renderer, localised and escaped), in one pass
        of Python: each column and each renderer's arguments are looked up once, not once per cell. The
        template language, per-cell look-ups and signature inspection took most of a page's time (T5)."""
        columns = []
        for column in self.columns:
            render = column.render
            plain = getattr(render, "__func__", None) is tables.Column.render  # returns the value as it is
            wanted, catch_all = _arguments(render)
            wanted = None if catch_all else tuple(wanted)
            # the renderers here take the value or the record alone: called without building arguments
            only = wanted[0] if wanted in (("value",), ("record",)) else None
            td = format_html("<td {}>", column.attrs["td"].as_html())
            columns.append((column, column.accessor, td, column.column.empty_values, column.default, render, plain,
                            wanted, only))  # fmt: skip
        row_attrs = [
            (name, value, _arguments(value)[0] if callable(value) else ()) for name, value in self.row_attrs.items()
        ]
        lines = []
        for number, record in enumerate(self.data):
            available = {"record": record, "table": self}
            attrs = {name: value(**{k: available[k] for k in wanted}) if callable(value) else value
                     for name, value, wanted in row_attrs}  # fmt: skip
            attrs["class"] = (
                f"{attrs['class']} {_EVEN_ODD[number % 2]}" if attrs.get("class") else _EVEN_ODD[number % 2]
            )
            cells = []
            for column, accessor, td, empty, default, render, plain, wanted, only in columns:
                value = record.get(accessor)
                if value in empty:
                    content = default
                elif plain:
                    content = value
                elif only == "value":
                    content = render(value=value)
                elif only == "record":
                    content = render(record=record)
                else:
                    available = {"value": value, "record": record, "column": column.column, "bound_column": column,
                                 "table": self}  # fmt: skip
                    if wanted is None or "bound_row" in wanted:
                        available["bound_row"] = BoundRow(record, table=self)
                    content = render(**(available if wanted is None else {key: available[key] for key in wanted}))
                cells.append(f"{td}{_cell_text(content)}</td>")
            lines.append(f"<tr {_attrs_html(attrs)}>{''.join(cells)}</tr>")
        return mark_safe("".join(lines))  # noqa: S308 - every cell and attribute above is escaped

    def render_amount(self, value):
        return format_rupiah(value)

    def render_refunded_amount(self, value):
        return format_rupiah(value) if value else "—"

    def render_kind(self, record):
        return display(record, "kind")

    def render_status(self, record):
        return _status_pill(record["status"], display(record, "status"))

    def render_execute_date(self, value):
        return value.isoformat()

    def render_next_retry_date(self, value):
        return value.isoformat()


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

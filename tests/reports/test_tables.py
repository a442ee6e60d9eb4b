"""The All Report table (T1, T5), written by django-tables2's stock template: cells escaped, status pills
kept, sort links that keep the search, one keyset page with no pager of django-tables2's own."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from django.template import Context, Template
from django.test import RequestFactory

from reports.services import COLUMNS
from reports.tables import AllReportTable


def record(**values) -> dict:
    row = {column.name: None for column in COLUMNS}
    row.update(id=1, batch_id=None, billing_id=None)
    row.update(values)
    return row


RECORDS = [
    record(
        execute_date=date(2026, 11, 25),
        invoice_number="INV-1",
        billing_number="BIL-1",
        customer_id="C<1>",
        kind="recurring",
        file_name="members & co.csv",
        amount=Decimal("1250000"),
        refunded_amount=Decimal("0"),
        card_masked="411111******1111",
        holder_name='<script>alert("x")</script>',
        holder_phone="+62 812'3",
        card_issuer="",
        status="success",
        response_code="00",
        approval_code="A1",
        attempts=1,
        next_retry_date=None,
    ),
    record(
        execute_date=date(2026, 1, 2),
        invoice_number="INV-2",
        kind="single",
        amount=Decimal("15000"),
        refunded_amount=Decimal("5000"),
        status="failed",
        error_code="51",
        bank_message="Insufficient funds =1+1",
        attempts=3,
        next_retry_date=date(2026, 1, 3),
    ),
    record(invoice_number="INV-3 \"&<'", kind="unknown-kind", status="refunded", amount=Decimal("1"), attempts=0),
]


def rendered(table) -> str:
    html = Template("{% load render_table from django_tables2 %}{% render_table table %}").render(
        Context({"table": table, "request": table.request})
    )
    return re.sub(r"\s*([<>])\s*", r"\1", html).strip()


def test_all_report_rows_escape_text_and_keep_status_markup():
    page = rendered(AllReportTable(RECORDS, sort="amount", request=RequestFactory().get("/reports/all/")))
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page and "<script>" not in page
    assert "members &amp; co.csv" in page and "+62 812&#x27;3" in page
    assert '<span class="status status-success">' in page
    assert page.count("<tr ") == 3 and 'class="even"' in page and 'class="odd"' in page


def test_the_sorted_column_links_to_the_other_direction_keeping_the_search():
    request = RequestFactory().get("/reports/all/", {"status": "success", "sort": "-amount", "q": "a&b <c>"})
    page = rendered(AllReportTable(RECORDS, sort="-amount", request=request))
    assert 'href="?status=success&amp;sort=amount&amp;q=a%26b+%3Cc%3E"' in page
    assert len(re.findall(r"<th[\s>]", page)) == len(COLUMNS) and page.count("<a href=") == 5


def test_a_page_of_rows_is_shown_whole_with_no_pager_of_django_tables2s_own():
    records = [record(invoice_number=f"INV-{n}", kind="single", status="success", amount=Decimal(1)) for n in range(60)]
    page = rendered(AllReportTable(records, sort="-execute_date", request=RequestFactory().get("/reports/all/")))
    assert page.count("<tr ") == 60 and "pagination" not in page


def test_an_empty_all_report_table_says_so():
    request = RequestFactory().get("/reports/all/")
    page = rendered(AllReportTable([], sort="-execute_date", request=request, empty_text="Nothing <here>"))
    assert "Nothing &lt;here&gt;" in page


def test_cells_show_rupiah_iso_dates_labels_and_a_mark_for_empty_ones():
    records = [
        record(
            execute_date=date(2026, 3, 4),
            invoice_number="INV-9",
            kind="single_payment",
            amount=Decimal("0"),
            refunded_amount=Decimal("0"),
            status=None,
            attempts=0,
            next_retry_date=date(2026, 3, 5),
        )
    ]
    page = rendered(AllReportTable(records, sort="amount", request=RequestFactory().get("/reports/all/")))
    cells = re.findall(r"<td[^>]*>(.*?)</td>", page)
    assert dict(zip([column.name for column in COLUMNS], cells, strict=True)) == {
        **{column.name: "—" for column in COLUMNS},
        "execute_date": "2026-03-04",
        "invoice_number": "INV-9",
        "kind": "Single Payment",
        "amount": "Rp 0",
        "attempts": "0",
        "next_retry_date": "2026-03-05",
    }
    assert '<td class="num">Rp 0</td>' in page

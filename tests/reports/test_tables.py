"""The All Report table writes its header and rows in Python (T5): the HTML must be what django-tables2's
own template writes for the same table."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from django.template.loader import get_template
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


def stock_tbody(table) -> str:
    """The tbody of django-tables2's stock template for ``table``."""
    html = get_template("django_tables2/table.html").render({"table": table, "request": table.request})
    return re.search(r"<tbody[^>]*>(.*)</tbody>", html, re.S).group(1)


def squeeze(html: str) -> str:
    return re.sub(r">\s+<", "><", html).strip()


def rendered(template: str, table) -> str:
    html = get_template(template).render({"table": table, "request": table.request})
    return re.sub(r"\s*([<>])\s*", r"\1", html).strip()  # the templates differ in layout only


def test_all_report_rows_are_what_django_tables2_writes():
    request = RequestFactory().get("/reports/all/")
    ours = AllReportTable(RECORDS, sort="-execute_date", request=request)
    stock = AllReportTable(RECORDS, sort="-execute_date", request=request)
    body = ours.body_html()
    assert squeeze(body) == squeeze(stock_tbody(stock))
    assert body.count("<tr ") == 3 and 'class="even"' in body and 'class="odd"' in body


def test_all_report_rows_escape_text_and_keep_status_markup():
    body = AllReportTable(RECORDS, sort="amount").body_html()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body and "<script>" not in body
    assert "members &amp; co.csv" in body and "+62 812&#x27;3" in body
    assert '<span class="status status-success">' in body


def test_the_all_report_table_is_what_django_tables2_writes_header_sort_links_and_rows():
    request = RequestFactory().get("/reports/all/", {"status": "success", "sort": "-amount", "q": "a&b <c>"})
    ours = AllReportTable(RECORDS, sort="-amount", request=request)
    stock = AllReportTable(RECORDS, sort="-amount", request=request)
    page = re.sub(r"\s*([<>])\s*", r"\1", ours.html())
    assert page == rendered("django_tables2/table.html", stock)
    # the sorted column links to the other direction, keeping the search
    assert 'href="?status=success&amp;sort=amount&amp;q=a%26b+%3Cc%3E"' in page
    assert len(re.findall(r"<th[\s>]", page)) == len(COLUMNS) and page.count("<a href=") == 5


def test_an_empty_all_report_table_is_what_django_tables2_writes():
    request = RequestFactory().get("/reports/all/")
    ours = AllReportTable([], sort="-execute_date", request=request, empty_text="Nothing <here>")
    stock = AllReportTable([], sort="-execute_date", request=request, empty_text="Nothing <here>")
    assert re.sub(r"\s*([<>])\s*", r"\1", ours.html()) == rendered("django_tables2/table.html", stock)
    assert "Nothing &lt;here&gt;" in ours.html()


def test_sort_links_without_a_sort_in_the_query_are_what_django_tables2_writes():
    for query in ({}, {"status": "failed", "billing_number": ["B-1", "B 2"]}):
        request = RequestFactory().get("/reports/all/", query)
        ours = AllReportTable(RECORDS, sort="-execute_date", request=request)
        stock = AllReportTable(RECORDS, sort="-execute_date", request=request)
        assert re.sub(r"\s*([<>])\s*", r"\1", ours.html()) == rendered("django_tables2/table.html", stock)

"""Exports (T4): streamed CSV and XLSX with the screen's columns, formula cells neutralised (TESTING 14),
audited, and never another merchant's rows (TESTING 12)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import time_machine
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEntry
from reports.services import COLUMNS
from tests.conftest import verified_client
from tests.reports.conftest import CARD_A, CARD_B, make_row

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Jakarta"))
TODAY = NOW.date()
DAY = timedelta(days=1)
EXPORT = "/reports/all/export/"
DANGEROUS = [
    "=1+2",
    "+1+cmd|' /C calc'!A0",
    "-5+3",
    "+62811 ",
    "@SUM(A1:A9)",
    "\tTAB",
    "\rCR",
    "\nLF",
    '=HYPERLINK("http://x")',
]
# Text that starts like a formula but is a plain signed number (a phone number, a negative figure): no quote.
SIGNED_NUMBERS = ["+6281311112222", "-5", "+62811", "-1.5"]


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def rows(merchant, other_merchant):
    made = [
        make_row(
            merchant,
            invoice_number="INV-1",
            billing_number="B-1",
            amount=150_000,
            execute_date=TODAY,
            response_code="00",
            approval_code="A1B2C3",
        ),
        make_row(
            merchant,
            invoice_number="INV-2",
            billing_number="B-2",
            amount=1_250_000,
            pan=CARD_B,
            execute_date=TODAY - DAY,
            status="failed",
            response_code="05",
            bank_message="Do not honor",
        ),
        make_row(
            merchant,
            invoice_number="INV-3",
            billing_number="B-3",
            amount=99_000,
            execute_date=TODAY - 2 * DAY,
            status="partially_refunded",
            refunded_amount=9_000,
        ),
    ]
    make_row(
        other_merchant,
        invoice_number="INV-1",
        billing_number="B-1",
        amount=777_000,
        pan=CARD_A,
        execute_date=TODAY,
        holder="Other Merchant Customer",
    )
    return made


def body(response) -> bytes:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content)


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body(response).decode("utf-8-sig"), newline="")))


def xlsx_rows(response) -> list[list]:
    sheet = openpyxl.load_workbook(io.BytesIO(body(response)), read_only=True).active
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def screen_invoices(client, **params) -> list[str]:
    response = client.get("/reports/all/", {"search": "1", **params})
    return [row["invoice_number"] for row in response.context["page"].rows]


def test_csv_has_the_screens_columns_and_rows_in_the_screens_order(rows, alice):
    client = verified_client(alice)
    response = client.get(EXPORT, {"format": "csv", "sort": "amount"})
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="all-report-alpha-20261026-20261125.csv"'
    header, *data = csv_rows(response)
    assert header == [column.label for column in COLUMNS]
    assert [row[1] for row in data] == screen_invoices(client, sort="amount") == ["INV-3", "INV-1", "INV-2"]
    first = dict(zip(header, data[0], strict=True))
    assert first["Amount"] == "99000" and first["Refunded"] == "9000"
    assert first["Payment Status"] == "Partially refunded" and first["Batch Type"] == "Single Payment"
    assert first["Card No"] == "411111******1111" and first["Execute Date"] == "2026-11-23"


def test_xlsx_has_the_same_rows_with_numbers_and_dates(rows, alice):
    response = verified_client(alice).get(EXPORT, {"format": "xlsx"})
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    header, *data = xlsx_rows(response)
    assert header == [column.label for column in COLUMNS]
    assert [row[1] for row in data] == ["INV-1", "INV-2", "INV-3"]  # newest first, like the screen
    assert data[1][6] == 1_250_000 and isinstance(data[1][6], int)
    assert data[0][0] == datetime(2026, 11, 25)
    assert data[1][COLUMNS.index(next(c for c in COLUMNS if c.name == "bank_message"))] == "Do not honor"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_formula_cells_are_neutralised_and_read_back_as_the_input_after_a_quote(merchant, alice, fmt):
    for number, text in enumerate(DANGEROUS):
        make_row(
            merchant,
            invoice_number=f"X-{number}",
            billing_number=text,
            holder=text,
            customer_id=text,
            bank_message=text,
            execute_date=TODAY,
            phone="0811",
        )
    response = verified_client(alice).get(EXPORT, {"format": fmt, "sort": "invoice_number"})
    header, *data = csv_rows(response) if fmt == "csv" else xlsx_rows(response)
    columns = [header.index(label) for label in ("Billing Number", "Customer ID", "Card Holder Name", "Bank Message")]
    assert len(data) == len(DANGEROUS)
    for text, row in zip(DANGEROUS, data, strict=True):
        for index in columns:
            assert row[index] == "'" + text, (fmt, text, row[index])
        assert row[header.index("Card Holder Phone")] == "0811"  # harmless text stays as it is


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_phone_numbers_and_signed_numbers_are_exported_without_a_quote(merchant, alice, fmt):
    for number, text in enumerate(SIGNED_NUMBERS):
        make_row(
            merchant,
            invoice_number=f"P-{number}",
            phone=text,
            holder=text,
            bank_message=text,
            customer_id=text,
            execute_date=TODAY,
        )
    response = verified_client(alice).get(EXPORT, {"format": fmt, "sort": "invoice_number"})
    header, *data = csv_rows(response) if fmt == "csv" else xlsx_rows(response)
    labels = ("Card Holder Phone", "Customer ID", "Card Holder Name", "Bank Message")
    assert [[row[header.index(label)] for label in labels] for row in data] == [[text] * 4 for text in SIGNED_NUMBERS]


def test_an_export_is_recorded_with_its_criteria(rows, alice):
    client = verified_client(alice)
    posted = client.post("/reports/all/", {"card_no": CARD_A, "status": "failed"})
    query = parse_qs(urlsplit(posted.url).query)
    response = client.get(EXPORT, {**{k: v[0] for k, v in query.items()}, "format": "xlsx"})
    body(response)
    entry = AuditEntry.objects.get(action="reports.exported")
    assert entry.merchant_id == alice.user.merchant_id and entry.actor == alice.user
    assert entry.data["format"] == "xlsx" and entry.data["rows"] == 0
    assert entry.data["criteria"]["Card No"] == "411111******1111"
    assert entry.data["criteria"]["Payment Status"] == "Failed"
    assert CARD_A not in str(entry.data)


def test_another_merchants_rows_cannot_be_exported(rows, alice, charlie):
    """TESTING 12 (exports): Beta's admin replays Alpha's export link, same card, invoice and billing."""
    alpha = verified_client(alice)
    posted = alpha.post("/reports/all/", {"card_no": CARD_A, "invoice_number": "INV-1"})
    link = posted.url.replace("/reports/all/", EXPORT)
    mine = csv_rows(alpha.get(link + "&format=csv"))
    theirs = csv_rows(verified_client(charlie).get(link + "&format=csv"))
    assert [row[1] for row in mine[1:]] == ["INV-1"] and mine[1][6] == "150000"
    assert [(row[1], row[6]) for row in theirs[1:]] == [("INV-1", "777000")]
    every = csv_rows(verified_client(charlie).get(EXPORT, {"format": "csv"}))
    assert [row[9] for row in every[1:]] == ["Other Merchant Customer"]


def test_bad_input_exports_nothing_and_records_nothing(rows, alice):
    response = verified_client(alice).get(EXPORT, {"format": "csv", "amount": "lots"})
    assert response.status_code == 400 and "whole Rupiah amount" in response.content.decode()
    assert not AuditEntry.objects.filter(action="reports.exported").exists()


def test_an_xlsx_over_the_sheet_limit_is_refused_with_a_message(rows, alice, settings):
    settings.REPORTS_XLSX_MAX_ROWS = 2
    client = verified_client(alice)
    response = client.get(EXPORT, {"format": "xlsx"}, follow=True)
    assert "more than a spreadsheet holds" in response.content.decode()
    assert not AuditEntry.objects.filter(action="reports.exported").exists()
    assert client.get(EXPORT, {"format": "csv"}).status_code == 200


def test_export_refuses_post(alice):
    assert verified_client(alice).post(EXPORT).status_code == 405


def test_a_csv_export_from_the_result_page_records_the_totals_shown_without_counting_again(rows, alice):
    client = verified_client(alice)
    page = client.get("/reports/all/", {"status": "success"})
    link = page.content.decode().split('data-testid="export-csv"')[0].rsplit('href="', 1)[1].split('"')[0]
    link = link.replace("&amp;", "&")
    assert "totals=" in link
    with CaptureQueriesContext(connection) as queries:
        body(client.get(link))
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    entry = AuditEntry.objects.get(action="reports.exported")
    assert entry.data["rows"] == page.context["totals"].count > 0


def test_an_export_link_with_a_tampered_or_foreign_totals_token_counts_the_rows_itself(rows, alice, charlie):
    search = {"start_date": (TODAY - 30 * DAY).isoformat(), "end_date": TODAY.isoformat()}
    theirs = verified_client(charlie).get("/reports/all/", search)
    their_token = parse_qs(theirs.context["export_query"])["totals"][0]
    client = verified_client(alice)
    mine = client.get("/reports/all/", search).context["totals"].count
    assert mine != theirs.context["totals"].count
    for token in (their_token, "forged:token"):
        AuditEntry.objects.filter(action="reports.exported").delete()
        body(client.get(EXPORT, {**search, "format": "csv", "totals": token}))
        assert AuditEntry.objects.get(action="reports.exported").data["rows"] == mine

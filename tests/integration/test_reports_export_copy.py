"""T4 on PostgreSQL: the CSV export streams the database's own COPY of the report's SQL
(reports.services.export_sql + reports.exports.copy_csv_stream). It must give the rows the Python path
gives (the one SQLite and XLSX use): same columns, labels, file names, numbers and dates, formula cells
neutralised, another merchant's rows and files never in it; and a download cut short leaves the
connection usable."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test import RequestFactory

from batch.models import Batch
from payments.models import Transaction
from reports.exports import csv_stream
from reports.filters import AllReportFilter
from reports.services import COLUMNS, display, parse_sort, rows, with_file_names
from tests.conftest import verified_client
from tests.recurring.conftest import make_billing
from tests.reports.conftest import CARD_B, make_row

EXPORT = "/reports/all/export/"
DANGEROUS = [
    "=1+2",
    "+1+cmd|' /C calc'!A0",
    "-5+3",
    "@SUM(A1:A9)",
    "\tTAB",
    "\rCR",
    "\nLF",
    '=HYPERLINK("http://x")',
    'a,b"c',
]
# around the SQL's fast path (a first byte from "A" up is written as it is): letters, what lies just below
# and above them, digits, punctuation, non-ASCII, a lone space; plain signed numbers (a phone number) start like
# a formula and are written as they are
SIGNED_NUMBERS = ["+62811", "-5", "-1.5"]
EDGES = ["A1", "?x", "#5", "0811", "[x]", "`x", "~x", "\u00c1lvaro", "\u20ac5", " lead", "Z"]


@pytest.fixture
def data(merchant, other_merchant):
    today = merchant.local_today()
    payments_file = Batch.objects.create(
        merchant=merchant, kind=Batch.Kind.SINGLE_PAYMENT, file_name="=evil.csv", content_hash="p" * 64
    )
    members_file = Batch.objects.create(
        merchant=merchant, kind=Batch.Kind.REGISTRATION, file_name="members.csv", content_hash="m" * 64
    )
    theirs_file = Batch.objects.create(
        merchant=other_merchant, kind=Batch.Kind.SINGLE_PAYMENT, file_name="theirs.csv", content_hash="t" * 64
    )
    member = make_billing(merchant, billing_number="B-MEMBER", batch=members_file)
    hosted = make_billing(merchant, billing_number="B-HOSTED")
    statuses = [choice for choice, _ in Transaction.Status.choices]
    for number, text in enumerate((DANGEROUS + EDGES) * 3):
        make_row(
            merchant,
            invoice_number=f"INV-{number:03d}",
            billing_number=text if number % 2 else f"B-{number}",
            holder=text,
            phone="+628123" if number % 3 else "",
            amount=10_000 + number * 1_000,
            refunded_amount=number * 10 if statuses[number % len(statuses)] == "partially_refunded" else 0,
            execute_date=today - timedelta(days=number % 20),
            status=statuses[number % len(statuses)],
            kind=Transaction.Kind.RECURRING if number % 3 == 0 else Transaction.Kind.SINGLE_PAYMENT,
            billing=member if number % 3 == 0 and number % 2 else (hosted if number % 3 == 0 else None),
            batch=payments_file if number % 3 == 1 else None,
            response_code="05" if number % 4 else "00",
            bank_message=text,
            error_code="timeout" if number % 5 == 0 else "",
            next_retry_date=today + timedelta(days=2) if number % 4 == 1 else None,
            pan=CARD_B if number % 2 else "4111111111111111",
            attempts=number % 3,
        )
    for number, text in enumerate(SIGNED_NUMBERS):
        make_row(
            merchant, invoice_number=f"INV-S{number}", holder=text, phone=text, bank_message=text, execute_date=today
        )
    # another merchant's row pointing at another merchant's file: never in alice's export
    make_row(other_merchant, invoice_number="INV-THEIRS", execute_date=today, batch=theirs_file, holder="Theirs")
    return today


def python_path(persona, params: dict) -> list[list[str]]:
    """The rows the Python path writes for ``params`` (the view's code for SQLite)."""
    request = RequestFactory().get(EXPORT, params)
    request.user = persona.user
    merchant = persona.user.merchant
    filterset = AllReportFilter(request.GET, merchant.transactions.all(), request=request, today=merchant.local_today())
    assert filterset.is_valid(), filterset.errors
    sort, keys, descending = parse_sort(params.get("sort"))
    ordered = rows(filterset.qs).order_by(*(f"-{key}" if descending else key for key in keys))
    named = with_file_names(merchant.pk, ordered.iterator(chunk_size=2000))
    values = ([display(row, column.name) for column in COLUMNS] for row in named)
    body = b"".join(csv_stream([column.label for column in COLUMNS], values))
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def copy_path(client, params: dict) -> tuple[bytes, list[list[str]]]:
    response = client.get(EXPORT, {"format": "csv", **params})
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    return body, list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"sort": "amount"},
        {"sort": "-billing_number"},
        {"sort": "status"},
        {"file_name": "=evil.csv"},
        {"file_name": "members.csv", "sort": "invoice_number"},
        {"status": "failed"},
        {"holder_name": "="},
    ],
)
def test_the_copy_export_has_the_python_paths_rows(data, alice, params):
    body, copied = copy_path(verified_client(alice), params)
    expected = python_path(alice, params)
    assert copied == expected
    assert len(copied) > 1 or params.get("status") == "failed"
    # Byte for byte too, but for the line ends (COPY writes LF, csv.writer CRLF).
    python_bytes = "\r\n".join(",".join(_quote(cell) for cell in row) for row in expected)
    assert body.decode("utf-8-sig").replace("\r\n", "\n").strip("\n") == python_bytes.replace("\r\n", "\n")


def _quote(cell: str) -> str:
    if any(ch in cell for ch in ',"\r\n'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def test_the_copy_export_neutralises_formula_cells_and_names_files(data, alice):
    _, (header, *found) = copy_path(verified_client(alice), {})
    column = {label: index for index, label in enumerate(header)}
    holders = {row[column["Card Holder Name"]] for row in found}
    assert {"'" + text for text in DANGEROUS if text[0] in "=+-@\t\r\n"} <= holders
    assert 'a,b"c' in holders
    assert set(SIGNED_NUMBERS) <= holders and not {"'" + text for text in SIGNED_NUMBERS} & holders
    files = {row[column["CSV File Name"]] for row in found}
    assert files == {"'=evil.csv", "members.csv", ""}


def test_the_copy_export_never_holds_another_merchants_rows(data, alice, charlie):
    _, (_, *mine) = copy_path(verified_client(alice), {})
    assert "INV-THEIRS" not in {row[1] for row in mine} and len(mine) == len(DANGEROUS + EDGES) * 3 + len(
        SIGNED_NUMBERS
    )
    _, (_, *theirs) = copy_path(verified_client(charlie), {})
    assert [row[1] for row in theirs] == ["INV-THEIRS"] and theirs[0][5] == "theirs.csv"


@pytest.mark.django_db(transaction=True)
def test_a_copy_export_cut_short_leaves_the_connection_usable(data, alice, settings, monkeypatch):
    from reports import exports

    monkeypatch.setattr(exports, "COPY_CHUNK_BYTES", 64)  # many small chunks
    response = verified_client(alice).get(EXPORT, {"format": "csv"})
    chunks = iter(response.streaming_content)
    next(chunks), next(chunks), next(chunks)
    response.close()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    assert Transaction.objects.filter(merchant=alice.user.merchant).count() == len(DANGEROUS + EDGES) * 3 + len(
        SIGNED_NUMBERS
    )


@pytest.mark.django_db
def test_the_apps_postgresql_sessions_run_without_jit():
    """A streamed export's expressions ran once per row after 0.24 s of JIT compiling (B7): JIT is off."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"

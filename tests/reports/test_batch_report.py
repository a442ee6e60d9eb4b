"""Batch Report (T3): uploaded files newest first with Total Data and Total Amount, and a detail page per
file with each row, its outcome and masked cards; tenancy and menu access."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from batch.models import Batch, BatchRow
from tests.conftest import make_persona, verified_client
from tests.recurring.conftest import make_billing
from tests.reports.conftest import make_row

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Jakarta"))


def upload(merchant, kind, name, *, minutes_ago: int, rows: int, amount: int, **fields) -> Batch:
    return Batch.objects.create(
        merchant=merchant,
        kind=kind,
        file_name=name,
        content_hash=f"hash-{name}",
        uploaded_at=NOW - timedelta(minutes=minutes_ago),
        status=Batch.Status.DONE,
        total_rows=rows,
        total_amount=Decimal(amount),
        **fields,
    )


@pytest.fixture
def files(merchant, other_merchant):
    older = upload(
        merchant, Batch.Kind.REGISTRATION, "members-oct.csv", minutes_ago=60 * 24 * 30, rows=2, amount=500_000
    )
    newer = upload(
        merchant, Batch.Kind.SINGLE_PAYMENT, "payments-nov.csv", minutes_ago=5, rows=3, amount=1_650_000, invalid_rows=1
    )
    theirs = upload(other_merchant, Batch.Kind.SINGLE_PAYMENT, "theirs.csv", minutes_ago=1, rows=9, amount=9)
    for number, (reference, status, card) in enumerate(
        [
            ("INV-N1", "created", "411111******1111"),
            ("INV-N2", "created", "555555******4444"),
            ("INV-N3", "invalid", "4111111111111111"),
        ],
        start=2,
    ):
        BatchRow.objects.create(
            merchant=merchant,
            batch=newer,
            row_number=number,
            reference=reference,
            status=status,
            amount=Decimal(550_000),
            data={"card_number": card, "holder_name": "Budi"},
            outcome="Scheduled" if status == "created" else "",
            errors={} if status == "created" else {"amount": "x"},
        )
    make_row(merchant, invoice_number="INV-N1", amount=550_000, execute_date=NOW.date(), batch=newer)
    make_row(
        merchant,
        invoice_number="INV-N2",
        amount=550_000,
        execute_date=NOW.date(),
        batch=newer,
        status="failed",
        response_code="05",
    )
    make_billing(merchant, billing_number="GYM-77", batch=older)
    BatchRow.objects.create(
        merchant=merchant,
        batch=older,
        row_number=2,
        reference="GYM-77",
        status="created",
        amount=Decimal(250_000),
        data={"card_number": "411111******1111"},
        outcome="Registered",
    )
    return {"older": older, "newer": newer, "theirs": theirs}


def test_batches_newest_first_with_total_data_and_total_amount(files, alice):
    response = verified_client(alice).get("/reports/batches/")
    page = response.content.decode()
    assert response.status_code == 200
    assert [row.record.file_name for row in response.context["table"].rows] == ["payments-nov.csv", "members-oct.csv"]
    assert "Rp 1.650.000" in page and "Rp 500.000" in page
    assert "theirs.csv" not in page


def test_single_payment_detail_lists_rows_with_outcomes_and_masked_cards(files, alice):
    response = verified_client(alice).get(f"/reports/batches/{files['newer'].pk}/")
    page = response.content.decode()
    assert response.status_code == 200
    assert [row.row_number for row in response.context["page"].rows] == [2, 3, 4]
    assert "4111111111111111" not in page and "411111******1111" in page
    assert 'data-testid="batch-total-amount">Rp 1.650.000<' in page
    assert 'data-row="2"' in page and "Success" in page and "Failed" in page  # each row's payment
    assert "Scheduled" in page


def test_registration_detail_shows_each_billings_status(files, alice):
    page = verified_client(alice).get(f"/reports/batches/{files['older'].pk}/").content.decode()
    assert "GYM-77" in page and "Active" in page and "Registered" in page


def test_another_merchants_batch_is_404_and_staff_need_the_menu(files, merchant, alice, bob, charlie):
    assert verified_client(charlie).get(f"/reports/batches/{files['newer'].pk}/").status_code == 404
    assert verified_client(alice).get(f"/reports/batches/{files['theirs'].pk}/").status_code == 404
    staff = make_persona(merchant, "fay", menus=["all_report"])
    assert verified_client(staff).get("/reports/batches/").status_code == 403
    assert verified_client(staff).get(f"/reports/batches/{files['newer'].pk}/").status_code == 403
    assert verified_client(bob).get(f"/reports/batches/{files['newer'].pk}/").status_code == 200
    assert verified_client(bob).post("/reports/batches/").status_code == 405


def test_no_batches_shows_an_empty_state(alice):
    assert 'data-testid="no-batches"' in verified_client(alice).get("/reports/batches/").content.decode()


def test_batch_rows_page_by_row_number(files, alice, settings):
    settings.REPORTS_PAGE_SIZE = 2
    client = verified_client(alice)
    first = client.get(f"/reports/batches/{files['newer'].pk}/")
    assert [row.row_number for row in first.context["page"].rows] == [2, 3]
    second = client.get(f"/reports/batches/{files['newer'].pk}/" + first.context["links"]["next"])
    assert [row.row_number for row in second.context["page"].rows] == [4]


def test_batch_report_counts_have_thousands_dots(merchant, alice):
    big = upload(
        merchant, Batch.Kind.SINGLE_PAYMENT, "big.csv", minutes_ago=1, rows=20_000, amount=10_000, invalid_rows=1_500
    )
    client = verified_client(alice)
    listing = client.get("/reports/batches/").content.decode()
    assert ">20.000<" in listing and ">1.500<" in listing
    detail = client.get(f"/reports/batches/{big.pk}/").content.decode()
    assert 'data-testid="batch-total-data">20.000<' in detail and "<dd>1.500</dd>" in detail

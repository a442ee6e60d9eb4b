"""Batch uploads, the cell rules (issues #15 and #20): optional columns, text cells' lengths and control
characters, weekday names, every bad cell of a row reported, single payments naming the merchant's
billings, and XLSX cells typed as dates and numbers."""

from __future__ import annotations

import io
from datetime import datetime, time, timedelta

import pytest
from django.urls import reverse
from openpyxl import Workbook, load_workbook
from openpyxl.utils import get_column_letter

from batch.columns import names
from batch.models import BatchRow
from tests.batch.conftest import PAYMENT_ROW, REGISTRATION_ROW, csv_bytes, rows_of
from tests.batch.test_upload import last_batch, upload
from tests.conftest import make_persona, verified_client
from tests.recurring.conftest import make_billing

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def uploader(merchant):
    return make_persona(merchant, "upton", menus=["batch_transaction", "registration"])


def test_optional_columns_may_be_absent_from_the_header_and_read_as_empty(uploader, today, merchant):
    make_billing(merchant, billing_number="GYM-1001")
    client = verified_client(uploader)
    payment_columns = [c for c in PAYMENT_ROW if c not in ("customer_id", "holder_phone", "description")]
    rows = rows_of("single_payment", 2, billing_number="GYM-1001")
    upload(client, "single_payment", "p.csv", csv_bytes(rows, kind="single_payment", columns=payment_columns))
    batch = last_batch()
    assert (batch.status, batch.invalid_rows) == ("validated", 0), batch.message
    assert BatchRow.objects.filter(batch=batch).first().data["description"] == ""

    optional = ("email", "phone", "holder_phone", "schedule_weekdays", "schedule_dates")
    registration_columns = [c for c in REGISTRATION_ROW if c not in optional]
    content = csv_bytes(rows_of("registration", 2), kind="registration", columns=registration_columns)
    upload(client, "registration", "r.csv", content)
    assert (last_batch().status, last_batch().invalid_rows) == ("validated", 0), last_batch().message


def test_a_header_without_a_required_column_is_refused_naming_only_the_required_ones(uploader, today):
    upload(verified_client(uploader), "single_payment", "m.csv", b"invoice_number,amount\nINV-1,1000\n")
    assert last_batch().message.startswith(
        "The header does not match the template (missing column(s): card_number, expiry, holder_name, execute_date)."
    )


@pytest.mark.parametrize(
    ("kind", "column", "value", "reason"),
    [
        ("registration", "customer_id", "C" * 71, "At most 64 characters."),
        ("registration", "holder_name", "A" * 306, "At most 120 characters."),
        ("registration", "customer_name", "Andi" + "é" * 117, "At most 120 characters."),
        ("registration", "email", "a" * 250 + "@example.com", "At most 254 characters."),
        ("single_payment", "description", "x" * 256, "At most 255 characters."),
        ("single_payment", "customer_id", "C" * 65, "At most 64 characters."),
        ("registration", "customer_name", "Andi\x00Wijaya", "control character"),
        ("registration", "customer_id", "CUST\t501", "control character"),
        ("registration", "holder_name", "ANDI\u0085WIJAYA", "control character"),
        ("registration", "customer_name", "José\x7fSantoso", "control character"),
        ("registration", "email", "andi\x00@example.com", "control character"),
        ("single_payment", "description", "Pack\x00", "control character"),
        ("single_payment", "holder_name", "SITI\nRAHMAWATI", "control character"),
    ],
)
def test_text_cells_longer_than_their_column_or_holding_control_characters_are_invalid(
    uploader, today, kind, column, value, reason
):
    rows = rows_of(kind, 2)
    rows[1][column] = value
    upload(verified_client(uploader), kind, "long.csv", csv_bytes(rows, kind=kind))
    batch = last_batch()
    assert (batch.status, batch.invalid_rows) == ("invalid", 1), batch.message
    assert reason in BatchRow.objects.get(batch=batch, status="invalid").errors[column]


def test_text_cells_at_their_columns_length_and_a_description_over_several_lines_are_valid(uploader, today):
    rows = rows_of("registration", 1, customer_id="C" * 64, holder_name="é" * 120, customer_name="N" * 120)
    upload(verified_client(uploader), "registration", "max.csv", csv_bytes(rows, kind="registration"))
    assert (last_batch().status, last_batch().invalid_rows) == ("validated", 0)
    rows = rows_of("single_payment", 1, description="Line one\r\nline two " + "x" * 235)
    upload(verified_client(uploader), "single_payment", "max.csv", csv_bytes(rows, kind="single_payment"))
    assert (last_batch().status, last_batch().invalid_rows) == ("validated", 0)


@pytest.mark.parametrize("weekdays", ["monkey|sunshine", "mon|sunshine", "Mondays", "tu"])
def test_a_weekday_is_a_day_name_or_its_three_letters_not_any_word_starting_like_one(uploader, today, weekdays):
    rows = rows_of("registration", 2, schedule_type="day", schedule_days="", schedule_weekdays="Monday|fri")
    rows[1]["schedule_weekdays"] = weekdays
    upload(verified_client(uploader), "registration", "days.csv", csv_bytes(rows, kind="registration"))
    batch = last_batch()
    assert (batch.status, batch.invalid_rows) == ("invalid", 1)
    assert "schedule_weekdays" in BatchRow.objects.get(batch=batch, status="invalid").errors


@pytest.mark.parametrize(
    ("changes", "reasons"),
    [
        (
            {"schedule_type": "day", "schedule_days": "", "schedule_weekdays": "xyz", "schedule_months": "13"},
            {"schedule_weekdays": "Not a list", "schedule_months": "1 to 12"},
        ),
        (
            {"schedule_days": "31", "schedule_months": "jan"},
            {"schedule_days": "1 to 28", "schedule_months": "Not a list"},
        ),
        (
            {"schedule_days": "0|5", "schedule_months": "", "amount": "5", "email": "nope"},
            {"schedule_days": "1 to 28", "schedule_months": "month", "amount": "between", "email": "email"},
        ),
    ],
)
def test_every_invalid_cell_of_a_row_gets_its_own_reason(uploader, today, changes, reasons):
    rows = rows_of("registration", 2)
    rows[1].update(changes)
    upload(verified_client(uploader), "registration", "many.csv", csv_bytes(rows, kind="registration"))
    errors = BatchRow.objects.get(batch=last_batch(), status="invalid").errors
    assert set(errors) == set(reasons), errors
    for column, reason in reasons.items():
        assert reason in errors[column]


def test_a_single_payments_billing_number_must_name_a_billing_of_the_merchant(
    uploader, today, merchant, other_merchant
):
    make_billing(merchant, billing_number="GYM-7", status="inactive")
    make_billing(other_merchant, billing_number="GYM-8")
    rows = rows_of("single_payment", 5)
    for row, billing_number in zip(rows, ("GYM-7", "GYM-8", "GYM-404", "", "GYM-7"), strict=True):
        row["billing_number"] = billing_number
    rows[3]["customer_id"] = ""
    rows[4]["customer_id"] = ""
    upload(verified_client(uploader), "single_payment", "bills.csv", csv_bytes(rows, kind="single_payment"))
    errors = {row.row_number: row.errors for row in BatchRow.objects.filter(batch=last_batch())}
    unknown = "No billing has this number: correct it, or leave it empty and give the customer_id."
    assert errors == {
        2: {},
        3: {"billing_number": unknown},  # another merchant's billing is not this merchant's
        4: {"billing_number": unknown},
        5: {"billing_number": "Give a billing_number or a customer_id."},
        6: {},
    }


def test_the_single_payment_template_names_the_merchants_first_billing_or_else_a_customer_id(uploader, today, merchant):
    """A new merchant (no billing yet) and the demo merchant (billings GYM-0001...) can both upload the
    template unchanged."""
    client = verified_client(uploader)
    url = reverse("batch:template", args=["single_payment", "csv"])
    for billings, first_row in (((), ("", "CUST-501")), (("GYM-0002", "GYM-0001"), ("GYM-0001", ""))):
        for billing_number in billings:
            make_billing(merchant, billing_number=billing_number)
        content = client.get(url).content
        example = content.decode("utf-8-sig").splitlines()[1].split(",")
        assert tuple(example[1:3]) == first_row
        upload(client, "single_payment", f"template-{len(billings)}.csv", content)
        assert (last_batch().status, last_batch().invalid_rows) == ("validated", 0)


def test_an_xlsx_with_date_and_number_cells_is_read_as_their_dates_and_digits(uploader, today):
    """Excel turns a typed date into a date cell and a typed number into a number cell."""
    rows = rows_of("single_payment", 3)
    days = [today + timedelta(days=n) for n in (7, 8, 9)]
    typed = [
        {"execute_date": datetime.combine(days[0], time(0)), "amount": 499000, "card_number": 5555555555554444},
        {"execute_date": days[1], "amount": 1250000.0, "holder_phone": 6281234567890},
        {"execute_date": datetime.combine(days[2], time(0)), "amount": "250.000", "invoice_number": 42001},
    ]
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(names("single_payment"))
    for row, cells in zip(rows, typed, strict=True):
        sheet.append([cells.get(column, row[column]) for column in names("single_payment")])
    buffer = io.BytesIO()
    workbook.save(buffer)

    upload(verified_client(uploader), "single_payment", "typed.xlsx", buffer.getvalue())
    batch = last_batch()
    assert (batch.status, batch.invalid_rows, batch.total_amount) == ("validated", 0, 499_000 + 1_250_000 + 250_000)
    data = [row.data for row in BatchRow.objects.filter(batch=batch).order_by("row_number")]
    assert [row["execute_date"] for row in data] == [day.isoformat() for day in days]
    assert [row["amount"] for row in data] == ["499000", "1250000", "250.000"]
    assert (data[0]["card_number"], data[1]["holder_phone"], data[2]["invoice_number"]) == (
        "555555******4444",
        "6281234567890",
        "42001",
    )


def test_a_date_cell_with_a_time_of_day_is_not_taken_for_a_date(uploader, today):
    row = rows_of("single_payment", 1)[0]
    row["execute_date"] = datetime.combine(today + timedelta(days=7), time(13, 30))
    workbook = Workbook()
    workbook.active.append(names("single_payment"))
    workbook.active.append([row[column] for column in names("single_payment")])
    buffer = io.BytesIO()
    workbook.save(buffer)
    upload(verified_client(uploader), "single_payment", "timed.xlsx", buffer.getvalue())
    errors = BatchRow.objects.get(batch=last_batch()).errors
    assert errors == {"execute_date": "Not a date: YYYY-MM-DD or DD/MM/YYYY."}


@pytest.mark.parametrize("kind", ["registration", "single_payment"])
def test_the_xlsx_template_formats_its_whole_columns_as_text(uploader, kind):
    """Text format on the columns, not only on the example cells: what a user types in a new row stays
    text (Excel would turn 4111111111111111 into 4.11111E+15 and 12/28 into a date)."""
    content = verified_client(uploader).get(reverse("batch:template", args=[kind, "xlsx"])).content
    sheet = load_workbook(io.BytesIO(content)).active
    letters = [get_column_letter(index) for index in range(1, len(names(kind)) + 1)]
    assert [sheet.column_dimensions[letter].number_format for letter in letters] == ["@"] * len(letters)
    assert {cell.number_format for cells in sheet.iter_rows() for cell in cells} == {"@"}

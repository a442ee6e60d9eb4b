"""Batch uploads (B1-B8): every rule, every bad file, the same file twice, processing and resume."""

from __future__ import annotations

import contextlib
import io
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from accounts.models import AuditEntry
from batch import pipeline, services
from batch.models import Batch, BatchRow
from payments.models import Transaction
from recurring import scheduler
from recurring.models import Billing
from tests.batch.conftest import PAYMENT_ROW, REGISTRATION_ROW, csv_bytes, rows_of, upload_file
from tests.conftest import make_persona, verified_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def uploader(merchant):
    return make_persona(merchant, "upton", menus=["batch_transaction", "registration"])


def upload(client, kind: str, name: str, content: bytes):
    url = reverse("batch:registration" if kind == "registration" else "batch:single_payment")
    return client.post(url, {"file": upload_file(name, content)})


def last_batch() -> Batch:
    return Batch.objects.order_by("-pk").first()


def test_a_clean_registration_file_validates_processes_and_becomes_billings(uploader, today):
    client = verified_client(uploader)
    content = csv_bytes(rows_of("registration", 3), kind="registration")
    response = upload(client, "registration", "members.csv", content)
    batch = last_batch()
    assert response.status_code == 302 and response.url == reverse("batch:detail", args=[batch.pk])
    assert (batch.status, batch.total_rows, batch.invalid_rows, batch.total_amount) == ("validated", 3, 0, 750_000)
    assert BatchRow.objects.filter(batch=batch, status="valid").count() == 3
    assert BatchRow.objects.first().data["card_number"] == "411111******1111"

    assert client.post(reverse("batch:process", args=[batch.pk])).status_code == 302
    batch.refresh_from_db()
    assert batch.status == "done" and batch.processed_at
    billings = Billing.objects.filter(batch=batch).order_by("billing_number")
    assert [b.billing_number for b in billings] == ["GYM-1001-0000", "GYM-1001-0001", "GYM-1001-0002"]
    first = billings[0]
    assert (first.amount, first.card_masked, first.source, first.schedule.describe()) == (
        250_000,
        "411111******1111",
        "batch",
        "Day 1 and 15 of every month",
    )
    assert first.next_execute_date == date(2026, 12, 1)
    assert not services.raw_path(batch).exists()  # the raw file (card numbers) is gone
    assert {"batch.uploaded", "batch.processed"} <= set(AuditEntry.objects.values_list("action", flat=True))


def test_single_payment_rows_are_charged_on_their_execute_date_and_not_before(uploader, today, batch_environment):
    queued = batch_environment
    client = verified_client(uploader)
    upload(client, "single_payment", "payments.csv", csv_bytes(rows_of("single_payment", 2), kind="single_payment"))
    batch = last_batch()
    client.post(reverse("batch:process", args=[batch.pk]))
    txs = Transaction.objects.filter(batch=batch)
    assert txs.count() == 2 and set(txs.values_list("status", flat=True)) == {"scheduled"}
    assert set(txs.values_list("execute_date", flat=True)) == {date(2026, 12, 1)}
    scheduler.run_day(uploader.user.merchant, today)
    assert queued == []
    scheduler.run_day(uploader.user.merchant, today + timedelta(days=1))
    assert sorted(queued) == sorted(txs.values_list("pk", flat=True))


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("billing_number", "", "Required."),
        ("card_number", "4111 1111 1111 1112", "fails the check digit (Luhn)"),
        ("card_number", "1234", "Not a card number"),
        ("expiry", "13/28", "Not an expiry date"),
        ("expiry", "10/26", "This card has expired."),
        ("amount", "12,5", "Not a whole Rupiah amount"),
        ("amount", "-5000", "Not a whole Rupiah amount"),
        ("amount", "5", "Must be between Rp 10.000 and Rp 100.000.000."),
        ("phone", "12ab", "Not a mobile number"),
        ("email", "nope", "Not an email address."),
        ("type", "monthly", "Use recurring or reminder."),
        ("schedule_type", "weekly", "Use date, day or full_date."),
        ("schedule_days", "31", "1 to 28"),
        ("schedule_months", "", "month"),
        ("customer_name", '=HYPERLINK("http://evil.example","x")', "Formulas are not accepted"),
        ("customer_name", "-2+3+cmd|' /C calc'!A0", "Formulas are not accepted: remove the leading = + - @"),
        ("holder_name", "-SUM(A1)", "Formulas are not accepted"),
        ("customer_id", "-1", "Formulas are not accepted"),
    ],
)
def test_each_invalid_cell_keeps_its_reason_and_process_is_refused(uploader, today, column, value, reason):
    client = verified_client(uploader)
    rows = rows_of("registration", 3)
    rows[1][column] = value
    upload(client, "registration", "members.csv", csv_bytes(rows, kind="registration"))
    batch = last_batch()
    assert (batch.status, batch.invalid_rows) == ("invalid", 1)
    row = BatchRow.objects.get(batch=batch, status="invalid")
    assert row.row_number == 3 and reason in row.errors[column]
    page = client.get(reverse("batch:detail", args=[batch.pk])).content.decode()
    assert 'class="cell-error"' in page and reason.split(":")[0].replace("(", "") in page.replace("(", "")
    client.post(reverse("batch:process", args=[batch.pk]))
    assert not Billing.objects.exists()


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("execute_date", "2026-11-29", "This date is in the past."),
        ("execute_date", "31/02/2027", "Not a date"),
        ("invoice_number", "", "Required."),
        ("customer_id", "", "Give a billing_number or a customer_id."),
        ("description", "-HYPERLINK(1)", "Formulas are not accepted"),
        ("amount", "-499000", "Not a whole Rupiah amount"),
    ],
)
def test_single_payment_rules(uploader, today, column, value, reason):
    rows = rows_of("single_payment", 2)
    rows[0][column] = value
    upload(verified_client(uploader), "single_payment", "pay.csv", csv_bytes(rows, kind="single_payment"))
    row = BatchRow.objects.get(batch=last_batch(), status="invalid")
    assert reason in row.errors["billing_number" if reason.startswith("Give a billing_number") else column]


def test_dates_in_both_formats_and_amounts_with_dots_are_accepted(uploader, today):
    rows = rows_of("single_payment", 2)
    rows[0]["execute_date"], rows[1]["execute_date"] = "2026-12-01", "15/12/2026"
    rows[1]["amount"] = "1.250.000"
    upload(verified_client(uploader), "single_payment", "pay.csv", csv_bytes(rows, kind="single_payment"))
    batch = last_batch()
    assert (batch.status, batch.total_amount) == ("validated", 499_000 + 1_250_000)


def test_duplicates_in_the_file_and_against_stored_billings_are_invalid(uploader, today, merchant):
    from tests.recurring.conftest import make_billing

    make_billing(merchant, billing_number="GYM-1001-0002")
    rows = rows_of("registration", 3)
    rows[1]["billing_number"] = rows[0]["billing_number"]
    upload(verified_client(uploader), "registration", "dups.csv", csv_bytes(rows, kind="registration"))
    errors = {row.row_number: row.errors.get("billing_number") for row in BatchRow.objects.filter(batch=last_batch())}
    assert errors == {
        2: "Appears more than once in this file.",
        3: "Appears more than once in this file.",
        4: "Registered already.",
    }


def test_a_key_stored_by_another_merchant_is_not_registered_already_and_one_stored_by_this_merchant_is(
    uploader, today, merchant, other_merchant
):
    from tests.recurring.conftest import make_billing

    make_billing(other_merchant, billing_number="GYM-1001-0001")
    make_billing(merchant, billing_number="GYM-1001-0002")
    rows = rows_of("registration", 3)
    upload(verified_client(uploader), "registration", "keys.csv", csv_bytes(rows, kind="registration"))
    errors = {row.row_number: row.errors.get("billing_number") for row in BatchRow.objects.filter(batch=last_batch())}
    assert errors == {2: None, 3: None, 4: "Registered already."}


def test_the_same_file_twice_is_refused_with_the_first_uploads_date_and_user(uploader, today):
    client = verified_client(uploader)
    content = csv_bytes(rows_of("single_payment", 2), kind="single_payment")
    upload(client, "single_payment", "first.csv", content)
    response = upload(client, "single_payment", "renamed.csv", content)
    assert response.status_code == 200
    message = response.context["form"].errors["file"][0]
    assert "uploaded already on 2026-11-30 09:00 by upton (first.csv)" in message
    assert Batch.objects.count() == 1


def test_comma_semicolon_bom_and_column_order_by_name_are_all_accepted(uploader, today):
    client = verified_client(uploader)
    columns = list(reversed(list(PAYMENT_ROW)))
    for index, (delimiter, bom, order) in enumerate(((",", False, None), (";", True, None), (",", True, columns))):
        rows = rows_of("single_payment", 2, invoice_number=f"X{index}")
        rows[1]["invoice_number"] = f"Y{index}"
        upload(
            client,
            "single_payment",
            f"f{index}.csv",
            csv_bytes(rows, kind="single_payment", delimiter=delimiter, bom=bom, columns=order),
        )
        assert last_batch().status == "validated", last_batch().message


def test_quoted_newlines_and_trailing_blank_lines_are_handled(uploader, today):
    rows = rows_of("single_payment", 2)
    rows[0]["description"] = "Line one\nline two"
    content = csv_bytes(rows, kind="single_payment") + b"\r\n\r\n,,,,,,,,,\r\n"
    upload(verified_client(uploader), "single_payment", "nl.csv", content)
    batch = last_batch()
    assert (batch.status, batch.total_rows) == ("validated", 2)
    assert BatchRow.objects.get(batch=batch, row_number=2).data["description"] == "Line one\nline two"


def xlsx_bytes(rows: list[dict], kind: str) -> bytes:
    from openpyxl import Workbook

    from batch.columns import names

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(names(kind))
    for row in rows:
        sheet.append([row[c] for c in names(kind)])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_an_xlsx_file_is_read_like_a_csv(uploader, today):
    upload(
        verified_client(uploader),
        "registration",
        "members.xlsx",
        xlsx_bytes(rows_of("registration", 2), "registration"),
    )
    assert last_batch().status == "validated"


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<x/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * (600 * 1024 * 1024 // 10))  # 60 MB of zeros, ratio ~1000
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "file is empty."),
        (
            "header.csv",
            b"invoice_number,billing_number,customer_id,card_number,expiry,holder_name,holder_phone,amount,execute_date,description\n",
            "header but no rows",
        ),
        ("missing.csv", b"invoice_number,amount\nINV-1,1000\n", "missing column(s): card_number"),
        ("latin1.csv", "invoice_number,description\nINV-1,Caf\u00e9\n".encode("latin-1"), "not UTF-8"),
        ("image.csv", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "not a CSV file"),
        ("sheet.csv", b"PK\x03\x04" + b"\x00" * 100, "Excel workbook renamed .csv"),
        ("notes.txt", b"hello", "Upload a .csv or .xlsx file."),
        ("fake.xlsx", b"invoice_number\nINV-1\n", "not an Excel workbook"),
    ],
)
def test_a_bad_file_gets_a_clear_message_and_creates_nothing(uploader, today, name, content, message):
    response = upload(verified_client(uploader), "single_payment", name, content)
    batch = last_batch()
    text = batch.message if batch else response.context["form"].errors["file"][0]
    assert message in text
    assert not BatchRow.objects.exists() and not Transaction.objects.exists()
    if batch:
        assert batch.status == "rejected" and not services.raw_path(batch).exists()


def test_an_extra_column_is_refused_by_name(uploader, today):
    content = csv_bytes(rows_of("single_payment", 1), kind="single_payment", columns=[*PAYMENT_ROW, "notes"])
    upload(verified_client(uploader), "single_payment", "extra.csv", content)
    assert "unknown column(s): notes" in last_batch().message


def test_an_xlsx_zip_bomb_is_refused_before_it_is_unpacked(uploader, today):
    upload(verified_client(uploader), "registration", "bomb.xlsx", zip_bomb())
    assert "zip bomb" in last_batch().message


def test_a_file_over_the_size_limit_is_refused_before_parsing(uploader, today, settings):
    settings.BATCH_MAX_BYTES = 1024
    response = upload(
        verified_client(uploader),
        "single_payment",
        "big.csv",
        csv_bytes(rows_of("single_payment", 40), kind="single_payment"),
    )
    assert (
        "at most 0 MB" in response.context["form"].errors["file"][0]
        or "MB" in response.context["form"].errors["file"][0]
    )
    assert not Batch.objects.exists()


def test_a_path_in_the_file_name_is_harmless(uploader, today, settings):
    upload(
        verified_client(uploader),
        "single_payment",
        "../../etc/passwd.csv",
        csv_bytes(rows_of("single_payment", 1), kind="single_payment"),
    )
    batch = last_batch()
    assert batch.file_name == "passwd.csv"
    assert str(services.raw_path(batch)).startswith(str(settings.BATCH_UPLOAD_DIR))


def test_a_failed_chunk_leaves_whole_chunks_and_processing_resumes_after_them(uploader, today, settings, monkeypatch):
    settings.BATCH_CHUNK = 2
    client = verified_client(uploader)
    upload(client, "registration", "five.csv", csv_bytes(rows_of("registration", 5), kind="registration"))
    batch = last_batch()
    real = pipeline._process_chunk
    calls = {"n": 0}

    def failing(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("database went away")
        return real(*args)

    monkeypatch.setattr(pipeline, "_process_chunk", failing)
    client.post(reverse("batch:process", args=[batch.pk]))
    batch.refresh_from_db()
    assert (batch.status, batch.chunks_done) == ("failed", 1)
    assert "Process again to resume" in batch.message
    assert Billing.objects.count() == 2
    assert services.raw_path(batch).exists()  # kept until processing is done

    monkeypatch.setattr(pipeline, "_process_chunk", real)
    client.post(reverse("batch:process", args=[batch.pk]))
    batch.refresh_from_db()
    assert batch.status == "done" and Billing.objects.count() == 5
    assert Billing.objects.values("billing_number").distinct().count() == 5


def test_templates_download_with_header_and_two_examples(uploader):
    client = verified_client(uploader)
    text = client.get(reverse("batch:template", args=["registration", "csv"])).content.decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0].startswith("billing_number,customer_id") and len(lines) == 3
    xlsx = client.get(reverse("batch:template", args=["single_payment", "xlsx"]))
    assert xlsx["Content-Type"].startswith("application/vnd.openxmlformats") and xlsx.content[:4] == b"PK\x03\x04"


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
@pytest.mark.parametrize("kind", ["registration", "single_payment"])
@pytest.mark.parametrize(
    "moment",
    [
        None,  # the real clock: whatever day the suite runs on
        datetime(2028, 2, 28, 23, 30, tzinfo=UTC),  # 29 February in Jakarta
        datetime(2030, 12, 31, 18, 0, tzinfo=UTC),  # 1 January in Jakarta, 31 December in UTC
    ],
)
def test_a_template_uploaded_unchanged_validates_with_no_invalid_row(uploader, kind, file_format, moment):
    """The examples are dates of the merchant's today (execute date ahead, card not expired): the file a
    user downloads validates as it is on any day (issue "Correct on any date")."""
    with time_machine.travel(moment, tick=False) if moment else contextlib.nullcontext():
        client = verified_client(uploader)
        if kind == "single_payment":  # its first example row charges the registration example's billing
            upload(
                client,
                "registration",
                "r.csv",
                client.get(reverse("batch:template", args=["registration", "csv"])).content,
            )
            client.post(reverse("batch:process", args=[last_batch().pk]))
        template = client.get(reverse("batch:template", args=[kind, file_format]))
        upload(client, kind, f"{kind}-template.{file_format}", template.content)
        batch = last_batch()

        assert (batch.kind, batch.status, batch.total_rows, batch.invalid_rows) == (kind, "validated", 2, 0)


def test_menus_and_tenancy(merchant, other_merchant, uploader, today):
    client = verified_client(uploader)
    upload(client, "single_payment", "p.csv", csv_bytes(rows_of("single_payment", 1), kind="single_payment"))
    batch = last_batch()
    only_registration = make_persona(merchant, "reggie", menus=["registration"])
    assert verified_client(only_registration).get(reverse("batch:detail", args=[batch.pk])).status_code == 403
    assert verified_client(only_registration).get(reverse("batch:single_payment")).status_code == 403
    outsider = make_persona(other_merchant, "olga", menus=["batch_transaction"])
    for name in ("batch:detail", "batch:progress"):
        assert verified_client(outsider).get(reverse(name, args=[batch.pk])).status_code == 404
    assert verified_client(outsider).post(reverse("batch:process", args=[batch.pk])).status_code == 404
    assert client.get(reverse("batch:progress", args=[batch.pk])).json()["status"] == "validated"


def test_a_batch_whose_worker_died_is_resumed_by_the_janitor_and_a_second_worker_stays_out(
    uploader, today, settings, monkeypatch
):
    from django.core.signals import request_finished
    from django.utils import timezone

    settings.BATCH_CHUNK = 2
    client = verified_client(uploader)
    upload(client, "registration", "five.csv", csv_bytes(rows_of("registration", 5), kind="registration"))
    batch = last_batch()
    real = pipeline._process_chunk
    calls = {"n": 0}

    class WorkerKilled(BaseException):
        """Not an Exception: like SIGKILL, nothing in the app gets to record a final state."""

    def dying(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise WorkerKilled
        return real(*args)

    monkeypatch.setattr(pipeline, "_process_chunk", dying)
    with pytest.raises(WorkerKilled):
        client.post(reverse("batch:process", args=[batch.pk]))
    request_finished.send(sender=None)  # the killed request never finished
    batch.refresh_from_db()
    assert (batch.status, batch.chunks_done) == ("processing", 1) and batch.lease_until is not None
    monkeypatch.setattr(pipeline, "_process_chunk", real)

    assert pipeline.process(batch.pk) == "busy"  # the dead worker's lease still holds
    assert services.janitor() == 0
    later = timezone.now() + timezone.timedelta(seconds=settings.BATCH_LEASE_SECONDS + 1)
    assert services.janitor(now=later) == 1  # re-queued: the patched delay runs it here
    batch.refresh_from_db()
    assert batch.status == "done" and batch.lease_until is None
    assert Billing.objects.filter(batch=batch).count() == 5


def test_optional_columns_may_be_absent_from_the_header_and_read_as_empty(uploader, today, merchant):
    from tests.recurring.conftest import make_billing

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
    from tests.recurring.conftest import make_billing

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
    from tests.recurring.conftest import make_billing

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
    from openpyxl import Workbook

    from batch.columns import names

    rows = rows_of("single_payment", 3)
    typed = [
        {"execute_date": datetime(2026, 12, 7), "amount": 499000, "card_number": 5555555555554444},
        {"execute_date": date(2026, 12, 8), "amount": 1250000.0, "holder_phone": 6281234567890},
        {"execute_date": datetime(2026, 12, 9, 0, 0), "amount": "250.000", "invoice_number": 20261209},
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
    assert [row["execute_date"] for row in data] == ["2026-12-07", "2026-12-08", "2026-12-09"]
    assert [row["amount"] for row in data] == ["499000", "1250000", "250.000"]
    assert (data[0]["card_number"], data[1]["holder_phone"], data[2]["invoice_number"]) == (
        "555555******4444",
        "6281234567890",
        "20261209",
    )


def test_a_date_cell_with_a_time_of_day_is_not_taken_for_a_date(uploader, today):
    from openpyxl import Workbook

    from batch.columns import names

    row = rows_of("single_payment", 1)[0]
    row["execute_date"] = datetime(2026, 12, 7, 13, 30)
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
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    from batch.columns import names

    content = verified_client(uploader).get(reverse("batch:template", args=[kind, "xlsx"])).content
    sheet = load_workbook(io.BytesIO(content)).active
    letters = [get_column_letter(index) for index in range(1, len(names(kind)) + 1)]
    assert [sheet.column_dimensions[letter].number_format for letter in letters] == ["@"] * len(letters)
    assert {cell.number_format for cells in sheet.iter_rows() for cell in cells} == {"@"}

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
from tests.batch.conftest import PAYMENT_ROW, TODAY, csv_bytes, rows_of, upload_file
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
        ("execute_date", f"{TODAY - timedelta(days=1):%Y-%m-%d}", "This date is in the past."),
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
    rows[0]["execute_date"], rows[1]["execute_date"] = (
        f"{TODAY + timedelta(days=1):%Y-%m-%d}",
        f"{TODAY + timedelta(days=15):%d/%m/%Y}",
    )
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
        (
            "twice.csv",
            csv_bytes(rows_of("single_payment", 1), kind="single_payment").replace(b"customer_id", b"Amount", 1),
            "The header names the column amount twice",
        ),
        (
            "mac.csv",
            csv_bytes(rows_of("single_payment", 2), kind="single_payment").replace(b"\r\n", b"\r"),
            "lines end with a carriage return only",
        ),
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

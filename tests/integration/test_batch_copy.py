"""Batch rows stored with COPY on PostgreSQL (B1): what is read back is what the ORM would have stored."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pandas as pd
import pytest
from django.db import connection

from accounts.audit import Actor
from batch import pipeline, services
from batch.models import BatchRow
from tests.batch.conftest import csv_bytes, rows_of, upload_file
from tests.conftest import make_persona
from tests.dates import card_expiry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def uploads(settings, tmp_path, monkeypatch):
    """Uploads land in a temporary folder and are validated by the test, not queued."""


def upload(merchant, username: str, name: str, rows: list[dict]):
    """``rows`` uploaded as a registration file ``name`` by a new user ``username`` of ``merchant``."""
    actor = Actor.of(make_persona(merchant, username, menus=["registration"]).user)
    return services.upload(actor, upload_file(name, csv_bytes(rows, kind="registration")), "registration")


def test_rows_stored_by_copy_read_back_cell_for_cell_with_their_errors(merchant, uploads):
    rows = rows_of("registration", 5)
    rows[0]["customer_name"] = 'Bob "the" \\ O\'Neil\tand a tab'
    rows[1]["customer_name"] = "Line one\nline two\r\nthree"
    rows[1]["billing_number"] = "GYM\\7\tB\\N\\."  # the COPY's reference field: escaped backslashes and tab
    rows[2]["customer_name"] = "Café ☕ \\N {} [] \u0001"
    rows[3]["holder_name"] = "PAN 4111111111111111 INSIDE"
    rows[4]["amount"] = "5"  # below the merchant's minimum
    rows[4]["email"] = "nope"
    batch = upload(merchant, "copier", "c.csv", rows)

    assert pipeline.validate(batch.pk) == "invalid"

    stored = {row.row_number: row for row in BatchRow.objects.filter(batch=batch)}
    assert sorted(stored) == [2, 3, 4, 5, 6]
    for number, row in enumerate(rows, 2):
        expected = {**row, "card_number": "411111******1111"}
        if number == 5:
            expected["holder_name"] = "PAN 411111******1111 INSIDE"
        assert stored[number].data == expected
        assert stored[number].reference == row["billing_number"]
        assert stored[number].outcome == ""
    assert stored[2].amount == Decimal(250_000)
    # A tab, a line break and a C0 character are control characters in a name: those cells are invalid.
    assert [stored[n].status for n in range(2, 7)] == ["invalid", "invalid", "invalid", "valid", "invalid"]
    for number in (2, 3, 4):
        assert set(stored[number].errors) == {"customer_name"} | ({"billing_number"} if number == 3 else set())
        assert "control character" in stored[number].errors["customer_name"]
    assert stored[5].errors == {}
    assert set(stored[6].errors) == {"amount", "email"} and "between" in stored[6].errors["amount"]


def test_rows_stored_by_copy_are_packed_arrays_of_kind_and_cells(merchant, uploads):
    rows = rows_of("registration", 3)
    rows[1]["customer_name"] = 'Bob "the" \\ O\'Neil'
    batch = upload(merchant, "packer", "p.csv", rows)

    assert pipeline.validate(batch.pk) == "validated"

    with connection.cursor() as cursor:
        cursor.execute("SELECT row_number, data FROM batch_batchrow WHERE batch_id = %s ORDER BY 1", [batch.pk])
        stored = cursor.fetchall()
    for (number, text), row in zip(stored, rows, strict=True):
        assert json.loads(text) == ["registration", *{**row, "card_number": "411111******1111"}.values()], number


def test_stored_keys_of_a_large_file_are_fetched_in_one_query_in_the_transaction_and_a_key_with_a_newline_matches_nothing(
    merchant,
):
    from django.db import transaction

    from batch.models import Batch
    from tests.recurring.conftest import make_billing

    make_billing(merchant, billing_number="A\nB")
    batch = Batch(merchant=merchant, kind=Batch.Kind.REGISTRATION)
    candidates = pd.Series([f"GYM-{n}" for n in range(2500)] + ["A", "B"], dtype=str)

    with transaction.atomic():
        make_billing(merchant, billing_number="GYM-7")  # written in the transaction: seen
        fetched = pipeline._stored_keys(batch, candidates)

    assert fetched.tolist() == ["GYM-7"]


def test_a_large_files_key_stored_by_the_merchant_is_reported_and_one_stored_by_another_merchant_is_not(
    merchant, other_merchant
):
    from batch import validation
    from batch.models import Batch
    from tests.recurring.conftest import make_billing

    make_billing(merchant, billing_number="GYM-7")
    make_billing(other_merchant, billing_number="GYM-8")
    frame = pd.DataFrame(rows_of("registration", 2500), dtype=str)
    frame["billing_number"] = [f"GYM-{n}" for n in range(len(frame))]
    batch = Batch(merchant=merchant, kind=Batch.Kind.REGISTRATION)

    result = validation.validate(frame, "registration", **pipeline.validation_limits(batch, frame["billing_number"]))

    assert result.errors == {7: {"billing_number": "Registered already."}}


def test_a_large_single_payment_file_names_only_the_merchants_billings(merchant, other_merchant):
    from batch import validation
    from batch.models import Batch
    from tests.recurring.conftest import make_billing

    make_billing(merchant, billing_number="GYM-7")
    make_billing(other_merchant, billing_number="GYM-8")
    today = merchant.local_today().isoformat()
    frame = pd.DataFrame(rows_of("single_payment", 2500, execute_date=today, expiry=card_expiry()), dtype=str)
    frame["billing_number"] = [f"GYM-{n}" if n < 10 else "" for n in range(len(frame))]
    batch = Batch(merchant=merchant, kind=Batch.Kind.SINGLE_PAYMENT)

    limits = pipeline.validation_limits(batch, frame["invoice_number"], frame["billing_number"])
    result = validation.validate(frame, "single_payment", **limits)

    assert set(result.errors) == set(range(10)) - {7}
    assert {error["billing_number"] for error in result.errors.values()} == {validation.UNKNOWN_BILLING}


def test_a_file_copied_chunk_by_chunk_is_stored_whole_with_its_totals_progress_and_no_connection_left_open(
    merchant, uploads, monkeypatch
):
    from batch.models import Batch

    monkeypatch.setattr(pipeline, "ROWS_PER_STORE", 7)
    progress: list[int] = []
    renew = pipeline.renew_lease
    monkeypatch.setattr(
        pipeline,
        "renew_lease",
        lambda batch, **fields: (progress.append(fields.get("rows_done")), renew(batch, **fields)),
    )
    rows = rows_of("registration", 30)
    rows[3]["amount"] = "5"  # below the minimum
    rows[20]["billing_number"] = rows[12]["billing_number"]  # duplicated across chunks
    rows[25]["customer_name"] = 'quote " and \\ backslash'
    batch = upload(merchant, "chunker", "k.csv", rows)
    sessions = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    with connection.cursor() as cursor:
        cursor.execute(sessions)
        before = cursor.fetchone()[0]

    assert pipeline.validate(batch.pk) == "invalid"

    for _ in range(50):  # a closed session leaves pg_stat_activity a moment later
        with connection.cursor() as cursor:
            cursor.execute(sessions)
            after = cursor.fetchone()[0]
        if after == before:
            break
        time.sleep(0.05)
    assert after == before  # the COPYs ran on Django's connection

    stored = {row.row_number: row for row in BatchRow.objects.filter(batch=batch)}
    assert sorted(stored) == list(range(2, 32))
    assert {number for number, row in stored.items() if row.errors} == {5, 14, 22}
    assert stored[27].data["customer_name"] == 'quote " and \\ backslash'
    batch = Batch.objects.get(pk=batch.pk)
    assert (batch.total_rows, batch.invalid_rows, batch.rows_done) == (30, 3, 30)
    assert batch.total_amount == Decimal(250_000) * 29 + 5  # the total of the amounts read, as before chunks
    done = [value for value in progress if value is not None]
    assert done == sorted(done) and done[-1] == 30 and len(done) >= 5


def test_on_postgresql_a_batch_row_is_keyed_by_its_batch_and_row_number(merchant):
    from tests.batch.test_row_key import check_rows_are_keyed_by_batch_and_row_number

    check_rows_are_keyed_by_batch_and_row_number(merchant)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'batch_batchrow' AND indexname = 'batch_batchrow_pkey'"
        )
        assert cursor.fetchone()[0].endswith("(batch_id, row_number)")
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'batch_batchrow'")
        assert cursor.fetchone()[0] == 2  # the key and the problem rows' partial index


def test_on_postgresql_the_migration_to_the_batch_and_row_number_key_keeps_every_row_both_ways(merchant):
    from tests.batch.test_row_key import check_the_key_migration_keeps_every_row

    check_the_key_migration_keeps_every_row(merchant)


def test_on_postgresql_a_rows_errors_are_kept_as_json_text_and_read_back_as_the_dict(merchant):
    from tests.batch.test_storage import test_a_rows_errors_are_kept_as_json_text_and_read_back_as_the_dict as check

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_name = 'batch_batchrow' "
            "AND column_name = 'errors'"
        )
        assert cursor.fetchone()[0] == "text"  # not jsonb: the server does not parse it on the way in
    check(merchant)


def test_a_nul_byte_or_an_overlong_text_cell_is_an_invalid_cell_stored_with_its_reason_on_postgresql(merchant, uploads):
    rows = rows_of("registration", 3)
    rows[0]["customer_name"] = "Andi\x00Wijaya"
    rows[1]["holder_name"] = "A" * 306
    rows[2]["customer_id"] = "C" * 71
    batch = upload(merchant, "nul", "n.csv", rows)

    assert pipeline.validate(batch.pk) == "invalid"

    stored = {row.row_number: row for row in BatchRow.objects.filter(batch=batch)}
    assert [stored[n].status for n in (2, 3, 4)] == ["invalid"] * 3
    assert "control character" in stored[2].errors["customer_name"]
    assert stored[3].errors == {"holder_name": "At most 120 characters."}
    assert stored[4].errors == {"customer_id": "At most 64 characters."}
    assert stored[3].data["holder_name"] == "A" * 306

"""How a batch row's cells are stored (B1): a JSON array of the kind and the cells in the kind's column
order (the column names are not repeated on every row), read back as {column: cell}."""

from __future__ import annotations

import json

from django.db import connection

from batch.columns import names, pack, unpack
from batch.models import Batch, BatchRow
from tests.batch.conftest import PAYMENT_ROW, REGISTRATION_ROW


def raw_data(row: BatchRow) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT data FROM batch_batchrow WHERE batch_id = %s AND row_number = %s", list(row.pk))
        return cursor.fetchone()[0]


def test_a_stored_row_keeps_its_kind_and_cells_in_column_order_and_reads_back_as_the_dict(merchant):
    batch = Batch.objects.create(merchant=merchant, kind="registration", file_name="a.csv", content_hash="a")
    cells = {**REGISTRATION_ROW, "customer_name": 'Bob "the" \\ O\'Neil\tand ☕'}
    row = BatchRow.objects.create(merchant=merchant, batch=batch, row_number=2, data=cells, status="valid")

    assert json.loads(raw_data(row)) == ["registration", *cells.values()]
    assert BatchRow.objects.get(pk=row.pk).data == cells
    assert list(BatchRow.objects.get(pk=row.pk).data) == names("registration")


def test_a_row_stored_as_a_json_object_reads_back_as_it_is(merchant):
    batch = Batch.objects.create(merchant=merchant, kind="single_payment", file_name="b.csv", content_hash="b")
    row = BatchRow.objects.create(merchant=merchant, batch=batch, row_number=2, data=PAYMENT_ROW, status="valid")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE batch_batchrow SET data = %s WHERE batch_id = %s AND row_number = %s",
            [json.dumps(PAYMENT_ROW), *row.pk],
        )

    assert BatchRow.objects.get(pk=row.pk).data == PAYMENT_ROW


def test_only_a_kinds_exact_columns_are_packed():
    assert pack(PAYMENT_ROW) == ["single_payment", *PAYMENT_ROW.values()]
    assert unpack(pack(PAYMENT_ROW)) == PAYMENT_ROW
    reordered = dict(reversed(PAYMENT_ROW.items()))
    assert pack(reordered) is reordered
    assert pack({"a": "1"}) == {"a": "1"}
    assert unpack(["registration", "too few"]) == ["registration", "too few"]


def test_a_rows_errors_are_kept_as_json_text_and_read_back_as_the_dict(merchant):
    batch = Batch.objects.create(merchant=merchant, kind="registration", file_name="e.csv", content_hash="e")
    errors = {"amount": "Not a number.", "email": "Not an email address: ☕"}
    row = BatchRow.objects.create(
        merchant=merchant, batch=batch, row_number=2, data=REGISTRATION_ROW, errors=errors, status="invalid"
    )
    clean = BatchRow.objects.create(merchant=merchant, batch=batch, row_number=3, data=REGISTRATION_ROW, status="valid")
    with connection.cursor() as cursor:
        cursor.execute("SELECT errors FROM batch_batchrow WHERE batch_id = %s ORDER BY row_number", [batch.pk])
        raw = [value for (value,) in cursor.fetchall()]

    assert [json.loads(text) for text in raw] == [errors, {}]
    assert BatchRow.objects.get(pk=row.pk).errors == errors
    assert BatchRow.objects.get(pk=clean.pk).errors == {}

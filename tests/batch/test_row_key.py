"""A batch row is keyed by its place in its file, (batch, row_number): no surrogate id (B1's COPY keeps
one index, not two, and draws from no sequence). Migration 0007 moved existing rows to that key. The
same tests run on PostgreSQL in tests/integration/test_batch_copy.py."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from batch.models import Batch, BatchRow
from tests.batch.conftest import PAYMENT_ROW, REGISTRATION_ROW

BEFORE = ("batch", "0006_batchrow_data_packed")
AFTER = ("batch", "0007_batchrow_composite_pk")


def _batch(merchant, name: str, model=Batch):
    return model.objects.create(
        merchant_id=merchant.pk, kind="registration", file_name=f"{name}.csv", content_hash=name
    )


def _columns() -> list[str]:
    with connection.cursor() as cursor:
        return [info.name for info in connection.introspection.get_table_description(cursor, "batch_batchrow")]


def check_rows_are_keyed_by_batch_and_row_number(merchant, prefix: str = "") -> None:
    first, second = _batch(merchant, f"{prefix}first"), _batch(merchant, f"{prefix}second")
    row = BatchRow.objects.create(merchant=merchant, batch=first, row_number=2, data=REGISTRATION_ROW, status="valid")
    BatchRow.objects.create(merchant=merchant, batch=second, row_number=2, data=REGISTRATION_ROW, status="invalid")

    assert [field.name for field in BatchRow._meta.pk.fields] == ["batch", "row_number"]
    assert row.pk == (first.pk, 2)
    assert "id" not in _columns()
    assert BatchRow.objects.get(pk=(first.pk, 2)).status == "valid"
    assert BatchRow.objects.get(pk=(second.pk, 2)).status == "invalid"  # two batches share row numbers
    with pytest.raises(IntegrityError), transaction.atomic():
        BatchRow.objects.create(merchant=merchant, batch=first, row_number=2, data=REGISTRATION_ROW, status="valid")


def _migrate(target: tuple[str, str]):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return MigrationExecutor(connection).loader.project_state([target]).apps


def _stored(model) -> list[tuple]:
    return sorted(
        model.objects.values_list("batch__file_name", "row_number", "merchant_id", "data", "errors", "status")
    )


def check_the_key_migration_keeps_every_row(merchant) -> None:
    leaf = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        old = _migrate(BEFORE)
        OldBatch, OldRow = old.get_model("batch", "Batch"), old.get_model("batch", "BatchRow")
        first, second = _batch(merchant, "first", OldBatch), _batch(merchant, "second", OldBatch)
        OldRow.objects.bulk_create(
            [
                OldRow(merchant_id=merchant.pk, batch=first, row_number=2, data=REGISTRATION_ROW, status="valid"),
                OldRow(
                    merchant_id=merchant.pk,
                    batch=first,
                    row_number=3,
                    data=REGISTRATION_ROW,
                    errors={"amount": "Not a number."},
                    status="invalid",
                ),
                OldRow(merchant_id=merchant.pk, batch=second, row_number=2, data=PAYMENT_ROW, status="created"),
            ]
        )
        before = _stored(OldRow)
        assert len(before) == 3 and "id" in _columns()

        new = _migrate(AFTER)
        assert _stored(new.get_model("batch", "BatchRow")) == before
        assert "id" not in _columns()

        back = _migrate(BEFORE)  # reversible: the rows get ids again
        assert _stored(back.get_model("batch", "BatchRow")) == before
        assert "id" in _columns()
    finally:
        MigrationExecutor(connection).migrate(leaf)
    assert _stored(BatchRow) == before
    check_rows_are_keyed_by_batch_and_row_number(merchant, "after-")  # the key works after the round trip


@pytest.mark.django_db
def test_a_batch_row_is_keyed_by_its_batch_and_row_number_and_two_batches_share_row_numbers(merchant):
    check_rows_are_keyed_by_batch_and_row_number(merchant)


@pytest.mark.django_db(transaction=True)
def test_the_migration_to_the_batch_and_row_number_key_keeps_every_row_both_ways(merchant):
    check_the_key_migration_keeps_every_row(merchant)

"""A batch file's amounts meet the merchant's limits (B2) as the hosted page does: one rule, one place."""

from __future__ import annotations

import pytest
from django.urls import reverse

from batch.models import Batch, BatchRow
from tests.batch.conftest import csv_bytes, rows_of, upload_file
from tests.conftest import make_persona, verified_client

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_batch_checks_the_limits_the_merchant_has_now(merchant, today):
    merchant.min_charge_amount, merchant.max_charge_amount = 50_000, 300_000
    merchant.save()
    uploader = make_persona(merchant, "upton", menus=["batch_transaction"])
    rows = rows_of("single_payment", 3)
    rows[0]["amount"], rows[1]["amount"], rows[2]["amount"] = "40000", "300000", "350.000"
    content = csv_bytes(rows, kind="single_payment")
    verified_client(uploader).post(reverse("batch:single_payment"), {"file": upload_file("pay.csv", content)})
    batch = Batch.objects.get()
    refused = BatchRow.objects.filter(batch=batch, status="invalid").order_by("row_number")
    assert [row.row_number for row in refused] == [2, 4]
    reason = merchant.charge_amount_refused_because(40_000)
    assert reason == "The amount must be between Rp 50.000 and Rp 300.000."
    assert all("Rp 50.000 and Rp 300.000" in row.errors["amount"] for row in refused)

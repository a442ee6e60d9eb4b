"""Batches over the API: upload (multipart), status with problem rows paged, Process."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from batch.models import Batch
from payments.models import Transaction
from tests.batch.conftest import PAYMENT_ROW, csv_bytes, rows_of, today  # noqa: F401  (the frozen day, used below)

# The check runs after commit, as in production; the day is the batch tests' frozen one.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("today")]


def upload(api, content: bytes, kind: str = "single_payment", name: str = "payments.csv", **headers):
    return api.client.post(
        "/api/v1/batches/",
        {"file": SimpleUploadedFile(name, content, content_type="text/csv"), "kind": kind},
        headers={**api.headers, **headers},
    )


def test_upload_check_and_process_a_single_payment_file(api, merchant):
    response = upload(api, csv_bytes(rows_of("single_payment", 3), kind="single_payment"))
    assert response.status_code == 201, response.content
    batch_id = response.json()["id"]
    detail = api.get(f"/api/v1/batches/{batch_id}/").json()
    assert detail["status"] == "validated" and detail["total_rows"] == 3 and detail["problems"] == []
    assert detail["total_amount"] == 3 * 499000
    processed = api.post(f"/api/v1/batches/{batch_id}/process/")
    assert processed.status_code == 202, processed.content
    assert api.get(f"/api/v1/batches/{batch_id}/").json()["status"] == "done"
    assert Transaction.objects.filter(merchant=merchant, batch_id=batch_id).count() == 3
    assert api.post(f"/api/v1/batches/{batch_id}/process/").status_code == 409


def test_invalid_cells_are_listed_with_reasons_by_page_and_process_is_refused(api):
    rows = rows_of("single_payment", 3) + [
        {**PAYMENT_ROW, "invoice_number": f"BAD-{n}", "amount": "abc"} for n in range(3)
    ]
    batch_id = upload(api, csv_bytes(rows, kind="single_payment")).json()["id"]
    first = api.get(f"/api/v1/batches/{batch_id}/", {"page_size": 2}).json()
    assert first["status"] == "invalid" and first["invalid_rows"] == 3
    assert [row["row_number"] for row in first["problems"]] == [5, 6]
    assert "amount" in first["problems"][0]["errors"]
    rest = api.get(first["next"].split("testserver")[1]).json()
    assert [row["row_number"] for row in rest["problems"]] == [7] and rest["next"] is None
    refused = api.post(f"/api/v1/batches/{batch_id}/process/")
    assert refused.status_code == 409 and "invalid rows" in refused.json()["detail"]


def test_a_file_seen_before_and_a_wrong_kind_are_refused(api):
    content = csv_bytes(rows_of("single_payment", 1), kind="single_payment")
    assert upload(api, content).status_code == 201
    again = upload(api, content)
    assert again.status_code == 409 and "uploaded already" in again.json()["detail"]
    assert upload(api, content, kind="other").status_code == 400
    assert Batch.objects.count() == 1


def test_json_is_not_an_upload(api):
    response = api.post("/api/v1/batches/", {"kind": "registration"})
    assert response.status_code == 415 and response["Content-Type"] == "application/problem+json"

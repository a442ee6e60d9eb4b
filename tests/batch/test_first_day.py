"""A registration file and the first execute date: validation and processing use one rule
(``scheduler.next_schedulable_day``): today until today's scheduler run ends, then tomorrow."""

from __future__ import annotations

import pytest
from django.urls import reverse

from batch.models import Batch, BatchRow
from recurring import scheduler
from recurring.models import Billing
from tests.batch.conftest import TODAY, csv_bytes, rows_of, upload_file
from tests.conftest import make_persona, verified_client

pytestmark = pytest.mark.django_db(transaction=True)

TODAY_ONLY = {"schedule_type": "full_date", "schedule_days": "", "schedule_dates": TODAY.isoformat()}


@pytest.fixture
def uploader(merchant):
    return make_persona(merchant, "upton", menus=["batch_transaction", "registration"])


def upload_and_process(client, rows) -> Batch:
    client.post(reverse("batch:registration"), {"file": upload_file("m.csv", csv_bytes(rows, kind="registration"))})
    batch = Batch.objects.order_by("-pk").first()
    client.post(reverse("batch:process", args=[batch.pk]))
    batch.refresh_from_db()
    return batch


def test_a_full_date_of_today_uploaded_before_the_days_run_is_charged_today(uploader, today):
    batch = upload_and_process(verified_client(uploader), rows_of("registration", 1, **TODAY_ONLY))
    assert batch.status == "done"
    assert Billing.objects.get(batch=batch).next_execute_date == today
    run = scheduler.run_day(uploader.user.merchant, today)
    assert run.charged == 1


def test_a_full_date_of_today_uploaded_after_the_days_run_is_invalid_with_its_reason(uploader, today):
    scheduler.run_day(uploader.user.merchant, today)
    client = verified_client(uploader)
    rows = rows_of("registration", 2)
    rows[1].update(TODAY_ONLY)
    client.post(reverse("batch:registration"), {"file": upload_file("m.csv", csv_bytes(rows, kind="registration"))})
    batch = Batch.objects.order_by("-pk").first()
    assert (batch.status, batch.invalid_rows) == ("invalid", 1)
    row = BatchRow.objects.get(batch=batch, status="invalid")
    assert "2026-12-01, the first day that can still run" in row.errors["schedule_dates"]


def test_a_row_validated_before_the_days_run_and_processed_after_it_fails_alone_with_its_reason(uploader, today):
    client = verified_client(uploader)
    rows = rows_of("registration", 2)
    rows[1].update(TODAY_ONLY)
    client.post(reverse("batch:registration"), {"file": upload_file("m.csv", csv_bytes(rows, kind="registration"))})
    batch = Batch.objects.order_by("-pk").first()
    assert (batch.status, batch.invalid_rows) == ("validated", 0)
    scheduler.run_day(uploader.user.merchant, today)  # the day's run ends before Process
    client.post(reverse("batch:process", args=[batch.pk]))
    batch.refresh_from_db()
    assert batch.status == "done"
    failed = BatchRow.objects.get(batch=batch, status="failed")
    assert failed.row_number == 3 and "the first day that can still run" in failed.outcome
    assert list(Billing.objects.filter(batch=batch).values_list("billing_number", flat=True)) == ["GYM-1001-0000"]

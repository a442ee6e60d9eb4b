"""Every state a batch's background step can leave is final with a reason (TESTING "Pages": a terminal
failure with a reason): a missing raw file, an unexpected error while checking, a worker that keeps dying."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from batch import pipeline, services, tasks, validation
from batch.models import Batch, BatchRow
from tests.batch.conftest import csv_bytes, rows_of, upload_file
from tests.conftest import make_persona, verified_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def uploader(merchant):
    return make_persona(merchant, "upton", menus=["batch_transaction", "registration"])


def upload(client, content: bytes, name: str = "members.csv"):
    return client.post(reverse("batch:registration"), {"file": upload_file(name, content)})


def last_batch() -> Batch:
    return Batch.objects.order_by("-pk").first()


def later(seconds: int = 0):
    from django.conf import settings

    return timezone.now() + timedelta(seconds=settings.BATCH_LEASE_SECONDS + 1 + seconds)


def test_a_batch_whose_raw_file_is_missing_fails_with_a_reason_and_the_same_file_can_be_uploaded_again(
    uploader, today, monkeypatch
):
    client = verified_client(uploader)
    content = csv_bytes(rows_of("registration", 2), kind="registration")
    with monkeypatch.context() as queue_nothing:
        queue_nothing.setattr(tasks.validate_batch, "delay", lambda batch_id: None)
        upload(client, content)
    batch = last_batch()
    services.raw_path(batch).unlink()

    assert pipeline.validate(batch.pk) == Batch.Status.CHECK_FAILED
    batch.refresh_from_db()
    assert batch.status == Batch.Status.CHECK_FAILED and batch.lease_until is None
    assert "no longer on the server" in batch.message and "upload the file again" in batch.message
    page = client.get(reverse("batch:detail", args=[batch.pk])).content.decode()
    assert batch.message in page and reverse("batch:process", args=[batch.pk]) not in page
    assert client.post(reverse("batch:process", args=[batch.pk])).status_code == 302
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.CHECK_FAILED  # never processed unchecked
    assert services.janitor(now=later(3600)) == 0  # final: not re-queued

    response = upload(client, content)  # the same file again: accepted, checked this time
    assert response.status_code == 302 and last_batch().pk != batch.pk
    assert last_batch().status == Batch.Status.VALIDATED


def test_an_unexpected_error_while_checking_fails_the_batch_and_keeps_card_numbers_out_of_message_and_log(
    uploader, today, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise ValueError("cannot compare 4111111111111111 with nothing")

    monkeypatch.setattr(validation, "validate", broken)
    caplog.set_level(logging.INFO)
    upload(verified_client(uploader), csv_bytes(rows_of("registration", 2), kind="registration"))
    batch = last_batch()
    assert batch.status == Batch.Status.CHECK_FAILED
    assert "ValueError" in batch.message and "4111111111111111" not in batch.message
    assert not BatchRow.objects.filter(batch=batch).exists()
    assert not services.raw_path(batch).exists()  # nothing will use it: the card numbers go
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "check failed" in logged and "ValueError" in logged and "4111111111111111" not in logged


def dying_worker(status: str):
    """A task that takes the batch's lease and dies (SIGKILL: nothing records a final state)."""

    def run(batch_id: int) -> None:
        batch = Batch.objects.get(pk=batch_id)
        Batch.objects.filter(pk=batch_id, status=Batch.Status.UPLOADED).update(status=Batch.Status.VALIDATING)
        assert services.take_lease(batch, status)

    return run


def test_the_janitor_stops_requeueing_a_batch_whose_worker_dies_while_checking_it(
    uploader, today, settings, monkeypatch
):
    settings.BATCH_MAX_ATTEMPTS = 3
    monkeypatch.setattr(tasks.validate_batch, "delay", dying_worker(Batch.Status.VALIDATING))
    upload(verified_client(uploader), csv_bytes(rows_of("registration", 2), kind="registration"))
    batch = last_batch()
    requeued = [services.janitor(now=later(step * settings.BATCH_LEASE_SECONDS * 2)) for step in range(4)]

    batch.refresh_from_db()
    assert requeued == [1, 1, 0, 0]  # the upload's attempt and two re-queues die; then the janitor gives up
    assert (batch.status, batch.attempts, batch.lease_until) == (Batch.Status.CHECK_FAILED, 3, None)
    assert "stopped 3 times" in batch.message
    assert not services.raw_path(batch).exists()


def test_the_janitor_stops_requeueing_processing_after_the_limit_and_process_again_resumes(
    uploader, today, settings, monkeypatch
):
    settings.BATCH_MAX_ATTEMPTS = 2
    client = verified_client(uploader)
    upload(client, csv_bytes(rows_of("registration", 2), kind="registration"))
    batch = last_batch()
    with monkeypatch.context() as dying:
        dying.setattr(tasks.process_batch, "delay", dying_worker(Batch.Status.PROCESSING))
        client.post(reverse("batch:process", args=[batch.pk]))
        requeued = [services.janitor(now=later(step * settings.BATCH_LEASE_SECONDS * 2)) for step in range(3)]
    batch.refresh_from_db()
    assert requeued == [1, 0, 0]
    assert (batch.status, batch.attempts) == (Batch.Status.FAILED, 2)
    assert "stopped 2 times" in batch.message and "Process again to resume" in batch.message

    client.post(reverse("batch:process", args=[batch.pk]))  # a person resumes it: a fresh count
    batch.refresh_from_db()
    assert (batch.status, batch.attempts) == (Batch.Status.DONE, 1)


def test_an_unexpected_error_while_processing_fails_the_batch_with_a_reason_and_process_again_resumes(
    uploader, today, monkeypatch
):
    client = verified_client(uploader)
    upload(client, csv_bytes(rows_of("registration", 2), kind="registration"))
    batch = last_batch()
    real = pipeline.next_schedulable_day
    monkeypatch.setattr(pipeline, "next_schedulable_day", lambda merchant: 1 / 0)
    client.post(reverse("batch:process", args=[batch.pk]))
    batch.refresh_from_db()
    assert (batch.status, batch.lease_until) == (Batch.Status.FAILED, None)
    assert "ZeroDivisionError" in batch.message and "Process again to resume" in batch.message

    monkeypatch.setattr(pipeline, "next_schedulable_day", real)
    client.post(reverse("batch:process", args=[batch.pk]))
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.DONE

"""What the batch pages show (issue #20.8): counts with the app's thousands dots, valid and created rows
not in red, and progress that counts each step from where it starts."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from batch import tasks
from batch.models import Batch
from tests.batch.conftest import csv_bytes, rows_of, upload_file
from tests.conftest import make_persona, verified_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def uploader(merchant):
    return make_persona(merchant, "upton", menus=["batch_transaction", "registration"])


def text_of(page: str, test_id: str) -> str:
    return re.search(rf'data-testid="{test_id}">([^<]*)<', page).group(1)


def test_batch_pages_show_counts_with_thousands_dots(uploader, merchant):
    batch = Batch.objects.create(
        merchant=merchant,
        kind="single_payment",
        file_name="big.csv",
        content_hash="b" * 64,
        status="processing",
        total_rows=20_000,
        invalid_rows=1_500,
        rows_done=12_000,
        uploaded_by=uploader.user,
    )
    client = verified_client(uploader)
    page = client.get(reverse("batch:detail", args=[batch.pk])).content.decode()
    assert (text_of(page, "total-data"), text_of(page, "invalid-data")) == ("20.000", "1.500")
    assert "12.000 of 20.000 rows" in page and 'data-percent="60"' in page
    history = client.get(reverse("batch:single_payment")).content.decode()
    assert '<td class="num">20.000</td><td class="num">1.500</td>' in history


def test_valid_and_created_rows_show_their_outcome_as_a_status_not_as_an_error(uploader, today):
    client = verified_client(uploader)
    content = csv_bytes(rows_of("registration", 2), kind="registration")
    client.post(reverse("batch:registration"), {"file": upload_file("members.csv", content)})
    batch = Batch.objects.get()
    page = client.get(reverse("batch:detail", args=[batch.pk]) + "?show=all").content.decode()
    assert page.count('<span class="status status-valid">Valid</span>') == 2
    client.post(reverse("batch:process", args=[batch.pk]))
    page = client.get(reverse("batch:detail", args=[batch.pk]) + "?show=all").content.decode()
    assert page.count('<span class="status status-created">created</span>') == 2
    assert 'class="row-error"' not in page


def test_processing_counts_its_progress_from_the_rows_it_has_done_not_from_the_check(
    uploader, today, monkeypatch, settings
):
    client = verified_client(uploader)
    content = csv_bytes(rows_of("registration", 5), kind="registration")
    client.post(reverse("batch:registration"), {"file": upload_file("members.csv", content)})
    batch = Batch.objects.get()
    progress = reverse("batch:progress", args=[batch.pk])
    assert client.get(progress).json()["rows_done"] == 5  # the check is done

    monkeypatch.setattr(tasks.process_batch, "delay", lambda batch_id: None)  # queued, no worker yet
    client.post(reverse("batch:process", args=[batch.pk]))
    state = client.get(progress).json()
    assert (state["status"], state["rows_done"], state["total_rows"]) == ("processing", 0, 5)

    settings.BATCH_CHUNK = 2  # a resume after two committed chunks starts at their rows
    Batch.objects.filter(pk=batch.pk).update(status="failed", chunks_done=2, rows_done=4)
    client.post(reverse("batch:process", args=[batch.pk]))
    assert client.get(progress).json()["rows_done"] == 4


def test_a_batch_waiting_for_a_worker_does_not_say_uploaded(uploader, merchant):
    batch = Batch.objects.create(
        merchant=merchant, kind="registration", file_name="m.csv", content_hash="c" * 64, uploaded_by=uploader.user
    )
    state = verified_client(uploader).get(reverse("batch:progress", args=[batch.pk])).json()
    assert (state["status"], state["status_label"]) == ("uploaded", "Waiting to be checked")

"""Uploads cannot fill the disk (issue #16.10): the request body is capped before it is read, and a file
over BATCH_MAX_BYTES stops being spooled at the limit and gets a clear message."""

from __future__ import annotations

import pytest
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.urls import reverse

from batch.models import Batch
from tests.batch.conftest import csv_bytes, rows_of, upload_file
from tests.conftest import make_persona, verified_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(merchant):
    return verified_client(make_persona(merchant, "upton", menus=["batch_transaction"]))


def test_a_request_body_over_the_cap_is_refused_before_it_is_read(client, settings):
    content = csv_bytes(rows_of("single_payment", 2), kind="single_payment")
    response = client.post(
        reverse("batch:single_payment"),
        {"file": upload_file("big.csv", content)},
        CONTENT_LENGTH=str(settings.REQUEST_MAX_BYTES + 1),  # announced: only the real bytes are there to read
    )
    assert response.status_code == 413
    assert f"At most {settings.REQUEST_MAX_BYTES // 1_048_576} MB" in response.content.decode()
    assert not Batch.objects.exists()


def test_a_file_over_the_limit_stops_being_spooled_at_the_limit_and_gets_a_clear_message(client, settings, monkeypatch):
    settings.BATCH_MAX_BYTES = 100_000
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1000  # to a temporary file on disk, as large uploads go
    spooled = []
    real = TemporaryFileUploadHandler.receive_data_chunk

    def counting(self, raw_data, start):
        spooled.append(len(raw_data))
        return real(self, raw_data, start)

    monkeypatch.setattr(TemporaryFileUploadHandler, "receive_data_chunk", counting)
    content = csv_bytes(rows_of("single_payment", 4000), kind="single_payment")
    assert len(content) > 4 * settings.BATCH_MAX_BYTES
    response = client.post(reverse("batch:single_payment"), {"file": upload_file("big.csv", content)})
    assert response.status_code == 200
    assert response.context["form"].errors["file"] == [
        "The file is larger than 0.1 MB; at most 0.1 MB are accepted. Split it into smaller files."
    ]
    assert sum(spooled) <= settings.BATCH_MAX_BYTES
    assert not Batch.objects.exists()

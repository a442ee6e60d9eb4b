"""The callback delivery page (P8) as the admin reads it: the body as JSON in merchant-local times."""

from __future__ import annotations

from datetime import UTC, datetime
from html import unescape

import time_machine
from django.urls import reverse

from payments import callbacks
from tests.conftest import verified_client

NOON_UTC = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # the clock is frozen here: 12:00 in Asia/Jakarta


def test_the_delivery_page_shows_the_body_as_json_in_merchant_local_time(alice, merchant):
    merchant.callback_url = "https://alpha.example/hooks"
    merchant.callback_secret = "merchant-signing-secret"  # no callback without one
    merchant.save()
    with time_machine.travel(NOON_UTC, tick=False):
        delivery = callbacks.notify(
            merchant, "payment.succeeded", {"invoice_number": "INV-1", "processed_at": NOON_UTC.isoformat()}
        )
    page = unescape(
        verified_client(alice).get(reverse("payments:callback_detail", args=[delivery.pk])).content.decode()
    )
    assert '"event": "payment.succeeded"' in page
    assert '"created_at": "2026-11-30T12:00:00+07:00"' in page
    assert '"processed_at": "2026-11-30T12:00:00+07:00"' in page
    assert "2026-11-30 12:00:00 WIB" in page
    assert "{'event'" not in page and "+00:00" not in page
    delivery.refresh_from_db()
    assert delivery.payload["created_at"] == NOON_UTC.isoformat()  # what is sent stays as it was

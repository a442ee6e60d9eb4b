"""Idempotency-Key: the same key and body answer the first response again and create nothing twice; another
body is a 422; a failed write leaves the key free; keys expire after 24 h. (Two requests at the same moment:
tests/integration/test_api.py, on PostgreSQL.)"""

from __future__ import annotations

from datetime import timedelta

import time_machine
from django.utils import timezone

from api.models import IdempotencyRecord
from recurring.models import Billing
from tests.api.conftest import billing_body, payment_body
from tests.payments.conftest import charged

KEY = {"Idempotency-Key": "order-7781"}


def test_the_same_key_and_body_answer_the_first_response_and_create_nothing_twice(api, merchant):
    first = api.post("/api/v1/billings/", billing_body(), headers=KEY)
    again = api.post("/api/v1/billings/", billing_body(), headers=KEY)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again["Idempotent-Replayed"] == "true"
    assert again["Location"] == first["Location"]
    assert Billing.objects.filter(merchant=merchant).count() == 1


def test_the_same_key_with_another_body_is_a_422(api, merchant):
    api.post("/api/v1/billings/", billing_body(), headers=KEY)
    other = api.post("/api/v1/billings/", billing_body(billing_number="GYM-2"), headers=KEY)
    assert other.status_code == 422 and other["Content-Type"] == "application/problem+json"
    assert Billing.objects.filter(merchant=merchant).count() == 1


def test_a_refusal_is_answered_again_too_and_a_refund_moves_money_once(api, merchant):
    charged(merchant, invoice_number="INV-I", amount=100_000)
    body = {"amount": 60_000, "reason": "customer asked"}
    first = api.post("/api/v1/transactions/INV-I/refund/", body, headers=KEY)
    again = api.post("/api/v1/transactions/INV-I/refund/", body, headers=KEY)
    assert first.status_code == again.status_code == 200
    assert again.json()["transaction"]["refunded_amount"] == 60_000
    assert api.post("/api/v1/transactions/INV-I/refund/", body).status_code == 409  # no key: a second refund


def test_keys_are_per_merchant_and_expire_after_24_hours(api, outsider_api, merchant, other_merchant):
    api.post("/api/v1/transactions/", payment_body(merchant), headers=KEY)
    assert outsider_api.post("/api/v1/transactions/", payment_body(other_merchant), headers=KEY).status_code == 201
    with time_machine.travel(timezone.now() + timedelta(hours=24, seconds=1)):
        later = api.post("/api/v1/billings/", billing_body(), headers=KEY)
    assert later.status_code == 201  # the old record expired: the key is new again


def test_a_malformed_key_is_refused(api):
    assert api.post("/api/v1/billings/", billing_body(), headers={"Idempotency-Key": "x" * 256}).status_code == 422


def test_the_purge_task_deletes_expired_records(api, merchant):
    from api.tasks import purge_idempotency

    api.post("/api/v1/billings/", billing_body(), headers=KEY)
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert purge_idempotency() == 1

"""The Merchant API on PostgreSQL against a live server: the same Idempotency-Key sent twice at the same
moment creates one billing and moves money once, and schemathesis (property-based, from the OpenAPI
schema) runs every operation and finds no server error and no answer that breaks the schema."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
import requests

from accounts.models import AuditEntry, Merchant
from api.throttles import ApiKeyRateThrottle
from payments.models import Adjustment
from recurring.models import Billing
from tests.api.conftest import billing_body, make_key
from tests.payments.conftest import charged

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"


@pytest.fixture
def alpha(transactional_db, bank_path, broker, monkeypatch) -> tuple[Merchant, str]:
    """A merchant with a key; no throttling in the way (schemathesis sends thousands of requests)."""
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "1000000/min"})
    merchant = Merchant.objects.create(name="Alpha Gym", code="alpha")
    return merchant, make_key(merchant)


def at_once(count: int, send) -> list[requests.Response]:
    """``send()`` from ``count`` threads released together."""
    barrier, answers = threading.Barrier(count), [None] * count

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = send()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def test_the_same_idempotency_key_at_the_same_moment_creates_one_billing(live_server, alpha):
    merchant, key = alpha
    headers = {"Authorization": f"Api-Key {key}", "Idempotency-Key": "register-GYM-1001"}
    url = f"{live_server.url}/api/v1/billings/"
    answers = at_once(4, lambda: requests.post(url, json=billing_body(), headers=headers, timeout=60))
    assert [answer.status_code for answer in answers] == [201] * 4, [a.text for a in answers]
    assert len({answer.text for answer in answers}) == 1  # the first answer, to every twin
    assert sum(answer.headers.get("Idempotent-Replayed") == "true" for answer in answers) == 3
    assert Billing.objects.filter(merchant=merchant).count() == 1
    assert AuditEntry.objects.filter(merchant=merchant, action="recurring.billing.created").count() == 1


def test_the_same_refund_at_the_same_moment_moves_money_once(live_server, alpha):
    merchant, key = alpha
    tx = charged(merchant, invoice_number="INV-1", amount=100_000)
    headers = {"Authorization": f"Api-Key {key}", "Idempotency-Key": "refund-INV-1"}
    url = f"{live_server.url}/api/v1/transactions/INV-1/refund/"
    body = {"amount": 40_000, "reason": "customer asked"}
    answers = at_once(4, lambda: requests.post(url, json=body, headers=headers, timeout=60))
    assert [answer.status_code for answer in answers] == [200] * 4, [a.text for a in answers]
    assert Adjustment.objects.filter(transaction=tx).count() == 1
    tx.refresh_from_db()
    assert tx.refunded_amount == 40_000


def test_schemathesis_finds_no_server_error_and_no_answer_breaking_the_schema(live_server, alpha, tmp_path):
    merchant, key = alpha
    headers = {"Authorization": f"Api-Key {key}"}
    assert requests.post(f"{live_server.url}/api/v1/billings/", json=billing_body(), headers=headers).status_code == 201
    charged(merchant, invoice_number="INV-1")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{live_server.url}/api/v1/schema/?format=json",
            "--url",
            live_server.url,
            "-H",
            f"Authorization: Api-Key {key}",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "25",
            "--workers",
            "1",
            "--seed",
            "18",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "15 passed" in output or "passed" in output

"""Transactions over the API: All Report's search with cursor pages and totals, a single payment, void,
refund (scope refunds) and cancel of a scheduled execution."""

from __future__ import annotations

from datetime import timedelta

from accounts.models import AuditEntry
from payments.models import Adjustment, Transaction
from recurring.models import CancelledExecution
from tests.api.conftest import billing_body, payment_body
from tests.payments.conftest import charged, make_transaction


def test_list_filters_pages_by_cursor_and_gives_the_totals_of_the_whole_result(api, merchant, other_merchant):
    for number in range(5):
        make_transaction(merchant, amount=100_000 + number, invoice_number=f"INV-{number}")
    make_transaction(other_merchant, invoice_number="INV-B")
    first = api.get("/api/v1/transactions/", {"page_size": 2, "sort": "invoice_number"})
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["count"] == 5 and body["total_amount"] == 500_010
    assert [row["invoice_number"] for row in body["results"]] == ["INV-0", "INV-1"]
    assert body["start_date"] and body["end_date"] == merchant.local_today().isoformat()
    invoices = [row["invoice_number"] for row in body["results"]]
    url = body["next"]
    while url:
        page = api.get(url.split("testserver")[1]).json()
        assert page["count"] == 5
        invoices += [row["invoice_number"] for row in page["results"]]
        url = page["next"]
    assert invoices == [f"INV-{n}" for n in range(5)]
    only = api.get("/api/v1/transactions/", {"amount": 100_003}).json()
    assert [row["invoice_number"] for row in only["results"]] == ["INV-3"]


def test_a_bad_search_is_a_problem_naming_the_field(api):
    response = api.get("/api/v1/transactions/", {"start_date": "2020-01-01", "end_date": "2019-01-01"})
    assert response.status_code == 400 and "end_date" in response.json()["errors"]
    assert api.get("/api/v1/transactions/", {"status": "nonsense"}).status_code == 400


def test_a_single_payment_is_created_and_read_back(api, merchant):
    tomorrow = merchant.local_today() + timedelta(days=1)
    response = api.post("/api/v1/transactions/", payment_body(merchant, execute_date=tomorrow.isoformat()))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "scheduled" and body["amount"] == 499000 and body["card"]["masked"] == "555555******4444"
    assert api.get("/api/v1/transactions/INV-API-0001/").json()["execute_date"] == tomorrow.isoformat()
    assert AuditEntry.objects.filter(merchant=merchant, action="payments.single_payment.created").exists()
    again = api.post("/api/v1/transactions/", payment_body(merchant))
    assert again.status_code == 409 and "used already" in again.json()["detail"]


def test_a_single_payment_in_the_past_or_without_customer_is_refused(api, merchant):
    yesterday = merchant.local_today() - timedelta(days=1)
    assert (
        api.post("/api/v1/transactions/", payment_body(merchant, execute_date=yesterday.isoformat())).status_code == 409
    )
    body = payment_body(merchant)
    del body["customer_id"]
    assert api.post("/api/v1/transactions/", body).status_code == 409
    assert not Transaction.objects.filter(merchant=merchant).exists()


def test_void_and_refund(api, merchant):
    voided = charged(merchant, invoice_number="INV-V")
    response = api.post("/api/v1/transactions/INV-V/void/", {"reason": "customer asked"})
    assert response.status_code == 200, response.content
    assert response.json()["transaction"]["status"] == "voided"
    assert response.json()["adjustment"]["status"] == "approved"
    twice = api.post("/api/v1/transactions/INV-V/void/", {"reason": "customer asked"})
    assert twice.status_code == 409 and "voided already" in twice.json()["detail"]
    assert Adjustment.objects.filter(transaction=voided).count() == 1

    charged(merchant, invoice_number="INV-R", amount=150_000)
    part = api.post("/api/v1/transactions/INV-R/refund/", {"amount": 50_000, "reason": "partial"})
    assert part.json()["transaction"]["status"] == "partially_refunded"
    too_much = api.post("/api/v1/transactions/INV-R/refund/", {"amount": 100_001, "reason": "too much"})
    assert too_much.status_code == 409 and "left to refund" in too_much.json()["detail"]
    entry = AuditEntry.objects.filter(merchant=merchant, action="payments.transaction.refunded").get()
    assert entry.actor_username == "API key membership system" and entry.data["request_id"]


def test_cancel_a_scheduled_single_payment_and_a_future_execution(api, merchant):
    make_transaction(merchant, invoice_number="INV-C", execute_date=merchant.local_today() + timedelta(days=2))
    response = api.post("/api/v1/transactions/INV-C/cancel/", {"reason": "not needed"})
    assert response.status_code == 200, response.content
    assert Transaction.objects.get(invoice_number="INV-C").status == Transaction.Status.CANCELLED
    again = api.post("/api/v1/transactions/INV-C/cancel/", {"reason": "not needed"})
    assert again.status_code == 409

    api.post("/api/v1/billings/", billing_body())
    billing_next = api.get("/api/v1/billings/GYM-1001/").json()["next_execute_date"]
    invoice = f"GYM-1001-{billing_next.replace('-', '')}"
    cancelled = api.post(f"/api/v1/transactions/{invoice}/cancel/", {"reason": "holiday"})
    assert cancelled.status_code == 200, cancelled.content
    assert CancelledExecution.objects.filter(merchant=merchant, invoice_number=invoice).exists()
    assert api.post("/api/v1/transactions/GYM-1001-20000101/cancel/", {"reason": "x" * 3}).status_code in (404, 409)
    assert api.post("/api/v1/transactions/NOPE/cancel/", {"reason": "nope"}).status_code == 404


def test_refund_needs_the_refunds_scope(merchant):
    from tests.api.conftest import ApiClient, make_key

    charged(merchant, invoice_number="INV-S")
    reader = ApiClient(make_key(merchant, "reader", ["transactions"]))
    response = reader.post("/api/v1/transactions/INV-S/refund/", {"amount": 1, "reason": "abc"})
    assert response.status_code == 403 and "refunds" in response.json()["detail"]
    assert reader.get("/api/v1/transactions/INV-S/").status_code == 200

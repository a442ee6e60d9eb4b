"""Billings over the API: register (card to the acquirer, never stored or echoed), read, list, change as
Manage Recurring does, preview, delete; each write in User Activity as the key with the request id."""

from __future__ import annotations

import json

from accounts.models import AuditEntry
from recurring.models import Billing
from tests.api.conftest import billing_body


def test_registering_a_billing_tokenizes_the_card_and_answers_it_masked(api, merchant):
    response = api.post("/api/v1/billings/", billing_body(), headers={"X-Request-Id": "req-123"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["billing_number"] == "GYM-1001" and body["amount"] == 250000 and body["source"] == "api"
    assert body["card"]["masked"] == "411111******1111"
    assert body["phone"] == "+6281234567890"
    assert response["Location"].endswith("/api/v1/billings/GYM-1001/")
    assert "4111111111111111" not in response.content.decode()
    assert set(body["card"]) == {"masked", "expiry", "issuer", "brand", "holder_name", "holder_phone"}  # no CVV
    billing = Billing.objects.get(merchant=merchant, billing_number="GYM-1001")
    assert billing.card_token and billing.next_execute_date is not None
    entry = AuditEntry.objects.get(merchant=merchant, action="recurring.billing.created")
    assert entry.actor is None and entry.actor_username == "API key membership system"
    assert entry.data["request_id"] == "req-123"
    assert response["X-Request-Id"] == "req-123"


def test_a_bad_billing_gets_a_problem_with_a_field_map(api):
    body = billing_body(amount=0, schedule={"kind": "date", "days": [31], "months": [1]})
    body["card"]["number"] = "4111 1111 1111 1112"
    response = api.post("/api/v1/billings/", body)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 400 and problem["title"] == "Bad Request"
    assert {"amount", "card.number", "schedule.days.0"} <= set(problem["errors"]), problem


def test_an_amount_outside_the_merchants_limits_is_refused(api, merchant):
    response = api.post("/api/v1/billings/", billing_body(amount=1))
    assert response.status_code == 409 and "between" in response.json()["detail"]
    assert not Billing.objects.filter(merchant=merchant).exists()


def test_a_billing_number_used_already_is_refused(api):
    assert api.post("/api/v1/billings/", billing_body()).status_code == 201
    again = api.post("/api/v1/billings/", billing_body(billing_number="gym-1001"))
    assert again.status_code == 409 and "used already" in again.json()["detail"]


def test_a_card_the_bank_refuses_is_a_conflict_and_nothing_is_stored(api, merchant):
    body = billing_body()
    body["card"]["expiry"] = "01/20"
    response = api.post("/api/v1/billings/", body)
    assert response.status_code == 409 and "acquirer refused" in response.json()["detail"]
    assert not Billing.objects.filter(merchant=merchant).exists()


def test_read_list_change_preview_and_delete(api, merchant):
    api.post("/api/v1/billings/", billing_body())
    api.post("/api/v1/billings/", billing_body(billing_number="GYM-1002", customer_id="CUST-9"))
    assert api.get("/api/v1/billings/gym-1001/").json()["billing_number"] == "GYM-1001"
    listed = api.get("/api/v1/billings/", {"page_size": 1}).json()
    assert [b["billing_number"] for b in listed["results"]] == ["GYM-1002"] and listed["next"]
    second = api.get(listed["next"].split("testserver")[1]).json()
    assert [b["billing_number"] for b in second["results"]] == ["GYM-1001"] and second["next"] is None
    assert [b["billing_number"] for b in api.get("/api/v1/billings/", {"customer_id": "CUST-9"}).json()["results"]] == [
        "GYM-1002"
    ]

    changed = api.patch(
        "/api/v1/billings/GYM-1001/",
        {"schedule": {"kind": "day", "weekdays": [0], "months": [12]}, "status": "inactive", "type": "reminder"},
    )
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert body["schedule"]["kind"] == "day" and body["status"] == "inactive" and body["type"] == "reminder"
    assert body["next_execute_date"] is None
    actions = set(AuditEntry.objects.filter(merchant=merchant).values_list("action", flat=True))
    assert {
        "recurring.billing.schedule_changed",
        "recurring.billing.inactivated",
        "recurring.billing.type_changed",
    } <= actions

    preview = api.get("/api/v1/billings/GYM-1001/preview/", {"count": 3}).json()
    assert preview["description"] == "Every Monday in Dec" and len(preview["dates"]) == 3

    assert api.delete("/api/v1/billings/GYM-1001/?reason=customer+left").status_code == 204
    assert api.get("/api/v1/billings/GYM-1001/").status_code == 404
    entry = AuditEntry.objects.get(merchant=merchant, action="recurring.billing.deleted")
    assert entry.reason == "customer left" and entry.actor_username == "API key membership system"


def test_an_empty_change_and_a_past_full_date_are_refused(api, merchant):
    api.post("/api/v1/billings/", billing_body())
    assert api.patch("/api/v1/billings/GYM-1001/", {}).status_code == 400
    past = api.patch("/api/v1/billings/GYM-1001/", {"schedule": {"kind": "full_date", "dates": ["2000-01-01"]}})
    assert past.status_code == 400 and "2000-01-01" in json.dumps(past.json()["errors"])

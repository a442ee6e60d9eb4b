"""Who may call what: keys (hashed, revocable, last use), one test per scope, and another merchant's
objects as 404 over every endpoint. The endpoints are walked from the URL resolver, not a hand list."""

from __future__ import annotations

import hashlib

import pytest
from django.urls import get_resolver
from django.utils import timezone

from accounts.audit import Actor
from accounts.models import AuditEntry
from api import keys
from api.models import ApiKey
from batch.models import Batch
from recurring.models import Billing
from tests.api.conftest import ApiClient, billing_body, make_key, payment_body
from tests.payments.conftest import charged
from tests.test_permission_matrix import walk

# Each endpoint (by its URL name): the methods it answers and the scope they need.
ENDPOINTS = {
    "api:billings": {"get": "billings", "post": "billings"},
    "api:billing": {"get": "billings", "patch": "billings", "delete": "billings"},
    "api:billing_preview": {"get": "billings"},
    "api:transactions": {"get": "transactions", "post": "transactions"},
    "api:transaction": {"get": "transactions"},
    "api:transaction_void": {"post": "refunds"},
    "api:transaction_refund": {"post": "refunds"},
    "api:transaction_cancel": {"post": "transactions"},
    "api:batches": {"post": "batches"},
    "api:batch": {"get": "batches"},
    "api:batch_process": {"post": "batches"},
}
PUBLIC = {"api:schema", "api:docs"}


def test_every_api_endpoint_is_in_the_matrix():
    names = {name for name, route in walk(get_resolver()) if route.startswith("api/v1/")}
    assert names == set(ENDPOINTS) | PUBLIC


@pytest.fixture
def alpha_objects(merchant):
    """One object of Alpha behind every endpoint with an id, made through the API itself."""
    api = ApiClient(make_key(merchant, "setup"))
    assert api.post("/api/v1/billings/", billing_body()).status_code == 201
    tx = charged(merchant, invoice_number="INV-A")
    batch = Batch.objects.create(merchant=merchant, kind="registration", file_name="a.csv", content_hash="0" * 64)
    return {"billing_number": "GYM-1001", "invoice_number": tx.invoice_number, "pk": batch.pk}


def path_of(name: str, objects: dict) -> str:
    route = dict(walk(get_resolver()))[name]
    path = "/" + route
    for key, value in objects.items():
        path = path.replace(f"<str:{key}>", str(value)).replace(f"<int:{key}>", str(value))
    return path


def bodies(merchant) -> dict:
    return {
        "api:billings": billing_body(billing_number="BETA-1"),
        "api:billing": {"status": "inactive"},
        "api:transactions": payment_body(merchant),
        "api:transaction_void": {"reason": "outsider"},
        "api:transaction_refund": {"amount": 1, "reason": "outsider"},
        "api:transaction_cancel": {"reason": "outsider"},
    }


@pytest.mark.parametrize(
    "name", [n for n, route in ENDPOINTS.items() if n not in ("api:billings", "api:transactions", "api:batches")]
)
def test_another_merchants_key_gets_404_for_every_method_and_changes_nothing(
    name, alpha_objects, merchant, other_merchant
):
    outsider = ApiClient(make_key(other_merchant, "beta system"))
    path = path_of(name, alpha_objects)
    before = (list(Billing.objects.values()), AuditEntry.objects.filter(merchant=merchant).count())
    for method in ENDPOINTS[name]:
        response = getattr(outsider, method)(path, bodies(other_merchant).get(name, {}) if method != "get" else None)
        assert response.status_code == 404, (method, path, response.content)
        assert response["Content-Type"] == "application/problem+json"
    assert (list(Billing.objects.values()), AuditEntry.objects.filter(merchant=merchant).count()) == before


def test_another_merchants_lists_show_nothing_of_alpha(alpha_objects, other_merchant):
    outsider = ApiClient(make_key(other_merchant, "beta system"))
    assert outsider.get("/api/v1/billings/").json()["results"] == []
    listed = outsider.get("/api/v1/transactions/").json()
    assert listed["results"] == [] and listed["count"] == 0
    assert outsider.get("/api/v1/billings/", {"billing_number": "GYM-1001"}).json()["results"] == []


@pytest.mark.parametrize("scope", ["billings", "transactions", "batches", "refunds"])
def test_each_scope_opens_its_endpoints_and_no_other(scope, alpha_objects, merchant):
    """A key without ``scope`` gets 403 on exactly its endpoints; a key with only ``scope`` gets 403 on
    every other endpoint and reads its own."""
    others = [s for s in ("billings", "transactions", "batches", "refunds") if s != scope]
    without = ApiClient(make_key(merchant, f"all but {scope}", others))
    only = ApiClient(make_key(merchant, f"only {scope}", [scope]))
    for name, methods in ENDPOINTS.items():
        path = path_of(name, alpha_objects)
        for method, needed in methods.items():
            client = without if needed == scope else only
            refused = getattr(client, method)(path, {} if method != "get" else None)
            assert refused.status_code == 403, (name, method, refused.content)
            assert needed in refused.json()["detail"]
            if needed == scope and method == "get":
                assert only.get(path).status_code == 200, name


def test_no_key_a_wrong_key_and_a_revoked_key_get_401(merchant, alice):
    raw = make_key(merchant, "to revoke")
    assert ApiClient(None).get("/api/v1/billings/").status_code == 401
    assert ApiClient(None).get("/api/v1/billings/")["WWW-Authenticate"] == "Api-Key"
    assert ApiClient(raw + "x").get("/api/v1/billings/").status_code == 401
    assert ApiClient("bbo_nothing").get("/api/v1/billings/").status_code == 401
    assert ApiClient(raw).get("/api/v1/billings/").status_code == 200
    key = ApiKey.objects.get(name="to revoke")
    assert keys.revoke_key(Actor.of(alice.user), key, "leaked")
    response = ApiClient(raw).get("/api/v1/billings/")
    assert response.status_code == 401 and response["Content-Type"] == "application/problem+json"
    assert AuditEntry.objects.filter(action="api.key.revoked", reason="leaked").exists()


def test_a_key_is_stored_hashed_and_records_its_last_use(merchant):
    raw = make_key(merchant, "hashed")
    key = ApiKey.objects.get(name="hashed")
    assert raw not in str(list(ApiKey.objects.values()))
    assert key.hashed_key == hashlib.sha256(raw.encode()).hexdigest()
    assert key.last_used_at is None
    ApiClient(raw).get("/api/v1/billings/")
    key.refresh_from_db()
    assert key.last_used_at is not None and timezone.now() - key.last_used_at < timezone.timedelta(seconds=5)
    entry = AuditEntry.objects.get(action="api.key.created")
    assert raw not in str(entry.data) and entry.data["scopes"] == sorted(entry.data["scopes"])


def test_no_session_or_csrf_cookie_is_made_for_a_key(api):
    response = api.post("/api/v1/billings/", billing_body())
    assert response.status_code == 201
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies


def test_throttling_per_key_answers_429_with_retry_after(monkeypatch, merchant):
    from api.throttles import ApiKeyRateThrottle

    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    first, second = ApiClient(make_key(merchant, "one")), ApiClient(make_key(merchant, "two"))
    assert [first.get("/api/v1/billings/").status_code for _ in range(3)] == [200, 200, 200]
    limited = first.get("/api/v1/billings/")
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert limited["Content-Type"] == "application/problem+json"
    assert second.get("/api/v1/billings/").status_code == 200  # counted per key

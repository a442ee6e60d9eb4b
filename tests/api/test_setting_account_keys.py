"""Setting Account's API keys: a merchant admin makes one (shown once) and revokes it, each after the
authenticator code and a reason; staff cannot; another merchant's key is a 404."""

from __future__ import annotations

import time

from django.test import Client

from accounts.models import AuditEntry
from accounts.services import current_code
from api.models import ApiKey
from tests.api.conftest import ApiClient, make_key
from tests.conftest import make_persona, verified_client


def test_an_admin_makes_a_key_after_a_code_and_reason_and_sees_it_once(alice, merchant):
    client = verified_client(alice)
    assert "API keys" in client.get("/account/").content.decode()
    form = client.get("/account/api-keys/new/")
    assert form.status_code == 200 and "Key name" in form.content.decode()
    made = client.post(
        "/account/api-keys/new/",
        {
            "name": "membership",
            "scopes": ["billings", "refunds"],
            "code": current_code(alice.device),
            "reason": "new system",
        },
    )
    assert made.status_code == 200
    key = ApiKey.objects.get(merchant=merchant)
    raw = made.context["raw"]
    assert raw in made.content.decode() and key.scopes == ["billings", "refunds"]
    assert ApiClient(raw).get("/api/v1/billings/").status_code == 200
    assert raw not in client.get("/account/").content.decode()  # never shown again
    wrong = client.post(
        "/account/api-keys/new/", {"name": "school", "scopes": ["billings"], "code": "000000", "reason": "another"}
    )
    assert wrong.status_code == 400 and ApiKey.objects.count() == 1  # a wrong code makes nothing
    entry = AuditEntry.objects.get(action="api.key.created")
    assert entry.actor == alice.user and entry.reason == "new system" and raw not in str(entry.data)


def test_an_admin_revokes_a_key_after_a_code_and_reason(alice, merchant):
    raw = make_key(merchant, "old system")
    key = ApiKey.objects.get(name="old system")
    client = verified_client(alice)
    code = current_code(alice.device, at=time.time())
    response = client.post(f"/account/api-keys/{key.pk}/revoke/", {"code": code, "reason": "system retired"})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert ApiClient(raw).get("/api/v1/billings/").status_code == 401
    assert AuditEntry.objects.get(action="api.key.revoked").reason == "system retired"


def test_staff_cannot_and_another_merchants_admin_gets_404(merchant, charlie):
    make_key(merchant, "alpha system")
    key = ApiKey.objects.get(name="alpha system")
    staff = make_persona(merchant, "staffer", menus=["all_report"])
    assert verified_client(staff).get("/account/api-keys/new/").status_code == 403
    assert verified_client(staff).post(f"/account/api-keys/{key.pk}/revoke/").status_code == 403
    outsider = verified_client(charlie)
    assert outsider.post(f"/account/api-keys/{key.pk}/revoke/", {"code": "1", "reason": "abc"}).status_code == 404
    assert "alpha system" not in outsider.get("/account/").content.decode()
    assert Client().get("/account/api-keys/new/").status_code == 302  # sign in first

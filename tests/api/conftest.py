"""API fixtures: keys of the personas' merchants, a client that sends one, and the worker's tasks run
in-process (batch checks, charges noted)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.audit import Actor
from api import keys
from api.models import Scope
from tests.dates import card_expiry

ALL_SCOPES = list(Scope.values)


def make_key(merchant, name: str = "membership system", scopes=ALL_SCOPES) -> str:
    _, raw = keys.create_key(Actor(user=None, merchant=merchant, name="test"), name, scopes)
    return raw


class ApiClient:
    """A test client sending ``Authorization: Api-Key <key>`` and JSON bodies."""

    def __init__(self, key: str | None):
        self.client = Client()
        self.headers = {"Authorization": f"Api-Key {key}"} if key else {}

    def _call(self, method: str, path: str, data=None, headers=None, **kwargs):
        call = getattr(self.client, method)
        all_headers = {**self.headers, **(headers or {})}
        if method in ("post", "patch", "delete", "put") and "content_type" not in kwargs and data is not None:
            kwargs["content_type"] = "application/json"
        return (
            call(path, data, headers=all_headers, **kwargs)
            if data is not None
            else call(path, headers=all_headers, **kwargs)
        )

    def get(self, path, data=None, **kwargs):
        return self._call("get", path, data, **kwargs)

    def post(self, path, data=None, **kwargs):
        return self._call("post", path, data if data is not None else {}, **kwargs)

    def patch(self, path, data=None, **kwargs):
        return self._call("patch", path, data if data is not None else {}, **kwargs)

    def delete(self, path, data=None, **kwargs):
        return self._call("delete", path, data, **kwargs)


@pytest.fixture(autouse=True)
def api_environment(settings, tmp_path, monkeypatch):
    """Batch checks run in-process after commit; charges queued are only noted."""
    from batch import pipeline, tasks
    from payments import tasks as payment_tasks

    settings.BATCH_UPLOAD_DIR = tmp_path / "uploads"
    monkeypatch.setattr(tasks.validate_batch, "delay", pipeline.validate)
    monkeypatch.setattr(tasks.process_batch, "delay", pipeline.process)
    queued: list[int] = []
    monkeypatch.setattr(payment_tasks.charge_many, "delay", lambda ids: queued.extend(ids))
    return queued


@pytest.fixture
def api(merchant) -> ApiClient:
    return ApiClient(make_key(merchant))


@pytest.fixture
def outsider_api(other_merchant) -> ApiClient:
    return ApiClient(make_key(other_merchant, "beta system"))


def billing_body(**changes) -> dict:
    body = {
        "billing_number": "GYM-1001",
        "customer_id": "CUST-501",
        "customer_name": "Andi Wijaya",
        "email": "andi@example.com",
        "phone": "081234567890",
        "amount": 250000,
        "type": "recurring",
        "schedule": {"kind": "date", "days": [1, 15], "months": list(range(1, 13))},
        "card": {
            "number": "4111 1111 1111 1111",
            "expiry": card_expiry(),
            "cvv": "123",
            "holder_name": "ANDI WIJAYA",
            "holder_phone": "+6281234567890",
        },
    }
    body.update(changes)
    return body


def payment_body(merchant, **changes) -> dict:
    body = {
        "invoice_number": "INV-API-0001",
        "customer_id": "CUST-502",
        "amount": 499000,
        "execute_date": merchant.local_today().isoformat(),
        "description": "Personal training pack",
        "card": {"number": "5555555555554444", "expiry": card_expiry(), "holder_name": "SITI RAHMAWATI"},
    }
    body.update(changes)
    return body

"""Callbacks go to public addresses only (TESTING "Outbound calls"): checked when the URL is saved and again
when each delivery resolves it; no redirect is followed. Names resolve through the ``dns`` fixture (no
network); the merchant's server is a local HTTP server on 127.0.0.1, reachable only where a test allows
loopback with the test-only setting."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditEntry
from billing_bo import settings as project_settings
from payments import callbacks
from payments.models import CallbackAttempt, CallbackDelivery
from tests.conftest import verified_client
from tests.payments.test_callbacks import SECRET, Receiver

INTERNAL = [
    "http://127.0.0.1:8000/hooks",
    "http://localhost/hooks",  # resolves to 127.0.0.1 (dns fixture)
    "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/hooks",
    "https://192.168.0.10/hooks",
    "http://172.16.5.4/hooks",
    "http://0.0.0.0:8000/",
    "http://[::1]:8000/",
    "http://[fe80::1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://240.0.0.1/",  # reserved
    "https://intranet.alpha.example/hooks",  # a name whose address is private
    "https://split.alpha.example/hooks",  # one public address and one private: refused
    "https://nowhere.alpha.example/hooks",  # does not resolve
]


@pytest.fixture
def names(dns):
    dns.update(
        {
            "localhost": ["127.0.0.1"],
            "hooks.alpha.example": ["93.184.216.34"],
            "intranet.alpha.example": ["10.0.0.7"],
            "split.alpha.example": ["93.184.216.34", "192.168.1.1"],
        }
    )
    return dns


@pytest.mark.parametrize("url", INTERNAL)
def test_a_callback_url_to_an_internal_or_unknown_address_is_refused_when_saved(alice, merchant, names, url):
    response = verified_client(alice).post(reverse("accounts:account"), {"form": "callback", "callback_url": url})
    assert response.status_code == 200
    [error] = response.context["callback_form"].errors["callback_url"]
    assert "public internet addresses only" in error or "cannot be resolved" in error
    merchant.refresh_from_db()
    assert merchant.callback_url == ""
    assert not AuditEntry.objects.filter(action="accounts.merchant.callback_changed").exists()


def test_a_callback_url_whose_name_has_only_public_addresses_is_saved(alice, merchant, names):
    response = verified_client(alice).post(
        reverse("accounts:account"), {"form": "callback", "callback_url": "https://hooks.alpha.example/billing"}
    )
    assert response.status_code == 302
    merchant.refresh_from_db()
    assert merchant.callback_url == "https://hooks.alpha.example/billing"


def test_loopback_is_refused_unless_the_test_only_setting_allows_it():
    assert project_settings.CALLBACK_ALLOW_LOOPBACK is False


@pytest.fixture
def receiver():
    server = Receiver([])
    yield server
    server.close()


@pytest.fixture
def hooked_by_name(merchant, receiver, names):
    """The merchant's URL names a host; the names fixture decides where it points at delivery time."""
    port = receiver.server.server_port
    merchant.callback_url = f"http://hooks.alpha.example:{port}/billing/callback"
    merchant.callback_secret = SECRET
    merchant.save()
    return merchant


def test_a_delivery_whose_name_now_resolves_to_an_internal_address_is_refused_and_sends_nothing(
    hooked_by_name, receiver, names
):
    delivery = callbacks.notify(hooked_by_name, "payment.failed", {"invoice_number": "INV-1"})
    names["hooks.alpha.example"] = ["127.0.0.1"]  # DNS changed after the URL was saved
    assert callbacks.deliver(delivery.pk) == "failed"
    attempt = CallbackAttempt.objects.get()
    assert attempt.status_code is None and attempt.error.startswith("Not sent:")
    assert "127.0.0.1" not in attempt.error  # the log does not map internal names to addresses
    assert receiver.requests == []
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at is not None  # retried on its schedule


def test_a_delivery_connects_to_the_address_it_checked_and_names_the_host(hooked_by_name, receiver, names, settings):
    settings.CALLBACK_ALLOW_LOOPBACK = True
    names["hooks.alpha.example"] = ["127.0.0.1"]
    delivery = callbacks.notify(hooked_by_name, "payment.failed", {"invoice_number": "INV-1"})
    assert callbacks.deliver(delivery.pk) == "delivered"
    [request] = receiver.requests
    assert request["headers"]["Host"] == f"hooks.alpha.example:{receiver.server.server_port}"


def test_a_redirect_is_not_followed_and_counts_as_a_failed_attempt(hooked_by_name, receiver, names, settings):
    settings.CALLBACK_ALLOW_LOOPBACK = True
    names["hooks.alpha.example"] = ["127.0.0.1"]
    receiver.statuses = [302]
    receiver.location = f"http://127.0.0.1:{receiver.server.server_port}/internal/admin"
    delivery = callbacks.notify(hooked_by_name, "payment.failed", {"invoice_number": "INV-1"})
    assert callbacks.deliver(delivery.pk) == "failed"
    assert [r["headers"].get("Host") for r in receiver.requests] == [
        f"hooks.alpha.example:{receiver.server.server_port}"
    ]  # one request: the redirect's target was never called
    attempt = CallbackAttempt.objects.get()
    assert (attempt.status_code, attempt.error) == (302, "HTTP 302")
    assert CallbackDelivery.objects.get().status == "pending"

"""A delivery goes to the merchant's current callback URL at each attempt, and a failed one can be resent
(issue #20 item 7). The merchant's old and new servers are local HTTP servers (loopback allowed by the
test-only setting)."""

from __future__ import annotations

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry
from payments import callbacks, tasks
from payments.models import CallbackAttempt, CallbackDelivery
from tests.conftest import make_persona, verified_client
from tests.payments.test_callbacks import SECRET, Receiver


@pytest.fixture
def servers(settings):
    settings.CALLBACK_ALLOW_LOOPBACK = True
    old, new = Receiver([]), Receiver([])
    yield old, new
    old.close()
    new.close()


@pytest.fixture
def hooked(merchant, servers):
    merchant.callback_url = servers[0].url
    merchant.callback_secret = SECRET
    merchant.save()
    return merchant


@pytest.fixture
def queued(monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr(tasks.deliver_callback, "delay", lambda delivery_id: sent.append(delivery_id))
    return sent


def failed_delivery(merchant, servers, settings) -> CallbackDelivery:
    """A delivery that gave up on the old server."""
    settings.CALLBACK_RETRY_COUNTDOWNS = ()
    servers[0].statuses = [500]
    delivery = callbacks.notify(merchant, "payment.failed", {"invoice_number": "INV-9"})
    assert callbacks.deliver(delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    return delivery


def test_a_retry_goes_to_the_callback_url_the_merchant_saved_since(hooked, servers, settings):
    old, new = servers
    settings.CALLBACK_RETRY_COUNTDOWNS = (60,)
    old.statuses = [404]
    delivery = callbacks.notify(hooked, "payment.failed", {"invoice_number": "INV-1"})
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert callbacks.deliver(delivery.pk) == "failed"
        hooked.callback_url = new.url.replace("/billing/callback", "/fixed")
        hooked.save()
        clock.shift(61)
        assert callbacks.deliver(delivery.pk) == "delivered"
    assert len(old.requests) == 1 and len(new.requests) == 1
    delivery.refresh_from_db()
    assert delivery.url == hooked.callback_url  # the log shows where it went last


def test_the_admin_resends_a_failed_delivery_once_to_the_current_url(
    alice, hooked, servers, settings, queued, django_capture_on_commit_callbacks
):
    old, new = servers
    delivery = failed_delivery(hooked, servers, settings)
    hooked.callback_url = new.url
    hooked.save()
    client = verified_client(alice)
    url = reverse("payments:callback_resend", args=[delivery.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, follow=True)
    assert "queued again" in response.content.decode()
    assert queued == [delivery.pk]
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at is not None
    entry = AuditEntry.objects.get(action="payments.callback.resent")
    assert entry.data["url"] == new.url and SECRET not in str(entry.data)

    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(url, follow=True)  # a second click: nothing more
    assert "Only a failed delivery can be resent" in again.content.decode()
    assert queued == [delivery.pk] and AuditEntry.objects.filter(action="payments.callback.resent").count() == 1

    assert tasks.deliver_callback.run(delivery.pk) == "delivered"
    assert len(new.requests) == 1
    assert list(CallbackAttempt.objects.values_list("number", "status_code")) == [(1, 500), (2, 200)]


def test_a_delivered_or_pending_delivery_is_not_resent(alice, hooked, queued, django_capture_on_commit_callbacks):
    pending = callbacks.notify(hooked, "payment.failed", {})
    delivered = callbacks.notify(hooked, "payment.failed", {})
    CallbackDelivery.objects.filter(pk=delivered.pk).update(status="delivered")
    queued.clear()
    client = verified_client(alice)
    for delivery in (pending, delivered):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("payments:callback_resend", args=[delivery.pk]), follow=True)
        assert "Only a failed delivery can be resent" in response.content.decode()
    assert queued == [] and not AuditEntry.objects.filter(action="payments.callback.resent").exists()
    assert dict(CallbackDelivery.objects.values_list("pk", "status")) == {
        pending.pk: "pending",
        delivered.pk: "delivered",
    }


def test_resend_is_refused_while_callbacks_have_no_url_or_secret(alice, hooked, servers, settings, queued):
    delivery = failed_delivery(hooked, servers, settings)
    hooked.callback_secret = ""
    hooked.save()
    response = verified_client(alice).post(reverse("payments:callback_resend", args=[delivery.pk]), follow=True)
    assert "Set a callback URL and issue a signing secret first" in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == "failed" and queued == []


def test_resend_is_a_post_for_the_merchant_admin_only(alice, bob, hooked, servers, settings, other_merchant, queued):
    delivery = failed_delivery(hooked, servers, settings)
    url = reverse("payments:callback_resend", args=[delivery.pk])
    assert verified_client(alice).get(url).status_code == 405
    assert verified_client(bob).post(url).status_code == 403
    outsider = make_persona(other_merchant, "olga-admin", admin=True)
    assert verified_client(outsider).post(url).status_code == 404
    delivery.refresh_from_db()
    assert delivery.status == "failed" and queued == []


def test_the_delivery_page_offers_resend_on_a_failed_delivery_only(alice, hooked, servers, settings):
    client = verified_client(alice)
    delivery = failed_delivery(hooked, servers, settings)
    resend = reverse("payments:callback_resend", args=[delivery.pk])
    assert resend in client.get(reverse("payments:callback_detail", args=[delivery.pk])).content.decode()
    pending = callbacks.notify(hooked, "payment.failed", {})
    page = client.get(reverse("payments:callback_detail", args=[pending.pk])).content.decode()
    assert reverse("payments:callback_resend", args=[pending.pk]) not in page


def test_a_pending_delivery_is_not_sent_once_the_merchant_clears_the_callback_url(hooked, servers, settings):
    settings.CALLBACK_RETRY_COUNTDOWNS = (60,)
    delivery = callbacks.notify(hooked, "payment.failed", {"invoice_number": "INV-1"})
    hooked.callback_url = ""
    hooked.save()
    assert callbacks.deliver(delivery.pk) == "failed"
    assert CallbackAttempt.objects.get().error == "Not sent: no callback URL is set."
    assert servers[0].requests == []
    delivery.refresh_from_db()
    assert delivery.url == servers[0].url  # the log keeps the last address it had

"""Signed callbacks to the merchant's server (P8), against a real local HTTP server."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry
from accounts.services import current_code
from billing_bo.lib.signing import sign, verify
from payments import callbacks, services, tasks
from payments.models import CallbackAttempt, CallbackDelivery
from tests.conftest import verified_client
from tests.payments.conftest import make_transaction

SECRET = "merchant-signing-secret"


class Receiver:
    """A merchant server on localhost that answers with the next status of ``statuses``."""

    def __init__(self, statuses: list[int]):
        self.statuses = statuses
        self.requests: list[dict] = []
        self.location = ""  # where a 3xx answer points
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/billing/callback"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    server = Receiver([])
    yield server
    server.close()


@pytest.fixture
def hooked(merchant, receiver, settings):
    settings.CALLBACK_ALLOW_LOOPBACK = True  # the receiver is on 127.0.0.1; never allowed outside tests
    merchant.callback_url = receiver.url
    merchant.callback_secret = SECRET
    merchant.save()
    return merchant


@pytest.fixture
def queued(monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr(tasks.deliver_callback, "delay", lambda delivery_id: sent.append(delivery_id))
    return sent


def test_a_settled_charge_sends_a_signed_callback_the_merchant_can_verify(
    hooked, receiver, queued, django_capture_on_commit_callbacks
):
    tx = make_transaction(hooked)
    with django_capture_on_commit_callbacks(execute=True):
        services.charge(tx.pk)
    [delivery_id] = queued
    assert callbacks.deliver(delivery_id) == "delivered"

    [request] = receiver.requests
    headers = request["headers"]
    assert verify(SECRET, int(headers["X-Billing-Timestamp"]), request["body"], headers["X-Billing-Signature"])
    assert not verify(
        "another-secret", int(headers["X-Billing-Timestamp"]), request["body"], headers["X-Billing-Signature"]
    )
    payload = json.loads(request["body"])
    assert payload["event"] == "payment.succeeded" == headers["X-Billing-Event"]
    assert payload["data"]["invoice_number"] == tx.invoice_number and payload["data"]["amount"] == 150000
    assert payload["data"]["card"] == "411111******1111" and "4111111111111111" not in request["body"].decode()
    delivery = CallbackDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("delivered", 1)
    assert CallbackAttempt.objects.get().status_code == 200


def test_failed_attempts_are_logged_and_retried_on_the_schedule_then_given_up(hooked, receiver, settings):
    settings.CALLBACK_RETRY_COUNTDOWNS = (60, 300)
    receiver.statuses = [500, 503, 500]
    delivery = callbacks.notify(hooked, "payment.failed", {"invoice_number": "INV-1"})
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert callbacks.deliver(delivery.pk) == "failed"
        delivery.refresh_from_db()
        assert delivery.status == "pending" and delivery.next_attempt_at == timezone.now() + timedelta(seconds=60)
        assert callbacks.deliver(delivery.pk) == "not due"  # too early: nothing sent
        clock.shift(61)
        assert callbacks.deliver(delivery.pk) == "failed"
        clock.shift(301)
        assert callbacks.deliver(delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 3, None)
    assert list(CallbackAttempt.objects.values_list("number", "status_code")) == [(1, 500), (2, 503), (3, 500)]
    assert len(receiver.requests) == 3


def test_an_unreachable_server_is_an_attempt_with_its_error(hooked):
    hooked.callback_url = "http://127.0.0.1:9/closed"
    hooked.save()
    delivery = callbacks.notify(hooked, "payment.failed", {})
    assert callbacks.deliver(delivery.pk) == "failed"
    attempt = CallbackAttempt.objects.get()
    assert attempt.status_code is None and attempt.error


def test_without_a_callback_url_nothing_is_sent(merchant, queued, django_capture_on_commit_callbacks):
    tx = make_transaction(merchant)
    with django_capture_on_commit_callbacks(execute=True):
        services.charge(tx.pk)
    assert not CallbackDelivery.objects.exists() and queued == []


def test_send_due_queues_only_pending_deliveries_whose_time_has_come(hooked, queued):
    due = callbacks.notify(hooked, "payment.failed", {})
    later = callbacks.notify(hooked, "payment.failed", {})
    CallbackDelivery.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    done = callbacks.notify(hooked, "payment.failed", {})
    CallbackDelivery.objects.filter(pk=done.pk).update(status="delivered")
    assert callbacks.send_due() == 1 and queued == [due.pk]


def test_the_admin_sets_the_callback_url_and_sees_the_log(alice, hooked, dns):
    dns["alpha.example"] = ["93.184.216.34"]
    client = verified_client(alice)
    response = client.post(
        reverse("accounts:account"), {"form": "callback", "callback_url": "https://alpha.example/hooks"}
    )
    assert response.status_code == 302
    hooked.refresh_from_db()
    assert hooked.callback_url == "https://alpha.example/hooks"
    assert (
        AuditEntry.objects.get(action="accounts.merchant.callback_changed").data["callback_url"]["after"]
        == "https://alpha.example/hooks"
    )
    bad = client.post(reverse("accounts:account"), {"form": "callback", "callback_url": "ftp://x.example"})
    assert bad.status_code == 200 and bad.context["callback_form"].errors
    callbacks.notify(hooked, "payment.succeeded", {"invoice_number": "INV-LOG-1"})
    assert "INV-LOG-1" in client.get(reverse("payments:callbacks")).content.decode()


def test_staff_neither_see_nor_change_the_callback_settings(bob, hooked):
    client = verified_client(bob)
    assert client.get(reverse("accounts:account")).context["callback_form"] is None
    client.post(reverse("accounts:account"), {"form": "callback", "callback_url": "https://evil.example/"})
    hooked.refresh_from_db()
    assert hooked.callback_url.startswith("http://127.0.0.1")
    assert client.get(reverse("payments:callbacks")).status_code == 403


def test_a_new_signing_secret_needs_step_up_is_shown_once_and_never_logged(alice, hooked, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # a wrong code then the right one, at once
    client = verified_client(alice)
    url = reverse("accounts:callback_secret")
    assert client.post(url, {"code": "000000", "reason": "rotate"}).status_code == 400
    alice.device.refresh_from_db()
    response = client.post(url, {"code": current_code(alice.device), "reason": "rotate"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    hooked.refresh_from_db()
    assert hooked.callback_secret != SECRET and hooked.callback_secret in response.content.decode()
    entry = AuditEntry.objects.get(action="accounts.merchant.callback_secret_reissued")
    assert hooked.callback_secret not in f"{entry.data}{entry.search_text}{entry.reason}"


@pytest.fixture
def queued_chunks(monkeypatch):
    sent: list[list[int]] = []
    monkeypatch.setattr(tasks.deliver_callbacks, "delay", lambda delivery_ids: sent.append(delivery_ids))
    return sent


def test_notify_many_stores_one_delivery_per_item_and_queues_each_only_after_commit(
    hooked, queued, queued_chunks, django_capture_on_commit_callbacks
):
    from django.db import transaction as db

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), db.atomic():
        callbacks.notify_many(hooked, "billing.reminder", [{"n": 1}, {"n": 2}])
        raise Rollback
    assert not CallbackDelivery.objects.exists() and queued == [] and queued_chunks == []

    with django_capture_on_commit_callbacks(execute=True):
        deliveries = callbacks.notify_many(hooked, "billing.reminder", [{"n": n} for n in range(3)])
    assert [d.payload["data"] for d in CallbackDelivery.objects.order_by("pk")] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert queued_chunks == [[d.pk for d in deliveries]] and queued == []


def test_notify_many_sends_one_message_per_callback_chunk_and_a_lone_delivery_alone(
    hooked, queued, queued_chunks, settings, django_capture_on_commit_callbacks
):
    settings.CALLBACK_CHUNK = 2
    with django_capture_on_commit_callbacks(execute=True):
        many = callbacks.notify_many(hooked, "billing.reminder", [{"n": n} for n in range(5)])
        [alone] = callbacks.notify_many(hooked, "billing.reminder", [{"n": 5}])
    ids = [d.pk for d in many]
    assert queued_chunks == [ids[0:2], ids[2:4], ids[4:5]]
    assert queued == [alone.pk]


def test_a_chunk_of_deliveries_attempts_each_on_its_own_and_retries_each_on_its_own(
    hooked, receiver, queued, monkeypatch, settings
):
    """One message, three deliveries: the first is answered 500 (retried on its schedule), the second raises
    inside the sender (left pending: send_due queues it alone), the third is delivered all the same."""
    settings.CALLBACK_RETRY_COUNTDOWNS = (60,)
    receiver.statuses = [500, 200, 200]
    first, broken, third = (callbacks.notify(hooked, "billing.reminder", {"n": n}) for n in range(3))
    queued.clear()
    deliver = callbacks.deliver

    def deliver_or_raise(delivery_id):
        if delivery_id == broken.pk:
            raise RuntimeError("a bug in one delivery")
        return deliver(delivery_id)

    monkeypatch.setattr(callbacks, "deliver", deliver_or_raise)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert tasks.deliver_callbacks.run([first.pk, broken.pk, third.pk]) == {"failed": 1, "error": 1, "delivered": 1}
        statuses = dict(CallbackDelivery.objects.values_list("pk", "status"))
        assert statuses == {first.pk: "pending", broken.pk: "pending", third.pk: "delivered"}
        assert callbacks.send_due() == 1 and queued == [broken.pk]  # the one that raised, alone, at once
        monkeypatch.setattr(callbacks, "deliver", deliver)
        assert tasks.deliver_callback.run(broken.pk) == "delivered"
        clock.shift(61)
        assert callbacks.send_due() == 1 and queued == [broken.pk, first.pk]  # the 500, after its countdown
        assert tasks.deliver_callback.run(first.pk) == "delivered"
    assert [json.loads(r["body"])["data"]["n"] for r in receiver.requests] == [0, 2, 1, 0]
    assert sorted(CallbackAttempt.objects.values_list("delivery_id", "number")) == sorted(
        [(first.pk, 1), (first.pk, 2), (third.pk, 1), (broken.pk, 1)]
    )


def test_no_callback_is_stored_or_sent_before_the_merchant_has_a_signing_secret(
    hooked, queued, django_capture_on_commit_callbacks
):
    hooked.callback_secret = ""
    hooked.save()
    tx = make_transaction(hooked)
    with django_capture_on_commit_callbacks(execute=True):
        services.charge(tx.pk)
        assert callbacks.notify(hooked, "payment.failed", {"invoice_number": "INV-1"}) is None
    assert not CallbackDelivery.objects.exists() and queued == []


def test_a_pending_delivery_is_never_sent_unsigned_and_goes_out_signed_once_a_secret_exists(hooked, receiver, settings):
    """A delivery stored before the secret went missing (or before this rule): not sent with an empty key."""
    settings.CALLBACK_RETRY_COUNTDOWNS = (60,)
    delivery = callbacks.notify(hooked, "payment.failed", {"invoice_number": "INV-1"})
    hooked.callback_secret = ""
    hooked.save()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert callbacks.deliver(delivery.pk) == "failed"
        assert receiver.requests == []
        assert CallbackAttempt.objects.get().error.startswith("Not sent: no signing secret")
        hooked.callback_secret = SECRET
        hooked.save()
        clock.shift(61)
        assert callbacks.deliver(delivery.pk) == "delivered"
    [request] = receiver.requests
    headers = request["headers"]
    assert verify(SECRET, int(headers["X-Billing-Timestamp"]), request["body"], headers["X-Billing-Signature"])


def test_an_empty_signing_key_signs_nothing_and_verifies_nothing():
    with pytest.raises(ValueError):
        sign("", 1, b"{}")
    assert not verify("", 1, b"{}", "sha256=" + hmac.new(b"", b"1.{}", hashlib.sha256).hexdigest())


def test_the_account_page_says_no_callback_is_sent_until_a_secret_is_issued(alice, hooked):
    hooked.callback_secret = ""
    hooked.save()
    page = verified_client(alice).get(reverse("accounts:account")).content.decode()
    assert "No callback is sent until you issue a signing secret" in page
    assert "sent unsigned" not in page


def test_every_callback_payload_has_card_numbers_in_its_text_masked_and_keeps_its_references(hooked):
    data = {
        "invoice_number": "INV-7",
        "billing_number": "BILL-7",
        "message": "customer read 4111111111111111 aloud",
        "nested": {"notes": ["5555555555554444", "call back at +6281311112222"]},
        "amount": 150000,
    }
    [delivery] = callbacks.notify_many(hooked, "billing.reminder", [data])
    stored = CallbackDelivery.objects.get(pk=delivery.pk).payload["data"]
    assert stored == {
        "invoice_number": "INV-7",
        "billing_number": "BILL-7",
        "message": "customer read 411111******1111 aloud",
        "nested": {"notes": ["555555******4444", "call back at +6281311112222"]},
        "amount": 150000,
    }

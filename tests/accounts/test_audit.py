from __future__ import annotations

import pytest
from django.core import mail
from django.test import RequestFactory
from django.urls import reverse

from accounts import audit, services
from accounts.models import AuditEntry
from tests.conftest import verified_client

VISA_TEST = "4111111111111111"


def test_record_drops_secrets_and_masks_card_numbers(alice):
    entry = audit.record(
        "accounts.signin",
        actor=alice.user,
        data={
            "password": "hunter2-hunter2",
            "otp_token": "123456",
            "note": f"card {VISA_TEST} used",
            "nested": {"secret_key": "abc"},
        },
        reason=f"customer asked, card {VISA_TEST}",
    )
    entry.refresh_from_db()
    assert entry.data["password"] == audit.REDACTED
    assert entry.data["otp_token"] == audit.REDACTED
    assert entry.data["nested"]["secret_key"] == audit.REDACTED
    assert entry.data["note"] == "card 411111******1111 used"
    assert VISA_TEST not in entry.reason and VISA_TEST not in entry.search_text
    assert entry.merchant == alice.user.merchant


def test_record_keeps_digit_runs_that_are_not_card_numbers(alice):
    entry = audit.record("accounts.signin", actor=alice.user, data={"invoice": "INV-1234567890123"})
    assert entry.data["invoice"] == "INV-1234567890123"


def test_an_actor_from_a_request_carries_its_user_merchant_address_and_site(alice):
    request = RequestFactory().post("/users/", REMOTE_ADDR="203.0.113.9")
    request.user = alice.user
    actor = audit.Actor.from_request(request)
    assert (actor.user, actor.merchant, actor.ip_address) == (alice.user, alice.user.merchant, "203.0.113.9")
    assert actor.absolute_url("/welcome/x/") == "http://testserver/welcome/x/"
    entry = audit.record("accounts.user.changed", actor=actor, target=alice.user)
    assert (entry.actor, entry.merchant, entry.ip_address) == (alice.user, alice.user.merchant, "203.0.113.9")


def test_services_act_for_an_actor_without_a_request(alice, bob, settings, django_capture_on_commit_callbacks):
    """A command (or, later, an API key) calls Manage User with an ``Actor``: no fake request needed."""
    settings.SITE_URL = "https://billing.example.com"
    with django_capture_on_commit_callbacks(execute=True):
        services.reset_password(audit.Actor.of(alice.user), bob.user, "ticket 7")
    entry = AuditEntry.objects.get(action="accounts.user.password_reset")
    assert (entry.actor, entry.merchant, entry.ip_address, entry.reason) == (
        alice.user,
        alice.user.merchant,
        None,
        "ticket 7",
    )
    assert "https://billing.example.com/welcome/" in mail.outbox[-1].body


def test_audit_entries_cannot_be_changed_or_deleted(alice):
    entry = audit.record("accounts.signin", actor=alice.user)
    entry.action = "accounts.signout"
    with pytest.raises(ValueError):
        entry.save()
    with pytest.raises(ValueError):
        entry.delete()
    assert AuditEntry.objects.get(pk=entry.pk).action == "accounts.signin"


def test_activity_search_by_user_activity_data_and_date(alice, bob):
    audit.record("accounts.signin", actor=alice.user)
    audit.record("accounts.signout", actor=bob.user, data={"billing_number": "BILL-778899"})
    client = verified_client(alice)
    url = reverse("accounts:activity")

    def users(**params) -> list[str]:
        table = client.get(url, params).context["table"]
        return [row.record.actor_username for row in table.paginated_rows]

    assert users() == ["bob", "alice"]  # newest first
    assert users(user="ALI") == ["alice"]
    assert users(action="accounts.signout") == ["bob"]
    assert users(data="bill-7788") == ["bob"]
    assert users(date_after="2000-01-01", date_before="2000-01-02") == []


def test_an_invalid_activity_search_shows_the_error_and_no_rows(alice):
    audit.record("accounts.signin", actor=alice.user)
    response = verified_client(alice).get(reverse("accounts:activity"), {"action": "no.such.action"})
    assert response.status_code == 200
    assert response.context["filter"].errors
    assert list(response.context["table"].paginated_rows) == []


def test_no_view_changes_the_audit_log(alice):
    entry = audit.record("accounts.signin", actor=alice.user)
    client = verified_client(alice)
    assert client.post(reverse("accounts:activity_detail", args=[entry.pk])).status_code == 405
    assert client.post(reverse("accounts:activity")).status_code == 405


def test_an_activity_search_without_a_match_says_nothing_was_found(alice):
    audit.record("accounts.signin", actor=alice.user)
    client = verified_client(alice)
    assert "Nothing found" not in client.get(reverse("accounts:activity")).content.decode()
    page = client.get(reverse("accounts:activity"), {"user": "nobody-like-this"}).content.decode()
    assert "Nothing found: no activity matches this search." in page


def test_record_masks_card_numbers_written_with_spaces_or_dashes(alice):
    entry = audit.record(
        "accounts.signin",
        actor=alice.user,
        data={"note": "cards 4111 1111 1111 1111 and 4111-1111-1111-1111, amex 3782 822463 10005"},
        reason="customer wrote 5555 5555 5555 4444",
    )
    entry.refresh_from_db()
    assert entry.data["note"] == "cards 411111******1111 and 411111******1111, amex 378282*****0005"
    assert entry.reason == "customer wrote 555555******4444"


def test_record_keeps_spaced_digits_that_are_no_card_number(alice):
    text = "phone +62 812 3456 7891, ids 1 2 3, amount 150000"
    entry = audit.record("accounts.signin", actor=alice.user, data={"note": text})
    entry.refresh_from_db()
    assert entry.data["note"] == text


def test_record_keeps_dashed_invoice_numbers(alice):
    text = "INV-00122-20261130 and ref 00122 2026-11-30"
    entry = audit.record("accounts.signin", actor=alice.user, data={"note": text})
    entry.refresh_from_db()
    assert entry.data["note"] == text

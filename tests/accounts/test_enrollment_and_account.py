"""A2 (first sign-in by link) and A5 (Setting Account)."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.models import AuditEntry, SignedInSession, User
from accounts.services import current_code, enrollment_link
from tests.conftest import PASSWORD, verified_client

T0 = 1_795_000_000.0
NEW_PASSWORD = "a-brand-new-passphrase"


@pytest.fixture
def frozen():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def invited(merchant) -> User:
    user = User(username="dewi", email="dewi@alpha.example", merchant=merchant, menu_access=["all_report"])
    user.set_unusable_password()
    user.save()
    services.create_device(user, confirmed=False)
    return user


def link_path(user: User) -> str:
    return enrollment_link(user).split("127.0.0.1:8000", 1)[1]


def enroll(client, path: str, user: User, at: float = T0, **overrides):
    device = TOTPDevice.objects.get(user=user)
    data = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD, "code": current_code(device, at=at)}
    return client.post(path, {**data, **overrides})


def test_the_link_page_shows_key_and_qr_and_is_never_cached(client, invited):
    response = client.get(link_path(invited))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    assert "<svg" in page and re.search(r'data-testid="secret-key">[A-Z2-7 ]{32,}<', page)


def test_the_device_is_unusable_until_a_code_from_the_new_key_confirms_it(client, invited, frozen):
    path = link_path(invited)
    device = TOTPDevice.objects.get(user=invited)
    invited.set_password(NEW_PASSWORD)  # even with a password, an unconfirmed device cannot sign in
    assert services.verify_code(invited, current_code(device, at=T0)) is None
    invited.set_unusable_password()

    response = enroll(client, path, invited)

    assert response.status_code == 302 and response.url == reverse("accounts:sign_in")
    device.refresh_from_db()
    invited.refresh_from_db()
    assert device.confirmed and invited.check_password(NEW_PASSWORD)
    signed_in = Client().post(
        reverse("accounts:sign_in"),
        {"username": "dewi", "password": NEW_PASSWORD, "code": current_code(device, at=T0 + 30)},
    )
    assert signed_in.status_code == 302
    assert AuditEntry.objects.filter(action="accounts.user.enrolled", actor=invited).exists()


def test_the_enrolment_entry_in_user_activity_has_the_ip_address(invited, frozen):
    client = Client(REMOTE_ADDR="203.0.113.7")
    assert enroll(client, link_path(invited), invited).status_code == 302
    entry = AuditEntry.objects.get(action="accounts.user.enrolled", actor=invited)
    assert entry.ip_address == "203.0.113.7"


def test_the_link_works_once(client, invited, frozen):
    path = link_path(invited)
    assert enroll(client, path, invited).status_code == 302
    again = Client().get(path)
    assert again.status_code == 400 and "expired or was used already" in again.content.decode()
    assert (
        Client().post(path, {"new_password1": "x-other-password-1", "new_password2": "x-other-password-1"}).status_code
        == 400
    )


def test_the_link_expires(client, invited, settings):
    settings.PASSWORD_RESET_TIMEOUT = 3600
    with time_machine.travel(T0, tick=False):
        path = link_path(invited)
    with time_machine.travel(T0 + 3601, tick=False):
        assert client.get(path).status_code == 400


def test_a_forged_link_is_refused(client, invited):
    path = link_path(invited)
    assert client.get(path[:-3] + "abc/").status_code == 400
    assert client.get("/welcome/not-base64/abc-def/").status_code == 400


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"new_password2": "something-else-entirely"}, "new_password2"),
        ({"new_password1": "short", "new_password2": "short"}, "new_password2"),
        ({"new_password1": "123456789012345", "new_password2": "123456789012345"}, "new_password2"),
        ({"code": "000000"}, "code"),
        ({"code": ""}, "code"),
    ],
)
def test_bad_enrollment_input_gets_an_error_and_changes_nothing(client, invited, frozen, overrides, field):
    if overrides.get("code") == "000000" and current_code(TOTPDevice.objects.get(user=invited), at=T0) == "000000":
        overrides = {"code": "111111"}
    response = enroll(client, link_path(invited), invited, **overrides)
    assert response.status_code == 200 and field in response.context["form"].errors
    invited.refresh_from_db()
    assert not invited.has_usable_password()
    assert not TOTPDevice.objects.get(user=invited).confirmed


def test_after_a_reset_the_link_only_sets_the_password(client, bob, frozen):
    bob.user.set_unusable_password()
    bob.user.save()
    response = client.get(link_path(bob.user))
    assert 'data-testid="secret-key"' not in response.content.decode()
    assert (
        client.post(link_path(bob.user), {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}).status_code
        == 302
    )
    bob.user.refresh_from_db()
    assert bob.user.check_password(NEW_PASSWORD)
    assert TOTPDevice.objects.get(user=bob.user).key == bob.device.key


def test_setting_account_changes_own_details_and_audits_them(bob):
    client = verified_client(bob)
    response = client.post(
        reverse("accounts:account"),
        {
            "form": "account",
            "first_name": "Bob",
            "last_name": "Santoso",
            "email": "bob.s@alpha.example",
            "mobile_number": "+628123123123",
        },
    )
    assert response.status_code == 302
    bob.user.refresh_from_db()
    assert (bob.user.get_full_name(), bob.user.email) == ("Bob Santoso", "bob.s@alpha.example")
    assert AuditEntry.objects.get(action="accounts.account.changed").data["email"] == {
        "before": "bob@example.com",
        "after": "bob.s@alpha.example",
    }


@pytest.mark.parametrize(
    "data",
    [
        {"email": "alice@example.com"},
        {"email": "nope"},
        {"mobile_number": "phone"},
        {"email": ""},
    ],
)
def test_setting_account_refuses_bad_details(alice, bob, data):
    base = {"form": "account", "first_name": "", "last_name": "", "email": "bob@example.com", "mobile_number": ""}
    response = verified_client(bob).post(reverse("accounts:account"), {**base, **data})
    assert response.status_code == 200 and response.context["account_form"].errors
    bob.user.refresh_from_db()
    assert bob.user.email == "bob@example.com" and bob.user.mobile_number == ""


def test_changing_the_password_needs_the_current_one_and_ends_other_sessions(bob, frozen):
    here = Client()
    there = Client()
    for i, browser in enumerate((here, there)):
        browser.post(
            reverse("accounts:sign_in"),
            {"username": "bob", "password": PASSWORD, "code": current_code(bob.device, at=T0 + 30 * i)},
        )
    other_key = there.session.session_key

    wrong = here.post(
        reverse("accounts:account"),
        {"form": "password", "old_password": "not-it", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert wrong.status_code == 200 and "old_password" in wrong.context["password_form"].errors
    bob.user.refresh_from_db()
    assert bob.user.check_password(PASSWORD)

    changed = here.post(
        reverse("accounts:account"),
        {"form": "password", "old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert changed.status_code == 302
    assert here.get("/").status_code == 200  # this session stays
    assert there.get("/").status_code == 302  # the other one ended
    assert not Session.objects.filter(session_key=other_key).exists()
    assert SignedInSession.objects.filter(user=bob.user).count() == 1
    entry = AuditEntry.objects.get(action="accounts.password.changed")
    assert NEW_PASSWORD not in f"{entry.data}{entry.search_text}"

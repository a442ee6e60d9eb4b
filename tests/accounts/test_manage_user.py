"""Manage User (U1-U6) as a merchant admin, with the bad inputs of the Accounts issue."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.forms import UserCreateForm
from accounts.models import AuditEntry, SignedInSession, User
from accounts.services import SIGN_IN_ERROR, current_code
from accounts.stepup import STEP_UP_ERROR
from tests.conftest import PASSWORD, make_persona, verified_client

T0 = 1_795_000_000.0
NEW_USER = {
    "username": "dewi",
    "mobile_number": "+6281234567890",
    "email": "dewi@alpha.example",
    "menu_access": ["all_report", "user_activity"],
    "confirmed": "1",  # the pop-up's Confirm: a valid form is asked about first
}


@pytest.fixture
def frozen():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def step_up(persona, at: float = T0, reason: str = "ticket 42") -> dict:
    persona.device.refresh_from_db()
    return {"code": current_code(persona.device, at=at), "reason": reason}


def snapshot(user: User) -> tuple:
    user.refresh_from_db()
    return (user.mobile_number, tuple(user.menu_access), user.locked, user.password, user.email)


def test_the_list_shows_only_users_of_the_admins_merchant(alice, bob, charlie):
    response = verified_client(alice).get(reverse("accounts:users"))
    names = [row.record.username for row in response.context["table"].paginated_rows]
    assert names == ["alice", "bob"]


def test_a_user_search_without_a_match_says_nothing_was_found(alice, bob):
    client = verified_client(alice)
    assert "Nothing found" not in client.get(reverse("accounts:users")).content.decode()
    page = client.get(reverse("accounts:users"), {"q": "nobody-like-this"}).content.decode()
    assert "Nothing found: no user matches this search." in page


def test_staff_never_reach_manage_user_even_when_granted_the_code(merchant):
    sneaky = make_persona(merchant, "sneaky", menus=["manage_user", "all_report"])
    client = verified_client(sneaky)
    assert client.get(reverse("accounts:users")).status_code == 403
    assert client.post(reverse("accounts:user_add"), NEW_USER).status_code == 403
    assert not User.objects.filter(username="dewi").exists()


def test_add_user_creates_an_invited_user_and_emails_a_link(alice, mailoutbox, django_capture_on_commit_callbacks):
    client = verified_client(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:user_add"), NEW_USER)
    assert response.status_code == 302
    dewi = User.objects.get(username="dewi")
    assert dewi.merchant == alice.user.merchant and not dewi.is_merchant_admin
    assert sorted(dewi.menu_access) == ["all_report", "user_activity"]
    assert not dewi.has_usable_password()
    assert not TOTPDevice.objects.get(user=dewi).confirmed
    [mail] = mailoutbox
    assert mail.to == ["dewi@alpha.example"] and "Alpha Gym" in mail.subject
    assert re.search(r"http://testserver/welcome/[^/]+/[^/]+/", mail.body)
    assert mail.alternatives and "Set up my account" in mail.alternatives[0][0]
    entry = AuditEntry.objects.get(action="accounts.user.created")
    assert entry.actor == alice.user and entry.target_id == str(dewi.pk) and entry.data["email"] == "dewi@alpha.example"


def test_add_user_asks_to_confirm_only_what_the_server_validated(alice, bob):
    client = verified_client(alice)
    unconfirmed = {k: v for k, v in NEW_USER.items() if k != "confirmed"}
    empty = client.post(reverse("accounts:user_add"), {"menu_access": ["all_report"]}).content.decode()
    assert "data-open-on-load" not in empty and "This field is required." in empty
    taken = client.post(reverse("accounts:user_add"), {**unconfirmed, "username": "bob"}).content.decode()
    assert "data-open-on-load" not in taken and "This user name is taken." in taken

    asked = client.post(reverse("accounts:user_add"), unconfirmed)
    page = asked.content.decode()
    assert asked.status_code == 200 and "data-open-on-load" in page
    assert "Create user dewi and e-mail the sign-in instructions to dewi@alpha.example?" in page
    assert "{#" not in page and "static/js/confirm-submit.js)" not in page  # no template comment shows
    assert 'name="confirmed" value="1"' in page
    assert not User.objects.filter(username="dewi").exists()
    assert client.post(reverse("accounts:user_add"), NEW_USER).status_code == 302
    assert User.objects.filter(username="dewi").exists()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"username": "bob"}, "username", "This user name is taken."),
        ({"username": "BOB"}, "username", "This user name is taken."),
        ({"username": "no spaces"}, "username", "Use letters, digits"),
        ({"email": "BOB@example.com"}, "email", "A user with this email exists already."),
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
        ({"mobile_number": "12ab"}, "mobile_number", "Enter a mobile number of 8 to 15 digits"),
        ({"menu_access": []}, "menu_access", "Choose at least one menu."),
        ({"menu_access": ["manage_user"]}, "menu_access", "Select a valid choice"),
    ],
)
def test_bad_new_user_input_gets_a_form_error_and_creates_nothing(alice, bob, charlie, change, field, message):
    users, entries = User.objects.count(), AuditEntry.objects.count()
    response = verified_client(alice).post(reverse("accounts:user_add"), {**NEW_USER, **change})
    assert response.status_code == 200
    assert any(message in error for error in response.context["form"].errors[field])
    assert (User.objects.count(), AuditEntry.objects.count()) == (users, entries)


def test_edit_user_changes_phone_and_menus_and_audits_before_and_after(alice, bob):
    response = verified_client(alice).post(
        reverse("accounts:user_edit", args=[bob.user.pk]),
        {"mobile_number": "+628111111111", "menu_access": ["registration"]},
    )
    assert response.status_code == 302
    bob.user.refresh_from_db()
    assert (bob.user.mobile_number, bob.user.menu_access) == ("+628111111111", ["registration"])
    entry = AuditEntry.objects.get(action="accounts.user.changed")
    assert entry.data["menu_access"] == {"before": ["all_report", "batch_report"], "after": ["registration"]}


def test_edit_with_bad_input_changes_nothing(alice, bob):
    before = snapshot(bob.user)
    response = verified_client(alice).post(
        reverse("accounts:user_edit", args=[bob.user.pk]), {"mobile_number": "x", "menu_access": []}
    )
    assert response.status_code == 200 and response.context["form"].errors
    assert snapshot(bob.user) == before


def test_lock_ends_every_session_of_the_user_now(alice, bob, frozen):
    from django.test import Client

    browsers = [Client(), Client()]
    for i, browser in enumerate(browsers):
        browser.post(
            reverse("accounts:sign_in"),
            {"username": "bob", "password": PASSWORD, "code": current_code(bob.device, at=T0 + 30 * i)},
        )
        assert browser.get("/").status_code == 200
    keys = list(SignedInSession.objects.filter(user=bob.user).values_list("session_key", flat=True))
    assert len(keys) == 2

    response = verified_client(alice).post(reverse("accounts:user_lock", args=[bob.user.pk]))

    assert response.status_code == 302
    assert Session.objects.filter(session_key__in=keys).count() == 0
    assert all(browser.get("/").status_code == 302 for browser in browsers)
    assert AuditEntry.objects.get(action="accounts.user.locked").data == {"sessions_ended": 2}
    refused = Client().post(
        reverse("accounts:sign_in"),
        {"username": "bob", "password": PASSWORD, "code": current_code(bob.device, at=T0 + 60)},
    )
    assert SIGN_IN_ERROR in refused.content.decode()


def test_lock_is_post_only_and_an_admin_cannot_lock_themself(alice):
    client = verified_client(alice)
    assert client.get(reverse("accounts:user_lock", args=[alice.user.pk])).status_code == 405
    client.post(reverse("accounts:user_lock", args=[alice.user.pk]))
    alice.user.refresh_from_db()
    assert not alice.user.locked


def test_unlock_needs_a_fresh_code_and_a_reason_and_lifts_both_locks(alice, bob, frozen):
    bob.user.locked = True
    bob.user.failed_sign_ins = 3
    bob.user.save()
    client = verified_client(alice)
    url = reverse("accounts:user_unlock", args=[bob.user.pk])
    assert client.get(url).status_code == 200  # the confirmation page

    response = client.post(url, step_up(alice, reason="called the help desk"))

    assert response.status_code == 302
    bob.user.refresh_from_db()
    assert not bob.user.locked and bob.user.failed_sign_ins == 0
    assert AuditEntry.objects.get(action="accounts.user.unlocked").reason == "called the help desk"


def test_reset_password_voids_the_old_one_ends_sessions_and_emails_a_link(
    alice, bob, frozen, mailoutbox, django_capture_on_commit_callbacks
):
    bob_client = verified_client(bob)
    SignedInSession.objects.create(user=bob.user, session_key=bob_client.session.session_key)
    with django_capture_on_commit_callbacks(execute=True):
        response = verified_client(alice).post(
            reverse("accounts:user_reset_password", args=[bob.user.pk]), step_up(alice)
        )
    assert response.status_code == 302
    bob.user.refresh_from_db()
    assert not bob.user.check_password(PASSWORD)
    assert bob_client.get("/").status_code == 302
    [mail] = mailoutbox
    assert mail.to == ["bob@example.com"] and "/welcome/" in mail.body
    assert AuditEntry.objects.get(action="accounts.user.password_reset").reason == "ticket 42"


def test_reveal_key_shows_key_and_qr_uncached_and_audits_each_reveal(alice, bob, frozen):
    client = verified_client(alice)
    url = reverse("accounts:user_secret_key", args=[bob.user.pk])
    first = client.post(url, step_up(alice, at=T0))
    second = client.post(url, step_up(alice, at=T0 + 30))
    for response in (first, second):
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]
        page = response.content.decode()
        assert "<svg" in page
        shown = re.search(r'data-testid="secret-key">([^<]+)<', page).group(1).replace(" ", "")
        from base64 import b32encode

        assert shown == b32encode(bob.device.bin_key).decode()
    entries = AuditEntry.objects.filter(action="accounts.user.key_revealed")
    assert entries.count() == 2
    assert all(bob.device.key not in f"{e.data}{e.search_text}" for e in entries)


def test_a_new_key_voids_the_old_keys_codes(alice, bob, frozen):  # TESTING 8
    from django.test import Client

    old_device = bob.device
    response = verified_client(alice).post(reverse("accounts:user_new_key", args=[bob.user.pk]), step_up(alice))
    assert response.status_code == 200
    new_device = TOTPDevice.objects.get(user=bob.user)
    assert new_device.key != old_device.key and new_device.confirmed
    old_code = current_code(old_device, at=T0)
    refused = Client().post(reverse("accounts:sign_in"), {"username": "bob", "password": PASSWORD, "code": old_code})
    assert SIGN_IN_ERROR in refused.content.decode()
    frozen.shift(2)  # past django-otp's throttle delay after the refused code
    accepted = Client().post(
        reverse("accounts:sign_in"),
        {"username": "bob", "password": PASSWORD, "code": current_code(new_device, at=T0 + 30)},
    )
    assert accepted.status_code == 302
    assert AuditEntry.objects.filter(action="accounts.user.key_reissued").count() == 1


STEP_UP_URLS = [
    "accounts:user_unlock",
    "accounts:user_reset_password",
    "accounts:user_secret_key",
    "accounts:user_new_key",
]


@pytest.mark.parametrize("url_name", STEP_UP_URLS)
@pytest.mark.parametrize(
    "attempt", ["no code", "wrong code", "another users code", "old code", "replayed code", "no reason"]
)
def test_sensitive_actions_change_nothing_without_a_fresh_own_code_and_a_reason(
    alice, bob, frozen, url_name, attempt, settings
):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # each attempt is judged on the code alone
    bob.user.locked = True
    bob.user.save()
    client = verified_client(alice)
    url = reverse(url_name, args=[bob.user.pk])
    good = step_up(alice)
    data = {
        "no code": {"reason": "ticket 42"},
        "wrong code": {"code": "000000" if good["code"] != "000000" else "111111", "reason": "ticket 42"},
        "another users code": step_up(bob),
        "old code": step_up(alice, at=T0 - 90),
        "replayed code": good,
        "no reason": {"code": good["code"], "reason": ""},
    }[attempt]
    if attempt == "replayed code":
        client.post(reverse("accounts:user_unlock", args=[alice.user.pk]), good)  # spends the code
    before = (snapshot(bob.user), TOTPDevice.objects.get(user=bob.user).key)
    acted = AuditEntry.objects.filter(action__startswith="accounts.user.").count()

    response = client.post(url, data)

    assert response.status_code == 400
    assert (snapshot(bob.user), TOTPDevice.objects.get(user=bob.user).key) == before
    assert AuditEntry.objects.filter(action__startswith="accounts.user.").count() == acted
    assert 'data-testid="secret-key"' not in response.content.decode()
    if attempt != "no reason" and attempt != "no code":
        assert STEP_UP_ERROR in response.content.decode()


def test_a_typo_in_the_reason_does_not_spend_the_code(alice, bob, frozen):
    bob.user.locked = True
    bob.user.save()
    client = verified_client(alice)
    url = reverse("accounts:user_unlock", args=[bob.user.pk])
    good = step_up(alice)
    assert client.post(url, {"code": good["code"], "reason": ""}).status_code == 400
    assert client.post(url, good).status_code == 302


def test_a_forged_post_without_csrf_token_is_refused_and_changes_nothing(alice, bob):
    client = verified_client(alice)
    client.handler.enforce_csrf_checks = True
    assert client.post(reverse("accounts:user_add"), NEW_USER).status_code == 403
    assert client.post(reverse("accounts:user_lock", args=[bob.user.pk])).status_code == 403
    assert not User.objects.filter(username="dewi").exists()
    bob.user.refresh_from_db()
    assert not bob.user.locked


def test_no_audit_entry_of_any_account_action_holds_a_secret(alice, bob, frozen, django_capture_on_commit_callbacks):
    client = verified_client(alice)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:user_add"), NEW_USER)
    client.post(
        reverse("accounts:user_edit", args=[bob.user.pk]),
        {"mobile_number": "+628111111111", "menu_access": ["registration"]},
    )
    client.post(reverse("accounts:user_lock", args=[bob.user.pk]))
    codes = []
    for i, name in enumerate(
        ["accounts:user_unlock", "accounts:user_reset_password", "accounts:user_secret_key", "accounts:user_new_key"]
    ):
        frozen.shift(30)  # one code per 30 s step: each action needs a fresh one
        data = step_up(alice, at=T0 + 30 * (i + 1))
        codes.append(data["code"])
        assert client.post(reverse(name, args=[bob.user.pk]), data).status_code in (200, 302)
    client.post(
        reverse("accounts:account"),
        {
            "form": "password",
            "old_password": PASSWORD,
            "new_password1": "alice-new-passphrase",
            "new_password2": "alice-new-passphrase",
        },
    )

    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {
        "accounts.user.created",
        "accounts.user.changed",
        "accounts.user.locked",
        "accounts.user.unlocked",
        "accounts.user.password_reset",
        "accounts.user.key_revealed",
        "accounts.user.key_reissued",
        "accounts.password.changed",
    } <= actions
    dump = " ".join(f"{e.data} {e.reason} {e.search_text} {e.target_repr}" for e in AuditEntry.objects.all())
    secrets = [
        PASSWORD,
        "alice-new-passphrase",
        *codes,
        *TOTPDevice.objects.values_list("key", flat=True),
        alice.device.key,
        bob.device.key,
    ]
    assert not [s for s in secrets if s in dump]


def test_a_code_spent_on_sign_in_fails_a_step_up_in_the_same_step(alice, bob, frozen):
    from django.test import Client

    bob.user.locked = True
    bob.user.save()
    client = Client()
    code = current_code(alice.device, at=T0)
    assert (
        client.post(reverse("accounts:sign_in"), {"username": "alice", "password": PASSWORD, "code": code}).status_code
        == 302
    )
    response = client.post(reverse("accounts:user_unlock", args=[bob.user.pk]), {"code": code, "reason": "same step"})
    assert response.status_code == 400 and STEP_UP_ERROR in response.content.decode()
    bob.user.refresh_from_db()
    assert bob.user.locked


def test_a_new_key_ends_the_users_sessions_and_the_new_key_signs_in_in_the_same_browser(alice, bob, frozen):
    """Issue #20.2: X signed in, the admin issues a new key, X signs in again in that browser: no 500."""
    from django.test import Client

    browser = Client()
    first = browser.post(
        reverse("accounts:sign_in"), {"username": "bob", "password": PASSWORD, "code": current_code(bob.device, at=T0)}
    )
    assert first.status_code == 302
    old_key = browser.session.session_key

    verified_client(alice).post(reverse("accounts:user_new_key", args=[bob.user.pk]), step_up(alice))

    assert not Session.objects.filter(session_key=old_key).exists()
    assert not SignedInSession.objects.filter(user=bob.user).exists()
    bounced = browser.get("/")
    assert bounced.status_code == 302 and bounced.url.startswith(reverse("accounts:sign_in"))
    new_device = TOTPDevice.objects.get(user=bob.user)
    for attempt, at in enumerate((T0 + 30, T0 + 60)):  # every try in that browser, not only the first
        if attempt:
            browser.post(reverse("accounts:sign_out"))
        frozen.move_to(at)
        again = browser.post(
            reverse("accounts:sign_in"),
            {"username": "bob", "password": PASSWORD, "code": current_code(new_device, at=at)},
        )
        assert again.status_code == 302
        assert browser.get("/").status_code == 200
    assert list(SignedInSession.objects.filter(user=bob.user).values_list("session_key", flat=True)) == [
        browser.session.session_key
    ]


def test_an_admin_issuing_their_own_new_key_keeps_their_session_until_the_next_page(alice, frozen):
    client = verified_client(alice)
    key = client.session.session_key
    SignedInSession.objects.create(user=alice.user, session_key=key)
    response = client.post(reverse("accounts:user_new_key", args=[alice.user.pk]), step_up(alice))
    assert response.status_code == 200 and 'data-testid="secret-key"' in response.content.decode()
    assert Session.objects.filter(session_key=key).exists()


@pytest.mark.parametrize(
    ("referer", "back"),
    [
        ("http://testserver/users/?q=bob", "http://testserver/users/?q=bob"),
        ("https://evil.example/users/", "/"),
        ("", "/"),
    ],
)
def test_the_confirmation_pages_cancel_goes_back_to_the_page_before_on_this_site(alice, bob, referer, back):
    """A link, not javascript:history.back(), which the Content-Security-Policy refuses."""
    url = reverse("accounts:user_unlock", args=[bob.user.pk])
    response = verified_client(alice).get(url, headers={"Referer": referer} if referer else {})
    page = response.content.decode()
    assert "javascript:" not in page
    assert re.search(r'<a class="button" href="([^"]*)">Cancel</a>', page).group(1) == back


@pytest.mark.parametrize(
    "change",
    [
        {"username": "charlie"},
        {"username": "CHARLIE"},
        {"email": "charlie@example.com"},
        {"email": "Charlie@Example.com"},
        {"username": "charlie", "email": "charlie@example.com"},
    ],
    ids=["name", "name other case", "email", "email other case", "both"],
)
def test_a_name_or_email_of_another_merchants_user_gets_one_answer_naming_neither(alice, charlie, change):
    """User names and e-mails are unique across merchants; the answer does not say which one is in use."""
    users, entries = User.objects.count(), AuditEntry.objects.count()
    response = verified_client(alice).post(reverse("accounts:user_add"), {**NEW_USER, **change})
    form = response.context["form"]
    assert response.status_code == 200
    assert form.non_field_errors() == [UserCreateForm.NOT_AVAILABLE]
    assert "username" not in form.errors and "email" not in form.errors
    assert "taken" not in response.content.decode() and "exists" not in response.content.decode()
    assert (User.objects.count(), AuditEntry.objects.count()) == (users, entries)

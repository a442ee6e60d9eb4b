from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from accounts.models import AuditEntry
from accounts.services import SIGN_IN_ERROR, current_code
from tests.conftest import PASSWORD, Persona, make_persona, verified_client

T0 = 1_795_000_000.0  # a fixed instant; TOTP steps are 30 s


def post_sign_in(client, username: str, password: str, code: str, **extra):
    return client.post(reverse("accounts:sign_in"), {"username": username, "password": password, "code": code, **extra})


def code_at(persona: Persona, at: float) -> str:
    persona.device.refresh_from_db()
    return current_code(persona.device, at=at)


@pytest.fixture
def frozen():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def test_password_and_code_sign_in_and_rotate_the_session_key(client, alice, frozen):
    client.get(reverse("accounts:sign_in"))
    before = client.session.session_key

    response = post_sign_in(client, "alice", PASSWORD, code_at(alice, T0))

    assert response.status_code == 302 and response.url == "/"
    assert client.session.session_key != before
    assert client.get("/").status_code == 200
    assert AuditEntry.objects.filter(action="accounts.signin", actor=alice.user).count() == 1


def test_every_wrong_part_gets_one_message_and_status(client, alice, bob, frozen):
    bob.user.locked = True
    bob.user.save()
    attempts = {
        "unknown user": ("nobody", PASSWORD, code_at(alice, T0)),
        "wrong password": ("alice", "wrong-password-123", code_at(alice, T0)),
        "wrong code": ("alice", PASSWORD, "000000" if code_at(alice, T0) != "000000" else "111111"),
        "locked user": ("bob", PASSWORD, code_at(bob, T0)),
        "malformed code": ("alice", PASSWORD, "12ab"),
        "empty form": ("", "", ""),
    }
    outcomes = set()
    for username, password, code in attempts.values():
        response = post_sign_in(client, username, password, code)
        errors = re.findall(r'data-testid="sign-in-error">([^<]*)<', response.content.decode())
        outcomes.add((response.status_code, tuple(errors)))
    assert outcomes == {(200, (SIGN_IN_ERROR,))}
    assert "_auth_user_id" not in client.session


def test_a_code_works_once(alice, frozen):
    from django.test import Client

    code = code_at(alice, T0)
    assert post_sign_in(Client(), "alice", PASSWORD, code).status_code == 302
    replay = post_sign_in(Client(), "alice", PASSWORD, code)
    assert replay.status_code == 200
    assert SIGN_IN_ERROR in replay.content.decode()


@pytest.mark.parametrize(("steps", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)])
def test_codes_one_step_either_side_pass_and_two_steps_fail(client, alice, frozen, steps, accepted):
    response = post_sign_in(client, "alice", PASSWORD, code_at(alice, T0 + steps * 30))
    assert (response.status_code == 302) is accepted


def test_five_failures_lock_the_account_for_thirty_minutes(client, alice, frozen, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # the lock, not django-otp's throttle, is under test here
    for _ in range(5):
        assert post_sign_in(client, "alice", "wrong-password-123", "123456").status_code == 200
    alice.user.refresh_from_db()
    assert alice.user.locked_until is not None

    sixth = post_sign_in(client, "alice", PASSWORD, code_at(alice, T0))
    assert sixth.status_code == 200 and SIGN_IN_ERROR in sixth.content.decode()
    lock = AuditEntry.objects.get(action="accounts.user.locked_out")
    assert lock.actor == alice.user and lock.data["failures"] == 5

    frozen.shift(29 * 60)
    assert post_sign_in(client, "alice", PASSWORD, code_at(alice, T0 + 29 * 60)).status_code == 200
    frozen.shift(61)
    assert post_sign_in(client, "alice", PASSWORD, code_at(alice, T0 + 30 * 60 + 1)).status_code == 302


def test_a_success_resets_the_failure_count(client, alice, frozen, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    for _ in range(4):
        post_sign_in(client, "alice", "wrong-password-123", "123456")
    assert post_sign_in(client, "alice", PASSWORD, code_at(alice, T0)).status_code == 302
    alice.user.refresh_from_db()
    assert alice.user.failed_sign_ins == 0 and alice.user.locked_until is None


def test_django_otp_throttling_refuses_a_right_code_straight_after_a_wrong_one(client, alice, frozen):
    post_sign_in(client, "alice", PASSWORD, "000000" if code_at(alice, T0) != "000000" else "111111")
    response = post_sign_in(client, "alice", PASSWORD, code_at(alice, T0))
    assert response.status_code == 200
    assert SIGN_IN_ERROR in response.content.decode()
    assert "failed attempts" not in response.content.decode()  # django-otp's own text never shows


def test_failed_sign_ins_are_audited_without_password_or_code(client, alice, frozen):
    post_sign_in(client, "alice", "secret-typo-password", "654321")
    post_sign_in(client, "mallory", "another-secret", "111111")
    entries = AuditEntry.objects.filter(action="accounts.signin.failed").order_by("id")
    assert [(e.actor_username, e.data["cause"]) for e in entries] == [
        ("alice", "wrong password"),
        ("mal…", "unknown user"),  # a typed name is sometimes a password: its first characters only
    ]
    assert entries[0].merchant == alice.user.merchant and entries[1].merchant is None
    dump = " ".join(f"{e.data} {e.reason} {e.search_text}" for e in AuditEntry.objects.all())
    for secret in ("secret-typo-password", "another-secret", "654321", alice.device.key):
        assert secret not in dump


def test_pages_need_a_session_verified_by_password_and_code(client, alice):
    assert client.get("/").status_code == 302
    assert client.get("/").url.startswith(reverse("accounts:sign_in"))
    client.force_login(alice.user)  # password only, no code
    response = client.get("/")
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:sign_in"))


def test_sign_out_is_post_only_ends_the_session_and_is_audited(alice):
    client = verified_client(alice)
    assert client.get(reverse("accounts:sign_out")).status_code == 405
    response = client.post(reverse("accounts:sign_out"))
    assert response.status_code == 302
    assert client.get("/").status_code == 302
    assert AuditEntry.objects.filter(action="accounts.signout", actor=alice.user).count() == 1


def test_a_user_locked_while_signed_in_is_signed_out_on_the_next_request(alice, bob):
    client = verified_client(bob)
    assert client.get("/").status_code == 200
    bob.user.locked = True
    bob.user.save(update_fields=["locked"])
    assert client.get("/").status_code == 302
    bob.user.locked = False
    bob.user.save(update_fields=["locked"])
    assert client.get("/").status_code == 302  # the session is gone, not just paused


def test_next_is_followed_only_within_this_site(alice, frozen):
    from django.test import Client

    inside = post_sign_in(Client(), "alice", PASSWORD, code_at(alice, T0), next="/activity/")
    assert inside.url == "/activity/"
    outside = post_sign_in(Client(), "alice", PASSWORD, code_at(alice, T0 + 30), next="https://evil.example/")
    assert outside.url == "/"


def test_a_post_without_csrf_token_is_refused(alice, frozen):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = post_sign_in(client, "alice", PASSWORD, code_at(alice, T0))
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_a_platform_operator_without_merchant_lands_in_the_admin(client, db, frozen):
    operator = make_persona(None, "operator")
    operator.user.is_staff = operator.user.is_superuser = True
    operator.user.save()
    response = post_sign_in(client, "operator", PASSWORD, code_at(operator, T0))
    assert response.url == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_the_admin_login_page_sends_operators_to_the_one_sign_in_form(client, db):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:sign_in"))


def test_activity_writes_the_session_once_a_minute_at_most(alice):
    from django.contrib.sessions.models import Session
    from django.test import Client

    client = Client()
    with time_machine.travel(T0, tick=False) as traveller:
        post_sign_in(client, "alice", PASSWORD, code_at(alice, T0))
        key = client.session.session_key
        signed_in = Session.objects.get(session_key=key).expire_date
        traveller.shift(30)
        assert client.get("/").status_code == 200
        assert Session.objects.get(session_key=key).expire_date == signed_in  # no write for this request
        traveller.shift(31)
        assert client.get("/").status_code == 200
        assert Session.objects.get(session_key=key).expire_date == signed_in + timedelta(seconds=61)


def test_a_session_ends_after_fifteen_idle_minutes(alice):
    from django.test import Client

    client = Client()
    with time_machine.travel(T0, tick=False) as traveller:
        post_sign_in(client, "alice", PASSWORD, code_at(alice, T0))
        traveller.shift(14 * 60)
        assert client.get("/").status_code == 200  # activity within the limit keeps it alive
        traveller.shift(14 * 60)
        assert client.get("/").status_code == 200
        traveller.shift(15 * 60 + 1)
        response = client.get("/")
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:sign_in"))


@pytest.fixture
def cached_sessions(settings):
    """The session engine with a shared cache (REDIS_URL set); the unit lane's cache is local memory."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"


def test_sessions_are_in_the_database_only_without_a_shared_cache():
    from django.conf import settings

    assert settings.CACHES["default"]["BACKEND"].endswith("LocMemCache")
    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.db"


def test_a_signed_in_request_reads_its_session_from_the_cache_and_its_merchant_with_the_user(alice, cached_sessions):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = verified_client(alice)
    client.get(reverse("reports:all"))  # the session is in the cache from here on
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("reports:all")).status_code == 200
    sql = [query["sql"] for query in queries.captured_queries]
    assert not any("django_session" in text for text in sql)
    users = [text for text in sql if 'FROM "accounts_user"' in text]
    assert len(users) == 1 and 'JOIN "accounts_merchant"' in users[0]
    assert not any('FROM "accounts_merchant"' in text for text in sql)


def test_a_session_dropped_from_the_cache_is_read_again_from_the_database(alice, cached_sessions):
    from django.core.cache import cache

    client = verified_client(alice)
    assert client.get(reverse("reports:all")).status_code == 200
    cache.clear()  # a cache flush or a Redis restart does not sign anybody out
    assert client.get(reverse("reports:all")).status_code == 200


def test_signing_in_on_a_session_already_signed_in_rotates_its_key_and_never_fails(alice, frozen):
    """The session is known (its user signed in with it) but no longer verified, e.g. its device was
    replaced: signing in again in that browser works and gets a new key (issue #20.2)."""
    from django.contrib.sessions.models import Session
    from django.test import Client

    from accounts.models import SignedInSession
    from accounts.services import create_device

    browser = Client()
    assert post_sign_in(browser, "alice", PASSWORD, code_at(alice, T0)).status_code == 302
    known = browser.session.session_key
    alice.device = create_device(alice.user, confirmed=True)
    assert browser.get("/").status_code == 302  # bounced: the session's device is gone

    response = post_sign_in(browser, "alice", PASSWORD, code_at(alice, T0 + 30))

    assert response.status_code == 302
    assert browser.session.session_key != known
    assert not Session.objects.filter(session_key=known).exists()
    assert list(SignedInSession.objects.values_list("session_key", flat=True)) == [browser.session.session_key]


def test_a_session_ends_twelve_hours_after_sign_in_however_active(alice, settings):
    """Issue #16.8: an absolute lifetime beside the idle one (SESSION_ABSOLUTE_SECONDS)."""
    from django.test import Client

    assert settings.SESSION_ABSOLUTE_SECONDS == 12 * 3600
    client = Client()
    with time_machine.travel(T0, tick=False) as traveller:
        post_sign_in(client, "alice", PASSWORD, code_at(alice, T0))
        for _ in range(12 * 6 - 1):  # a request every ten minutes for just under twelve hours
            traveller.shift(10 * 60)
            assert client.get("/").status_code == 200
        traveller.shift(10 * 60)
        response = client.get("/")
        assert response.status_code == 302 and response.url.startswith(reverse("accounts:sign_in"))
        assert "_auth_user_id" not in client.session
        assert post_sign_in(client, "alice", PASSWORD, code_at(alice, T0 + 12 * 3600)).status_code == 302
        assert client.get("/").status_code == 200  # a new sign-in starts a new lifetime


def test_an_unknown_typed_name_is_kept_as_its_first_characters_and_a_keyed_digest(client, db, frozen):
    """Issue #16.11: people type their password into the name field; the audit log keeps no such text."""
    for typed in ("My-Secret-Passw0rd!", "My-Secret-Passw0rd!", "ab"):
        post_sign_in(client, typed, "whatever-password", "123456")
    entries = list(AuditEntry.objects.filter(action="accounts.signin.failed").order_by("id"))
    assert [e.actor_username for e in entries] == ["My-…", "My-…", "ab"]
    digests = [e.data["name_digest"] for e in entries]
    assert digests[0] == digests[1] != digests[2] and len(digests[0]) == 16  # repeated guesses correlate
    dump = " ".join(f"{e.actor_username} {e.data} {e.search_text}" for e in entries)
    assert "Secret" not in dump
    import hashlib

    assert hashlib.sha256(b"my-secret-passw0rd!").hexdigest()[:16] not in dump  # keyed, not a plain hash

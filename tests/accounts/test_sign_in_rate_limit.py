"""Sign-in rate limits per client address and per user name (issue #16.5): slowed, then refused, with
the generic error, logged; a limited attempt checks nothing and counts against no account."""

from __future__ import annotations

import logging

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEntry
from accounts.services import SIGN_IN_ERROR, current_code
from tests.conftest import PASSWORD, Persona

T0 = 1_795_000_000.0


@pytest.fixture
def frozen():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def limits(settings):
    settings.SIGN_IN_IP_SLOW_AFTER, settings.SIGN_IN_IP_REFUSE_AFTER = 3, 6
    settings.SIGN_IN_USERNAME_SLOW_AFTER, settings.SIGN_IN_USERNAME_REFUSE_AFTER = 100, 100
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # the limits, not django-otp's throttle, are under test
    return settings


def attempt(username: str, password: str, code: str, ip: str = "203.0.113.7"):
    return Client(REMOTE_ADDR=ip).post(
        reverse("accounts:sign_in"), {"username": username, "password": password, "code": code}
    )


def right(persona: Persona, at: float) -> tuple[str, str, str]:
    persona.device.refresh_from_db()
    return (persona.user.username, PASSWORD, current_code(persona.device, at=at))


def signed_in(response) -> bool:
    return response.status_code == 302


def generic_error(response) -> bool:
    return response.status_code == 200 and SIGN_IN_ERROR in response.content.decode()


def test_the_default_limits_slow_then_refuse_before_the_lockout_would_and_wait_two_seconds():
    from django.conf import settings

    assert settings.SIGN_IN_SLOW_SECONDS == 2
    assert settings.SIGN_IN_USERNAME_SLOW_AFTER == settings.SIGN_IN_MAX_FAILURES  # the lockout counts first
    assert settings.SIGN_IN_IP_SLOW_AFTER < settings.SIGN_IN_IP_REFUSE_AFTER
    assert settings.SIGN_IN_USERNAME_SLOW_AFTER < settings.SIGN_IN_USERNAME_REFUSE_AFTER
    assert settings.SIGN_IN_RATE_WINDOW_SECONDS == 3600


def test_one_address_is_slowed_then_refused_with_the_generic_error_and_logged(alice, limits, frozen, caplog):
    for name in ("nobody1", "nobody2", "nobody3"):
        assert generic_error(attempt(name, "guess-password-1", "123456"))

    caplog.set_level(logging.WARNING, logger="accounts.ratelimit")
    slowed = attempt(*right(alice, T0))  # the 4th attempt straight after the 3rd: not processed
    assert generic_error(slowed)
    alice.user.refresh_from_db()
    assert alice.user.failed_sign_ins == 0 and alice.user.last_login is None
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("event=sign_in_rate_limited scope=ip state=slowed ")
    assert "ip=203.0.113.7" in line and "guess-password" not in line and PASSWORD not in line

    frozen.shift(limits.SIGN_IN_SLOW_SECONDS)
    assert signed_in(attempt(*right(alice, T0 + 2)))  # one attempt per wait gets through
    frozen.shift(limits.SIGN_IN_SLOW_SECONDS)
    for name in ("nobody4", "nobody5"):
        frozen.shift(limits.SIGN_IN_SLOW_SECONDS)
        assert generic_error(attempt(name, "guess-password-1", "123456"))
    frozen.shift(60)
    refused = attempt(*right(alice, T0 + 90))  # past the refusal limit: waiting does not help
    assert generic_error(refused)
    assert "state=refused" in caplog.records[-1].getMessage()

    assert signed_in(attempt(*right(alice, T0 + 90), ip="198.51.100.9"))  # another address is not limited
    frozen.shift(limits.SIGN_IN_RATE_WINDOW_SECONDS)
    assert signed_in(attempt(*right(alice, T0 + 3700)))  # the window ends


def test_forty_attempts_from_one_address_in_seventeen_seconds_are_mostly_not_processed(db, frozen):
    """The review's figure: 40 attempts in 16.6 s from one address were all processed."""
    for i in range(40):
        attempt(f"guess{i}", "guess-password-1", "123456")
        frozen.shift(16.6 / 40)
    processed = AuditEntry.objects.filter(action="accounts.signin.failed").count()
    from django.conf import settings

    assert processed <= settings.SIGN_IN_IP_SLOW_AFTER + 16.6 / settings.SIGN_IN_SLOW_SECONDS + 1


def test_one_user_name_is_slowed_then_refused_from_any_address(alice, limits, frozen):
    limits.SIGN_IN_IP_SLOW_AFTER = limits.SIGN_IN_IP_REFUSE_AFTER = 100
    limits.SIGN_IN_USERNAME_SLOW_AFTER, limits.SIGN_IN_USERNAME_REFUSE_AFTER = 2, 4
    limits.SIGN_IN_MAX_FAILURES = 100
    for i in range(2):
        assert generic_error(attempt("alice", "wrong-password-1", "123456", ip=f"192.0.2.{i}"))
    assert generic_error(attempt(*right(alice, T0), ip="192.0.2.50"))  # slowed, not processed
    assert AuditEntry.objects.filter(action="accounts.signin.failed").count() == 2
    frozen.shift(2)
    assert signed_in(attempt(*right(alice, T0 + 2), ip="192.0.2.51"))
    # A success clears the name's count: the user is not punished for earlier typos.
    for i in range(2):
        assert generic_error(attempt("alice", "wrong-password-1", "123456", ip=f"192.0.2.{10 + i}"))
    frozen.shift(2)
    for i in range(3):
        frozen.shift(2)
        attempt("alice", "wrong-password-1", "123456", ip=f"192.0.2.{20 + i}")
    frozen.shift(60)
    assert generic_error(attempt(*right(alice, T0 + 90), ip="192.0.2.60"))  # refused until the window ends


def test_limited_attempts_cannot_lock_the_account(alice, limits, frozen):
    limits.SIGN_IN_IP_SLOW_AFTER, limits.SIGN_IN_IP_REFUSE_AFTER = 2, 3
    for _ in range(10):
        attempt("alice", "wrong-password-1", "123456")
    alice.user.refresh_from_db()
    assert alice.user.failed_sign_ins == 2 and not alice.user.is_sign_in_locked()
    assert signed_in(attempt(*right(alice, T0), ip="198.51.100.9"))


def test_successful_sign_ins_from_one_office_address_are_never_limited(merchant, limits, frozen):
    from tests.conftest import make_persona

    staff = [make_persona(merchant, f"staff{i}") for i in range(10)]
    for persona in staff:
        assert signed_in(attempt(*right(persona, T0)))


def test_behind_a_trusted_proxy_the_client_address_comes_from_x_forwarded_for(alice, limits, frozen, settings):
    """With TRUSTED_PROXY_HOPS = 1 (one proxy in front) the limits and the audit log see the client, not
    the proxy: one guesser does not lock everybody out, and a forged left-most entry changes nothing."""
    settings.TRUSTED_PROXY_HOPS = 1

    def through_proxy(client_address: str, *fields: str, forged: str = ""):
        chain = f"{forged}, {client_address}" if forged else client_address
        return Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=chain).post(
            reverse("accounts:sign_in"), dict(zip(("username", "password", "code"), fields, strict=True))
        )

    for i in range(limits.SIGN_IN_IP_REFUSE_AFTER + 2):
        through_proxy("203.0.113.7", f"guess{i}", "guess-password-1", "123456", forged=f"198.51.100.{i}")
    assert signed_in(through_proxy("192.0.2.44", *right(alice, T0)))
    assert AuditEntry.objects.get(action="accounts.signin").ip_address == "192.0.2.44"
    assert set(AuditEntry.objects.filter(action="accounts.signin.failed").values_list("ip_address", flat=True)) == {
        "203.0.113.7"
    }


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(alice, limits, frozen):
    for i in range(limits.SIGN_IN_IP_REFUSE_AFTER + 1):
        Client(REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").post(
            reverse("accounts:sign_in"), {"username": f"guess{i}", "password": "guess-password-1", "code": "123456"}
        )
    assert generic_error(attempt(*right(alice, T0)))  # still the one address 203.0.113.7, refused

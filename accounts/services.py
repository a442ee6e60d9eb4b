"""Domain operations of accounts: sign-in, TOTP verification, devices."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import django_otp
from django.conf import settings
from django.contrib.auth import login, logout
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import audit
from .models import User

SIGN_IN_ERROR = "The user name, password or authentication code is not correct."
CODE_FORMAT = re.compile(r"^\d{6}$")
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def verify_code(user: User, code: str) -> TOTPDevice | None:
    """Check a 6-digit code against the user's confirmed device, under a row lock.

    django-otp refuses a code whose time step is not after ``last_t`` (so a code works once) and
    throttles after failures; the row lock makes two concurrent requests with one code see each other.
    """
    code = (code or "").strip()
    if not CODE_FORMAT.match(code):
        return None
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk").first()
        if device is not None and device.verify_token(code):
            return device
    return None


def create_device(user: User, *, confirmed: bool) -> TOTPDevice:
    """A new authenticator key for ``user`` (160 bits, SHA1, 6 digits, 30 s); any old device is removed."""
    TOTPDevice.objects.filter(user=user).delete()
    return TOTPDevice.objects.create(user=user, name="Google Authenticator", confirmed=confirmed, tolerance=1)


def current_code(device: TOTPDevice, at: float | None = None) -> str:
    """The code the user's phone shows now (for operators and tests; never logged)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    if at is not None:
        totp.time = at
    return f"{totp.token():0{device.digits}d}"


@dataclass
class SignInResult:
    user: User | None
    error: str = ""


def sign_in(request: HttpRequest, username: str, password: str, code: str) -> SignInResult:
    """Sign in with password and code (A1) under the decisions of TESTING.md.

    Any wrong part, a locked or unknown user: one generic error. Five failures in a row lock the account
    for 30 minutes. Success rotates the session key and marks the session verified.
    """
    failed = SignInResult(user=None, error=SIGN_IN_ERROR)
    candidate = User.objects.filter(username=username).only("pk").first()
    if candidate is None:
        User().set_password(password)  # spend the hashing time an existing user would
        audit.record("accounts.signin.failed", request=request, username=username, data={"cause": "unknown user"})
        return failed

    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=candidate.pk)
        now = timezone.now()
        if user.is_sign_in_locked(now) or not user.is_active:
            audit.record("accounts.signin.failed", request=request, actor=user, data={"cause": "locked"})
            return failed
        password_ok = user.check_password(password)
        device = verify_code(user, code) if password_ok else None
        if device is None:
            user.failed_sign_ins += 1
            cause = "wrong code" if password_ok else "wrong password"
            audit.record("accounts.signin.failed", request=request, actor=user, data={"cause": cause})
            if user.failed_sign_ins >= settings.SIGN_IN_MAX_FAILURES:
                user.locked_until = now + timedelta(seconds=settings.SIGN_IN_LOCK_SECONDS)
                user.failed_sign_ins = 0
                audit.record(
                    "accounts.user.locked_out",
                    request=request,
                    actor=user,
                    target=user,
                    data={"failures": settings.SIGN_IN_MAX_FAILURES, "locked_until": user.locked_until.isoformat()},
                )
            user.save(update_fields=["failed_sign_ins", "locked_until"])
            return failed
        user.failed_sign_ins = 0
        user.locked_until = None
        user.save(update_fields=["failed_sign_ins", "locked_until"])

    login(request, user, backend=MODEL_BACKEND)  # a new session key (cycle_key)
    django_otp.login(request, device)
    audit.record("accounts.signin", request=request, actor=user)
    return SignInResult(user=user)


def sign_out(request: HttpRequest) -> None:
    if request.user.is_authenticated:
        audit.record("accounts.signout", request=request)
    logout(request)

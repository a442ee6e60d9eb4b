"""Domain operations of accounts: sign-in, TOTP verification, devices, Manage User.

Manage User and enrollment take the ``Actor`` who acts (accounts.audit). Sign-in, sign-out and the
change of one's own password take the HTTP request: they start, end or re-key its session, and sign-in
counts attempts per client address (accounts.ratelimit)."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module

import django_otp
from django.conf import settings
from django.contrib.auth import SESSION_KEY, login, logout, update_session_auth_hash
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import audit, emails, ratelimit
from .audit import Actor
from .middleware import SIGNED_IN_AT
from .models import Merchant, SignedInSession, User

SIGN_IN_ERROR = "The user name, password or authentication code is not correct."
CODE_FORMAT = re.compile(r"^\d{6}$")
MODEL_BACKEND = "accounts.backends.UserBackend"


def verify_code(user: User, code: str, *, confirmed: bool = True) -> TOTPDevice | None:
    """Check a 6-digit code against the user's device (confirmed, or the one being enrolled), under a row lock.

    django-otp refuses a code whose time step is not after ``last_t`` (so a code works once) and
    throttles after failures; the row lock makes two concurrent requests with one code see each other.
    """
    code = (code or "").strip()
    if not CODE_FORMAT.match(code):
        return None
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=confirmed).order_by("pk").first()
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

    Any wrong part, a locked or unknown user, an attempt over the rate limits (accounts.ratelimit): one
    generic error. Five failures in a row lock the account for 30 minutes. Success starts a new session.
    """
    failed = SignInResult(user=None, error=SIGN_IN_ERROR)
    if not ratelimit.admit(request, username):
        return failed
    candidate = User.objects.filter(username=username).first()
    if candidate is None:
        User().set_password(password)  # spend the hashing time an existing user would
        # The typed name is sometimes a password: its first characters and a keyed digest are kept.
        hint = username if len(username) <= 3 else f"{username[:3]}…"
        data = {"cause": "unknown user", "name_digest": ratelimit.name_digest(username)}
        audit.record("accounts.signin.failed", request=request, username=hint, data=data)
        return failed

    # The slow hash runs before the row lock, so guessers on one account do not queue its real sign-ins.
    password_ok = candidate.check_password(password)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=candidate.pk)
        now = timezone.now()
        if user.is_sign_in_locked(now) or not user.is_active:
            audit.record("accounts.signin.failed", request=request, actor=user, data={"cause": "locked"})
            return failed
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

    _start_session(request, user, device)
    ratelimit.succeeded(request, username)
    audit.record("accounts.signin", request=request, actor=user)
    return SignInResult(user=user)


def _start_session(request: HttpRequest, user: User, device: TOTPDevice) -> None:
    """A verified session under a new key, recorded for end_sessions; the browser's old session is gone."""
    known_key = request.session.session_key
    if SESSION_KEY in request.session:
        # Signed in before in this browser (then bounced, e.g. by a new key): login() would keep the key.
        request.session.cycle_key()
    login(request, user, backend=MODEL_BACKEND)  # a new session key (cycle_key or flush)
    django_otp.login(request, device)
    request.session[SIGNED_IN_AT] = int(time.time())  # the absolute lifetime counts from here
    if known_key:
        SignedInSession.objects.filter(session_key=known_key).delete()
    SignedInSession.objects.update_or_create(session_key=request.session.session_key, defaults={"user": user})


def sign_out(request: HttpRequest) -> None:
    if request.user.is_authenticated:
        audit.record("accounts.signout", request=request)
        SignedInSession.objects.filter(session_key=request.session.session_key).delete()
    logout(request)


def end_sessions(user: User, *, keep: str | None = None) -> int:
    """End every session ``user`` signed in, but ``keep`` (A4, U4). Returns how many ended."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    rows = SignedInSession.objects.filter(user=user)
    if keep:
        rows = rows.exclude(session_key=keep)
    keys = list(rows.values_list("session_key", flat=True))
    for key in keys:
        store(session_key=key).delete()
    rows.delete()
    return len(keys)


def change_own_password(request: HttpRequest, new_password: str) -> None:
    """Setting Account (A5): the other sessions end, this one stays signed in under a new key."""
    user = request.user
    old_key = request.session.session_key
    end_sessions(user, keep=old_key)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    update_session_auth_hash(request, user)  # cycles this session's key
    SignedInSession.objects.filter(session_key=old_key).update(session_key=request.session.session_key)
    audit.record("accounts.password.changed", request=request, target=user)


# Manage User (U1-U6): every operation is done by a merchant admin on a user of the same merchant.

enrollment_tokens = PasswordResetTokenGenerator()
enrollment_tokens.key_salt = "accounts.enrollment"


def enrollment_link(user: User, actor: Actor | None = None) -> str:
    """A one-time, expiring link (PASSWORD_RESET_TIMEOUT): it dies as soon as the password changes. On the
    address ``actor`` came to, else on SITE_URL (the operator commands)."""
    path = reverse(
        "accounts:enroll", args=[urlsafe_base64_encode(force_bytes(user.pk)), enrollment_tokens.make_token(user)]
    )
    return actor.absolute_url(path) if actor is not None else settings.SITE_URL.rstrip("/") + path


def user_from_link(uidb64: str, token: str) -> User | None:
    try:
        user = User.objects.get(pk=urlsafe_base64_decode(uidb64).decode())
    except (ValueError, TypeError, OverflowError, User.DoesNotExist):
        return None
    if not user.is_active or not enrollment_tokens.check_token(user, token):
        return None
    return user


def _user_data(user: User) -> dict:
    return {
        "username": user.username,
        "email": user.email,
        "mobile_number": user.mobile_number,
        "menu_access": sorted(user.menu_access),
    }


@transaction.atomic
def create_user(actor: Actor, *, username: str, email: str, mobile_number: str, menu_access: list[str]) -> User:
    """U2: the user starts without a password; the e-mailed link sets it and enrolls the authenticator (A2)."""
    user = User(
        username=username,
        email=email,
        mobile_number=mobile_number,
        menu_access=sorted(menu_access),
        merchant=actor.merchant,
    )
    user.set_unusable_password()
    user.save()
    create_device(user, confirmed=False)
    audit.record("accounts.user.created", actor=actor, target=user, data=_user_data(user))
    link = enrollment_link(user, actor)
    transaction.on_commit(lambda: emails.send_invitation(user, link))
    return user


def update_user(actor: Actor, user: User, *, mobile_number: str, menu_access: list[str]) -> None:
    """U3, with before and after in the audit log."""
    before = _user_data(user)
    user.mobile_number = mobile_number
    user.menu_access = sorted(menu_access)
    user.save(update_fields=["mobile_number", "menu_access"])
    after = _user_data(user)
    changed = {k: {"before": before[k], "after": after[k]} for k in after if before[k] != after[k]}
    audit.record("accounts.user.changed", actor=actor, target=user, data=changed)


@transaction.atomic
def lock_user(actor: Actor, user: User, reason: str = "") -> int:
    """U4: a locked user cannot sign in and every open session ends now."""
    user.locked = True
    user.save(update_fields=["locked"])
    ended = end_sessions(user)
    audit.record("accounts.user.locked", actor=actor, target=user, data={"sessions_ended": ended}, reason=reason)
    return ended


def unlock_user(actor: Actor, user: User, reason: str) -> None:
    """Lifts an admin lock and a lock after failed sign-ins alike."""
    user.locked = False
    user.locked_until = None
    user.failed_sign_ins = 0
    user.save(update_fields=["locked", "locked_until", "failed_sign_ins"])
    audit.record("accounts.user.unlocked", actor=actor, target=user, reason=reason)


@transaction.atomic
def reset_password(actor: Actor, user: User, reason: str) -> None:
    """U5: the old password stops working, sessions end, and a new one-time link is e-mailed."""
    user.set_unusable_password()
    user.save(update_fields=["password"])
    end_sessions(user)
    audit.record("accounts.user.password_reset", actor=actor, target=user, reason=reason)
    link = enrollment_link(user, actor)
    transaction.on_commit(lambda: emails.send_password_reset(user, link))


def reveal_key(actor: Actor, user: User, reason: str) -> TOTPDevice | None:
    """U6: the key is shown after step-up; each reveal is audited (never the key itself)."""
    device = TOTPDevice.objects.filter(user=user).order_by("-confirmed", "pk").first()
    audit.record("accounts.user.key_revealed", actor=actor, target=user, reason=reason)
    return device


@transaction.atomic
def reissue_key(actor: Actor, user: User, reason: str, *, own_session: str | None = None) -> TOTPDevice:
    """U6: a new key replaces the old one at once: codes of the old key stop working and the user's
    sessions end (an admin re-keying themself keeps ``own_session``, this page's; its next page asks to
    sign in)."""
    device = create_device(user, confirmed=True)
    ended = end_sessions(user, keep=own_session if user == actor.user else None)
    audit.record("accounts.user.key_reissued", actor=actor, target=user, reason=reason, data={"sessions_ended": ended})
    return device


@transaction.atomic
def complete_enrollment(actor: Actor, password: str, device: TOTPDevice | None) -> None:
    """A2: ``actor``'s user sets the password (which spends the link) and confirms the device the code was
    checked against."""
    user = actor.user
    user.set_password(password)
    user.save(update_fields=["password"])
    if device is not None and not device.confirmed:
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    audit.record("accounts.user.enrolled", actor=actor, target=user, data={"device_confirmed": device is not None})


# The merchant's callback settings (P8), by its admin


def change_callback_url(actor: Actor, url: str) -> None:
    """Where ``actor``'s merchant receives payment results (``url`` checked by CallbackSettingsForm)."""
    merchant = actor.merchant
    before = Merchant.objects.filter(pk=merchant.pk).values_list("callback_url", flat=True).get()
    merchant.callback_url = url
    merchant.save(update_fields=["callback_url"])
    data = {"callback_url": {"before": before, "after": url}}
    audit.record("accounts.merchant.callback_changed", actor=actor, target=merchant, data=data)


def reissue_callback_secret(actor: Actor, reason: str) -> str:
    """A new signing secret for ``actor``'s merchant, returned to be shown once; the old one stops at once."""
    merchant = actor.merchant
    merchant.callback_secret = secrets.token_hex(32)
    merchant.save(update_fields=["callback_secret"])
    audit.record("accounts.merchant.callback_secret_reissued", actor=actor, target=merchant, reason=reason)
    return merchant.callback_secret

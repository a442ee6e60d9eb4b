from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.utils import timezone
from django.utils.cache import add_never_cache_headers


class SessionIdleMiddleware:
    """Activity keeps a session alive (it ends after SESSION_COOKIE_AGE idle), with one session write a
    minute at most instead of one per request: the expiry moves when the session is saved, so it is saved
    when the last save is SESSION_REFRESH_SECONDS old. The idle limit is then met within that margin."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session, now = request.session, int(time.time())
        if session.session_key and now - session.get("_refreshed", 0) >= settings.SESSION_REFRESH_SECONDS:
            session["_refreshed"] = now
        response = self.get_response(request)
        if session.modified and not session.is_empty():  # saved anyway (a sign-in, a message): note when
            session["_refreshed"] = now
        return response


# When the session's user signed in (epoch seconds), for the absolute lifetime (SESSION_ABSOLUTE_SECONDS).
SIGNED_IN_AT = "_signed_in_at"


def session_outlived(request) -> bool:
    """True when the session is older than SESSION_ABSOLUTE_SECONDS, however active it was. A session
    from before this rule (no sign-in time) starts counting now."""
    started = request.session.setdefault(SIGNED_IN_AT, int(time.time()))
    return time.time() - started >= settings.SESSION_ABSOLUTE_SECONDS


class VerifiedSessionRequiredMiddleware(LoginRequiredMiddleware):
    """Every view needs a session verified by password and TOTP, unless marked ``@login_not_required``.

    A user locked or deactivated since signing in is signed out on the next request (U4), and so is a
    session past its absolute lifetime.
    """

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not getattr(view_func, "login_required", True):
            return None
        user = request.user
        if user.is_authenticated and (user.is_sign_in_locked() or not user.is_active or session_outlived(request)):
            logout(request)
        elif user.is_authenticated and user.is_verified():
            return None
        return self.handle_no_permission(request, view_func)


class MerchantTimezoneMiddleware:
    """Pages render dates in the merchant's time zone (R11)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        merchant = getattr(request.user, "merchant", None) if request.user.is_authenticated else None
        if merchant is not None:
            timezone.activate(merchant.tzinfo)
        else:
            timezone.deactivate()
        return self.get_response(request)


class NoStoreWhenSignedInMiddleware:
    """Every response to a signed-in user carries customer or account data: no browser or proxy keeps it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.user.is_authenticated:
            add_never_cache_headers(response)
        return response

"""Sign-in rate limits in the cache, per client address and per user name (TESTING Auth 4 still holds).

Each attempt is counted when it arrives (so a burst of parallel attempts is counted too); a success
takes its count back from its address and clears its name's. Past ``*_SLOW_AFTER`` attempts in the
window an address or name gets one attempt per ``SIGN_IN_SLOW_SECONDS``; past ``*_REFUSE_AFTER`` none
until the window (``SIGN_IN_RATE_WINDOW_SECONDS``, from its first attempt) ends. A limited attempt gets
the generic sign-in error, checks no password or code and counts against no account, so guessers
cannot lock an account through it; the account lockout stays for the guesses that do get through.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.crypto import salted_hmac

from .audit import client_ip

logger = logging.getLogger(__name__)


def name_digest(username: str) -> str:
    """A typed name is sometimes a password: keys, logs and the audit log hold this digest of it, never the
    text. Keyed with SECRET_KEY, so a digest cannot be matched against a list of guessed passwords."""
    return salted_hmac("accounts.signin.typed-name", username.strip().lower()).hexdigest()[:16]


def _buckets(request: HttpRequest, username: str) -> list[tuple[str, str, int, int]]:
    return [
        (
            "ip",
            f"signin-limit:ip:{client_ip(request) or 'unknown'}",
            settings.SIGN_IN_IP_SLOW_AFTER,
            settings.SIGN_IN_IP_REFUSE_AFTER,
        ),
        (
            "user",
            f"signin-limit:user:{name_digest(username)}",
            settings.SIGN_IN_USERNAME_SLOW_AFTER,
            settings.SIGN_IN_USERNAME_REFUSE_AFTER,
        ),
    ]


def _count(key: str) -> int:
    cache.add(key, 0, settings.SIGN_IN_RATE_WINDOW_SECONDS)
    try:
        return cache.incr(key)
    except ValueError:  # the window ended between add and incr
        cache.set(key, 1, settings.SIGN_IN_RATE_WINDOW_SECONDS)
        return 1


def admit(request: HttpRequest, username: str) -> bool:
    """Count this attempt; False (logged) when it is slowed or refused and must not be processed."""
    for scope, key, slow_after, refuse_after in _buckets(request, username):
        attempts = _count(key)
        # One attempt per SIGN_IN_SLOW_SECONDS finds no wait key (add is atomic in Redis and locmem).
        fresh = settings.SIGN_IN_SLOW_SECONDS <= 0 or cache.add(f"{key}:wait", 1, settings.SIGN_IN_SLOW_SECONDS)
        if attempts > refuse_after:
            state = "refused"
        elif attempts > slow_after and not fresh:
            state = "slowed"
        else:
            continue
        logger.warning(
            "event=sign_in_rate_limited scope=%s state=%s attempts=%d ip=%s user=%s",
            scope,
            state,
            attempts,
            client_ip(request) or "unknown",
            name_digest(username),
        )
        return False
    return True


def succeeded(request: HttpRequest, username: str) -> None:
    """A success does not count against its address (an office behind one address), and clears its name."""
    (_, ip_key, *_), (_, user_key, *_) = _buckets(request, username)
    try:
        cache.decr(ip_key)
    except ValueError:  # the window ended meanwhile
        pass
    cache.delete_many([user_key, f"{user_key}:wait"])

"""API keys: made, found and revoked here (the Setting Account page and ``create_api_key`` call these).

A key reads ``bbo_<prefix>_<secret>``: the prefix finds the row, the SHA-256 of the whole key checks it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import IntegrityError
from django.db import transaction as db
from django.utils import timezone

from accounts import audit
from accounts.audit import Actor

from .models import ApiKey, Scope

KEY_START = "bbo_"
LAST_USED_STEP = timedelta(seconds=60)  # last use is written once a minute at most


class KeyRefused(Exception):
    """The key cannot be made as asked; the message says why."""


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def clean_scopes(scopes) -> list[str]:
    chosen = sorted({str(scope).strip() for scope in scopes if str(scope).strip()})
    unknown = [scope for scope in chosen if scope not in Scope.values]
    if unknown:
        raise KeyRefused(f"Unknown scope {', '.join(unknown)}: use {', '.join(Scope.values)}.")
    if not chosen:
        raise KeyRefused("Choose at least one scope.")
    return chosen


def create_key(actor: Actor, name: str, scopes, reason: str = "") -> tuple[ApiKey, str]:
    """A new key of ``actor``'s merchant: the row and the key itself, which is shown once and never again."""
    name = name.strip()
    if not name or len(name) > 80:
        raise KeyRefused("Give the key a name of 1 to 80 characters.")
    scopes = clean_scopes(scopes)
    taken = KeyRefused(f"A key named {name} exists already: revoke it or choose another name.")
    if ApiKey.objects.filter(merchant_id=actor.merchant.pk, name=name, revoked_at__isnull=True).exists():
        raise taken
    try:
        return _create(actor, name, scopes, reason)
    except IntegrityError as exc:  # the same name made meanwhile
        raise taken from exc


def _create(actor: Actor, name: str, scopes: list[str], reason: str) -> tuple[ApiKey, str]:
    with db.atomic():
        prefix = secrets.token_hex(4)
        raw = f"{KEY_START}{prefix}_{secrets.token_urlsafe(32)}"
        key = ApiKey.objects.create(
            merchant=actor.merchant,
            name=name,
            prefix=prefix,
            hashed_key=_digest(raw),
            scopes=scopes,
            created_by=actor.user,
        )
        audit.record(
            "api.key.created",
            actor=actor,
            target=key,
            reason=reason,
            data={"name": name, "scopes": scopes, "prefix": prefix},
        )
    return key, raw


def revoke_key(actor: Actor, key: ApiKey, reason: str = "") -> bool:
    """Revoke ``key`` of ``actor``'s merchant at once; False when it was revoked already."""
    with db.atomic():
        revoked = ApiKey.objects.filter(merchant_id=actor.merchant.pk, pk=key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if revoked:
            audit.record(
                "api.key.revoked",
                actor=actor,
                target=key,
                reason=reason,
                data={"name": key.name, "prefix": key.prefix},
            )
    return bool(revoked)


def find_key(raw: str) -> ApiKey | None:
    """The active key ``raw`` is, or None. The lookup is by prefix (the merchant is not known yet); the
    digest is compared in constant time."""
    if not raw.startswith(KEY_START) or len(raw) > 100:
        return None
    prefix, _, secret = raw[len(KEY_START) :].partition("_")
    if not prefix or not secret:
        return None
    key = ApiKey.objects.select_related("merchant").filter(prefix=prefix, revoked_at__isnull=True).first()
    if key is None or not hmac.compare_digest(key.hashed_key, _digest(raw)):
        return None
    return key


def note_use(key: ApiKey) -> None:
    """Record the key's last use (at most one write a minute)."""
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_STEP:
        ApiKey.objects.filter(merchant_id=key.merchant_id, pk=key.pk).update(last_used_at=now)
        key.last_used_at = now

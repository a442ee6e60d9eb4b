"""The one way to write User Activity (L1): ``record(action, ...)``.

Action codes are dotted (``accounts.signin.failed``). Data is scrubbed before it is stored: values under
secret-looking keys are dropped and card numbers masked, so no password, code, key or PAN is kept.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import models
from django.http import HttpRequest

from billing_bo.lib.cards import mask_pans_in_text

from .models import AuditEntry, Merchant, User

SECRET_KEY_NAMES = re.compile(r"pass|secret|token|otp|code_value|cvv|cvc|key|pan$|card_number", re.IGNORECASE)
REDACTED = "[redacted]"

# Known action codes and their labels, for the User Activity filter; other apps add theirs.
ACTIONS = {
    "accounts.signin": "Sign in",
    "accounts.signin.failed": "Failed sign-in",
    "accounts.signout": "Sign out",
    "accounts.user.locked_out": "Locked after failed sign-ins",
    "accounts.merchant.created": "Merchant created",
    "accounts.operator.created": "Platform operator created",
    "accounts.user.created": "User created",
    "accounts.user.changed": "User changed",
    "accounts.user.locked": "User locked",
    "accounts.user.unlocked": "User unlocked",
    "accounts.user.password_reset": "Password reset",
    "accounts.user.enrolled": "Password set / authenticator enrolled",
    "accounts.user.key_revealed": "Secret key revealed",
    "accounts.user.key_reissued": "New secret key issued",
    "accounts.password.changed": "Own password changed",
    "accounts.account.changed": "Own account changed",
    "accounts.stepup.failed": "Failed confirmation code",
    "accounts.merchant.callback_changed": "Callback URL changed",
    "accounts.merchant.callback_secret_reissued": "Callback secret issued",
}


def register_actions(actions: dict[str, str]) -> None:
    """Each app adds its action codes and labels (from its AppConfig.ready) for the User Activity filter."""
    ACTIONS.update(actions)


def action_choices() -> list[tuple[str, str]]:
    return sorted(ACTIONS.items(), key=lambda item: item[1])


def scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if SECRET_KEY_NAMES.search(str(k)) else scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return mask_pans_in_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return mask_pans_in_text(str(value))


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address: REMOTE_ADDR, or behind TRUSTED_PROXY_HOPS proxies the entry of
    X-Forwarded-For that the outermost trusted proxy added (entries left of it are the client's to forge)."""
    if request is None:
        return None
    hops = settings.TRUSTED_PROXY_HOPS
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if hops and len(forwarded) >= hops:
        try:
            return str(ipaddress.ip_address(forwarded[-hops]))
        except ValueError:
            pass
    return request.META.get("REMOTE_ADDR") or None


@dataclass(frozen=True)
class Actor:
    """Who does something, for the services and their audit entries: the user (or an API key: no user,
    ``name`` says which key), the merchant it acts for, the client's address, the site address it came
    to (for links in e-mails) and the request's id (API requests; kept in the audit entry's data).
    Views build it from the request with ``Actor.from_request``; commands and tests with
    ``Actor.of(user)``; the API with ``Actor.of_api_key``. Services take this, never the HTTP request."""

    user: User | None
    merchant: Merchant | None
    ip_address: str | None = None
    site_url: str = ""
    name: str = ""  # who acts when there is no user: "API key <its name>"
    request_id: str = ""

    @classmethod
    def of(cls, user: User, *, ip_address: str | None = None, site_url: str = "") -> Actor:
        return cls(user=user, merchant=user.merchant, ip_address=ip_address, site_url=site_url)

    @classmethod
    def from_request(cls, request: HttpRequest, *, user: User | None = None) -> Actor:
        """The signed-in user of ``request`` (or ``user``, who acts without a session: enrollment)."""
        user = user or request.user
        return cls.of(user, ip_address=client_ip(request), site_url=request.build_absolute_uri("/"))

    @classmethod
    def of_api_key(
        cls, merchant: Merchant, key_name: str, *, request_id: str, ip_address: str | None, site_url: str = ""
    ) -> Actor:
        """A merchant's API key acting in one API request: User Activity names the key and the request."""
        return cls(
            user=None,
            merchant=merchant,
            ip_address=ip_address,
            site_url=site_url,
            name=f"API key {key_name}",
            request_id=request_id,
        )

    def absolute_url(self, path: str) -> str:
        """``path`` on the address the actor came to, else on SITE_URL (commands, workers)."""
        return (self.site_url or settings.SITE_URL).rstrip("/") + path


def record(
    action: str,
    *,
    request: HttpRequest | None = None,
    actor: Actor | User | None = None,
    merchant: Merchant | None = None,
    target: models.Model | None = None,
    data: dict | None = None,
    reason: str = "",
    username: str = "",
) -> AuditEntry:
    """Append one audit entry. ``actor`` (an ``Actor``, or just the user) defaults to the request's signed-in
    user, ``merchant`` to the actor's; the client address is the request's, else the ``Actor``'s."""
    ip_address = client_ip(request)
    if isinstance(actor, Actor):
        merchant = merchant or actor.merchant
        ip_address = ip_address or actor.ip_address
        username = username or actor.name
        if actor.request_id:
            data = {**(data or {}), "request_id": actor.request_id}
        actor = actor.user
    if actor is None and request is not None and getattr(request, "user", None) is not None:
        if request.user.is_authenticated:
            actor = request.user
    if merchant is None and actor is not None:
        merchant = actor.merchant
    clean = scrub(data or {})
    target_repr = mask_pans_in_text(str(target))[:200] if target is not None else ""
    entry = AuditEntry(
        merchant=merchant,
        actor=actor,
        actor_username=(actor.username if actor is not None else mask_pans_in_text(username))[:150],
        action=action,
        ip_address=ip_address,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=target_repr,
        data=clean,
        reason=mask_pans_in_text(reason),
        search_text=f"{target_repr} {json.dumps(clean, ensure_ascii=False, default=str)}".lower(),
    )
    entry.save()
    return entry

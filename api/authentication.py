"""``Authorization: Api-Key <key>``: the request acts for the key's merchant, as the key (no user, no
session, no CSRF: the key is sent on purpose by the merchant's system, never by a browser on its own)."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts.models import Merchant

from . import keys
from .models import ApiKey

KEYWORD = "Api-Key"


@dataclass
class KeyPrincipal:
    """``request.user`` of an API request: the merchant's key. ``accounts.tenancy.merchant_rows`` and
    the reports' filters scope by its ``merchant_id`` as they do for a signed-in user."""

    key: ApiKey

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    is_merchant_admin = False
    pk = None

    @property
    def merchant(self) -> Merchant:
        return self.key.merchant

    @property
    def merchant_id(self) -> int:
        return self.key.merchant_id

    @property
    def username(self) -> str:
        return f"API key {self.key.name}"

    def has_menu(self, code: str) -> bool:
        return False  # the screens' menus are for users; a key has scopes

    def is_verified(self) -> bool:
        return False

    def __str__(self) -> str:
        return self.username


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        keyword, _, raw = header.partition(" ")
        if keyword.lower() != KEYWORD.lower():
            return None  # no key: 401 from the permission check
        key = keys.find_key(raw.strip())
        if key is None:
            raise exceptions.AuthenticationFailed("This API key is not valid or was revoked.")
        keys.note_use(key)
        timezone.activate(key.merchant.tzinfo)  # times are written with the merchant's offset
        return KeyPrincipal(key), key

    def authenticate_header(self, request) -> str:
        return KEYWORD

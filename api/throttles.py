"""Throttling per key (``API_KEY_RATE``), counted in Django's cache: Redis in production, so every web
process counts together. Over the rate: 429 with ``Retry-After``."""

from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle

from .authentication import KeyPrincipal


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_cache_key(self, request, view):
        principal = request.user
        if not isinstance(principal, KeyPrincipal):
            return None  # refused before counting (401)
        return self.cache_format % {"scope": self.scope, "ident": principal.key.pk}

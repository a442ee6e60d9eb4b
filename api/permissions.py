"""Scopes: each view names the one it needs (``required_scope``); a key without it gets 403."""

from __future__ import annotations

from rest_framework import permissions

from .authentication import KeyPrincipal


class HasScope(permissions.BasePermission):
    message = "This API key does not have the scope this endpoint needs."

    def has_permission(self, request, view) -> bool:
        principal = request.user
        if not isinstance(principal, KeyPrincipal):
            return False
        scope = view.required_scope
        if scope not in principal.key.scopes:
            self.message = f"This API key does not have the {scope} scope."
            return False
        return True

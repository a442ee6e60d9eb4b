"""How a signed-in request finds its user: with the merchant in the same query."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class UserBackend(ModelBackend):
    """Django's ``ModelBackend`` (passwords, permissions, the ``is_active`` check), except that the user of a
    session comes with their merchant: nearly every page reads it (tenancy, the time zone, the sidebar),
    and it was a second query on every request."""

    def get_user(self, user_id):
        try:
            user = get_user_model()._default_manager.select_related("merchant").get(pk=user_id)
        except get_user_model().DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None

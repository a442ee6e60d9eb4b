"""Tenancy and access: every view reaches merchant rows through ``merchant_rows`` / ``get_merchant_row``
and checks its menu with ``menu_required`` (a decorator)."""

from __future__ import annotations

from functools import wraps
from typing import TypeVar

from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest

from .menus import MENUS_BY_CODE

M = TypeVar("M", bound=models.Model)


def merchant_rows(request: HttpRequest, model_or_queryset: type[M] | models.QuerySet[M]) -> models.QuerySet[M]:
    """The rows of the signed-in user's merchant; none at all for a user without one."""
    merchant_id = getattr(request.user, "merchant_id", None)
    if merchant_id is None:
        raise Http404("No merchant.")
    queryset = (
        model_or_queryset
        if isinstance(model_or_queryset, models.QuerySet)
        else model_or_queryset._default_manager.all()
    )
    return queryset.filter(merchant_id=merchant_id)


def get_merchant_row(request: HttpRequest, model_or_queryset: type[M] | models.QuerySet[M], **lookup) -> M:
    """One row of the signed-in user's merchant, or 404: another merchant's row is never revealed to exist."""
    try:
        return merchant_rows(request, model_or_queryset).get(**lookup)
    except (models.ObjectDoesNotExist, ValueError) as exc:
        raise Http404("Not found.") from exc


def check_menu(request: HttpRequest, code: str) -> None:
    """Refuse (403) a user whose menu access lacks ``code`` (U7); admins have every menu."""
    if not request.user.has_menu(code):
        raise PermissionDenied("You do not have access to this menu.")


def menu_required(code: str):
    if code not in MENUS_BY_CODE:
        raise ValueError(f"Unknown menu code {code!r}")

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            check_menu(request, code)
            return view(request, *args, **kwargs)

        wrapped.menu_code = code
        return wrapped

    return decorator


def admin_required(view):
    """Refuse (403) anyone but a merchant admin: merchant-wide settings and logs."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not getattr(request.user, "is_merchant_admin", False) or request.user.merchant_id is None:
            raise PermissionDenied("Only a merchant admin can open this page.")
        return view(request, *args, **kwargs)

    wrapped.admin_only = True
    return wrapped

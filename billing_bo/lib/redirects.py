"""The one check of a ``next`` parameter: every view that goes back to where the user came from uses it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme


def safe_next(request: HttpRequest) -> str:
    """The request's ``next`` (form first, then query) when it stays on this site, else ""."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return candidate
    return ""


def redirect_to_next(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    """Back to a safe ``next``, else to ``fallback`` (a URL name or a path)."""
    return redirect(safe_next(request) or fallback)

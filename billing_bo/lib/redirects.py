"""The one check of a ``next`` parameter: every view that goes back to where the user came from uses it."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme


def safe_next(request: HttpRequest) -> str:
    """The request's ``next`` (form first, then query) when it stays on this site, else ""."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


def back_url(request: HttpRequest, fallback: str = "/") -> str:
    """Where a Cancel link goes: a safe ``next``, else the page that linked here (on this site), else
    ``fallback``. A link, not ``javascript:history.back()``, which the Content-Security-Policy refuses."""
    if target := safe_next(request):
        return target
    referer = request.headers.get("Referer", "")
    on_site = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    if referer and on_site and urlsplit(referer).path != request.path:
        return referer
    return fallback


def redirect_to_next(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    """Back to a safe ``next``, else to ``fallback`` (a URL name or a path)."""
    return redirect(safe_next(request) or fallback)

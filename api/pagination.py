"""Cursor pages for the API on All Report's keyset paginator (reports.pagination): no OFFSET, no COUNT per
page; ``next`` / ``previous`` are full URLs keeping the request's other parameters."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import QuerySet

from reports.pagination import KeysetPaginator, Page, page_links


def keyset_page(
    request, queryset: QuerySet, keys: Sequence[str], sort: str, per_page: int, *, descending: bool = True, params=None
) -> tuple[Page, dict]:
    """The page ``request`` asks for (``after`` / ``before`` cursors) and its ``next`` / ``previous`` URLs."""
    params = params if params is not None else request.query_params
    page = KeysetPaginator(queryset, keys, descending=descending, sort=sort, per_page=per_page).page(params)
    links = page_links(params, page)
    base = request.build_absolute_uri(request.path)
    return page, {
        "next": base + links["next"] if "next" in links else None,
        "previous": base + links["previous"] if "previous" in links else None,
    }

from __future__ import annotations

from functools import cache

from django.urls import get_script_prefix, reverse

from .menus import MENUS


@cache
def _menu_url(url_name: str, script_prefix: str) -> str:
    """A menu's address, reversed once per process (and script prefix), not on every page."""
    return reverse(url_name)


def navigation(request) -> dict:
    """The sidebar: the menus this user may open, drawn from the same list the access check reads."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    items = []
    for menu in MENUS:
        if not user.has_menu(menu.code):
            continue
        url = _menu_url(menu.url_name, get_script_prefix())
        items.append({"menu": menu, "url": url, "active": request.path.startswith(url)})
    return {"nav_items": items}

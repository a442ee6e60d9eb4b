from __future__ import annotations

from django.urls import NoReverseMatch, reverse

from .menus import MENUS


def navigation(request) -> dict:
    """The sidebar: the menus this user may open, drawn from the same list the access check reads."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    items = []
    for menu in MENUS:
        if not user.has_menu(menu.code):
            continue
        try:
            url = reverse(menu.url_name)
        except NoReverseMatch:
            continue  # a menu whose pages are not built yet
        items.append({"menu": menu, "url": url, "active": request.path.startswith(url)})
    return {"nav_items": items}

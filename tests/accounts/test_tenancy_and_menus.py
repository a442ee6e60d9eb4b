from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import RequestFactory
from django.urls import reverse

from accounts import audit
from accounts.menus import MENUS
from accounts.models import AuditEntry, User
from accounts.tenancy import get_merchant_row, menu_required, merchant_rows
from tests.conftest import make_persona, verified_client


def request_for(user: User):
    request = RequestFactory().get("/")
    request.user = user
    return request


def test_merchant_rows_holds_only_the_users_merchant(alice, charlie):
    mine = audit.record("accounts.signin", actor=alice.user)
    audit.record("accounts.signin", actor=charlie.user)
    assert list(merchant_rows(request_for(alice.user), AuditEntry)) == [mine]
    assert list(merchant_rows(request_for(alice.user), AuditEntry.objects.filter(action="accounts.signin"))) == [mine]


def test_another_merchants_row_is_404_through_the_helper(alice, charlie):
    theirs = audit.record("accounts.signin", actor=charlie.user)
    with pytest.raises(Http404):
        get_merchant_row(request_for(alice.user), AuditEntry, pk=theirs.pk)
    with pytest.raises(Http404):
        get_merchant_row(request_for(alice.user), AuditEntry, pk="not-a-number")


def test_a_user_without_merchant_reaches_no_merchant_rows(db):
    operator = make_persona(None, "operator").user
    with pytest.raises(Http404):
        merchant_rows(request_for(operator), AuditEntry)


def test_another_merchants_activity_entry_is_404_in_the_page(alice, charlie):
    theirs = audit.record("accounts.signin", actor=charlie.user)
    mine = audit.record("accounts.signin", actor=alice.user)
    client = verified_client(alice)
    assert client.get(reverse("accounts:activity_detail", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("accounts:activity_detail", args=[mine.pk])).status_code == 200
    listing = client.get(reverse("accounts:activity")).content.decode()
    assert "charlie" not in listing


def test_staff_without_the_menu_gets_403_and_no_nav_entry(bob):
    client = verified_client(bob)
    assert client.get(reverse("accounts:activity")).status_code == 403
    dashboard = client.get("/").content.decode()
    assert 'data-menu="user_activity"' not in dashboard


def test_staff_with_the_menu_gets_the_page_and_the_nav_entry(merchant):
    dana = make_persona(merchant, "dana", menus=["user_activity"])
    client = verified_client(dana)
    assert client.get(reverse("accounts:activity")).status_code == 200
    assert 'data-menu="user_activity"' in client.get("/").content.decode()


def test_a_merchant_admin_has_every_menu(alice):
    assert all(alice.user.has_menu(menu.code) for menu in MENUS)


def test_manage_user_cannot_be_granted_to_staff(merchant):
    eve = make_persona(merchant, "eve", menus=["manage_user", "all_report"]).user
    assert not eve.has_menu("manage_user")
    assert eve.has_menu("all_report")
    assert not eve.has_menu("no_such_menu")


def test_menu_required_refuses_and_rejects_unknown_codes(bob):
    @menu_required("user_activity")
    def view(request):
        return "ok"

    with pytest.raises(PermissionDenied):
        view(request_for(bob.user))
    with pytest.raises(ValueError):
        menu_required("no_such_menu")


def test_every_menu_page_checks_its_own_menu():
    from django.urls import resolve

    assert len({menu.code for menu in MENUS}) == len(MENUS)
    for menu in MENUS:
        assert getattr(resolve(reverse(menu.url_name)).func, "menu_code", None) == menu.code, menu.url_name


def test_menu_links_are_reversed_once_and_follow_the_script_prefix(alice):
    from django.urls import set_script_prefix

    from accounts.context_processors import navigation

    request = RequestFactory().get("/")
    request.user = alice.user
    plain = [item["url"] for item in navigation(request)["nav_items"]]
    try:
        set_script_prefix("/back-office/")
        prefixed = [item["url"] for item in navigation(request)["nav_items"]]
    finally:
        set_script_prefix("/")
    assert plain and all(url.startswith("/") and not url.startswith("/back-office/") for url in plain)
    assert prefixed == ["/back-office" + url for url in plain]

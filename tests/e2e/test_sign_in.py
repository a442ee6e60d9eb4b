from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.services import SIGN_IN_ERROR, current_code
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def fill_sign_in(page, username: str, password: str, code: str) -> None:
    page.goto("/sign-in/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Authenticator code").fill(code)
    page.get_by_role("button", name="Sign in").click()


def test_a_user_signs_in_with_a_code_sees_the_dashboard_and_signs_out(page, alice, screenshot):
    page.goto("/")
    assert "/sign-in/" in page.url  # the dashboard needs a verified session
    screenshot("sign-in")

    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))

    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_test_id("merchant-name")).to_have_text("Alpha Gym")
    expect(page.get_by_test_id("signed-in-user")).to_have_text("alice")
    expect(page.get_by_role("tab", name="Weekly")).to_have_attribute("aria-selected", "true")
    expect(page.locator('nav a[data-menu="user_activity"]')).to_be_visible()
    screenshot("dashboard")

    page.get_by_role("tab", name="Monthly").click()
    expect(page.get_by_role("tab", name="Monthly")).to_have_attribute("aria-selected", "true")

    page.get_by_role("button", name="Log Out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto("/")
    assert "/sign-in/" in page.url


def test_a_wrong_code_is_refused_with_the_generic_error(page, alice):
    right = current_code(alice.device)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    fill_sign_in(page, "alice", PASSWORD, wrong)
    expect(page.get_by_test_id("sign-in-error")).to_have_text(SIGN_IN_ERROR)
    page.goto("/")
    assert "/sign-in/" in page.url


def test_staff_see_only_their_menus_and_get_403_elsewhere(page, bob, screenshot):
    fill_sign_in(page, "bob", PASSWORD, current_code(bob.device))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator('nav a[data-menu="user_activity"]')).to_have_count(0)
    response = page.goto("/activity/")
    assert response.status == 403
    expect(page.get_by_role("heading", name="You do not have access to this page")).to_be_visible()
    screenshot("forbidden")

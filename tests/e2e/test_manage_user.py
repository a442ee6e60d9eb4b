"""The Accounts issue's browser flow: invite, enroll from the e-mailed link, sign in, be locked out."""

from __future__ import annotations

import re
import time
from base64 import b32decode

import pytest
from django.urls import NoReverseMatch, reverse
from django_otp.oath import TOTP
from playwright.sync_api import expect

from accounts.menus import MENUS_BY_CODE
from accounts.models import User
from accounts.services import current_code
from tests.conftest import PASSWORD
from tests.e2e.test_sign_in import fill_sign_in

pytestmark = pytest.mark.django_db(transaction=True)
NEW_PASSWORD = "dewi-strong-passphrase"


def page_is_built(code: str) -> bool:
    try:
        reverse(MENUS_BY_CODE[code].url_name)
    except NoReverseMatch:
        return False
    return True


def code_from_key(shown_key: str, steps_ahead: int = 0) -> str:
    totp = TOTP(b32decode(shown_key.replace(" ", "")))
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def test_admin_invites_a_user_who_enrolls_signs_in_and_is_locked_out(
    browser, page, live_server, alice, mailoutbox, screenshot
):
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    page.locator('nav a[data-menu="manage_user"]').click()
    page.get_by_role("link", name="Add New User").click()
    page.get_by_label("User name").fill("dewi")
    page.get_by_label("Mobile number").fill("+6281234567890")
    page.get_by_label("Email").fill("dewi@alpha.example")
    page.get_by_label("User Activity").check()
    page.get_by_label("All Report").check()
    page.get_by_role("button", name="Create User").click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    expect(page.locator("[data-confirm-message]")).to_contain_text("dewi@alpha.example")
    screenshot("add-user-confirm")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("User dewi was created")).to_be_visible()
    screenshot("manage-user")

    [mail] = mailoutbox
    link = re.search(r"https?://\S+/welcome/\S+/", mail.body).group()

    user_context = browser.new_context(base_url=live_server.url)
    user_page = user_context.new_page()
    user_page.goto(link)
    key = user_page.get_by_test_id("secret-key").inner_text()
    expect(user_page.locator(".qr svg")).to_be_visible()
    user_page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    user_page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    user_page.get_by_label("Code from Google Authenticator").fill(code_from_key(key))
    user_page.get_by_role("button", name="Set password and confirm").click()
    expect(user_page.get_by_text("Your account is ready")).to_be_visible()

    # The enrollment spent this step's code; the next step's is within the one-step tolerance.
    fill_sign_in(user_page, "dewi", NEW_PASSWORD, code_from_key(key, steps_ahead=1))
    expect(user_page.get_by_role("heading", name="Dashboard")).to_be_visible()
    menus = user_page.locator("nav a[data-menu]").evaluate_all("links => links.map(a => a.dataset.menu)")
    assert menus == [code for code in ("user_activity", "all_report") if page_is_built(code)]
    assert "user_activity" in menus and "manage_user" not in menus
    assert user_page.goto("/users/").status == 403

    page.reload()
    row = page.get_by_role("row").filter(has_text="dewi@alpha.example")
    row.get_by_role("button", name="Lock").click()
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("User dewi is locked")).to_be_visible()

    user_page.reload()
    expect(user_page.get_by_role("heading", name="Sign in")).to_be_visible()
    user_context.close()


def test_a_sensitive_action_asks_for_a_code_and_reason_in_the_dialog(page, alice, bob, screenshot):
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    page.goto("/users/")
    row = page.get_by_role("row").filter(has_text="bob@example.com")
    row.get_by_role("link", name="Secret Key").click()
    dialog = page.locator("#step-up-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Reason").fill("bob lost his phone")
    dialog.get_by_label("Authenticator code").fill("000000" if current_code(alice.device) != "000000" else "111111")
    screenshot("step-up-dialog")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.get_by_test_id("step-up-error")).to_be_visible()  # wrong code: the form again, nothing shown
    expect(page.get_by_test_id("secret-key")).to_have_count(0)


def test_add_user_asks_to_confirm_only_after_the_form_is_valid(page, alice, screenshot):
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    page.goto(reverse("accounts:user_add"))
    page.get_by_role("button", name="Create User").click()
    expect(page.locator(".field-error").first).to_be_visible()
    expect(page.locator("#confirm-dialog")).to_have_count(0)
    screenshot("add-user-errors-without-pop-up")

    page.get_by_label("User name").fill("dewi")
    page.get_by_label("Email").fill("dewi@alpha.example")
    page.get_by_label("All Report").check()
    page.get_by_role("button", name="Create User").click()
    expect(page.locator("#confirm-dialog")).to_have_count(0)  # the mobile number is still missing
    page.get_by_label("Mobile number").fill("+6281234567890")
    page.get_by_role("button", name="Create User").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Create user dewi and e-mail the sign-in instructions to dewi@alpha.example?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert not User.objects.filter(username="dewi").exists()

    page.get_by_role("button", name="Create User").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("User dewi was created")).to_be_visible()
    assert User.objects.filter(username="dewi").exists()

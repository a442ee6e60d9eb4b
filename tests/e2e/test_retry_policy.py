"""R10 in the browser: a merchant admin changes the retry policy from Setting Account; a bad day list is
refused on the page with its reason, then a good one is saved and shown on the Setting Account card."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.services import current_code
from recurring.models import RetryPolicy
from tests.conftest import PASSWORD
from tests.e2e.test_sign_in import fill_sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_admin_changes_the_retry_policy_from_setting_account(page, alice, merchant, screenshot):
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    page.goto("/account/")
    card = page.get_by_test_id("retry-policy")
    expect(card).to_contain_text("51 Insufficient funds, 91 Issuer unavailable, on days 1, 3")
    card.get_by_role("link", name="Change policy").click()

    page.get_by_label("05 Do not honor").check()
    page.get_by_label("Days after the execute date").fill("1, 45")
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_text("Each day must be from 1 to 30.")).to_be_visible()
    assert RetryPolicy.for_merchant(merchant).retry_codes == ["51", "91"]

    page.get_by_label("Days after the execute date").fill("1, 3, 7")
    page.get_by_label("A card is expiring this many days before its expiry").fill("45")
    screenshot("retry-policy-form")
    page.get_by_role("button", name="Save policy").click()

    expect(page.get_by_text("The retry policy is saved.")).to_be_visible()
    expect(page.get_by_test_id("retry-policy")).to_contain_text(
        "05 Do not honor, 51 Insufficient funds, 91 Issuer unavailable, on days 1, 3, 7 after the execute date"
    )
    expect(page.get_by_test_id("retry-policy")).to_contain_text("expiring 45 days before")
    screenshot("retry-policy-saved")

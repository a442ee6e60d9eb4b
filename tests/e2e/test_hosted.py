"""The cardholder's hosted registration page in the browser: card testing, amount limits, typos."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from accounts.services import current_code
from recurring import card_attempts
from recurring.models import Billing, RegistrationLink
from tests.conftest import PASSWORD
from tests.dates import card_expiry
from tests.e2e.test_sign_in import fill_sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()  # failed cards per client address
    yield
    cache.clear()


def create_link(page, *, customer_id: str = "CUST-77", amount: str = "") -> str:
    page.goto("/registration/link/")
    page.get_by_label("Customer ID").fill(customer_id)
    page.get_by_label("Amount (Rp)").fill(amount)
    page.get_by_role("button", name="Create link").click()
    return page.get_by_test_id("registration-url").inner_text()


def fill_card(page, number: str, expiry: str, *, amount: str | None = None) -> None:
    page.get_by_label("Full name").fill("Rudi Hartono")
    page.get_by_label("Email").fill("rudi@example.com")
    page.get_by_label("Mobile number").fill("+6281399990000")
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry (MM/YY)").fill(expiry)
    page.get_by_label("CVV").fill("321")
    page.get_by_label("Name on the card").fill("RUDI HARTONO")
    if amount is not None:
        page.get_by_label("Amount (Rp)").fill(amount)
    page.locator('[data-kinds="date"]').get_by_label("5", exact=True).check()


def test_card_testing_gets_one_generic_decline_then_the_link_is_spent(browser, page, live_server, alice, screenshot):
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    url = create_link(page, amount="250.000")
    tester = browser.new_context(base_url=live_server.url).new_page()
    tester.goto(url)
    for _ in range(1, card_attempts.PER_LINK):
        fill_card(tester, "4788 0100 0000 0546", "01/20")
        tester.get_by_role("button", name="Register card").click()
        expect(tester.get_by_role("alert")).to_have_text(card_attempts.DECLINED)
        expect(tester.get_by_label("Card number")).to_have_value("")  # never echoed back
        assert "Expired" not in tester.content()
    screenshot_path = screenshot("hosted-declined").parent / "hosted-declined-cardholder.png"
    tester.screenshot(path=str(screenshot_path), full_page=True)
    fill_card(tester, "4788 0100 0000 0546", "01/20")
    tester.get_by_role("button", name="Register card").click()
    expect(tester.get_by_text("cannot be used any more")).to_be_visible()
    tester.goto(url)
    expect(tester.get_by_text("This registration link cannot be used")).to_be_visible()

    page.goto("/registration/")
    expect(page.get_by_role("cell", name=f"Spent: {card_attempts.PER_LINK} failed card attempts")).to_be_visible()
    assert not Billing.objects.exists()


def test_an_amount_outside_the_merchants_limits_is_refused_on_the_page(browser, page, live_server, alice):
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    url = create_link(page)
    cardholder = browser.new_context(base_url=live_server.url).new_page()
    cardholder.goto(url)
    for amount in ("1", "999.999.999.999"):
        fill_card(cardholder, "4111 1111 1111 1111", card_expiry(), amount=amount)
        cardholder.get_by_role("button", name="Register card").click()
        expect(cardholder.get_by_text("The amount must be between Rp 10.000 and Rp 100.000.000.")).to_be_visible()
    fill_card(cardholder, "4111 1111 1111 1111", card_expiry(), amount="250.000")
    cardholder.get_by_role("button", name="Register card").click()
    expect(cardholder.get_by_text("Your card is registered")).to_be_visible()
    assert Billing.objects.get().amount == 250_000


def test_months_start_ticked_and_a_card_typo_is_refused_on_the_page(browser, page, live_server, alice, screenshot):
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    url = create_link(page, amount="250.000")
    cardholder = browser.new_context(base_url=live_server.url).new_page()
    cardholder.goto(url)
    months = cardholder.locator('[data-kinds="date day"] input[type="checkbox"]')
    expect(months).to_have_count(12)
    for i in range(12):
        expect(months.nth(i)).to_be_checked()
    cardholder.locator('[data-kinds="date"]').get_by_label("5", exact=True).check()
    expect(cardholder.locator("[data-preview-description]")).to_contain_text("Day 5 of every month")

    fill_card(cardholder, "4111 1111 1111 1112", card_expiry())
    cardholder.get_by_role("button", name="Register card").click()
    expect(cardholder.get_by_text("This card number fails the check digit (Luhn): a typo?")).to_be_visible()
    expect(cardholder.get_by_label("Card number")).to_have_value("")
    cardholder.screenshot(path=str(screenshot("hosted-luhn").parent / "hosted-luhn-cardholder.png"), full_page=True)
    assert RegistrationLink.objects.get().card_attempts == 0  # the bank was not asked

    fill_card(cardholder, "4111 1111 1111 1111", card_expiry())
    cardholder.get_by_role("button", name="Register card").click()
    expect(cardholder.get_by_text("Your card is registered")).to_be_visible()
    assert Billing.objects.get().schedule.describe() == "Day 5 of every month"

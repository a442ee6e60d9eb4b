"""Recurring in the browser: Edit Date with its live preview, Inactivate, Cancel Execute Date, and the
cardholder's hosted registration page."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from accounts.services import current_code
from recurring.models import Billing, CancelledExecution
from recurring.scheduler import invoice_number
from tests.conftest import PASSWORD
from tests.dates import card_expiry
from tests.e2e.test_sign_in import fill_sign_in
from tests.recurring.conftest import make_billing

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def bank_file(settings, tmp_path):
    settings.SIMULATED_BANK_PATH = str(tmp_path / "bank.sqlite3")


def next_code(persona) -> str:
    """The sign-in spent this step's code; the next step's is within the one-step tolerance."""
    persona.device.refresh_from_db()
    return current_code(persona.device, at=time.time() + 30)


def test_edit_a_schedule_with_its_live_preview_then_inactivate(page, alice, merchant, screenshot):
    billing = make_billing(merchant)
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    page.locator('nav a[data-menu="manage_recurring"]').click()
    page.get_by_label("Billing Number").fill(billing.billing_number)
    page.get_by_role("button", name="Search").click()
    row = page.locator(f'tr[data-billing="{billing.billing_number}"]')
    expect(row).to_contain_text("Every day")
    row.get_by_text("Edit", exact=True).click()
    row.get_by_role("link", name="Edit Date").click()

    first_before = page.locator("[data-preview-dates] li").first.inner_text()
    page.get_by_label("Date", exact=True).check()
    page.locator('[data-kinds="date"]').get_by_label("15", exact=True).check()
    months = page.locator('[data-kinds="date day"]')
    for month in ("Jan", "Feb", "Mar", "Apr", "May", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"):
        months.get_by_label(month).uncheck()
    expect(page.locator("[data-preview-description]")).to_contain_text("Day 15 of Jun")
    expect(page.locator("[data-preview-dates] li").first).to_contain_text("15 Jun")
    assert page.locator("[data-preview-dates] li").first.inner_text() != first_before
    screenshot("edit-date-preview")
    page.get_by_role("button", name="Save schedule").click()
    expect(page.get_by_text("is saved: Day 15 of Jun")).to_be_visible()
    expect(page.get_by_label("Billing Number")).to_have_value(billing.billing_number)  # the search is kept

    row = page.locator(f'tr[data-billing="{billing.billing_number}"]')
    row.get_by_text("Edit", exact=True).click()
    row.get_by_role("button", name="Inactivate").click()
    expect(page.get_by_text(f"Billing {billing.billing_number} is inactive")).to_be_visible()
    billing.refresh_from_db()
    assert (billing.status, billing.next_execute_date) == ("inactive", None)


def test_cancel_an_execute_date_with_a_code(page, alice, merchant, screenshot):
    billing = make_billing(merchant)
    day = merchant.local_today() + timedelta(days=2)
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    page.goto("/void/cancel-execute-date/")
    page.get_by_label("Execute Date").fill(day.isoformat())
    page.get_by_label("Billing Number").fill(billing.billing_number)
    page.get_by_label("Invoice Number").fill(invoice_number(billing.billing_number, day))
    page.get_by_role("button", name="Search").click()
    row = page.locator(f'tr[data-invoice="{invoice_number(billing.billing_number, day)}"]')
    expect(row).to_contain_text("Scheduled")
    row.get_by_role("link", name="Delete").click()
    dialog = page.locator("#step-up-dialog")
    dialog.get_by_label("Authenticator code").fill(next_code(alice))
    dialog.get_by_label("Reason").fill("Gym closed for renovation")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("is cancelled")).to_be_visible()
    expect(page.get_by_role("cell", name="Gym closed for renovation")).to_be_visible()
    screenshot("cancel-execute-date")
    assert CancelledExecution.objects.get().execute_date == day


def test_a_cardholder_registers_a_card_on_the_hosted_page(browser, page, live_server, alice, merchant, screenshot):
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    page.goto("/registration/")
    page.get_by_role("link", name="Create registration link").click()
    page.get_by_label("Customer ID").fill("CUST-4242")
    page.get_by_label("Amount (Rp)").fill("499.000")
    page.get_by_role("button", name="Create link").click()
    url = page.get_by_test_id("registration-url").inner_text()

    cardholder = browser.new_context(base_url=live_server.url).new_page()
    cardholder.goto(url)
    expect(cardholder.get_by_text("Alpha Gym").first).to_be_visible()
    expect(cardholder.locator("nav")).to_have_count(0)
    cardholder.get_by_label("Full name").fill("Rudi Hartono")
    cardholder.get_by_label("Email").fill("rudi@example.com")
    cardholder.get_by_label("Mobile number").fill("+6281399990000")
    cardholder.get_by_label("Card number").fill("5555 5555 5555 4444")
    cardholder.get_by_label("Expiry (MM/YY)").fill(card_expiry())
    cardholder.get_by_label("CVV").fill("321")
    cardholder.get_by_label("Name on the card").fill("RUDI HARTONO")
    cardholder.get_by_label("Day", exact=True).check()
    cardholder.locator('[data-kinds="day"]').get_by_label("Friday").check()
    months = cardholder.locator('[data-kinds="date day"]')
    for month in ("Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"):
        months.get_by_label(month).uncheck()  # every month starts ticked
    expect(cardholder.locator("[data-preview-description]")).to_contain_text("Every Friday in Jan")
    cardholder.screenshot(path=str(screenshot("hosted-form").parent / "hosted-form-cardholder.png"), full_page=True)
    cardholder.get_by_role("button", name="Register card").click()
    expect(cardholder.get_by_text("Your card is registered")).to_be_visible()

    billing = Billing.objects.get(source="hosted")
    assert (billing.customer_id, billing.amount, billing.card_masked, billing.card_issuer) == (
        "CUST-4242",
        499_000,
        "555555******4444",
        "Bank Mandiri",
    )
    page.goto("/registration/?source=hosted")
    expect(page.locator(".table-card").first.get_by_role("cell", name="CUST-4242")).to_be_visible()


def test_a_search_without_a_match_says_nothing_was_found(page, alice, merchant, screenshot):
    make_billing(merchant)
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    page.locator('nav a[data-menu="manage_recurring"]').click()
    page.get_by_label("Billing Number").fill("NO-SUCH-BILLING")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("table tbody")).to_contain_text("Nothing found: no billing matches this search.")
    screenshot("manage-recurring-nothing-found")

"""Every Manage Recurring action clicked from its Edit menu, Cancel Execute Date reached from Void
Transaction (a single payment cancelled), and the Full Date preview after a failed save."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from accounts.services import current_code
from payments.models import Transaction
from recurring.models import Billing
from tests.conftest import PASSWORD
from tests.e2e.test_sign_in import fill_sign_in
from tests.recurring.conftest import make_billing

pytestmark = pytest.mark.django_db(transaction=True)


def next_code(persona, steps: int = 1) -> str:
    persona.device.refresh_from_db()
    return current_code(persona.device, at=time.time() + 30 * steps)


def open_menu(page, billing: Billing):
    page.locator('nav a[data-menu="manage_recurring"]').click()
    page.get_by_label("Billing Number").fill(billing.billing_number)
    page.get_by_role("button", name="Search").click()
    row = page.locator(f'tr[data-billing="{billing.billing_number}"]')
    row.get_by_text("Edit", exact=True).click()
    menu = page.locator("details.menu[open] .menu-items")
    for item in menu.locator("a, button").all():
        assert_on_top(item)
    return menu


def assert_on_top(item) -> None:
    """What a user sees and clicks at the item's centre is the item: not clipped by the table's box, not
    covered (Playwright's own click would scroll the table box to reach it)."""
    on_top = item.evaluate(
        """el => { const r = el.getBoundingClientRect();
                   const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
                   return hit !== null && el.contains(hit); }"""
    )
    assert on_top, f"{item.inner_text()} is hidden behind the page"


def test_each_edit_menu_action_is_clicked_from_the_menu(page, alice, merchant, screenshot):
    billing = make_billing(merchant)
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))

    menu = open_menu(page, billing)
    screenshot("manage-recurring-edit-menu")
    menu.get_by_role("button", name="Inactivate").click()
    expect(page.get_by_text(f"Billing {billing.billing_number} is inactive")).to_be_visible()

    open_menu(page, billing).get_by_role("button", name="Activate").click()
    expect(page.get_by_text(f"Billing {billing.billing_number} is active again")).to_be_visible()

    open_menu(page, billing).get_by_role("link", name="Change Type").click()
    page.get_by_label("Reminder").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text(f"Billing {billing.billing_number} is now Reminder")).to_be_visible()

    open_menu(page, billing).get_by_role("link", name="Edit Date").click()
    expect(page.get_by_role("heading", name=f"Edit Date · {billing.billing_number}")).to_be_visible()
    page.go_back()

    open_menu(page, billing).get_by_role("link", name="Delete").click()
    dialog = page.locator("#step-up-dialog")
    dialog.get_by_label("Authenticator code").fill(next_code(alice))
    dialog.get_by_label("Reason").fill("Member left the gym")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text(f"Billing {billing.billing_number} is deleted")).to_be_visible()
    billing.refresh_from_db()
    assert (billing.billing_type, billing.status, billing.is_deleted) == ("reminder", "active", True)


def test_a_scheduled_single_payment_is_cancelled_from_void_transaction(page, alice, merchant, screenshot):
    day = merchant.local_today() + timedelta(days=3)
    payment = Transaction.objects.create(
        merchant=merchant,
        kind=Transaction.Kind.SINGLE_PAYMENT,
        invoice_number="INV-0104-007",
        billing_number="GYM-0104",
        customer_id="CUST-0104",
        holder_name="Budi Santoso",
        amount=150_000,
        execute_date=day,
    )
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    page.locator('nav a[data-menu="void_transaction"]').click()
    page.get_by_role("tab", name="Cancel Execute Date").click()
    page.get_by_label("Execute Date").fill(day.isoformat())
    page.get_by_label("Billing Number").fill("GYM-0104")
    page.get_by_label("Invoice Number").fill("INV-0104-007")
    page.get_by_role("button", name="Search").click()
    row = page.locator('tr[data-invoice="INV-0104-007"]')
    expect(row).to_contain_text("Single Payment")
    expect(row).to_contain_text("Scheduled")
    row.get_by_role("link", name="Delete").click()
    dialog = page.locator("#step-up-dialog")
    dialog.get_by_label("Authenticator code").fill(next_code(alice))
    dialog.get_by_label("Reason").fill("Paid at the front desk")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("INV-0104-007 on")).to_contain_text("is cancelled")
    expect(page.get_by_role("cell", name="Paid at the front desk")).to_be_visible()
    screenshot("cancel-single-payment")
    payment.refresh_from_db()
    assert payment.status == "cancelled"


def test_a_failed_full_date_save_previews_the_errors_naming_each_bad_date(page, alice, merchant, screenshot):
    billing = make_billing(merchant)
    today = merchant.local_today()
    good, past, impossible = today + timedelta(days=19), today - timedelta(days=3), f"{today.year + 1}-02-30"
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    open_menu(page, billing).get_by_role("link", name="Edit Date").click()
    expect(page.locator("[data-preview-dates] li")).to_have_count(12)
    page.get_by_label("Full Date").check()
    page.get_by_label("Dates").fill(f"{good:%Y-%m-%d}, {past:%Y-%m-%d}, {impossible}")
    page.get_by_role("button", name="Save schedule").click()

    error = page.locator("[data-preview-error]")
    expect(error).to_contain_text(f"{impossible} is not a date")
    expect(error).to_contain_text(f"the first day that can still run: {past:%Y-%m-%d} is")
    expect(page.locator("[data-preview-dates] li")).to_have_count(0)  # not the old schedule's dates
    screenshot("edit-date-failed-save")
    billing.refresh_from_db()
    assert billing.schedule_kind == "day"

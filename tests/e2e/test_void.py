"""Payments in the browser: void a transaction with a code and a reason (P4, A7)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.services import current_code
from tests.conftest import PASSWORD
from tests.e2e.test_sign_in import fill_sign_in
from tests.payments.conftest import charged

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def bank_file(settings, tmp_path):
    settings.SIMULATED_BANK_PATH = str(tmp_path / "bank.sqlite3")


def test_void_a_transaction_with_a_code_and_a_reason(page, alice, merchant, bank_file, screenshot):
    tx = charged(merchant, amount=350_000)
    other = charged(merchant, amount=150_000, billing_number=tx.billing_number)
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    page.locator('nav a[data-menu="void_transaction"]').click()
    page.get_by_label("Billing Number").fill(tx.billing_number)
    page.get_by_role("button", name="Search").click()
    expect(page.locator("tbody tr")).to_have_count(2)
    row = page.locator(f'tr[data-invoice="{tx.invoice_number}"]')
    expect(row).to_contain_text("Rp 350.000")
    expect(row).to_contain_text("411111******1111")
    row.get_by_role("link", name="Void").click()

    dialog = page.locator("#step-up-dialog")
    expect(dialog).to_contain_text(f"Void {tx.invoice_number}")
    alice.device.refresh_from_db()
    # The sign-in spent this step's code; the next step's is within the one-step tolerance.
    import time

    dialog.get_by_label("Authenticator code").fill(current_code(alice.device, at=time.time() + 30))
    dialog.get_by_label("Reason").fill("Customer cancelled the membership")
    screenshot("void-dialog")
    dialog.get_by_role("button", name="Confirm").click()

    expect(page.get_by_text(f"The void of {tx.invoice_number} is approved.")).to_be_visible()
    expect(page.locator(f'tr[data-invoice="{tx.invoice_number}"] .status')).to_have_text("Voided")
    expect(page.locator(f'tr[data-invoice="{other.invoice_number}"] .status')).to_have_text("Success")
    screenshot("voided")

    page.locator('nav a[data-menu="user_activity"]').click()
    first = page.locator("tbody tr").first
    expect(first).to_contain_text("Transaction voided")
    expect(first).to_contain_text(tx.invoice_number)

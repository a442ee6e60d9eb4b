"""Card updates in the browser (issue #19): the cardholder's hosted card update page (Luhn checked on the
page, the new card charged for a declined execution) and the Edit menu's card update link actions."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from django.core import mail
from django.core.cache import cache
from playwright.sync_api import expect

from accounts.models import AuditEntry
from accounts.services import current_code
from payments import services as payments
from payments import tasks as payment_tasks
from payments.models import Transaction
from recurring import card_updates
from recurring import tasks as recurring_tasks
from recurring.models import Billing, CardUpdateLink
from tests.conftest import PASSWORD
from tests.dates import card_expiry
from tests.e2e.test_recurring_actions import open_menu
from tests.e2e.test_sign_in import fill_sign_in
from tests.recurring.conftest import EVERY_DAY, make_billing
from tests.recurring.test_card_update_page import EXPIRED_54, execution

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    cache.clear()  # failed cards per client address
    monkeypatch.setattr(payment_tasks.charge_many, "delay", lambda ids: None)
    monkeypatch.setattr(recurring_tasks.card_declined_notice, "delay", lambda pk: None)
    yield
    cache.clear()


def test_the_cardholder_updates_a_declined_card_on_the_hosted_page(page, merchant, screenshot):
    billing = make_billing(merchant, EVERY_DAY, pan=EXPIRED_54, amount=250_000)
    declined = execution(billing)
    _, url = card_updates.create_link(billing, CardUpdateLink.Reason.DECLINED)
    page.goto(urlparse(url).path)
    expect(page.get_by_role("heading", name="Update your card")).to_be_visible()
    summary = page.get_by_test_id("card-update-billing")
    for shown in (merchant.name, billing.billing_number, "Rp 250.000", "478801******0546"):
        expect(page.locator("main")).to_contain_text(shown)
    expect(summary).to_contain_text(billing.billing_number)

    page.get_by_label("Card number").fill("4111 1111 1111 1112")  # a typo
    page.get_by_label("Expiry (MM/YY)").fill(card_expiry())
    page.get_by_label("CVV").fill("123")
    page.get_by_label("Name on the card").fill("BUDI SANTOSO")
    page.get_by_role("button", name="Update card").click()
    expect(page.get_by_text("This card number fails the check digit (Luhn): a typo?")).to_be_visible()
    screenshot("card-update-luhn")
    assert CardUpdateLink.objects.get().card_attempts == 0  # nothing was sent

    page.get_by_label("Card number").fill("4111 1111 1111 1111")
    page.get_by_role("button", name="Update card").click()
    expect(page.get_by_text("Your card is updated")).to_be_visible()
    expect(page.get_by_test_id("new-card")).to_have_text("411111******1111")
    screenshot("card-update-done")
    payments.charge(declined.pk)  # the worker's charge of the new attempt
    declined.refresh_from_db()
    assert (declined.status, declined.attempts, declined.card_masked) == ("success", 2, "411111******1111")
    page.goto(urlparse(url).path)
    expect(page.get_by_text("This card update link cannot be used")).to_be_visible()


def test_the_edit_menu_copies_and_emails_a_card_update_link(page, alice, merchant, screenshot):
    billing = make_billing(merchant, EVERY_DAY)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    open_menu(page, billing).get_by_role("button", name="Copy Card Update Link").click()
    link = page.get_by_test_id("card-update-url")
    expect(link).to_contain_text("/card/")
    page.get_by_role("button", name="Copy link").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    screenshot("card-update-link-copied")
    url = link.inner_text()
    assert page.evaluate("navigator.clipboard.readText()") == url
    assert AuditEntry.objects.filter(action="recurring.card_link.created", actor=alice.user).count() == 1

    open_menu(page, billing).get_by_role("button", name="Email Card Update Link").click()
    expect(page.get_by_text(f"A card update link for {billing.billing_number} was e-mailed")).to_be_visible()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [billing.email]
    assert AuditEntry.objects.filter(action="recurring.card_link.sent", actor=alice.user).count() == 1
    assert urlparse(url).path.startswith("/card/")
    assert Billing.objects.get(pk=billing.pk).card_masked == "411111******1111"
    assert not Transaction.objects.exists()

"""Who hears about a card that stops working (issue #19): the cardholder by e-mail, the merchant by callback,
once per billing, reason and period, whatever runs or task retries happen; and the Edit menu's link."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from django.core import mail
from django.test import Client

from accounts.models import AuditEntry
from payments.models import CallbackDelivery, Transaction
from recurring import card_notices, card_updates
from recurring import tasks as recurring_tasks
from recurring.models import Billing, CardNotice, RetryPolicy
from tests.conftest import make_persona, verified_client
from tests.recurring.conftest import EVERY_DAY, make_billing
from tests.recurring.test_card_update_page import EXPIRED_54, INSUFFICIENT_51, execution, new_card, no_broker  # noqa: F401

INVALID_14 = "4700010000000145"


@pytest.fixture
def callbacks_on(merchant):
    merchant.callback_url = "https://merchant.example/callbacks"
    merchant.callback_secret = "s" * 32
    merchant.save(update_fields=["callback_url", "callback_secret"])
    return merchant


def expiring_billing(merchant, **fields) -> Billing:
    """A billing whose card runs out at the end of this month (merchant-local)."""
    billing = make_billing(merchant, EVERY_DAY, amount=1_250_000, **fields)
    today = merchant.local_today()
    end = (today.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    Billing.objects.filter(pk=billing.pk).update(card_expiry=end)
    billing.refresh_from_db()
    return billing


def events(merchant) -> list[str]:
    return list(CallbackDelivery.objects.filter(merchant=merchant).order_by("pk").values_list("event", flat=True))


def link_in(message) -> str:
    return urlparse(re.search(r"https?://\S+/card/\S+/", message.body).group()).path


def test_an_expiring_card_is_told_once_by_email_and_callback(merchant, callbacks_on):
    billing = expiring_billing(merchant)
    assert card_notices.run() == {"expiring": 1, "declined": 0}
    assert card_notices.run() == {"expiring": 0, "declined": 0}  # the next hour, the next day
    assert len(mail.outbox) == 1 and events(merchant) == ["billing.card_expiring"]
    message = mail.outbox[0]
    assert message.to == [billing.email] and merchant.name in message.subject
    html = message.alternatives[0][0]
    for text in (message.body, html):
        assert merchant.name in text and "Rp 1.250.000" in text and billing.billing_number in text
        assert billing.card_masked in text and f"{billing.card_expiry:%m/%Y}" in text
    assert f"{billing.next_execute_date:%-d %B %Y}" in message.body  # merchant-local date
    assert Client().get(link_in(message)).status_code == 200
    notice = CardNotice.objects.get()
    assert (notice.reason, notice.period) == ("expiring", f"{billing.card_expiry:%Y-%m}")
    payload = CallbackDelivery.objects.get().payload["data"]
    assert payload["billing_number"] == billing.billing_number and payload["cardholder_emailed"] is True


def test_a_failed_send_stores_nothing_and_the_next_run_sends_once(merchant, monkeypatch):
    expiring_billing(merchant)
    real_send = card_notices.emails.send_card_expiring

    def broken(*args):
        raise OSError("mail server down")

    monkeypatch.setattr(card_notices.emails, "send_card_expiring", broken)
    with pytest.raises(OSError):
        card_notices.run()
    assert not CardNotice.objects.exists() and len(mail.outbox) == 0
    monkeypatch.setattr(card_notices.emails, "send_card_expiring", real_send)
    card_notices.run()
    card_notices.run()
    assert CardNotice.objects.count() == 1 and len(mail.outbox) == 1


def test_without_an_email_address_only_the_merchant_is_told(merchant, callbacks_on):
    expiring_billing(merchant, email="")
    card_notices.run()
    assert len(mail.outbox) == 0 and events(merchant) == ["billing.card_expiring"]
    assert CallbackDelivery.objects.get().payload["data"]["cardholder_emailed"] is False


def test_a_new_card_that_expires_later_gets_its_own_notice_and_the_old_one_none(merchant):
    billing = expiring_billing(merchant)
    card_notices.run()
    _, url = card_updates.create_link(billing, "manual")
    Client().post(urlparse(url).path, new_card())  # valid for years: not expiring any more
    card_notices.run()
    assert len(mail.outbox) == 1
    # later the new card runs out next month, with a merchant that warns 62 days ahead
    RetryPolicy.objects.create(merchant=merchant, retry_codes=["51"], retry_after_days=[1], expiring_days=62)
    next_month_end = (billing.card_expiry + timedelta(days=1)).replace(day=28) + timedelta(days=4)
    Billing.objects.filter(pk=billing.pk).update(card_expiry=next_month_end.replace(day=1) - timedelta(days=1))
    card_notices.run()
    assert CardNotice.objects.filter(billing=billing).count() == 2 and len(mail.outbox) == 2


@pytest.mark.parametrize(("pan", "told"), [(EXPIRED_54, True), (INVALID_14, True), (INSUFFICIENT_51, False)])
def test_a_hard_decline_is_told_once_at_once_and_by_the_daily_run(
    merchant,
    callbacks_on,
    no_broker,  # noqa: F811
    django_capture_on_commit_callbacks,
    pan,
    told,
):
    billing = make_billing(merchant, EVERY_DAY, pan=pan)
    with_callbacks = len(events(merchant))
    with django_capture_on_commit_callbacks(execute=True):
        tx = execution(billing)
    assert no_broker["notices"] == ([tx.pk] if told else [])
    recurring_tasks.card_declined_notice.apply(args=[tx.pk])
    recurring_tasks.card_declined_notice.apply(args=[tx.pk])  # delivered twice
    card_notices.run()
    assert len(mail.outbox) == (1 if told else 0)
    assert events(merchant)[with_callbacks:].count("billing.card_declined") == (1 if told else 0)
    if told:
        message = mail.outbox[0]
        assert "declined" in message.subject and "Rp 250.000" in message.body
        assert CardNotice.objects.get().period == tx.invoice_number


def test_the_merchant_chooses_which_codes_send_the_link(merchant, no_broker, django_capture_on_commit_callbacks):  # noqa: F811
    RetryPolicy.objects.create(merchant=merchant, retry_codes=["51"], retry_after_days=[1, 3], card_update_codes=["54"])
    with django_capture_on_commit_callbacks(execute=True):
        tx = execution(make_billing(merchant, EVERY_DAY, pan=INVALID_14))
    assert tx.response_code == "14" and no_broker["notices"] == []
    card_notices.run()
    assert len(mail.outbox) == 0


def test_a_decline_on_a_card_updated_since_is_not_told(merchant, no_broker):  # noqa: F811
    billing = make_billing(merchant, EVERY_DAY, pan=EXPIRED_54)
    tx = execution(billing)
    Billing.objects.filter(pk=billing.pk).update(card_token="tok_newer")
    card_notices.notify_declined(merchant, execution_id=tx.pk)
    assert len(mail.outbox) == 0


# The Edit menu (Manage Recurring): copy or e-mail a link, audited


def test_copy_card_update_link_shows_a_working_link_and_is_audited(merchant, alice):
    billing = make_billing(merchant, EVERY_DAY)
    response = verified_client(alice).post(f"/recurring/{billing.pk}/card/")
    page = response.content.decode()
    url = re.search(r'data-testid="card-update-url">([^<]+)<', page).group(1)
    assert Client().get(urlparse(url).path).status_code == 200
    entry = AuditEntry.objects.get(action="recurring.card_link.created")
    assert entry.actor == alice.user and entry.data["billing_number"] == billing.billing_number
    assert "/card/" not in str(entry.data)  # the link is a bearer token: not in the audit log


def test_email_card_update_link_sends_it_and_is_audited(merchant, alice):
    billing = make_billing(merchant, EVERY_DAY)
    client = verified_client(alice)
    assert client.get(f"/recurring/{billing.pk}/card/send/").status_code == 405
    response = client.post(f"/recurring/{billing.pk}/card/send/", {"next": "/recurring/"})
    assert response.status_code == 302 and len(mail.outbox) == 1
    assert "asks you to update the card" in mail.outbox[0].body
    assert AuditEntry.objects.filter(action="recurring.card_link.sent", actor=alice.user).count() == 1


def test_no_link_is_emailed_to_a_billing_without_an_address(merchant, alice):
    billing = make_billing(merchant, EVERY_DAY, email="")
    response = verified_client(alice).post(f"/recurring/{billing.pk}/card/send/", follow=True)
    assert "has no e-mail address" in response.content.decode() and len(mail.outbox) == 0
    assert not AuditEntry.objects.filter(action__startswith="recurring.card_link").exists()


def test_the_card_actions_need_manage_recurring(merchant, bob):
    billing = make_billing(merchant, EVERY_DAY)
    client = verified_client(bob)
    assert client.post(f"/recurring/{billing.pk}/card/").status_code == 403
    assert client.post(f"/recurring/{billing.pk}/card/send/").status_code == 403
    assert len(mail.outbox) == 0


def test_the_card_page_lists_the_old_cards(merchant):
    billing = make_billing(merchant, EVERY_DAY, pan=EXPIRED_54)
    _, url = card_updates.create_link(billing, "manual")
    Client().post(urlparse(url).path, new_card())
    manager = make_persona(merchant, "manager", menus=["manage_recurring"])
    page = verified_client(manager).get(f"/recurring/{billing.pk}/card/").content.decode()
    history = page[page.index('data-testid="card-history"') :]
    assert "478801******0546" in history and "411111******1111" in page
    assert Transaction.objects.count() == 0

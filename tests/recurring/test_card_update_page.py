"""The hosted card update page (issue #19): signed, expiring, single use, within the card-testing caps;
the billing keeps its history and takes the new card; a declined execution in the retry window is charged
again on it, once, as a new attempt with a new idempotency key."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlparse

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEntry
from billing_bo.lib.cards import card_fingerprint
from payments import services as payments
from payments import tasks as payment_tasks
from payments.acquirer import get_acquirer
from payments.models import Transaction
from recurring import card_attempts, card_updates
from recurring import tasks as recurring_tasks
from recurring.models import Billing, CardChange, CardUpdateLink
from recurring.scheduler import invoice_number
from reports import dashboard
from reports.periods import period_from_params
from tests.dates import card_expiry
from tests.recurring.conftest import EVERY_DAY, make_billing

EXPIRED_54 = "4788010000000546"
INSUFFICIENT_51 = "4622010000000512"
NEW_CARD = {"card_number": "4111 1111 1111 1111", "cvv": "123", "holder_name": "BUDI SANTOSO"}


@pytest.fixture(autouse=True)
def no_broker(monkeypatch) -> dict[str, list]:
    """What would go to the broker: charge chunks and declined-card notices (the broker is not under test)."""
    sent: dict[str, list] = {"charges": [], "notices": []}
    monkeypatch.setattr(payment_tasks.charge_many, "delay", lambda ids: sent["charges"].extend(ids))
    monkeypatch.setattr(recurring_tasks.card_declined_notice, "delay", lambda pk: sent["notices"].append(pk))
    return sent


def new_card() -> dict:
    return {**NEW_CARD, "expiry": card_expiry()}


def execution(billing: Billing, days_ago: int = 0) -> Transaction:
    """The billing's execution ``days_ago``, as the scheduler inserts it, charged once through the bank."""
    day = billing.merchant.local_today() - timedelta(days=days_ago)
    tx = Transaction.objects.create(
        merchant_id=billing.merchant_id,
        billing=billing,
        invoice_number=invoice_number(billing.billing_number, day),
        billing_number=billing.billing_number,
        customer_id=billing.customer_id,
        kind=Transaction.Kind.RECURRING,
        amount=billing.amount,
        execute_date=day,
        **{name: getattr(billing, name) for name in card_updates.CARD_FIELDS},
    )
    payments.charge(tx.pk)
    tx.refresh_from_db()
    return tx


def link_path(billing: Billing, reason: str = CardUpdateLink.Reason.DECLINED) -> str:
    _, url = card_updates.create_link(billing, reason)
    return urlparse(url).path


def approved_sales(tx: Transaction) -> list[dict]:
    return [
        op
        for op in get_acquirer().operations(kind="sale")
        if op["idempotency_key"].startswith(f"{tx.merchant_id}:{tx.invoice_number}:") and op["approved"]
    ]


def test_the_page_shows_the_merchant_the_billing_and_the_old_card_masked(merchant):
    billing = make_billing(merchant, EVERY_DAY, pan=EXPIRED_54, amount=250_000)
    page = Client().get(link_path(billing)).content.decode()
    for shown in (merchant.name, billing.billing_number, "Rp 250.000", billing.schedule.describe(), "478801******0546"):
        assert shown in page
    assert EXPIRED_54 not in page


def test_a_declined_charge_is_charged_once_more_on_the_new_card_with_a_new_key(
    merchant, django_capture_on_commit_callbacks, no_broker
):
    billing = make_billing(merchant, EVERY_DAY, pan=EXPIRED_54, amount=250_000)
    old = {name: getattr(billing, name) for name in card_updates.CARD_FIELDS}
    tx = execution(billing)
    assert (tx.status, tx.response_code, tx.declined_code, tx.attempts) == ("failed", "54", "54", 1)

    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post(link_path(billing), new_card())
    assert response.status_code == 200 and "Your card is updated" in response.content.decode()
    billing.refresh_from_db()
    assert billing.card_masked == "411111******1111" and billing.card_fingerprint == card_fingerprint(
        "4111111111111111"
    )
    assert billing.card_token != old["card_token"] and billing.card_issuer == "BCA"
    assert billing.card_expiry.month == 12 and billing.card_expiry.year == int("20" + card_expiry()[-2:])
    history = list(CardChange.objects.filter(billing=billing))
    assert [(c.card_masked, c.card_token) for c in history] == [(old["card_masked"], old["card_token"])]
    tx.refresh_from_db()
    assert (tx.status, tx.card_token, tx.next_retry_date) == ("scheduled", billing.card_token, merchant.local_today())
    assert no_broker["charges"] == [tx.pk]  # queued after commit

    payment_tasks.charge.apply(args=[tx.pk])
    payment_tasks.charge.apply(args=[tx.pk])  # the task delivered again
    tx.refresh_from_db()
    assert (tx.status, tx.attempts, tx.declined_code, tx.next_retry_date) == ("success", 2, "54", None)
    sales = approved_sales(tx)
    assert [op["idempotency_key"] for op in sales] == [tx.idempotency_key] == [f"{merchant.pk}:{tx.invoice_number}:2"]
    period = period_from_params({"period": "monthly"}, merchant.local_today())
    recovered = dashboard.recovered(Transaction.objects.filter(merchant=merchant), period)
    assert (recovered.count, recovered.amount) == (1, Decimal(250_000))
    entry = AuditEntry.objects.get(action="recurring.billing.card_updated")
    assert entry.data["old_card"] == "478801******0546" and entry.data["charged_again"] == [tx.invoice_number]
    assert EXPIRED_54 not in str(entry.data) and billing.card_token not in str(entry.data)


def test_a_second_card_update_never_charges_the_execution_again(merchant):
    billing = make_billing(merchant, EVERY_DAY, pan=EXPIRED_54)
    tx = execution(billing)
    Client().post(link_path(billing), new_card())
    payments.charge(tx.pk)
    Client().post(link_path(billing), {**new_card(), "card_number": "5555 5555 5555 4444"})
    tx.refresh_from_db()
    assert tx.status == "success" and tx.attempts == 2 and len(approved_sales(tx)) == 1
    assert CardChange.objects.filter(billing=billing).count() == 2


def test_an_execution_declined_before_the_retry_window_is_not_charged_again(merchant):
    billing = make_billing(merchant, EVERY_DAY, pan=EXPIRED_54)
    old = execution(billing, days_ago=4)  # the default policy's last retry day is 3 days after
    recent = execution(billing, days_ago=3)
    Client().post(link_path(billing), new_card())
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.status == "failed" and recent.status == "scheduled"


def test_a_pending_soft_decline_retry_takes_the_new_card(merchant):
    billing = make_billing(merchant, EVERY_DAY, pan=INSUFFICIENT_51)
    tx = execution(billing)
    assert tx.status == "scheduled" and tx.next_retry_date == merchant.local_today() + timedelta(days=1)
    Client().post(link_path(billing), new_card())
    billing.refresh_from_db()
    tx.refresh_from_db()
    assert tx.card_token == billing.card_token and tx.next_retry_date == merchant.local_today() + timedelta(days=1)


def test_the_link_works_once(merchant):
    billing = make_billing(merchant, EVERY_DAY)
    path = link_path(billing)
    assert Client().post(path, new_card()).status_code == 200
    assert Client().get(path).status_code == 400
    again = Client().post(path, {**new_card(), "card_number": "5555 5555 5555 4444"})
    assert again.status_code == 400
    billing.refresh_from_db()
    assert billing.card_masked == "411111******1111" and CardChange.objects.filter(billing=billing).count() == 1


def test_the_link_expires_and_a_forged_one_is_refused(merchant):
    billing = make_billing(merchant, EVERY_DAY)
    path = link_path(billing)
    with time_machine.travel(timezone.now() + timedelta(days=settings.CARD_UPDATE_LINK_DAYS, minutes=1)):
        assert Client().get(path).status_code == 400
    with time_machine.travel(timezone.now() + timedelta(days=settings.CARD_UPDATE_LINK_DAYS, minutes=-1)):
        assert Client().get(path).status_code == 200
    assert Client().get(path[:-3] + "xyz/").status_code == 400
    assert Client().get(path.replace("/card/", "/register/")).status_code == 400  # another page's salt


def test_a_typo_is_refused_by_the_check_digit_and_the_bank_is_not_asked(merchant, monkeypatch):
    billing = make_billing(merchant, EVERY_DAY)
    asked = []
    monkeypatch.setattr(payments, "tokenize_card", lambda **card: asked.append(card))
    response = Client().post(link_path(billing), {**new_card(), "card_number": "4111 1111 1111 1112"})
    assert "fails the check digit" in response.content.decode() and asked == []
    assert "data-luhn" in response.content.decode()


def test_failed_cards_spend_the_link_after_the_cap(merchant):
    billing = make_billing(merchant, EVERY_DAY)
    path = link_path(billing)
    expired = {**new_card(), "card_number": EXPIRED_54, "expiry": "01/20"}
    answers = [Client().post(path, expired).status_code for _ in range(card_attempts.PER_LINK)]
    assert answers == [200] * (card_attempts.PER_LINK - 1) + [400]
    assert Client().post(path, new_card()).status_code == 400
    link = CardUpdateLink.objects.get(billing=billing)
    assert link.spent_at is not None and AuditEntry.objects.filter(action="recurring.link.spent").count() == 1


def test_a_deleted_billings_link_is_refused(merchant):
    billing = make_billing(merchant, EVERY_DAY)
    path = link_path(billing)
    Billing.objects.filter(pk=billing.pk).update(deleted_at=timezone.now())
    assert Client().get(path).status_code == 400

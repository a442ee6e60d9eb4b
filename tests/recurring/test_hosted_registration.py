"""The cardholder's hosted registration page (R9) against card testing, amount limits and typos."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEntry
from payments import services as payments
from recurring import card_attempts, services
from recurring.models import Billing, RegistrationLink
from recurring.schedule import Schedule
from tests.conftest import verified_client
from tests.dates import card_expiry
from tests.recurring.test_views import create_link

GOOD = {
    "customer_name": "Sari Dewi",
    "email": "sari@example.com",
    "phone": "+6281311112222",
    "card_number": "4111 1111 1111 1111",
    "cvv": "123",
    "holder_name": "SARI DEWI",
}
FIXED = {
    "customer_id": "CUST-1",
    "amount": "100000",
    "fix_schedule": "on",
    "schedule-kind": "date",
    "schedule-days": ["1"],
    "schedule-months": ["1"],
}
EXPIRED = {"card_number": "4788 0100 0000 0546", "expiry": "01/20"}
AMEX_SHORT_CVV = {"card_number": "3782 822463 10005", "cvv": "123"}


@pytest.fixture
def bank_calls(monkeypatch) -> list[str]:
    calls: list[str] = []
    tokenize = payments.tokenize_card

    def counted(**card):
        calls.append(card["pan"][-4:])
        return tokenize(**card)

    monkeypatch.setattr(payments, "tokenize_card", counted)
    return calls


def good_card() -> dict:
    return {**GOOD, "expiry": card_expiry()}


@pytest.mark.parametrize("bad", [EXPIRED, AMEX_SHORT_CVV], ids=["expired", "cvv"])
def test_a_declined_card_gets_one_generic_message_and_its_number_is_not_echoed(merchant, alice, bad):
    path = create_link(verified_client(alice), **FIXED)
    response = Client().post(path, {**good_card(), **bad})
    page = response.content.decode()
    assert response.status_code == 200 and card_attempts.DECLINED in page
    for bank_says in ("Expired card", "Invalid CVV", "Invalid card number", "refused"):
        assert bank_says not in page
    digits = bad["card_number"].replace(" ", "")
    assert digits not in page.replace(" ", "") and bad["card_number"] not in page
    assert not Billing.objects.exists()


def test_five_failed_cards_spend_the_link_and_the_merchant_sees_why(merchant, alice, bank_calls):
    admin = verified_client(alice)
    path = create_link(admin, **FIXED)
    cardholder = Client()
    answers = [cardholder.post(path, {**good_card(), **EXPIRED}) for _ in range(card_attempts.PER_LINK)]
    assert [a.status_code for a in answers] == [200] * (card_attempts.PER_LINK - 1) + [400]
    assert "cannot be used any more" in answers[-1].content.decode()
    # spent: a good card is not even sent to the bank, and the page is refused
    assert cardholder.post(path, good_card()).status_code == 400
    assert cardholder.get(path).status_code == 400
    assert len(bank_calls) == card_attempts.PER_LINK and not Billing.objects.exists()
    link = RegistrationLink.objects.get()
    assert link.spent_reason == "5 failed card attempts"
    assert "Spent: 5 failed card attempts" in admin.get(reverse("recurring:registrations")).content.decode()
    entry = AuditEntry.objects.get(action="recurring.link.spent")
    assert entry.data["reason"] == "5 failed card attempts" and "0546" not in str(entry.data)


def test_failed_cards_from_one_address_are_capped_across_links(merchant, alice, bank_calls, monkeypatch):
    monkeypatch.setattr(card_attempts, "PER_ADDRESS", 3)
    admin = verified_client(alice)
    paths = [create_link(admin, **FIXED) for _ in range(5)]
    tester = Client(REMOTE_ADDR="203.0.113.9")
    for path in paths[:3]:
        assert tester.post(path, {**good_card(), **EXPIRED}).status_code == 200
    assert tester.post(paths[3], good_card()).status_code == 400  # over the limit: the bank is not asked
    assert len(bank_calls) == 3 and not Billing.objects.exists()
    spent = RegistrationLink.objects.get(spent_at__isnull=False)
    assert spent.nonce in paths[3] or "cardholder's network" in spent.spent_reason
    assert spent.spent_reason == "too many failed card attempts from the cardholder's network"
    # another address is not held back
    assert Client(REMOTE_ADDR="198.51.100.7").post(paths[4], good_card()).status_code == 200
    assert Billing.objects.count() == 1


def test_a_successful_card_does_not_count_against_its_address(merchant, alice, monkeypatch):
    monkeypatch.setattr(card_attempts, "PER_ADDRESS", 1)
    admin = verified_client(alice)
    front_desk = Client(REMOTE_ADDR="203.0.113.50")
    for _ in range(3):  # a merchant's front desk registering customer after customer
        done = front_desk.post(create_link(admin, **FIXED), good_card())
        assert "Your card is registered" in done.content.decode()
    assert Billing.objects.count() == 3


# The merchant's amount limits (B2), one rule for every path that creates a billing or a charge


def schedule_fields() -> dict:
    return {"schedule-kind": "date", "schedule-days": ["1"], "schedule-months": [str(m) for m in range(1, 13)]}


@pytest.mark.parametrize("amount", ["1", "9.999", "100.000.001", "999.999.999.999"])
def test_the_hosted_page_refuses_an_amount_outside_the_merchants_limits(merchant, alice, bank_calls, amount):
    path = create_link(verified_client(alice), customer_id="CUST-9")
    response = Client().post(path, {**good_card(), "amount": amount, **schedule_fields()})
    assert response.status_code == 200
    assert "The amount must be between Rp 10.000 and Rp 100.000.000." in response.content.decode()
    assert not Billing.objects.exists() and bank_calls == []


@pytest.mark.parametrize("amount", ["10.000", "100.000.000"])
def test_the_hosted_page_takes_the_limits_themselves(merchant, alice, amount):
    path = create_link(verified_client(alice), customer_id="CUST-9")
    done = Client().post(path, {**good_card(), "amount": amount, **schedule_fields()})
    assert "Your card is registered" in done.content.decode()


def test_a_registration_link_cannot_fix_an_amount_outside_the_limits(merchant, alice):
    merchant.max_charge_amount = 500_000
    merchant.save()
    response = verified_client(alice).post(
        reverse("recurring:registration_link"), {"valid_days": "7", "amount": "750.000"}
    )
    assert "The amount must be between Rp 10.000 and Rp 500.000." in response.content.decode()
    assert not RegistrationLink.objects.exists()


def test_a_link_whose_amount_the_limits_no_longer_allow_registers_nothing(merchant, alice, bank_calls):
    path = create_link(verified_client(alice), **FIXED)  # Rp 100.000
    merchant.min_charge_amount = 200_000
    merchant.save()
    response = Client().post(path, good_card())
    assert response.status_code == 400 and "between Rp 200.000 and Rp 100.000.000" in response.content.decode()
    assert not Billing.objects.exists() and bank_calls == []


def test_register_hosted_itself_refuses_an_amount_outside_the_limits(merchant, alice):
    path = create_link(verified_client(alice), customer_id="CUST-9")
    link = RegistrationLink.objects.get()
    card = payments.tokenize_card("4111111111111111", 12, 2000 + int(card_expiry()[-2:]), "123", "SARI DEWI")
    with pytest.raises(services.RecurringError, match="between Rp 10.000 and Rp 100.000.000"):
        services.register_hosted(
            link,
            card=card,
            customer_id="CUST-9",
            customer_name="Sari Dewi",
            email="sari@example.com",
            phone="+6281311112222",
            amount=Decimal(5),
            schedule=Schedule.by_date([1], [1]),
        )
    assert not Billing.objects.exists() and Client().get(path).status_code == 200


# Months ticked from the start, and a typo in the card number caught on the page (#15.5)


def test_a_new_date_schedule_starts_with_every_month_ticked_as_edit_date_does(merchant, alice):
    admin = verified_client(alice)
    for page in (Client().get(create_link(admin)), admin.get(reverse("recurring:registration_link"))):
        html = page.content.decode()
        ticked = re.findall(r'<input type="checkbox" name="schedule-months" value="(\d+)"[^>]*checked', html)
        assert ticked == [str(m) for m in range(1, 13)]
        assert not re.search(r'name="schedule-days" value="\d+"[^>]*checked', html)


def test_a_card_number_failing_the_luhn_check_is_refused_on_the_page(merchant, alice, bank_calls):
    path = create_link(verified_client(alice), **FIXED)
    response = Client().post(path, {**good_card(), "card_number": "4111 1111 1111 1112"})
    assert response.status_code == 200
    assert "This card number fails the check digit (Luhn): a typo?" in response.content.decode()
    assert bank_calls == [] and RegistrationLink.objects.get().card_attempts == 0

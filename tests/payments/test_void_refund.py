"""Void Transaction and Refund (P4, P5) with the rules of P7, through the screens and the services."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from accounts.audit import Actor
from accounts.models import AuditEntry
from accounts.services import current_code
from accounts.stepup import STEP_UP_ERROR
from payments import janitor, services
from payments.models import Adjustment, Transaction
from tests.conftest import make_persona, verified_client
from tests.payments.conftest import charged, make_transaction

Status = Transaction.Status
T0 = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC, 18:06 in Jakarta


@pytest.fixture
def frozen():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def voider(merchant):
    return make_persona(merchant, "vina", menus=["void_transaction"])


def step_up(persona, at: float = T0, reason: str = "customer cancelled") -> dict:
    persona.device.refresh_from_db()
    return {"code": current_code(persona.device, at=at), "reason": reason}


def actor(persona) -> Actor:
    return Actor.of(persona.user)


def test_search_by_billing_invoice_or_approval_code_finds_only_own_rows(merchant, other_merchant, voider, frozen):
    mine = charged(merchant, billing_number="BILL-77")
    charged(other_merchant, billing_number="BILL-77")
    client = verified_client(voider)
    url = reverse("payments:void")
    for params in (
        {"billing_number": "BILL-77"},
        {"billing_number": "bill-77"},  # billing numbers are matched ignoring case
        {"invoice_number": mine.invoice_number},
        {"approval_code": mine.approval_code},
    ):
        rows = list(client.get(url, params).context["table"].data)
        assert rows == [mine]


def test_an_empty_or_unknown_search_says_so(merchant, voider):
    client = verified_client(voider)
    empty = client.get(reverse("payments:void"), {"billing_number": ""})
    assert "Enter a Billing Number, an Invoice Number or an Approval Code." in empty.content.decode()
    unknown = client.get(reverse("payments:void"), {"invoice_number": "INV-NOPE"})
    assert "No transaction matches this search." in unknown.content.decode()


def test_void_with_code_and_reason_voids_at_the_bank_and_in_the_audit_log(merchant, voider, bank, frozen):
    tx = charged(merchant)
    client = verified_client(voider)
    response = client.post(reverse("payments:void_transaction", args=[tx.pk]), step_up(voider))
    assert response.status_code == 302
    tx.refresh_from_db()
    assert tx.status == Status.VOIDED
    adjustment = Adjustment.objects.get(transaction=tx)
    assert (adjustment.kind, adjustment.status, adjustment.response_code) == ("void", "approved", "00")
    assert f"The void of {tx.invoice_number} is approved." in client.get(response.url).content.decode()
    entry = AuditEntry.objects.get(action="payments.transaction.voided")
    assert entry.actor == voider.user and entry.reason == "customer cancelled"
    assert entry.data["invoice_number"] == tx.invoice_number
    assert [op["kind"] for op in bank.operations()] == ["sale", "void"]


def test_a_void_needs_a_fresh_own_code(merchant, voider, alice, frozen):
    tx = charged(merchant)
    client = verified_client(voider)
    for data in ({"reason": "x-y-z"}, step_up(alice), {"code": "000000", "reason": "abc"}):
        response = client.post(reverse("payments:void_transaction", args=[tx.pk]), data)
        assert response.status_code == 400
    tx.refresh_from_db()
    assert tx.status == Status.SUCCESS and not Adjustment.objects.exists()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (
            lambda m: make_transaction(m, status=Status.FAILED),
            "Only successful transactions can be voided; this one is failed.",
        ),
        (lambda m: make_transaction(m), "Only successful transactions can be voided; this one is scheduled."),
        (lambda m: charged(m, status=Status.SCHEDULED), None),
    ],
)
def test_void_refuses_what_p7_forbids(merchant, voider, frozen, setup, message):
    tx = setup(merchant)
    refusal = tx.void_refused_because()
    if message is None:
        assert refusal == ""
        return
    assert refusal == message
    response = verified_client(voider).get(reverse("payments:void_transaction", args=[tx.pk]), follow=True)
    assert message in response.content.decode()
    with pytest.raises(services.ActionRefused, match="Only successful"):
        services.void(actor(voider), tx.pk, "reason")


def test_a_voided_transaction_cannot_be_voided_or_refunded_again(merchant, voider, frozen):
    tx = charged(merchant)
    services.void(actor(voider), tx.pk, "first")
    with pytest.raises(services.ActionRefused, match="voided already"):
        services.void(actor(voider), tx.pk, "second")
    with pytest.raises(services.ActionRefused, match="voided transaction cannot be refunded"):
        services.refund(actor(voider), tx.pk, Decimal(1000), "refund")
    assert Adjustment.objects.filter(status="approved").count() == 1


def test_a_settled_transaction_is_refunded_not_voided(merchant, voider, frozen):
    tx = charged(merchant)
    frozen.shift(24 * 3600)  # past the merchant-local midnight: settled
    tx.refresh_from_db()
    assert tx.void_refused_because() == "This transaction is settled: refund it instead."
    assert tx.refund_refused_because() == ""


def test_partial_refunds_up_to_what_is_left_then_refused(merchant, voider, bank, frozen):
    tx = charged(merchant, amount=300_000)
    client = verified_client(voider)
    url = reverse("payments:refund_transaction", args=[tx.pk])
    assert client.post(url, {**step_up(voider), "amount": "100.000"}).status_code == 302
    tx.refresh_from_db()
    assert (tx.status, tx.refunded_amount, tx.refundable_amount) == (Status.PARTIALLY_REFUNDED, 100_000, 200_000)

    frozen.shift(30)
    over = client.post(url, {**step_up(voider, at=T0 + 30), "amount": "200.001"})
    assert over.status_code == 400 and "At most Rp 200.000 is left to refund." in over.content.decode()

    frozen.shift(30)
    assert client.post(url, {**step_up(voider, at=T0 + 60), "amount": "200000"}).status_code == 302
    tx.refresh_from_db()
    assert (tx.status, tx.refunded_amount) == (Status.REFUNDED, 300_000)
    assert tx.void_refused_because() == "A refunded transaction cannot be voided."
    assert AuditEntry.objects.filter(action="payments.transaction.refunded").count() == 2
    assert sum(op["amount"] for op in bank.operations(kind="refund") if op["approved"]) == 300_000


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "The refund amount must be more than zero."),
        ("-5000", "Enter a whole Rupiah amount"),
        ("12,50", "Enter a whole Rupiah amount"),
        ("abc", "Enter a whole Rupiah amount"),
        ("", "This field is required."),
    ],
)
def test_a_bad_refund_amount_gets_a_clear_message_and_keeps_the_code(merchant, voider, frozen, amount, message):
    tx = charged(merchant)
    client = verified_client(voider)
    response = client.post(reverse("payments:refund_transaction", args=[tx.pk]), {**step_up(voider), "amount": amount})
    assert response.status_code == 400 and message in response.content.decode()
    assert STEP_UP_ERROR not in response.content.decode()
    assert not Adjustment.objects.exists()
    # the code was not spent on the refused amount: it still works
    assert (
        client.post(
            reverse("payments:refund_transaction", args=[tx.pk]), {**step_up(voider), "amount": "1000"}
        ).status_code
        == 302
    )


def test_a_refund_of_a_failed_transaction_is_refused(merchant, voider, frozen):
    tx = make_transaction(merchant, pan="4511010000000052")
    services.charge(tx.pk)
    tx.refresh_from_db()
    assert tx.refund_refused_because() == "Only successful transactions can be refunded; this one is failed."


def test_the_second_click_of_a_void_does_not_void_twice(merchant, voider, bank, frozen):
    tx = charged(merchant)
    assert services.void(actor(voider), tx.pk, "click one").status == Adjustment.Status.APPROVED
    with pytest.raises(services.ActionRefused):
        services.void(actor(voider), tx.pk, "click two")
    assert len(bank.operations(kind="void")) == 1


def test_a_void_the_bank_does_not_answer_stays_pending_until_the_janitor_asks(merchant, voider, bank, settings, frozen):
    tx = charged(merchant)
    settings.SIMULATED_BANK_TIMEOUT_RATE = 1.0
    adjustment = services.void(actor(voider), tx.pk, "no answer")
    assert adjustment.status == Adjustment.Status.PENDING
    with pytest.raises(services.ActionRefused, match="waiting for the bank"):
        services.refund(actor(voider), tx.pk, Decimal(100), "meanwhile")
    settings.SIMULATED_BANK_TIMEOUT_RATE = 0
    janitor.run(now=timezone.now() + timedelta(seconds=settings.CHARGE_STUCK_SECONDS + 1))
    adjustment.refresh_from_db()
    tx.refresh_from_db()
    # Half of the simulated time-outs happen after the bank acted: the janitor learns which by key.
    if bank.find(adjustment.idempotency_key) is None:
        assert (adjustment.status, tx.status) == (Adjustment.Status.DECLINED, Status.SUCCESS)
    else:
        assert (adjustment.status, tx.status) == (Adjustment.Status.APPROVED, Status.VOIDED)


def test_an_unreachable_bank_changes_nothing_and_says_so(merchant, voider, settings, frozen):
    tx = charged(merchant)
    settings.SIMULATED_BANK_TRANSIENT_RATE = 1.0
    with pytest.raises(services.ActionRefused, match="cannot be reached"):
        services.void(actor(voider), tx.pk, "try")
    tx.refresh_from_db()
    assert tx.status == Status.SUCCESS and not Adjustment.objects.exists()


def test_another_merchants_transaction_is_404(merchant, other_merchant, voider, frozen):
    theirs = charged(other_merchant)
    client = verified_client(voider)
    assert client.get(reverse("payments:void_transaction", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("payments:void_transaction", args=[theirs.pk]), step_up(voider)).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == Status.SUCCESS


def test_result_rows_show_masked_cards_only(merchant, voider, frozen):
    tx = charged(merchant)
    page = verified_client(voider).get(reverse("payments:void"), {"invoice_number": tx.invoice_number}).content.decode()
    assert "411111******1111" in page and "4111111111111111" not in page

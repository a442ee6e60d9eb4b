"""Cancel Execute Date (P6) for a scheduled single payment: found by its invoice number (and billing
number when it has one), cancelled with a code and a reason, audited; a charged one is refused."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry
from payments.models import Transaction
from recurring import scheduler
from tests.conftest import make_persona, verified_client
from tests.recurring.conftest import make_billing
from tests.recurring.test_views import MONDAY, T0, step_up

DAY = MONDAY + timedelta(days=8)


@pytest.fixture
def frozen():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def rita(merchant):
    return make_persona(merchant, "rita", menus=["void_transaction"])


def single_payment(merchant, invoice: str, billing_number: str = "", **fields) -> Transaction:
    return Transaction.objects.create(
        merchant=merchant,
        kind=Transaction.Kind.SINGLE_PAYMENT,
        invoice_number=invoice,
        billing_number=billing_number,
        customer_id=fields.pop("customer_id", "CUST-0104"),
        holder_name="Budi Santoso",
        card_masked="411111******1111",
        amount=fields.pop("amount", 150_000),
        execute_date=fields.pop("execute_date", DAY),
        **fields,
    )


def search(client, **params):
    return client.get(reverse("recurring:cancel"), {"execute_date": DAY.isoformat(), **params})


def cancel(client, persona, **params):
    query = urlencode({"execute_date": DAY.isoformat(), **params})
    return client.post(f"{reverse('recurring:cancel')}?{query}", step_up(persona, reason="paid in cash"))


@pytest.mark.parametrize(
    "params",
    [
        {"billing_number": "GYM-0104", "invoice_number": "INV-007"},
        {"invoice_number": "INV-007"},
        {"billing_number": "GYM-0104"},
    ],
    ids=["both", "invoice", "billing-number"],
)
def test_a_scheduled_single_payment_is_found_and_cancelled_with_a_code(merchant, rita, frozen, queued, params):
    make_billing(merchant, billing_number="GYM-0104")  # the billing the payment names: its own day is another
    payment = single_payment(merchant, "INV-007", "GYM-0104")
    client = verified_client(rita)
    found = search(client, **params).context["found"]
    assert [(due.invoice, due.state) for due in found if due.payment] == [("INV-007", "scheduled")]
    frozen.shift(31)
    assert cancel(client, rita, billing_number="GYM-0104", invoice_number="INV-007").status_code == 302
    payment.refresh_from_db()
    assert payment.status == "cancelled"
    entry = AuditEntry.objects.get(action="recurring.single_payment.cancelled")
    assert (entry.reason, entry.data["invoice_number"], entry.actor) == ("paid in cash", "INV-007", rita.user)
    page = search(client, invoice_number="INV-007")
    assert [due.state for due in page.context["found"]] == ["cancelled"]
    assert "paid in cash" in page.content.decode()  # Recently cancelled
    scheduler.run_day(merchant, DAY)  # its day comes: nothing is charged
    assert payment.pk not in queued


def test_a_single_payment_uploaded_without_a_billing_number_is_found_by_its_invoice(merchant, rita, frozen):
    single_payment(merchant, "INV-20261208-009", customer_id="CUST-502")
    client = verified_client(rita)
    found = search(client, invoice_number="INV-20261208-009").context["found"]
    assert [(due.billing_number, due.state) for due in found] == [("", "scheduled")]
    frozen.shift(31)
    assert cancel(client, rita, invoice_number="INV-20261208-009").status_code == 302
    assert Transaction.objects.get().status == "cancelled"


def test_a_wrong_code_cancels_nothing(merchant, rita, frozen):
    payment = single_payment(merchant, "INV-007")
    query = urlencode({"execute_date": DAY.isoformat(), "invoice_number": "INV-007"})
    response = verified_client(rita).post(f"{reverse('recurring:cancel')}?{query}", {"code": "000000", "reason": "x-y"})
    assert response.status_code == 400
    payment.refresh_from_db()
    assert payment.status == "scheduled" and not AuditEntry.objects.filter(action__startswith="recurring.").exists()


@pytest.mark.parametrize(
    ("status", "queued", "why"),
    [
        ("success", False, "This payment is success already: it cannot be cancelled."),
        ("failed", False, "This payment is failed already: it cannot be cancelled."),
        ("scheduled", True, "This payment is being charged: it cannot be cancelled."),
    ],
)
def test_a_charged_single_payment_cannot_be_cancelled_and_the_page_says_why(
    merchant, rita, frozen, status, queued, why
):
    payment = single_payment(merchant, "INV-007", status=status, queued_at=timezone.now() if queued else None)
    client = verified_client(rita)
    page = search(client, invoice_number="INV-007")
    assert why in page.content.decode() and "Delete</a>" not in page.content.decode()
    frozen.shift(31)
    cancel(client, rita, invoice_number="INV-007")
    payment.refresh_from_db()
    assert payment.status == status


def test_neither_number_or_nothing_found_gets_a_message(merchant, rita, frozen):
    client = verified_client(rita)
    assert "Enter the Billing Number, the Invoice Number, or both." in search(client).content.decode()
    assert "Nothing with these numbers is due on" in search(client, invoice_number="INV-404").content.decode()


def test_another_merchants_single_payment_is_not_found(merchant, other_merchant, rita, frozen):
    theirs = single_payment(other_merchant, "INV-007", "GYM-0104")
    client = verified_client(rita)
    assert search(client, invoice_number="INV-007").context["found"] == []
    frozen.shift(31)
    cancel(client, rita, invoice_number="INV-007")
    theirs.refresh_from_db()
    assert theirs.status == "scheduled"

"""The card update loop on real services (issue #19): PostgreSQL, the Redis broker and a real worker.

A billing's charge is declined as expired (54) by the worker; the worker's notice task e-mails the
cardholder a card update link (the file backend of the embedded default, ``var/mail/``); the cardholder
enters a new card on the hosted page; the worker charges the execution again on it, once (a new attempt,
a new idempotency key), even when the charge task is delivered again; the dashboard shows it Recovered.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.test import Client

from payments.acquirer import get_acquirer
from payments.models import Transaction
from payments.tasks import charge
from recurring import scheduler
from recurring.models import CardChange, CardNotice
from tests.conftest import verified_client
from tests.dates import card_expiry
from tests.integration.test_payments import wait_for
from tests.recurring.conftest import EVERY_DAY, make_billing

pytestmark = pytest.mark.django_db(transaction=True)  # the worker sees committed rows only

EXPIRED_54 = "4788010000000546"


def mail_with(text: str, before: set[Path]) -> str:
    """The body of a new e-mail file (the worker's file backend) that mentions ``text``, or ""."""
    folder = Path(settings.EMAIL_FILE_PATH)
    for path in sorted(set(folder.glob("*.log")) - before) if folder.exists() else []:
        body = path.read_text(errors="replace")
        if text in body:
            return body
    return ""


def test_declined_54_is_emailed_updated_on_the_hosted_page_charged_once_and_recovered(
    merchant, alice, start_worker, broker
):
    worker = start_worker(concurrency=2)
    folder = Path(settings.EMAIL_FILE_PATH)
    before = set(folder.glob("*.log")) if folder.exists() else set()
    billing = make_billing(merchant, EVERY_DAY, pan=EXPIRED_54, amount=250_000)
    billing.billing_number = f"CARD-{worker.hostname.split('@')[0][-12:]}"  # unique in the shared var/mail/
    billing.save(update_fields=["billing_number"])
    today = merchant.local_today()

    scheduler.run_day(merchant, today)  # the execution, queued on commit; the worker charges it
    execution = Transaction.objects.filter(merchant=merchant, billing=billing)
    wait_for(lambda: execution.filter(status="failed").exists(), 60, "the worker's decline")
    tx = execution.get()
    assert (tx.response_code, tx.attempts) == ("54", 1)
    wait_for(lambda: CardNotice.objects.filter(billing=billing).exists(), 60, "the decline's notice")
    wait_for(lambda: bool(mail_with(billing.billing_number, before)), 30, "the cardholder's e-mail")
    email = mail_with(billing.billing_number, before)
    assert merchant.name in email and "Rp 250.000" in email
    path = urlparse(re.search(r"https?://\S+/card/\S+/", email).group()).path

    page = Client().post(
        path, {"card_number": "4111 1111 1111 1111", "expiry": card_expiry(), "cvv": "123", "holder_name": "BUDI"}
    )
    assert page.status_code == 200 and "Your card is updated" in page.content.decode()
    assert CardChange.objects.get(billing=billing).card_masked == "478801******0546"
    wait_for(lambda: execution.filter(status="success").exists(), 60, "the charge on the new card")

    charge.delay(tx.pk)  # the charge task delivered again: nothing more at the bank
    charge.delay(tx.pk)
    result = charge.apply_async((tx.pk,))
    assert result.get(timeout=30) == "not_due"
    tx.refresh_from_db()
    assert (tx.status, tx.attempts, tx.declined_code, tx.card_masked) == ("success", 2, "54", "411111******1111")
    bank = get_acquirer()
    mine = [
        op
        for op in bank.operations(kind="sale")
        if op["idempotency_key"].startswith(f"{merchant.pk}:{tx.invoice_number}:")
    ]
    assert [(op["idempotency_key"].rsplit(":", 1)[1], bool(op["approved"])) for op in mine] == [
        ("1", False),
        ("2", True),
    ]

    dashboard = verified_client(alice).get("/?period=monthly").content.decode()
    recovered = dashboard[dashboard.index('data-testid="recovered"') :][:600]
    assert "Rp 250.000" in recovered and "1 charge " in recovered

"""Payments fixtures: a fresh simulated bank per test, and transactions with tokenized test cards."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

import pytest

from accounts.models import Merchant
from payments import services
from payments.acquirer import get_acquirer
from payments.models import Transaction
from tests.dates import card_year

APPROVE = "4111111111111111"
_invoices = itertools.count(1)


@pytest.fixture(autouse=True)
def bank(settings, tmp_path):
    """The simulated bank with its own file, no latency and no faults unless a test asks."""
    settings.SIMULATED_BANK_PATH = str(tmp_path / "bank.sqlite3")
    settings.SIMULATED_BANK_LATENCY_MS = 0
    settings.SIMULATED_BANK_LATENCY_P99_MS = 0
    settings.SIMULATED_BANK_TIMEOUT_RATE = 0
    settings.SIMULATED_BANK_TRANSIENT_RATE = 0
    return get_acquirer()


def make_transaction(
    merchant: Merchant,
    *,
    pan: str = APPROVE,
    amount: int = 150_000,
    execute_date: date | None = None,
    status: str = Transaction.Status.SCHEDULED,
    **fields,
) -> Transaction:
    card = services.tokenize_card(pan, 12, card_year(), "123", "Budi Santoso", "+628123456789")
    number = next(_invoices)
    return Transaction.objects.create(
        merchant=merchant,
        invoice_number=fields.pop("invoice_number", f"INV-{number:06d}"),
        billing_number=fields.pop("billing_number", f"BILL-{number:04d}"),
        kind=fields.pop("kind", Transaction.Kind.SINGLE_PAYMENT),
        amount=Decimal(amount),
        execute_date=execute_date or merchant.local_today(),
        status=status,
        **card,
        **fields,
    )


def charged(merchant: Merchant, **kwargs) -> Transaction:
    """A transaction charged through the bank (approved with the default card)."""
    tx = make_transaction(merchant, **kwargs)
    services.charge(tx.pk)
    tx.refresh_from_db()
    return tx


@pytest.fixture
def dns(monkeypatch):
    """A patched resolver (tests never reach the network): ``dns["name"] = ["address", ...]``; other names
    do not resolve. The names can be changed during a test, as a real name's records can."""
    import ipaddress
    import socket

    records: dict[str, list[str]] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        try:
            addresses = [str(ipaddress.ip_address(host))]  # a literal address is its own, as for the real one
        except ValueError:
            if host not in records:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            addresses = records[host]
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return records

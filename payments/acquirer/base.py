"""The acquirer interface. A real acquirer adapter implements ``Acquirer`` and is named in settings.

Amounts are whole Rupiah (``int``). Every money-moving call carries an idempotency key: the acquirer
returns the first outcome for a key it has seen and never moves money twice for it.

Faults are exceptions, answers are ``Outcome``:
- ``AcquirerUnavailable``: the request certainly did not reach the bank (connection refused, 503 before
  processing). Retrying with the same key is safe.
- ``AcquirerTimeout``: no answer; the bank may or may not have acted. The caller stays "in doubt" and
  settles later by ``find(key)``; a retry must reuse the same key.
- ``CardRejected``: tokenization refused the card (bad Luhn, expired, unknown card); nothing stored.
An ``Outcome`` with ``approved=False`` is a decline: a definitive answer for that key.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import date


class AcquirerError(Exception):
    """Base of the acquirer's faults. Messages never contain a full card number."""


class AcquirerUnavailable(AcquirerError):
    """Not processed: safe to retry with the same idempotency key."""


class AcquirerTimeout(AcquirerError):
    """In doubt: the operation may have been processed. Settle with ``find(key)``."""


class CardRejected(AcquirerError):
    def __init__(self, response_code: str, message: str):
        super().__init__(f"{response_code} {message}")
        self.response_code = response_code
        self.message = message


@dataclass(frozen=True)
class TokenizedCard:
    token: str
    masked: str  # first 6, last 4
    issuer: str
    brand: str  # Visa, Mastercard, JCB, American Express
    expiry: date  # last day of the expiry month


@dataclass(frozen=True)
class Outcome:
    """The bank's answer to a sale, void or refund."""

    approved: bool
    response_code: str  # ISO 8583 style: "00" approved, "05", "14", "51", "54", "91", "96"...
    message: str  # the bank's text, e.g. "Approved", "Insufficient funds"
    approval_code: str = ""  # six characters when approved
    reference: str = ""  # the bank's id of this operation
    amount: int = 0
    issuer: str = ""
    idempotency_key: str = ""
    kind: str = "sale"  # sale, void, refund


# Response codes the back office treats as transient at the bank: a new attempt may succeed soon.
TRANSIENT_CODES = frozenset({"91", "96"})


class Acquirer(abc.ABC):
    @abc.abstractmethod
    def tokenize(
        self, pan: str, expiry_month: int, expiry_year: int, cvv: str | None, holder_name: str
    ) -> TokenizedCard:
        """Store the card at the bank and return its token. A CVV is checked and never stored; ``None``
        is a card-on-file import (batch registration), which carries no CVV."""

    @abc.abstractmethod
    def sale(self, token: str, amount: int, idempotency_key: str, description: str = "") -> Outcome:
        """Charge ``amount`` to the card of ``token``."""

    @abc.abstractmethod
    def void(self, reference: str, idempotency_key: str) -> Outcome:
        """Cancel the approved, unsettled sale ``reference`` in full."""

    @abc.abstractmethod
    def refund(self, reference: str, amount: int, idempotency_key: str) -> Outcome:
        """Give back ``amount`` (at most what is left) of the approved sale ``reference``."""

    @abc.abstractmethod
    def find(self, idempotency_key: str) -> Outcome | None:
        """The outcome recorded for ``idempotency_key``, or None when the bank never processed it."""

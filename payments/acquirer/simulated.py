"""The simulated bank (PRODUCT P1, DESIGN "The acquirer"; the user guide is docs/simulated-bank.md).

It plays the part of an acquirer that lives *outside* the back office: its state is a SQLite file of its
own at ``settings.SIMULATED_BANK_PATH``, written with the standard library's ``sqlite3``, never through
the Django ORM. That is the point of the simulation: a sale the bank approved stays approved even when
the back office's database transaction rolls back or its worker is killed, exactly the situation the
idempotency keys and the janitor exist for.

Storage and concurrency: ``simulated_store`` (a connection per thread and process, ``BEGIN IMMEDIATE``).

Card data: the bank keeps a random token, the BIN (first 6), the last 4, expiry, holder name, issuer,
brand and the card's *behaviour* (from ``TEST_CARDS`` in ``simulated_cards.py``, decided once at
tokenization). It never stores the
full number or the CVV, and no exception or log line carries a full number.
"""

from __future__ import annotations

import calendar
import logging
import math
import random
import secrets
import sqlite3
import string
import time
from datetime import UTC, date, datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from billing_bo.lib.cards import luhn_valid, mask_pan, mask_pans_in_text, normalise_pan

from . import simulated_store
from .base import Acquirer, AcquirerTimeout, AcquirerUnavailable, CardRejected, Outcome, TokenizedCard
from .simulated_cards import (
    APPROVE,
    DECLINES,
    MAX_APPROVED_AMOUNT,
    TEST_CARDS,
    TIMEOUT,
    TIMEOUT_AFTER_PROCESSING,
    brand_for,
    issuer_for,
)

logger = logging.getLogger(__name__)

# Standard normal quantile of 0.99: the p99 of a lognormal is median * exp(2.3263 * sigma).
Z_99 = 2.3263


def latency_seconds() -> float:
    """How long this call should take, from the latency settings (read now, so tests can change them).

    Fixed ``SIMULATED_BANK_LATENCY_MS`` when the p99 setting is 0 or not above it; otherwise a lognormal
    draw whose median is the LATENCY setting and whose 99th percentile is the P99 setting, which is the
    long-tailed shape real bank latencies have.
    """
    median_ms = float(settings.SIMULATED_BANK_LATENCY_MS or 0)
    p99_ms = float(settings.SIMULATED_BANK_LATENCY_P99_MS or 0)
    if median_ms <= 0:
        return 0.0
    if p99_ms <= median_ms:
        return median_ms / 1000
    sigma = math.log(p99_ms / median_ms) / Z_99
    return random.lognormvariate(math.log(median_ms), sigma) / 1000


def _last_day_of_month(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _new_reference() -> str:
    return "SIM" + secrets.token_hex(8).upper()


def _new_approval_code() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(6))


class SimulatedBank(Acquirer):
    """A bank with deterministic test cards, idempotency keys and switchable faults. See the module doc."""

    @staticmethod
    def _outcome(row: sqlite3.Row) -> Outcome:
        return Outcome(
            approved=bool(row["approved"]),
            response_code=row["response_code"],
            message=row["message"],
            approval_code=row["approval_code"],
            reference=row["reference"],
            amount=row["amount"],
            issuer=row["issuer"],
            idempotency_key=row["idempotency_key"],
            kind=row["kind"],
        )

    @staticmethod
    def _by_key(conn: sqlite3.Connection, idempotency_key: str) -> sqlite3.Row | None:
        return conn.execute("SELECT * FROM operations WHERE idempotency_key = ?", (idempotency_key,)).fetchone()

    def _record(
        self,
        conn: sqlite3.Connection,
        *,
        kind: str,
        idempotency_key: str,
        amount: int,
        code: str,
        message: str,
        issuer: str = "",
        token: str = "",
        parent_reference: str = "",
        description: str = "",
    ) -> Outcome:
        """Store one answer under its key (declines too: they are definitive for that key)."""
        approved = code == "00"
        outcome = Outcome(
            approved=approved,
            response_code=code,
            message=message,
            approval_code=_new_approval_code() if approved else "",
            reference=_new_reference(),
            amount=amount,
            issuer=issuer,
            idempotency_key=idempotency_key,
            kind=kind,
        )
        conn.execute(
            "INSERT INTO operations (idempotency_key, kind, token, parent_reference, amount, approved,"
            " response_code, message, approval_code, reference, issuer, description, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                idempotency_key,
                kind,
                token,
                parent_reference,
                amount,
                int(approved),
                code,
                message,
                outcome.approval_code,
                outcome.reference,
                issuer,
                mask_pans_in_text(description),  # free text from the caller: never let a card number in
                _now(),
            ),
        )
        return outcome

    # --- Faults ------------------------------------------------------------------------------------------

    def _inject_faults(self) -> bool:
        """Latency, then transient errors and time-outs, from the settings read now.

        Runs before any SQLite transaction, so a slow "network" never holds the bank's write lock.
        Returns True when the caller must process, commit and then raise ``AcquirerTimeout`` (the
        "answer lost on the way back" case); raises directly for faults before processing.
        """
        delay = latency_seconds()
        if delay > 0:
            time.sleep(delay)
        transient_rate = float(settings.SIMULATED_BANK_TRANSIENT_RATE or 0)
        if transient_rate > 0 and random.random() < transient_rate:
            raise AcquirerUnavailable("Simulated bank unavailable (injected transient error); not processed")
        timeout_rate = float(settings.SIMULATED_BANK_TIMEOUT_RATE or 0)
        if timeout_rate > 0 and random.random() < timeout_rate:
            if random.random() < 0.5:
                raise AcquirerTimeout("Simulated bank timed out (injected, before processing)")
            return True
        return False

    @staticmethod
    def _check_key(idempotency_key: str) -> None:
        if not idempotency_key:
            raise ValueError("An idempotency key is required")

    # --- The acquirer interface --------------------------------------------------------------------------

    def tokenize(
        self, pan: str, expiry_month: int, expiry_year: int, cvv: str | None, holder_name: str
    ) -> TokenizedCard:
        """Check and store the card; return a fresh random token (the same card twice gets two tokens)."""
        number = normalise_pan(str(pan))
        if not (number.isdigit() and 13 <= len(number) <= 19 and luhn_valid(number)):
            raise CardRejected("14", "Invalid card number")
        month, year = int(expiry_month), int(expiry_year)
        if year < 100:
            year += 2000
        if not 1 <= month <= 12:
            raise CardRejected("54", "Invalid expiry date")
        expiry = _last_day_of_month(year, month)
        if expiry < timezone.localdate():
            raise CardRejected("54", "Expired card")
        cvv_digits = 4 if number[:2] in {"34", "37"} else 3
        cvv = None if cvv is None else str(cvv).strip()
        if cvv is not None and not (cvv.isdigit() and len(cvv) == cvv_digits):
            raise CardRejected("N7", "Invalid CVV")

        token = "tok_" + secrets.token_urlsafe(18)  # 24 url-safe characters
        issuer, brand = issuer_for(number), brand_for(number)
        behaviour = TEST_CARDS.get(number, APPROVE)
        with simulated_store.write() as conn:
            conn.execute(
                # One masked column, not BIN and last 4 side by side: stored next to each other (and the
                # expiry), their digits would read as one long number to a PAN scanner of the file.
                "INSERT INTO cards (token, masked, expiry, holder_name, issuer, brand, behaviour, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token,
                    mask_pan(number),
                    expiry.isoformat(),
                    mask_pans_in_text(holder_name.strip()),
                    issuer,
                    brand,
                    behaviour,
                    _now(),
                ),
            )
        masked = mask_pan(number)
        logger.debug("Tokenized card %s (%s, %s)", masked, issuer, brand)
        return TokenizedCard(token=token, masked=masked, issuer=issuer, brand=brand, expiry=expiry)

    def sale(self, token: str, amount: int, idempotency_key: str, description: str = "") -> Outcome:
        """Charge the card once per key: a key seen before returns its first outcome, whatever the amount.

        Order of the rules: the outcome stored for the key; unknown token -> 14; the never-answering test
        card -> ``AcquirerTimeout``, nothing recorded; amount <= 0 -> 13; card expired by now -> 54; the
        test card's decline; amount above ``MAX_APPROVED_AMOUNT`` -> 51; otherwise approved. The
        time-out-after-processing card records its outcome, then raises ``AcquirerTimeout``.
        """
        self._check_key(idempotency_key)
        timeout_after = self._inject_faults()
        with simulated_store.write() as conn:
            row = self._by_key(conn, idempotency_key)
            if row is not None:
                outcome: Outcome | None = self._outcome(row)
            else:
                outcome, lost = self._decide_sale(conn, token, int(amount), idempotency_key, description)
                timeout_after = timeout_after or lost
        if outcome is None:
            raise AcquirerTimeout("Simulated bank timed out (test card that never answers); not processed")
        logger.debug("Sale %s -> %s %s", outcome.reference, outcome.response_code, outcome.message)
        if timeout_after:
            raise AcquirerTimeout("Simulated bank timed out after processing; settle with find(key)")
        return outcome

    def _decide_sale(
        self, conn: sqlite3.Connection, token: str, amount: int, idempotency_key: str, description: str
    ) -> tuple[Outcome | None, bool]:
        """Decide and record the outcome for a new key.

        Returns the outcome (None for the card that never answers: nothing recorded) and whether the
        answer is "lost" after recording (the time-out-after-processing card).
        """
        card = conn.execute("SELECT * FROM cards WHERE token = ?", (token,)).fetchone()
        common: dict[str, Any] = {
            "kind": "sale",
            "idempotency_key": idempotency_key,
            "amount": amount,
            "token": token,
            "description": description,
        }
        if card is None:
            return self._record(conn, code="14", message="Unknown card token", **common), False
        behaviour = card["behaviour"]
        if behaviour == TIMEOUT:
            return None, False
        common["issuer"] = card["issuer"]
        lost = behaviour == TIMEOUT_AFTER_PROCESSING
        if amount <= 0:
            code, message = "13", "Invalid amount"
        elif date.fromisoformat(card["expiry"]) < timezone.localdate():
            code, message = "54", "Expired card"
        elif behaviour in DECLINES:
            code, message = DECLINES[behaviour]
        elif amount > MAX_APPROVED_AMOUNT:
            code, message = "51", "Insufficient funds"
        else:
            code, message = "00", "Approved"
        return self._record(conn, code=code, message=message, **common), lost

    def void(self, reference: str, idempotency_key: str) -> Outcome:
        """Cancel an approved sale in full, once per key. Refused (12) when unknown, declined, not a sale,
        already voided or already (even partly) refunded. There is no settlement in the simulation, so
        every approved sale counts as unsettled."""
        self._check_key(idempotency_key)
        timeout_after = self._inject_faults()
        with simulated_store.write() as conn:
            row = self._by_key(conn, idempotency_key)
            if row is not None:
                outcome = self._outcome(row)
            else:
                sale, refusal = self._parent_sale(conn, reference)
                common: dict[str, Any] = {
                    "kind": "void",
                    "idempotency_key": idempotency_key,
                    "parent_reference": reference,
                }
                if sale is None:
                    outcome = self._record(conn, code="12", message=refusal, amount=0, **common)
                else:
                    common.update(amount=sale["amount"], issuer=sale["issuer"], token=sale["token"])
                    if self._refunded(conn, reference) > 0:
                        outcome = self._record(conn, code="12", message="Transaction already refunded", **common)
                    else:
                        outcome = self._record(conn, code="00", message="Approved", **common)
        if timeout_after:
            raise AcquirerTimeout("Simulated bank timed out after processing; settle with find(key)")
        return outcome

    def refund(self, reference: str, amount: int, idempotency_key: str) -> Outcome:
        """Give back part or all of an approved sale, once per key: at most the sale amount minus the
        approved refunds so far (more, or <= 0, is 13 Invalid amount); refused (12) on a voided, declined
        or unknown sale."""
        self._check_key(idempotency_key)
        amount = int(amount)
        timeout_after = self._inject_faults()
        with simulated_store.write() as conn:
            row = self._by_key(conn, idempotency_key)
            if row is not None:
                outcome = self._outcome(row)
            else:
                sale, refusal = self._parent_sale(conn, reference)
                common: dict[str, Any] = {
                    "kind": "refund",
                    "idempotency_key": idempotency_key,
                    "parent_reference": reference,
                    "amount": amount,
                }
                if sale is None:
                    outcome = self._record(conn, code="12", message=refusal, **common)
                else:
                    common.update(issuer=sale["issuer"], token=sale["token"])
                    left = sale["amount"] - self._refunded(conn, reference)
                    if amount <= 0 or amount > left:
                        outcome = self._record(conn, code="13", message="Invalid amount", **common)
                    else:
                        outcome = self._record(conn, code="00", message="Approved", **common)
        if timeout_after:
            raise AcquirerTimeout("Simulated bank timed out after processing; settle with find(key)")
        return outcome

    def find(self, idempotency_key: str) -> Outcome | None:
        """The outcome stored for the key, or None when the bank never processed it. No faults here:
        this is how the back office settles operations in doubt."""
        row = self._by_key(simulated_store.connection(), idempotency_key)
        return self._outcome(row) if row is not None else None

    @staticmethod
    def _parent_sale(conn: sqlite3.Connection, reference: str) -> tuple[sqlite3.Row | None, str]:
        """The approved, not voided sale ``reference``; or None and the reason it cannot be touched."""
        sale = conn.execute(
            "SELECT * FROM operations WHERE reference = ? AND kind = 'sale' AND approved = 1", (reference,)
        ).fetchone()
        if sale is None:
            return None, "Invalid transaction"
        voided = conn.execute(
            "SELECT 1 FROM operations WHERE parent_reference = ? AND kind = 'void' AND approved = 1", (reference,)
        ).fetchone()
        if voided is not None:
            return None, "Transaction already voided"
        return sale, ""

    @staticmethod
    def _refunded(conn: sqlite3.Connection, reference: str) -> int:
        return conn.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM operations"
            " WHERE parent_reference = ? AND kind = 'refund' AND approved = 1",
            (reference,),
        ).fetchone()[0]

    # --- Test support (tests and benchmarks only; a real acquirer has no such calls) ---------------------

    def operations(self, idempotency_key: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        """Every stored operation (oldest first), optionally for one key and/or one kind."""
        sql, params = "SELECT * FROM operations WHERE 1 = 1", []
        if idempotency_key is not None:
            sql += " AND idempotency_key = ?"
            params.append(idempotency_key)
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        rows = simulated_store.connection().execute(sql + " ORDER BY id", params).fetchall()
        return [dict(row) for row in rows]

    def count_sales_by_key(self) -> dict[str, int]:
        """Approved sale operations per idempotency key: the "never charged twice" check (always <= 1)."""
        rows = simulated_store.connection().execute(
            "SELECT idempotency_key, COUNT(*) FROM operations WHERE kind = 'sale' AND approved = 1"
            " GROUP BY idempotency_key"
        )
        return {key: count for key, count in rows}

    def reset(self) -> None:
        """Delete every card and operation in the bank file (tests and benchmarks)."""
        with simulated_store.write() as conn:
            conn.execute("DELETE FROM operations")
            conn.execute("DELETE FROM cards")

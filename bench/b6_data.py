"""B6's data (fixed formulas: every attribute a hash of the row number, so a run at a scale always generates
the same rows): one merchant with N transactions spread over the current month and the MONTHS - 1 before it
(up to today), 70% recurring / 30% single payments, success 80%, failed 15% (eight response codes), voided,
refunded, partially refunded and cancelled, twelve issuers (skewed), N / 20 billing numbers, and N / 20
registrations (billings). Written by ``INSERT ... SELECT generate_series`` with the transaction table's
plain indexes dropped and created again afterwards; the rollups then built by ``reports.rollups.rebuild``
(what ``manage.py rebuild_rollups`` runs). ``OpenRows`` adds rows of today for the writer and the rollup
cost: scheduled (due for a charge) on the simulated bank's test cards."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import date
from decimal import Decimal

from .common import log

MONTHS = 6
CHUNK = 1_000_000  # rows per INSERT ... SELECT
ISSUERS = (
    "BCA", "Bank Mandiri", "BRI", "BNI", "CIMB Niaga", "Danamon",
    "Permata", "OCBC NISP", "Maybank", "Panin", "BTN", "Bank Mega",
)  # fmt: skip
DECLINES = (
    ("05", "Do not honor"), ("51", "Insufficient funds"), ("54", "Expired card"), ("14", "Invalid card number"),
    ("91", "Issuer unavailable"), ("96", "System malfunction"), ("12", "Invalid transaction"),
    ("57", "Transaction not permitted"),
)  # fmt: skip
# Cards of the simulated bank for the rows of today: two approve, two decline.
WRITER_CARDS = ("4111111111111111", "5555555555554444", "4511010000000052", "4622010000000512")


def month_start(merchant, back: int) -> date:
    from reports.periods import MONTHLY, period_for

    return period_for(MONTHLY, merchant.local_today(), back).start


@contextmanager
def plain_indexes_dropped():
    """Drop the transaction table's indexes that back no constraint; create them again afterwards."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'payments_transaction' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint) AND indexname NOT LIKE '%%_pkey'"
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for _, definition in indexes:
                cursor.execute(definition)


def generate(merchant, count: int) -> dict:
    """The merchant's N transactions, its billings and rollups; the seconds each step took."""
    from django.db import connection

    from reports.rollups import rebuild

    first_day = month_start(merchant, MONTHS - 1)
    span = (merchant.local_today() - first_day).days + 1
    billings = max(1, count // 20)
    params = {
        "merchant": merchant.pk,
        "first_day": first_day,
        "span": span,
        "billings": billings,
        "issuers": list(ISSUERS),
        "codes": [code for code, _ in DECLINES],
        "messages": [message for _, message in DECLINES],
    }
    timings = {}
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM payments_transaction WHERE merchant_id = %s", [merchant.pk])
        cursor.execute("DELETE FROM recurring_billing WHERE merchant_id = %s", [merchant.pk])
    with plain_indexes_dropped():
        for low in range(1, count + 1, CHUNK):
            high = min(count, low + CHUNK - 1)
            with connection.cursor() as cursor:
                cursor.execute(TRANSACTIONS_SQL, {**params, "low": low, "high": high})
            log(f"B6 data: {high:,} of {count:,} transactions")
        timings["insert_s"] = time.perf_counter() - began
    timings["indexes_s"] = time.perf_counter() - began - timings["insert_s"]
    with connection.cursor() as cursor:
        cursor.execute(BILLINGS_SQL, [merchant.pk, first_day, span, billings])
        cursor.execute("ANALYZE payments_transaction")
        cursor.execute("ANALYZE recurring_billing")
    moment = time.perf_counter()
    rebuild([merchant.pk])
    timings["rebuild_s"] = time.perf_counter() - moment
    with connection.cursor() as cursor:
        for table in ("reports_dailyrollup", "reports_billingperiod", "reports_periodtotal"):
            cursor.execute(f"ANALYZE {table}")
        cursor.execute("SELECT COUNT(*) FROM reports_dailyrollup WHERE merchant_id = %s", [merchant.pk])
        timings["rollup_rows"] = cursor.fetchone()[0]
    timings["total_s"] = time.perf_counter() - began
    return {key: round(value, 1) if isinstance(value, float) else value for key, value in timings.items()}


class OpenRows:
    """Makes rows of today in a status (scheduled: due for a charge), on the writer cards, billing numbers
    among the generated ones and new ones; invoice numbers carry on after the generated rows."""

    def __init__(self, merchant, generated: int):
        self.merchant, self.sequence = merchant, generated
        self.billings = max(1, generated // 20)
        self.cards: list[dict] = []

    def __call__(self, count: int, status: str, label: str) -> list[int]:
        from django.db import connection

        from payments import services
        from payments.models import Transaction

        if not self.cards:
            year = date.today().year + 4
            self.cards = [
                services.tokenize_card(pan, 12, year, "123", f"Bench Holder {n}") for n, pan in enumerate(WRITER_CARDS)
            ]
        rows = []
        for number in range(count):
            self.sequence += 1
            rows.append(
                Transaction(
                    merchant=self.merchant,
                    invoice_number=f"B6-{label}-{self.sequence}",
                    kind=Transaction.Kind.RECURRING if number % 10 < 7 else Transaction.Kind.SINGLE_PAYMENT,
                    billing_number=f"BN-{(self.sequence * 2654435761) % (self.billings * 2)}",
                    amount=Decimal(50_000 + (number % 40) * 25_000),
                    execute_date=self.merchant.local_today(),
                    status=status,
                    **self.cards[number % len(self.cards)],
                )
            )
        created = Transaction.objects.bulk_create(rows, batch_size=5000)
        # Fresh statistics: with the scheduled rows unknown to the planner, the charge's claim
        # (pk = x AND status = 'scheduled') picks the partial index of scheduled rows and walks all of them.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE payments_transaction")
        return [tx.pk for tx in created]


# Transactions: every attribute a hash of the row number i (Knuth's multiplicative hash with different
# multipliers), so the data is the same at every run of a scale.
TRANSACTIONS_SQL = """
WITH g AS (
    SELECT i,
           (i * 2654435761) %% 4294967296 AS h1,
           (i * 2246822519) %% 4294967296 AS h2,
           (i * 3266489917) %% 4294967296 AS h3,
           (i * 668265263) %% 4294967296 AS h4,
           (i * 374761393) %% 4294967296 AS h5
    FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS i
), s AS (
    SELECT g.*,
           CASE WHEN h5 %% 1000 < 800 THEN 'success'
                WHEN h5 %% 1000 < 950 THEN 'failed'
                WHEN h5 %% 1000 < 965 THEN 'voided'
                WHEN h5 %% 1000 < 980 THEN 'refunded'
                WHEN h5 %% 1000 < 995 THEN 'partially_refunded'
                ELSE 'cancelled' END AS status,
           (50000 + (h4 %% 40) * 25000)::numeric AS amount,
           1 + (h2 / 7) %% 8 AS decline,
           1 + LEAST(11, (h3 / 11) %% 100 / 7) AS issuer
    FROM g
)
INSERT INTO payments_transaction (
    merchant_id, invoice_number, kind, billing_id, billing_number, batch_id, customer_id, description,
    amount, execute_date, status, next_retry_date, attempts, response_code, approval_code, error_code,
    bank_message, acquirer_reference, refunded_amount, created_at, queued_at, claimed_at, processed_at,
    updated_at, card_token, card_masked, card_fingerprint, card_expiry, card_issuer, card_brand,
    holder_name, holder_phone
)
SELECT %(merchant)s, 'B6-' || i, CASE WHEN h2 %% 10 < 7 THEN 'recurring' ELSE 'single_payment' END,
       NULL, 'BN-' || (h3 %% %(billings)s), NULL, 'C-' || (h3 %% %(billings)s), '',
       amount, %(first_day)s::date + (h1 %% %(span)s)::int, status, NULL,
       CASE WHEN status = 'cancelled' THEN 0 ELSE 1 END,
       CASE WHEN status = 'failed' THEN (%(codes)s::text[])[decline] WHEN status = 'cancelled' THEN '' ELSE '00' END,
       CASE WHEN status IN ('failed', 'cancelled') THEN '' ELSE lpad((h4 %% 1000000)::text, 6, '0') END,
       '',
       CASE WHEN status = 'failed' THEN (%(messages)s::text[])[decline]
            WHEN status = 'cancelled' THEN '' ELSE 'Approved' END,
       CASE WHEN status = 'cancelled' THEN '' ELSE 'R' || i END,
       CASE WHEN status = 'refunded' THEN amount WHEN status = 'partially_refunded' THEN amount / 2 ELSE 0 END,
       (%(first_day)s::date + (h1 %% %(span)s)::int)::timestamptz, NULL, NULL,
       CASE WHEN status = 'cancelled' THEN NULL
            ELSE (%(first_day)s::date + (h1 %% %(span)s)::int)::timestamptz + interval '3 hours' END,
       now(), 'tok-b6-' || (h3 %% 1000), '411111******' || lpad((h3 %% 10000)::text, 4, '0'),
       'fp-' || (h3 %% %(billings)s), NULL, (%(issuers)s::text[])[issuer], 'Visa',
       'Holder ' || (h3 %% %(billings)s), '+62812' || lpad((h3 %% %(billings)s)::text, 7, '0')
FROM s
"""

# Registrations (D8): one billing per billing number, created over the same months, 80% active.
BILLINGS_SQL = """
INSERT INTO recurring_billing (
    merchant_id, billing_number, customer_id, customer_name, email, phone, amount, billing_type, status,
    source, batch_id, schedule_kind, schedule_data, next_execute_date, retry_attempts, next_retry_date,
    created_at, updated_at, deleted_at, card_token, card_masked, card_fingerprint, card_expiry, card_issuer,
    card_brand, holder_name, holder_phone
)
SELECT %s, 'BN-' || n, 'C-' || n, 'Customer ' || n, '', '', 150000, 'recurring',
       CASE WHEN (n * 2654435761) %% 10 < 8 THEN 'active' ELSE 'inactive' END,
       CASE WHEN n %% 3 = 0 THEN 'hosted' ELSE 'batch' END, NULL, 'monthly', '{}'::jsonb, NULL, 0, NULL,
       (%s::date + ((n * 2246822519) %% %s)::int)::timestamptz, now(), NULL,
       'tok-b6-' || (n %% 1000), '411111******' || lpad((n %% 10000)::text, 4, '0'), 'fp-' || n, NULL, 'BCA',
       'Visa', 'Holder ' || n, ''
FROM generate_series(0, %s - 1) AS n
"""

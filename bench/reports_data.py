"""Report benchmarks' data (B5, B7): N transactions of three merchants generated set-wise on PostgreSQL
(one INSERT ... SELECT generate_series per table, fixed formulas: the same N gives the same rows), then
VACUUM ANALYZE.

Shape, like a growing back office over the last 365 days:
- merchants: bench-big 70% of the rows, bench-mid 20%, bench-small 10%, interleaved;
- dates: row i of N lands on day 365 * (1 - sqrt(i / N)) before today, in the order rows are created
  (the table is in date order, as the scheduler writes it), with more rows per day recently (the last
  31 days hold ~16% of the table);
- 95% recurring charges of billings (a merchant has rows/12 billings, one card each; 90% of the billings
  came from registration files of 1,000 billings, the rest from the hosted page), 5% single payments from
  files of 500 rows; 20,000 distinct cards at most per merchant (real, Luhn-valid numbers whose keyed
  fingerprints are computed here, so a Card No search works);
- statuses 80% success, 11% failed (response codes 05/51/54/91/14/57/61, some with error codes), 2%
  voided, 1% refunded, 1% partially refunded, 3% scheduled (only on the last days), 2% cancelled;
- 8 issuers, 400 amounts, 60 x 40 holder names (0.1% of them begin with "=", "-" or "+", so exports
  must neutralise), phone numbers per customer.
"""

from __future__ import annotations

import hashlib
import os
import time

from .common import luhn_complete

MERCHANTS = (
    ("bench-big", "Bench Big Gym", 0, 7),
    ("bench-mid", "Bench Mid Insurance", 7, 2),
    ("bench-small", "Bench Small Club", 9, 1),
)
DAYS = 365
FIRST = [
    "Budi", "Siti", "Agus", "Dewi", "Andi", "Rina", "Joko", "Sri", "Eko", "Wati", "Hendra", "Lina", "Rudi", "Maya",
    "Dedi", "Yuni", "Bayu", "Indah", "Fajar", "Putri", "Arif", "Nina", "Rizky", "Ayu", "Teguh", "Sari", "Wahyu",
    "Tika", "Imam", "Desi", "Bambang", "Ratna", "Hadi", "Fitri", "Yoga", "Nur", "Dimas", "Lestari", "Irfan", "Mega",
    "Gilang", "Citra", "Reza", "Novi", "Galih", "Intan", "Surya", "Vina", "Ahmad", "Kartika", "Bima", "Laras",
    "Doni", "Anisa", "Feri", "Rahma", "Tono", "Yulia", "Adi", "Ika",
]  # fmt: skip
LAST = [
    "Santoso", "Wijaya", "Pratama", "Saputra", "Hidayat", "Kusuma", "Setiawan", "Nugroho", "Susanto", "Halim",
    "Gunawan", "Siregar", "Harahap", "Lubis", "Nasution", "Simanjuntak", "Wibowo", "Purnomo", "Firmansyah", "Hakim",
    "Putra", "Utami", "Rahayu", "Lestari", "Permana", "Sitompul", "Tanjung", "Kurniawan", "Suryadi", "Hartono",
    "Salim", "Tanoto", "Wirawan", "Syahputra", "Ramadhan", "Maulana", "Anggraini", "Suharto", "Sembiring", "Ginting",
]  # fmt: skip
ISSUERS = ["BCA", "Bank Mandiri", "BNI", "BRI", "CIMB Niaga", "Danamon", "Permata", "OCBC NISP"]
DECLINES = [
    ("05", "Do not honor"),
    ("51", "Insufficient funds"),
    ("54", "Expired card"),
    ("91", "Issuer unavailable"),
    ("14", "Invalid card number"),
    ("57", "Transaction not permitted"),
    ("61", "Exceeds withdrawal limit"),
]


def card_number(merchant_index: int, card: int) -> str:
    """The test card ``card`` of a merchant: 16 digits, Luhn-valid, BIN 4 or 5 by parity."""
    return luhn_complete(f"{4 + card % 2}{merchant_index:02d}{card:012d}"[:15])


def _sql_array(values: list[str]) -> str:
    return "(ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "])"


def generate(rows: int) -> dict:
    """Create (or find, when a previous benchmark of this run made the same N) the data; returns a
    description: merchants (code -> id), cards (code -> list of PANs), today, seconds spent."""
    from django.db import connection

    from accounts.models import Merchant

    merchants = {}
    for code, name, _, _ in MERCHANTS:
        merchants[code], _ = Merchant.objects.get_or_create(code=code, defaults={"name": name})
    today = merchants["bench-big"].local_today()
    cards = {
        code: [card_number(index + 1, n) for n in range(min(billing_count(rows, share), 20_000))]
        for index, (code, _, _, share) in enumerate(MERCHANTS)
    }
    info = {"merchants": {code: m.pk for code, m in merchants.items()}, "cards": cards, "today": today, "rows": rows}
    ids = list(info["merchants"].values())
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM payments_transaction WHERE merchant_id = ANY(%s)", [ids])
        (existing,) = cursor.fetchone()
    if existing == rows:
        return {**info, "generation_s": 0.0, "reused": True}
    began = time.perf_counter()
    with connection.cursor() as cursor:
        for table in ("payments_transaction", "recurring_billing", "batch_batch"):
            cursor.execute(f"DELETE FROM {table} WHERE merchant_id = ANY(%s)", [ids])
        for code, _, offset, share in MERCHANTS:
            insert_merchant(cursor, info, code, offset, share)
    with connection.cursor() as cursor:
        for table in ("payments_transaction", "recurring_billing", "batch_batch"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    return {**info, "generation_s": round(time.perf_counter() - began, 1), "reused": False}


def billing_count(rows: int, share: int) -> int:
    """A merchant's billings: one per 12 of its rows, at least 2,000, never a multiple of 7919 (rows step
    through billings by 7919, a prime)."""
    count = max(2000, rows * share // 10 // 12)
    return count + (count % 7919 == 0)


def insert_merchant(cursor, info: dict, code: str, offset: int, share: int) -> None:
    """One merchant's files (registrations first, then single payments: consecutive ids), billings (one
    card each) and transactions (row j of the merchant; k its billing, customer and card)."""
    from billing_bo.lib.cards import mask_pan
    from payments.services import card_fingerprint

    merchant_id, rows, cards = info["merchants"][code], info["rows"], info["cards"][code]
    billings = billing_count(rows, share)
    singles = (rows * share // 10) // 20 + 1
    registration_ids = _insert_files(merchant_id, "registration", f"members-{code}-", billings // 1000 + 1, 1000)
    payment_ids = _insert_files(merchant_id, "single_payment", f"payments-{code}-", singles // 500 + 1, 500)
    cursor.execute("CREATE TEMP TABLE IF NOT EXISTS bench_cards (n int PRIMARY KEY, fp text, masked text)")
    cursor.execute("TRUNCATE bench_cards")
    cursor.execute(
        "INSERT INTO bench_cards SELECT n - 1, fp, masked FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS u(fp, masked, n)",
        [[card_fingerprint(pan) for pan in cards], [mask_pan(pan) for pan in cards]],
    )
    common = {"m": merchant_id, "code": code, "count": billings, "cards": len(cards)}
    cursor.execute(BILLINGS_SQL, {**common, "files": registration_ids})
    billing_ids = sorted(row[0] for row in cursor.fetchall())
    assert billing_ids[-1] - billing_ids[0] + 1 == billings, "billing ids are not consecutive"
    cursor.execute(
        TRANSACTIONS_SQL,
        {
            **common,
            "billing0": billing_ids[0],
            "files": payment_ids,
            "today": info["today"],
            "days": DAYS,
            "rows": rows,
            "share": share,
            "offset": offset,
            "codes": [c for c, _ in DECLINES],
            "messages": [m for _, m in DECLINES],
        },
    )


def report_search(user, params: dict) -> tuple:
    """The All Report's search as the view runs it for ``user``: the filtered transactions (the same
    FilterSet), the sort's name, its keys, and the order_by arguments."""
    from django.test import RequestFactory

    from payments.models import Transaction
    from reports.filters import AllReportFilter
    from reports.services import parse_sort

    request = RequestFactory().get("/reports/all/", params)
    request.user = user
    mine = Transaction.objects.filter(merchant_id=user.merchant_id)
    filterset = AllReportFilter(request.GET, mine, request=request, today=user.merchant.local_today())
    assert filterset.is_valid(), filterset.errors
    sort, keys, descending = parse_sort(params.get("sort"))
    return filterset.qs, sort, keys, [f"-{key}" if descending else key for key in keys]


def scale_rows(scale: str) -> int:
    override = os.environ.get("BENCH_REPORTS_ROWS")
    if override:
        return int(override)
    return 10_000_000 if scale == "full" else 1_000_000


def _insert_files(merchant_id: int, kind: str, prefix: str, files: int, size: int) -> list[int]:
    """``files`` done batches of ``kind`` named ``<prefix>00000.csv``..., spread over the last year; their
    ids. Through the model (one INSERT on PostgreSQL), so columns the model adds get their defaults."""
    from datetime import timedelta

    from django.utils import timezone

    from batch.models import Batch

    now = timezone.now()
    made = Batch.objects.bulk_create(
        Batch(
            merchant_id=merchant_id,
            kind=kind,
            file_name=f"{prefix}{n:05d}.csv",
            content_hash=hashlib.md5(f"{prefix}{n}".encode()).hexdigest(),
            uploaded_at=now - timedelta(days=(files - n) * 365 // files),
            status=Batch.Status.DONE,
            total_rows=size,
        )
        for n in range(files)
    )
    return sorted(batch.pk for batch in made)


ISSUERS_SQL = _sql_array(ISSUERS)
_FIRST, _LAST = _sql_array(FIRST), _sql_array(LAST)
# 0.1% of the holder names begin with "=", "-" or "+": exports must neutralise them.
HOLDER_SQL = (
    f"CASE WHEN k %% 1000 = 7 THEN '=' || {_FIRST}[1 + k %% 60] WHEN k %% 1000 = 8 THEN '-' || "
    f"{_LAST}[1 + k %% 40] WHEN k %% 1000 = 9 THEN '+62 ' || k ELSE {_FIRST}[1 + k %% 60] || ' ' || "
    f"{_LAST}[1 + (k / 60) %% 40] END"
)
BILLINGS_SQL = f"""
INSERT INTO recurring_billing (card_token, card_masked, card_fingerprint, card_issuer, card_brand,
    holder_name, holder_phone, merchant_id, billing_number, customer_id, customer_name, email, phone,
    amount, billing_type, status, source, batch_id, schedule_kind, schedule_data, retry_attempts,
    created_at, updated_at)
SELECT 'tok_' || k, c.masked, c.fp, {ISSUERS_SQL}[1 + k %% 8], 'Visa', {HOLDER_SQL},
    '+62812' || lpad(k::text, 7, '0'), %(m)s, 'BN-' || %(code)s || '-' || lpad(k::text, 7, '0'),
    'C' || k, {HOLDER_SQL}, '', '+62812' || lpad(k::text, 7, '0'),
    50000 + (k %% 400) * 2500, 'recurring', CASE WHEN k %% 9 = 0 THEN 'inactive' ELSE 'active' END,
    CASE WHEN k %% 10 = 0 THEN 'hosted' ELSE 'batch' END,
    CASE WHEN k %% 10 = 0 THEN NULL ELSE (%(files)s::bigint[])[1 + k / 1000] END,
    'monthly', '{{}}'::jsonb, 0, now(), now()
FROM generate_series(0, %(count)s - 1) AS k JOIN bench_cards c ON c.n = k %% %(cards)s
ORDER BY k
RETURNING id
"""
# j: the row's place among this merchant's rows; k: its billing (customer, card).
TRANSACTIONS_SQL = f"""
INSERT INTO payments_transaction (card_token, card_masked, card_fingerprint, card_issuer, card_brand,
    holder_name, holder_phone, merchant_id, invoice_number, kind, billing_id, billing_number,
    batch_id, customer_id, description, amount, execute_date, status, next_retry_date, attempts,
    response_code, approval_code, error_code, bank_message, acquirer_reference, refunded_amount,
    created_at, processed_at, updated_at)
SELECT 'tok_' || k, masked, fp, {ISSUERS_SQL}[1 + k %% 8], 'Visa', {HOLDER_SQL},
    '+62812' || lpad(k::text, 7, '0'), %(m)s, 'INV-' || %(code)s || '-' || lpad(j::text, 9, '0'),
    CASE WHEN single THEN 'single_payment' ELSE 'recurring' END,
    CASE WHEN single THEN NULL ELSE %(billing0)s + k END,
    'BN-' || %(code)s || '-' || lpad(k::text, 7, '0'),
    CASE WHEN single THEN (%(files)s::bigint[])[1 + (j / 20) / 500] END,
    'C' || k, '', 50000 + (k %% 400) * 2500 + CASE WHEN single THEN (j %% 7) * 1000 ELSE 0 END,
    day, st, CASE WHEN st = 'failed' AND code IN ('51', '91') THEN day + 3 END, 1,
    CASE WHEN st IN ('scheduled', 'cancelled') THEN '' WHEN st = 'failed' THEN code ELSE '00' END,
    CASE WHEN st IN ('success', 'voided', 'refunded', 'partially_refunded')
         THEN upper(substr(md5(j::text || %(code)s), 1, 6)) ELSE '' END,
    CASE WHEN st = 'failed' AND code = '91' THEN (CASE WHEN j %% 2 = 0 THEN 'timeout' ELSE 'unavailable' END)
         ELSE '' END,
    CASE WHEN st = 'failed' THEN msg WHEN st IN ('scheduled', 'cancelled') THEN '' ELSE 'Approved' END,
    '', CASE WHEN st = 'refunded' THEN 50000 + (k %% 400) * 2500 WHEN st = 'partially_refunded' THEN 25000 ELSE 0 END,
    now(), now(), now()
FROM (
    SELECT i, j, k, single, day, c.fp, c.masked,
        CASE WHEN r < 80 THEN 'success' WHEN r < 91 THEN 'failed' WHEN r < 93 THEN 'voided'
             WHEN r < 94 THEN 'refunded' WHEN r < 95 THEN 'partially_refunded'
             WHEN r < 98 AND day >= %(today)s::date - 3 THEN 'scheduled'
             WHEN r < 98 THEN 'success' ELSE 'cancelled' END AS st,
        (%(codes)s::text[])[1 + j %% 7] AS code, (%(messages)s::text[])[1 + j %% 7] AS msg
    FROM (
        SELECT i, j, ((j::bigint * 7919) %% %(count)s)::int AS k, j %% 20 = 7 AS single, (j * 37 + j / 13) %% 100 AS r,
            %(today)s::date - floor(%(days)s * (1 - sqrt(i::float8 / %(rows)s)))::int AS day
        FROM (
            SELECT i, (i / 10) * %(share)s + (i %% 10 - %(offset)s) AS j
            FROM generate_series(0, %(rows)s - 1) AS i
            WHERE i %% 10 >= %(offset)s AND i %% 10 < %(offset)s + %(share)s
        ) s
    ) t JOIN bench_cards c ON c.n = t.k %% %(cards)s
) u
ORDER BY i
"""

"""T1/T5 on PostgreSQL: every single-filter All Report search reads an index, not the whole table.

200k transactions are generated set-wise (one INSERT ... SELECT generate_series). Like a growing merchant,
60% of them fall in the last 50 days, so the default date range (the last 31 days) alone matches over a
third of the table: a filter that has no index of its own shows up as a Seq Scan. Each search is built by
the real FilterSet with one field set; its two queries (the totals aggregate and the first keyset page)
are captured as sent and EXPLAINed.

Values are chosen selective (at most a few percent of the rows), as a real search for a billing number or
a response code is: for a value that matches most of the table (Batch Type "Registration" here is 98% of
rows) a sequential scan is the right plan, and no index would change that.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.http import QueryDict
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from batch.models import Batch
from billing_bo.lib.cards import card_fingerprint
from recurring.models import Billing
from recurring.schedule import Schedule
from reports.filters import AllReportFilter
from reports.pagination import KeysetPaginator
from reports.services import parse_sort, rows, totals

# Committed rows, so VACUUM ANALYZE can run and the plans are those of a settled table.
pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 200_000
CARD = "4111111111111111"
TABLE = "payments_transaction"

GENERATE = """
INSERT INTO payments_transaction (
    card_token, card_masked, card_fingerprint, card_issuer, card_brand, holder_name, holder_phone,
    merchant_id, invoice_number, kind, billing_id, billing_number, batch_id, customer_id, description,
    amount, execute_date, status, attempts, response_code, approval_code, error_code, bank_message,
    acquirer_reference, refunded_amount, created_at, processed_at, updated_at)
SELECT
    'tok', '411111******' || lpad((i %% 10000)::text, 4, '0'), md5((i %% 20000)::text),
    (ARRAY['BCA', 'BNI', 'BRI', 'Bank Mandiri', 'CIMB Niaga'])[1 + i %% 5], 'Visa',
    'Name' || (i %% 5000), '+62811' || lpad((i %% 40000)::text, 5, '0'),
    CASE WHEN i %% 10 = 0 THEN %(other)s ELSE %(mine)s END,
    'INV-' || i,
    CASE WHEN i %% 50 = 1 THEN 'single_payment' ELSE 'recurring' END,
    CASE WHEN i %% 2000 = 3 THEN (%(billings)s::bigint[])[1 + (i / 2000) %% 100] END,
    'B-' || (i %% 50000),
    CASE WHEN i %% 50 = 1 THEN (%(batches)s::bigint[])[1 + (i / 50) %% 20] END,
    'C-' || (i %% 50000), '',
    10000 + (i %% 200) * 5000,
    %(today)s::date - CASE WHEN i %% 5 < 3 THEN i %% 50 ELSE 50 + i %% 680 END,
    CASE WHEN i %% 100 < 85 THEN 'success' WHEN i %% 100 < 95 THEN 'failed' WHEN i %% 100 < 97 THEN 'voided'
         WHEN i %% 100 < 98 THEN 'refunded' ELSE 'partially_refunded' END,
    1,
    CASE WHEN i %% 100 BETWEEN 85 AND 94 THEN (ARRAY['05', '51', '54', '91', '14'])[1 + i %% 5] ELSE '00' END,
    CASE WHEN i %% 100 BETWEEN 85 AND 94 THEN '' ELSE 'AP' || i END,
    CASE WHEN i %% 100 BETWEEN 85 AND 94 AND i %% 7 = 0 THEN 'timeout' ELSE '' END,
    '', '', 0, now(), now(), now()
FROM generate_series(1, %(rows)s) AS i
"""


@pytest.fixture
def table(merchant, other_merchant):
    """ROWS transactions (90% of them the merchant's; 2% single payments from 20 of its files), 40
    single-payment files (half of them the other merchant's), and 100 billings registered by one file; returns the merchant's today."""
    today = merchant.local_today()
    files = [
        Batch.objects.create(
            merchant=other_merchant if n % 2 else merchant,
            kind=Batch.Kind.SINGLE_PAYMENT,
            file_name=f"file-{n}.csv",
            content_hash=f"{n:064d}",
        )
        for n in range(40)
    ]
    batches = [batch.pk for batch in files if batch.merchant_id == merchant.pk]  # the single payments' files
    members = Batch.objects.create(
        merchant=merchant, kind=Batch.Kind.REGISTRATION, file_name="members.csv", content_hash="m" * 64
    )
    schedule = Schedule.by_date([1], [1])
    billings = Billing.objects.bulk_create(
        Billing(
            merchant=merchant,
            billing_number=f"M-{n}",
            customer_id=f"M-{n}",
            customer_name="Member",
            amount=100_000,
            source=Billing.Source.BATCH,
            batch=members,
            schedule_kind=schedule.kind,
            schedule_data=schedule.to_dict(),
        )
        for n in range(100)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            GENERATE,
            {
                "mine": merchant.pk,
                "other": other_merchant.pk,
                "billings": [b.pk for b in billings],
                "batches": batches,
                "today": today,
                "rows": ROWS,
            },
        )
        cursor.execute(
            "UPDATE payments_transaction SET card_fingerprint = %s WHERE id IN "
            "(SELECT id FROM payments_transaction WHERE merchant_id = %s ORDER BY id DESC LIMIT 12)",
            [card_fingerprint(CARD), merchant.pk],
        )
        for name in (TABLE, "batch_batch", "recurring_billing"):
            cursor.execute(f"VACUUM ANALYZE {name}")
    return today


def plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def explain(sql: str) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
        (document,) = cursor.fetchone()
    document = json.loads(document) if isinstance(document, str) else document
    return list(plan_nodes(document[0]["Plan"]))


def describe(nodes: list[dict]) -> str:
    return ", ".join(f"{n['Node Type']}({n.get('Relation Name') or n.get('Index Name') or ''})" for n in nodes)


def search_queries(alice, params: dict) -> list[str]:
    """The SQL the All Report page runs on transactions for ``params``: totals and the first page."""
    request = RequestFactory().get("/reports/all/", params)
    request.user = alice.user
    filterset = AllReportFilter(
        request.GET, alice.user.merchant.transactions.all(), request=request, today=alice.user.merchant.local_today()
    )
    assert filterset.is_valid(), filterset.errors
    sort, keys, descending = parse_sort(None)
    with CaptureQueriesContext(connection) as captured:
        totals(filterset.qs)
        KeysetPaginator(rows(filterset.qs), keys, descending=descending, sort=sort, per_page=50).page(QueryDict())
    return [q["sql"] for q in captured.captured_queries if f'"{TABLE}"' in q["sql"]]


def single_filters(today) -> list[tuple[str, dict, str]]:
    """(label, the one field set, the column an index of the filter must contain)."""
    day = timedelta(days=1)
    return [
        ("Billing Number", {"billing_number": "B-123"}, "billing_number"),
        ("Invoice Number", {"invoice_number": "INV-777"}, "invoice_number"),
        ("CSV File Name (single payment file)", {"file_name": "file-8.csv"}, "batch_id"),
        ("CSV File Name (registration file)", {"file_name": "members.csv"}, "billing_id"),
        ("Amount", {"amount": "1.000.000"}, "amount"),
        ("Card No", {"card_no": CARD}, "card_fingerprint"),
        ("Card Holder Name", {"holder_name": "Name123"}, "holder_name"),
        ("Card Holder Phone", {"holder_phone": "+6281100042"}, "holder_phone"),
        ("Start Date", {"start_date": (today - 5 * day).isoformat()}, "execute_date"),
        ("End Date", {"end_date": (today - 400 * day).isoformat()}, "execute_date"),
        ("Batch Type", {"batch_type": "single_payment"}, "kind"),
        ("Payment Status", {"status": "refunded"}, "status"),
        ("Payment Response Code", {"response_code": "54"}, "response_code"),
        ("Payment Approval Code", {"approval_code": "AP123"}, "approval_code"),
        ("Payment Error Code", {"error_code": "timeout"}, "error_code"),
    ]


def table_indexes() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [TABLE])
        return dict(cursor.fetchall())


def test_every_single_filter_search_reads_its_index_not_the_whole_transactions_table(table, alice):
    """No Seq Scan on the transactions table in either query, and the totals (which read every matching
    row) go through an index that contains the filter's column."""
    indexes = table_indexes()
    unindexed = []
    for label, params, column in single_filters(table):
        queries = search_queries(alice, params)
        assert len(queries) == 2, (label, queries)
        for sql in queries:
            nodes = explain(sql)
            kind = "totals" if "COUNT(" in sql else "page"
            on_table = [n for n in nodes if n.get("Relation Name") == TABLE]
            used = [indexes[n["Index Name"]] for n in nodes if n.get("Index Name") in indexes]
            if any(n["Node Type"] == "Seq Scan" for n in on_table) or not on_table:
                unindexed.append(f"{label} [{kind}]: sequential scan: {describe(nodes)}")
            elif kind == "totals" and not any(column in definition for definition in used):
                unindexed.append(f"{label} [{kind}]: no index on {column}: {describe(nodes)}")
    assert not unindexed, "Searches without an index of their own:\n" + "\n".join(unindexed)


def test_the_generated_table_is_what_the_searches_assume(table, merchant):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE execute_date >= %s) FROM payments_transaction WHERE merchant_id = %s",
            [table - timedelta(days=30), merchant.pk],
        )
        total, recent = cursor.fetchone()
    assert total == ROWS * 9 // 10
    assert recent / total > 0.3  # the default range alone is not selective


def test_a_page_of_the_default_order_is_read_in_order_from_an_index_without_sorting(table, alice):
    """T5: the keyset page (newest execute date first, ties by id) must come straight off an index: with
    thousands of transactions per day, sorting each day's ties costs a page ~100 ms instead of ~2 ms."""
    (_, page) = search_queries(alice, {"search": "1"})
    nodes = explain(page)
    assert not [n for n in nodes if "Sort" in n["Node Type"]], describe(nodes)

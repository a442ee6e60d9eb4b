"""All Report's queries (T1, T2, T4, T5): rows, totals, sort orders, and the columns shared by the screen
and the exports. Every function takes a queryset already scoped to the merchant and filtered."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from itertools import islice

from django.conf import settings
from django.core import signing
from django.db import connections, router
from django.db.models import Count, QuerySet, Sum

from batch.models import Batch
from billing_bo.lib.money import format_rupiah
from payments.models import Transaction
from recurring import card_expiry
from recurring.models import Billing

from .exports import copy_csv_stream, csv_stream, xlsx_stream

KIND_LABELS = {Transaction.Kind.RECURRING: "Registration", Transaction.Kind.SINGLE_PAYMENT: "Single Payment"}
STATUS_LABELS = dict(Transaction.Status.choices)


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    number: bool = False


# The columns of the result table and of both exports, in order.
COLUMNS = (
    Column("execute_date", "Execute Date"),
    Column("invoice_number", "Invoice Number"),
    Column("billing_number", "Billing Number"),
    Column("customer_id", "Customer ID"),
    Column("kind", "Batch Type"),
    Column("file_name", "CSV File Name"),
    Column("amount", "Amount", number=True),
    Column("refunded_amount", "Refunded", number=True),
    Column("card_masked", "Card No"),
    Column("holder_name", "Card Holder Name"),
    Column("holder_phone", "Card Holder Phone"),
    Column("card_issuer", "Issuer"),
    Column("status", "Payment Status"),
    Column("response_code", "Response Code"),
    Column("approval_code", "Approval Code"),
    Column("error_code", "Error Code"),
    Column("bank_message", "Bank Message"),
    Column("attempts", "Attempts", number=True),
    Column("next_retry_date", "Next Retry"),
)
MODEL_FIELDS = [column.name for column in COLUMNS if column.name != "file_name"]

# Sort orders of the result table: the column, then ties broken by execute date and id (unique), all in
# one direction so a row-value comparison continues a page (see reports.pagination).
SORTS = {
    "execute_date": ("execute_date", "id"),
    "invoice_number": ("invoice_number", "id"),
    "billing_number": ("billing_number", "execute_date", "id"),
    "amount": ("amount", "id"),
    "status": ("status", "execute_date", "id"),
}
DEFAULT_SORT = "-execute_date"


def parse_sort(value: str | None) -> tuple[str, tuple[str, ...], bool]:
    """(sort as given, key columns, descending) for a ``sort`` parameter; unknown means the default."""
    value = (value or "").strip()
    name = value.lstrip("-")
    if name not in SORTS:
        value, name = DEFAULT_SORT, DEFAULT_SORT.lstrip("-")
    return value, SORTS[name], value.startswith("-")


def rows(filtered: QuerySet) -> QuerySet:
    """Dicts of the report's columns from the transactions table alone (no join: a page sorts and limits
    transactions only); ``with_file_names`` adds the CSV File Name afterwards."""
    return filtered.values("id", "batch_id", "billing_id", *MODEL_FIELDS)


def with_file_names(merchant_id: int, found: Iterable[dict], chunk: int = 2000) -> Iterator[dict]:
    """``found`` with each row's ``file_name``: the file its single payment came from, or the file that
    registered its billing. One small statement per chunk of rows, on the merchant's own files and
    billings (``_file_names_sql``); file names are remembered across chunks, as a merchant has few files."""
    names: dict[int, str] = {}
    rows_iter = iter(found)
    while block := list(islice(rows_iter, chunk)):
        billing_ids = {row["billing_id"] for row in block if row["batch_id"] is None and row["billing_id"]}
        single_ids = {row["batch_id"] for row in block if row["batch_id"]} - names.keys()
        registered: dict[int, int] = {}
        if billing_ids or single_ids:
            connection = connections[router.db_for_read(Batch)]
            sql, params = _file_names_sql(connection.ops.quote_name, merchant_id, single_ids, billing_ids)
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                for billing_id, batch_id, file_name in cursor.fetchall():
                    names[batch_id] = file_name
                    if billing_id is not None:
                        registered[billing_id] = batch_id
        for row in block:
            batch_id = row["batch_id"] or registered.get(row["billing_id"])
            row["file_name"] = names.get(batch_id, "") if batch_id else ""
        yield from block


def with_card_expiring(merchant, page_rows: list[dict]) -> list[dict]:
    """``page_rows`` (one page of the report) with ``card_expiring``: the row's billing is marked "card
    expiring" on Manage Recurring (recurring/card_expiry.py). One query for the page's billings."""
    billing_ids = {row["billing_id"] for row in page_rows if row["billing_id"]}
    billings = Billing.objects.filter(merchant=merchant, pk__in=billing_ids).only(
        "pk", "merchant", "status", "deleted_at", "billing_type", "card_expiry", "next_execute_date"
    )
    expiring = card_expiry.marker(merchant)
    marked = {billing.pk for billing in billings if expiring(billing)} if billing_ids else set()
    for row in page_rows:
        row["card_expiring"] = row["billing_id"] in marked
    return page_rows


def _file_names_sql(q, merchant_id: int, batch_ids: set[int], billing_ids: set[int]) -> tuple[str, list]:
    """(billing id or NULL, batch id, file name) of the merchant's ``batch_ids`` and of the files that
    registered its ``billing_ids``: one statement instead of two ORM queries (a third of the time of an
    All Report page's file names; the ORM's compiling was most of it). ``q`` quotes a name."""
    batch, billing = q(Batch._meta.db_table), q(Billing._meta.db_table)
    parts, params = [], []
    if batch_ids:
        marks = ", ".join(["%s"] * len(batch_ids))
        parts.append(
            f"SELECT NULL, {q('id')}, {q('file_name')} FROM {batch} WHERE {q('merchant_id')} = %s AND {q('id')} IN ({marks})"
        )
        params += [merchant_id, *sorted(batch_ids)]
    if billing_ids:
        marks = ", ".join(["%s"] * len(billing_ids))
        parts.append(
            f"SELECT b.{q('id')}, f.{q('id')}, f.{q('file_name')} FROM {billing} b JOIN {batch} f ON f.{q('id')} = b.{q('batch_id')} "
            f"WHERE b.{q('merchant_id')} = %s AND f.{q('merchant_id')} = %s AND b.{q('id')} IN ({marks})"
        )
        params += [merchant_id, merchant_id, *sorted(billing_ids)]
    return " UNION ALL ".join(parts), params


@dataclass(frozen=True)
class Totals:
    count: int
    amount: Decimal


def totals(filtered: QuerySet) -> Totals:
    """T2: Total Data and Total Amount in one aggregate query."""
    found = filtered.order_by().aggregate(count=Count("id"), amount=Sum("amount"))
    return Totals(count=found["count"] or 0, amount=found["amount"] or Decimal("0"))


TOTALS_SALT = "reports.all-report.totals"
# How long the totals a page link carries stand for the search (seconds); older links count again.
TOTALS_MAX_AGE = 300


def _search_key(merchant_id: int, query: dict[str, str]) -> str:
    text = json.dumps([merchant_id, sorted(query.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def totals_token(merchant_id: int, query: dict[str, str], found: Totals) -> str:
    """T2/T5: the totals of a search, signed and timestamped, for the page links of its result: the next
    page of the same search shows them without counting the whole result again."""
    return signing.dumps(
        [_search_key(merchant_id, query), found.count, str(found.amount)], salt=TOTALS_SALT, compress=False
    )


def totals_from_token(token: str, merchant_id: int, query: dict[str, str]) -> Totals | None:
    """The totals ``token`` carries when it was made for this merchant's same search within
    ``REPORTS_TOTALS_MAX_AGE`` seconds; None (count again) otherwise."""
    if not token:
        return None
    max_age = getattr(settings, "REPORTS_TOTALS_MAX_AGE", TOTALS_MAX_AGE)
    try:
        key, count, amount = signing.loads(token, salt=TOTALS_SALT, max_age=max_age)
        found = Totals(count=int(count), amount=Decimal(amount))
    except (signing.BadSignature, ValueError, TypeError, InvalidOperation):
        return None
    return found if key == _search_key(merchant_id, query) else None


def display(row: dict, name: str):
    """A cell as the screen and the exports show it (labels for codes, raw numbers and dates)."""
    value = row.get(name)
    if name == "kind":
        return KIND_LABELS.get(value, value)
    if name == "status":
        return STATUS_LABELS.get(value, value)
    if value is None:
        return ""
    return value


def screen_text(row: dict, name: str) -> str:
    """A cell as the result table shows it: ``display`` with amounts in Rupiah and dates in ISO; "" for
    an empty cell and for no refund (the table writes its mark for an empty cell)."""
    value = display(row, name)
    if value is None or value == "" or (name == "refunded_amount" and not value):
        return ""
    if name in ("amount", "refunded_amount"):
        return format_rupiah(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# The CSV export on PostgreSQL (T4): the same cells as ``display`` + ``exports.csv_stream``, computed by the
# database so the rows can leave through COPY ... TO STDOUT.
_DATE_TYPES = ("DateField",)
_NUMBER_TYPES = ("DecimalField", "PositiveSmallIntegerField", "IntegerField", "BigIntegerField")


def _neutralised_sql(expression: str, starts: Sequence[str]) -> str:
    """``exports.neutralise`` in SQL; an empty text is written as NULL (an empty unquoted CSV cell, like the
    Python path's). Every formula start is an ASCII character below the letters: a text whose first byte is
    a letter or above (most names and codes: one byte comparison in the "C" collation) is written as it is;
    the others are checked by the code of their first character, and a plain signed number (a phone
    number) is written as it is."""
    from .exports import SIGNED_NUMBER

    above = chr(max(ord(start) for start in starts) + 1)
    assert above == "A", "the fast path needs every formula start below the letters"
    codes = ", ".join(str(ord(start)) for start in starts)
    quote = "''''"
    return (
        f"CASE WHEN {expression} COLLATE \"C\" >= '{above}' THEN {expression} "
        f"WHEN ascii({expression}) IN ({codes}) AND {expression} !~ '^{SIGNED_NUMBER}$' THEN {quote} || {expression} "
        f"WHEN {expression} = '' THEN NULL ELSE {expression} END"
    )


def _labels_sql(expression: str, labels: dict, starts: Sequence[str]) -> tuple[str, list]:
    whens, params = [], []
    for value, label in labels.items():
        whens.append("WHEN %s THEN %s")
        params += [str(value), str(label)]
    return f"CASE {expression} {' '.join(whens)} ELSE {_neutralised_sql(expression, starts)} END", params


def export_sql(ordered: QuerySet, merchant_id: int, keys: Sequence[str], descending: bool) -> tuple[str, list]:
    """One SELECT of the report's CSV cells (``COLUMNS``, in order) for ``ordered`` (``rows`` of the
    filtered, merchant-scoped queryset), in the order of ``keys``: labels for kind and status, ISO dates,
    plain numbers, text neutralised as ``exports.neutralise`` does, and the CSV File Name joined from the
    merchant's own files and billings (as ``with_file_names``). PostgreSQL only."""
    from .exports import FORMULA_STARTS

    inner, params = ordered.order_by().query.sql_with_params()
    cells, cell_params = [], []
    for column in COLUMNS:
        if column.name == "file_name":
            cells.append(_neutralised_sql("q.file_name", FORMULA_STARTS))
            continue
        ref = f"q.{column.name}"
        if column.name in ("kind", "status"):
            sql, extra = _labels_sql(ref, KIND_LABELS if column.name == "kind" else STATUS_LABELS, FORMULA_STARTS)
            cells.append(sql)
            cell_params += extra
            continue
        field_type = Transaction._meta.get_field(column.name).get_internal_type()
        if field_type in _DATE_TYPES:
            cells.append(f"to_char({ref}, 'YYYY-MM-DD')")
        elif field_type in _NUMBER_TYPES:
            cells.append(f"{ref}::text")
        else:
            cells.append(_neutralised_sql(ref, FORMULA_STARTS))
    direction = " DESC" if descending else ""
    order = ", ".join(f"q.{key}{direction}" for key in keys)
    # Sort the narrow rows with their file name first, then write the cells (a projection of the ordered
    # subquery keeps its order).
    sql = (
        f"SELECT {', '.join(cells)} FROM (SELECT q.*, f.file_name FROM ({inner}) q "
        "LEFT JOIN recurring_billing r ON q.batch_id IS NULL AND r.id = q.billing_id AND r.merchant_id = %s "
        "LEFT JOIN batch_batch f ON f.id = COALESCE(q.batch_id, r.batch_id) AND f.merchant_id = %s "
        f"ORDER BY {order}) q"
    )
    return sql, [*cell_params, *params, merchant_id, merchant_id]


def export_body(fmt: str, filtered: QuerySet, merchant_id: int, sort: str, *, large: bool) -> Iterator:
    """The export of a filtered result (T4), every row in the result's order, as streamed chunks: a CSV on
    PostgreSQL is written by the database (COPY) with the same cells as the Python path; otherwise the rows
    go through ``display`` to the CSV writer or the XLSX sheet (``large``: past half a million rows)."""
    _, keys, descending = parse_sort(sort)
    ordered = rows(filtered).order_by(*(f"-{key}" if descending else key for key in keys))
    header = [column.label for column in COLUMNS]
    connection = connections[router.db_for_read(Transaction)]
    if fmt == "csv" and connection.vendor == "postgresql":
        sql, params = export_sql(ordered, merchant_id, keys, descending)
        return copy_csv_stream(header, connection, sql, params)
    names = [column.name for column in COLUMNS]
    named = with_file_names(merchant_id, ordered.iterator(chunk_size=2000))
    values = ([display(row, name) for name in names] for row in named)
    if fmt == "xlsx":
        return xlsx_stream(header, values, sheet_name="All Report", large=large)
    return csv_stream(header, values)


def batch_outcomes(batch: Batch, references: list[str]) -> tuple[dict[str, tuple[str, str]], list[dict]]:
    """Batch Report detail (T3): for the rows' references on a page, what each became (status pill, label),
    and for a Single Payment file its payments by status (count and amount)."""
    if batch.kind == Batch.Kind.SINGLE_PAYMENT:
        payments = Transaction.objects.filter(merchant_id=batch.merchant_id, batch=batch)
        made = payments.filter(invoice_number__in=references).values("invoice_number", "status")
        outcomes = {tx["invoice_number"]: (tx["status"], Transaction.Status(tx["status"]).label) for tx in made}
        by_status = [
            {"status": p["status"], "label": Transaction.Status(p["status"]).label, "n": p["n"], "amount": p["amount"]}
            for p in payments.values("status").annotate(n=Count("id"), amount=Sum("amount")).order_by("status")
        ]
        return outcomes, by_status
    made = Billing.objects.filter(merchant_id=batch.merchant_id, batch=batch, billing_number__in=references)
    # the pill colours of Manage Recurring: active as success, inactive as cancelled
    outcomes = {
        b["billing_number"]: (
            "success" if b["status"] == Billing.Status.ACTIVE else "cancelled",
            Billing.Status(b["status"]).label,
        )
        for b in made.values("billing_number", "status")
    }
    return outcomes, []

"""All Report's queries (T1, T2, T4, T5): rows, totals, sort orders, and the columns shared by the screen
and the exports. Every function takes a queryset already scoped to the merchant and filtered."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice

from django.db.models import Count, QuerySet, Sum

from payments.models import Transaction

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


def with_file_names(batches: QuerySet, billings: QuerySet, found: Iterable[dict], chunk: int = 2000) -> Iterator[dict]:
    """``found`` with each row's ``file_name``: the file its single payment came from, or the file that
    registered its billing. Two small lookups per chunk of rows (``batches`` and ``billings`` are scoped
    to the merchant); file names are remembered across chunks, as a merchant has few files."""
    names: dict[int, str] = {}
    rows_iter = iter(found)
    while block := list(islice(rows_iter, chunk)):
        billing_ids = {row["billing_id"] for row in block if row["batch_id"] is None and row["billing_id"]}
        registered = (
            dict(billings.filter(pk__in=billing_ids, batch__isnull=False).values_list("pk", "batch_id"))
            if billing_ids
            else {}
        )
        wanted = {row["batch_id"] for row in block if row["batch_id"]} | set(registered.values())
        if wanted - names.keys():
            names.update(batches.filter(pk__in=wanted - names.keys()).values_list("pk", "file_name"))
        for row in block:
            batch_id = row["batch_id"] or registered.get(row["billing_id"])
            row["file_name"] = names.get(batch_id, "") if batch_id else ""
        yield from block


@dataclass(frozen=True)
class Totals:
    count: int
    amount: Decimal


def totals(filtered: QuerySet) -> Totals:
    """T2: Total Data and Total Amount in one aggregate query."""
    found = filtered.order_by().aggregate(count=Count("id"), amount=Sum("amount"))
    return Totals(count=found["count"] or 0, amount=found["amount"] or Decimal("0"))


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

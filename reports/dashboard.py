"""The dashboard's figures (D2-D9), read from the rollups only (plus registrations from billings).

Each function takes querysets already scoped to the signed-in merchant (``merchant_rows``) and a
``Period``; none of them reads the transactions table, so a month of millions of transactions costs a
group-by over at most a few thousand rollup rows.

Definitions (documented on the page too):
- Total Data (D3): finished transactions with an execute date in the period: success, failed, voided,
  refunded, partially refunded.
- Total Success Amount (D2): the charged amount of approved charges that still stand: success and
  partially refunded (whole amount). Voided and fully refunded charges gave the money back.
- Total Unique Billing Number (D4): distinct non-empty billing numbers among those transactions.
- Success vs failed (D5, D7): success = success + partially refunded; failed = failed; voided and refunded
  are shown apart as "Reversed".
- Registration Recurring (D8): billings registered in the period (not deleted), by their current status.
- Recovered (issue #19): charges with an execute date in the period that failed and later succeeded, by a
  retry or on a card the cardholder updated; each execution once (its row), with its whole amount. Read
  from the transactions through a partial index that holds only such rows (``tx_recovered_idx``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Count, QuerySet, Sum

from payments.models import Transaction
from recurring.models import Billing

from .periods import Period
from .rollups import REVERSED, SUCCESSFUL, Status

SINGLE_PAYMENT = "single_payment"


@dataclass
class Summary:
    total_data: int = 0
    success_amount: Decimal = Decimal("0")
    unique_billings: int = 0
    success: int = 0
    failed: int = 0
    reversed: int = 0
    single_success: int = 0
    single_failed: int = 0
    issuers: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def single_payments(self) -> int:
        return self.single_success + self.single_failed


def in_period(rollups: QuerySet, period: Period) -> QuerySet:
    return rollups.filter(day__gte=period.start, day__lte=period.end)


def summary(rollups: QuerySet, totals: QuerySet, period: Period) -> Summary:
    """D2-D4 and what the page needs to choose between a chart and its empty state: two small queries."""
    result = Summary()
    rows = in_period(rollups, period).values("kind", "status").annotate(n=Sum("count"), amount=Sum("amount")).order_by()
    for row in rows:
        n, status = int(row["n"] or 0), row["status"]
        result.total_data += n
        result.by_status[status] = result.by_status.get(status, 0) + n
        if status in SUCCESSFUL:
            result.success += n
            result.success_amount += row["amount"] or Decimal("0")
            if row["kind"] == SINGLE_PAYMENT:
                result.single_success += n
        elif status == Status.FAILED:
            result.failed += n
            if row["kind"] == SINGLE_PAYMENT:
                result.single_failed += n
        elif status in REVERSED:
            result.reversed += n
    unique = totals.filter(period=period.rollup_period, start=period.start).aggregate(n=Sum("unique_billings"))["n"]
    result.unique_billings = int(unique or 0)
    return result


def daily(rollups: QuerySet, period: Period) -> dict[str, list]:
    """D5: per day of the period, success / failed / reversed counts (zeros for empty days)."""
    index = {day: i for i, day in enumerate(period.days)}
    series = {"success": [0] * len(index), "failed": [0] * len(index), "reversed": [0] * len(index)}
    rows = in_period(rollups, period).values("day", "status").annotate(n=Sum("count")).order_by()
    for row in rows:
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"]))
        status = row["status"]
        name = "success" if status in SUCCESSFUL else "failed" if status == Status.FAILED else "reversed"
        series[name][index[day]] += int(row["n"] or 0)
    return {"days": period.days, **series}


def failed_messages(rollups: QuerySet, period: Period, limit: int = 8) -> list[tuple[str, int]]:
    """D6: the bank's answers to failed charges, most frequent first; the rest summed as "Other"."""
    rows = (
        in_period(rollups, period)
        .filter(status=Status.FAILED)
        .values("response_code", "bank_message")
        .annotate(n=Sum("count"))
        .filter(n__gt=0)
        .order_by("-n", "response_code", "bank_message")
    )
    found = [(_message_label(r["response_code"], r["bank_message"]), int(r["n"])) for r in rows]
    if len(found) > limit:
        found = [*found[: limit - 1], ("Other", sum(n for _, n in found[limit - 1 :]))]
    return found


def _message_label(code: str, message: str) -> str:
    if code and message:
        return f"{code} {message}"
    return code or message or "No answer"


def top_issuers(rollups: QuerySet, period: Period, limit: int = 10) -> list[tuple[str, int]]:
    """D9: card-issuing banks by number of transactions in the period."""
    rows = (
        in_period(rollups, period)
        .values("issuer")
        .annotate(n=Sum("count"))
        .filter(n__gt=0)
        .order_by("-n", "issuer")[:limit]
    )
    return [(r["issuer"] or "Unknown issuer", int(r["n"])) for r in rows]


def registrations(billings: QuerySet, period: Period, tz: ZoneInfo) -> dict[str, int]:
    """D8: billings registered in the period and not deleted, by their current status."""
    start, end = period.bounds(tz)
    rows = (
        billings.filter(
            # every source listed so the (merchant, source, -created_at) index serves the range
            source__in=Billing.Source.values,
            created_at__gte=start,
            created_at__lt=end,
            deleted_at__isnull=True,
        )
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = {Billing.Status.ACTIVE: 0, Billing.Status.INACTIVE: 0}
    for row in rows:
        counts[row["status"]] = row["n"]
    return {"active": counts[Billing.Status.ACTIVE], "inactive": counts[Billing.Status.INACTIVE]}


@dataclass(frozen=True)
class Recovered:
    count: int = 0
    amount: Decimal = Decimal("0")


def recovered(transactions: QuerySet[Transaction], period: Period) -> Recovered:
    """Charges of the period that failed and later succeeded (still standing: success, partly refunded)."""
    found = (
        transactions.filter(execute_date__gte=period.start, execute_date__lte=period.end, status__in=SUCCESSFUL)
        .exclude(declined_code="")
        .aggregate(n=Count("id"), amount=Sum("amount"))
    )
    return Recovered(count=found["n"] or 0, amount=found["amount"] or Decimal("0"))

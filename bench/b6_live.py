"""B6's baseline: the dashboard's figures by a live GROUP BY through the ORM over payments_transaction.

``LiveFigures(merchant_id)`` has the functions of ``reports.dashboard`` with the same signatures and
results; the rollup querysets the views pass are ignored and the merchant's transactions are grouped
instead (the way a dashboard without rollups would do it, each query on the (merchant, execute_date)
index range of the period). The bench puts it in place of ``reports.views.figures`` and ``reports.charts.figures``, so the baseline
goes through the same views, middleware and templates as ours and only the source of the numbers
differs.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db.models import Count, Sum

from payments.models import Transaction
from reports import dashboard
from reports.rollups import REPORTED, REVERSED, SUCCESSFUL, Status

REPORTED_VALUES = sorted(str(status) for status in REPORTED)


class LiveFigures:
    registrations = staticmethod(dashboard.registrations)  # not a rollup figure: the same query as ours
    recovered = staticmethod(dashboard.recovered)  # read from transactions by ours too: the same query
    Summary = dashboard.Summary

    def __init__(self, merchant_id: int):
        self.merchant_id = merchant_id

    def _reported(self, period):
        return Transaction.objects.filter(
            merchant_id=self.merchant_id,
            execute_date__gte=period.start,
            execute_date__lte=period.end,
            status__in=REPORTED_VALUES,
        )

    def summary(self, rollups, totals, period) -> dashboard.Summary:
        result = dashboard.Summary()
        rows = self._reported(period).values("kind", "status").annotate(n=Count("id"), amount=Sum("amount")).order_by()
        for row in rows:
            n, status = int(row["n"] or 0), row["status"]
            result.total_data += n
            result.by_status[status] = result.by_status.get(status, 0) + n
            if status in SUCCESSFUL:
                result.success += n
                result.success_amount += row["amount"] or Decimal("0")
                if row["kind"] == dashboard.SINGLE_PAYMENT:
                    result.single_success += n
            elif status == Status.FAILED:
                result.failed += n
                if row["kind"] == dashboard.SINGLE_PAYMENT:
                    result.single_failed += n
            elif status in REVERSED:
                result.reversed += n
        unique = (
            self._reported(period).exclude(billing_number="").aggregate(n=Count("billing_number", distinct=True))["n"]
        )
        result.unique_billings = int(unique or 0)
        return result

    def daily(self, rollups, period) -> dict[str, list]:
        index = {day: i for i, day in enumerate(period.days)}
        series = {"success": [0] * len(index), "failed": [0] * len(index), "reversed": [0] * len(index)}
        rows = self._reported(period).values("execute_date", "status").annotate(n=Count("id")).order_by()
        for row in rows:
            day = row["execute_date"]
            day = day if isinstance(day, date) else date.fromisoformat(str(day))
            status = row["status"]
            name = "success" if status in SUCCESSFUL else "failed" if status == Status.FAILED else "reversed"
            series[name][index[day]] += int(row["n"])
        return {"days": period.days, **series}

    def failed_messages(self, rollups, period, limit: int = 8) -> list[tuple[str, int]]:
        rows = (
            self._reported(period)
            .filter(status=Status.FAILED)
            .values("response_code", "bank_message")
            .annotate(n=Count("id"))
            .order_by("-n", "response_code", "bank_message")
        )
        found = [(dashboard._message_label(r["response_code"], r["bank_message"]), int(r["n"])) for r in rows]
        if len(found) > limit:
            found = [*found[: limit - 1], ("Other", sum(n for _, n in found[limit - 1 :]))]
        return found

    def top_issuers(self, rollups, period, limit: int = 10) -> list[tuple[str, int]]:
        rows = (
            self._reported(period).values("card_issuer").annotate(n=Count("id")).order_by("-n", "card_issuer")[:limit]
        )
        return [(r["card_issuer"] or "Unknown issuer", int(r["n"])) for r in rows]

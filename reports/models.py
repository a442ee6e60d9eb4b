"""The dashboard's rollups (DESIGN "Reports"): kept current by ``reports.rollups`` from the
``transaction_changed`` signal, rebuilt from transactions by ``manage.py rebuild_rollups``.

Which transactions count: the finished ones a report shows (``REPORTED``: success, failed, voided,
refunded, partially refunded). Scheduled, processing and cancelled rows are work in flight or work that
never ran; they enter a rollup when they finish and leave it when a retry sends them back to scheduled.

Counts and amounts are commutative deltas, so concurrent updates in any order add up to the same rows;
a row may fall to zero (a failed charge that is retried) and is then simply not shown.
"""

from __future__ import annotations

from django.db import models

from accounts.models import Merchant

ROLLUP_MONEY = {"max_digits": 20, "decimal_places": 0}


class DailyRollup(models.Model):
    """Transactions of one merchant-local execute day, by kind, status, response, message and issuer."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    day = models.DateField(help_text="The transactions' execute date (merchant-local).")
    kind = models.CharField(max_length=16)
    status = models.CharField(max_length=20)
    response_code = models.CharField(max_length=4, blank=True)
    bank_message = models.CharField(max_length=120, blank=True)
    issuer = models.CharField(max_length=80, blank=True)
    count = models.BigIntegerField(default=0)
    amount = models.DecimalField(**ROLLUP_MONEY, default=0, help_text="Sum of the charged amounts (gross).")

    class Meta:
        constraints = [
            # The upsert's conflict target; its leading (merchant, day) also serves every dashboard read.
            models.UniqueConstraint(
                fields=["merchant", "day", "kind", "status", "response_code", "bank_message", "issuer"],
                name="daily_rollup_bucket_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.status} {self.response_code}: {self.count}"


class Period(models.TextChoices):
    WEEK = "week", "Week"  # Monday to Sunday
    MONTH = "month", "Month"


class BillingPeriod(models.Model):
    """How many reported transactions a billing number has in a week or month (D4 bookkeeping)."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=5, choices=Period.choices)
    start = models.DateField(help_text="Monday of the week, or the first of the month.")
    billing_number = models.CharField(max_length=64)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "period", "start", "billing_number"], name="billing_period_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.billing_number} {self.period} {self.start}: {self.count}"


class PeriodTotal(models.Model):
    """Unique billing numbers of a week or month (D4): the billing numbers whose ``BillingPeriod`` count
    is above zero. Split over a few shards so concurrent charges do not queue on one row; read as a sum."""

    SHARDS = 8

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=5, choices=Period.choices)
    start = models.DateField()
    shard = models.PositiveSmallIntegerField(default=0)
    unique_billings = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "period", "start", "shard"], name="period_total_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.period} {self.start}#{self.shard}: {self.unique_billings}"

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.db import models
from django.db.models import F
from django.db.models.functions import Upper
from django.utils import timezone

from accounts.models import Merchant
from billing_bo.lib.money import MONEY
from payments.models import CardSnapshot

from .schedule import Schedule


class Billing(CardSnapshot):
    """A registration (R1-R6): a customer's card, an amount and a schedule."""

    class Type(models.TextChoices):
        RECURRING = "recurring", "Recurring"  # charged on schedule
        REMINDER = "reminder", "Reminder"  # only a notification to the merchant, no payment

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        INACTIVE = "inactive", "Inactive"

    class Source(models.TextChoices):
        BATCH = "batch", "Batch"
        HOSTED = "hosted", "Hosted"
        API = "api", "API"  # registered by the merchant's own system through the REST API (api/)

    FREE_TEXT_FIELDS = ("holder_name", "customer_name")

    # No index of their own (db_index=False): every index below starts with the merchant, and the batch has a
    # partial one below (billings that came from a file). The scheduler moves each due billing's next date
    # daily, and each index is one more write per moved billing.
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="billings", db_index=False)
    billing_number = models.CharField(max_length=64)
    customer_id = models.CharField(max_length=64)
    customer_name = models.CharField(max_length=120)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=16, blank=True)
    amount = models.DecimalField(**MONEY)
    billing_type = models.CharField(max_length=10, choices=Type.choices, default=Type.RECURRING)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    source = models.CharField(max_length=10, choices=Source.choices)
    batch = models.ForeignKey(
        "batch.Batch", null=True, blank=True, on_delete=models.PROTECT, related_name="billings", db_index=False
    )
    schedule_kind = models.CharField(max_length=10)  # Schedule.kind, for lists and filters
    schedule_data = models.JSONField()  # Schedule.to_dict()
    next_execute_date = models.DateField(null=True, blank=True)
    # R10: retries of a soft decline, on the merchant's policy
    retry_attempts = models.PositiveSmallIntegerField(default=0)
    next_retry_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)  # soft delete: its transactions stay

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "billing_number"],
                name="billing_number_unique_per_merchant",
                violation_error_message="This billing number is used already.",
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="billing_amount_positive"),
        ]
        indexes = [
            # Used by recurring.scheduler.due_billings: today's work is an index range scan.
            models.Index(
                fields=["merchant", "next_execute_date"],
                name="billing_due_idx",
                condition=models.Q(status="active", deleted_at__isnull=True),
            ),
            models.Index(fields=["merchant", "customer_id"], name="billing_customer_idx"),
            # Manage Recurring, Registration and Cancel Execute Date match billing numbers ignoring case
            # (billing_number__iexact is UPPER(billing_number) = UPPER(%s) on PostgreSQL).
            models.Index(F("merchant"), Upper("billing_number"), name="billing_number_upper_idx"),
            models.Index(fields=["merchant", "source", "-created_at"], name="billing_source_idx"),
            # All Report's CSV File Name filter (T1) finds a registration file's billings by batch; hosted
            # registrations (no batch) stay out of it.
            models.Index(fields=["batch"], name="billing_batch_idx", condition=models.Q(batch__isnull=False)),
            # Used by recurring.card_expiry (Cards expiring, the daily notices): the cards that run out first.
            models.Index(
                fields=["merchant", "card_expiry"],
                name="billing_card_expiry_idx",
                condition=models.Q(status="active", deleted_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return self.billing_number

    @property
    def schedule(self) -> Schedule:
        return Schedule.from_dict(self.schedule_data)

    @schedule.setter
    def schedule(self, value: Schedule) -> None:
        self.schedule_kind = value.kind
        self.schedule_data = value.to_dict()

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class CancelledExecution(models.Model):
    """An execute date of a billing that must not run (P6); the scheduler skips it."""

    FREE_TEXT_FIELDS = ("reason",)

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    billing = models.ForeignKey(Billing, on_delete=models.PROTECT, related_name="cancelled_executions")
    execute_date = models.DateField()
    invoice_number = models.CharField(max_length=64)
    reason = models.TextField()
    cancelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    cancelled_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["billing", "execute_date"], name="cancelled_execution_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.billing} {self.execute_date}"


class SchedulerRun(models.Model):
    """One merchant-local day of the scheduler (R7, R8): created once, finished once."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True, help_text="A runner holds the day until then.")
    due = models.PositiveIntegerField(default=0)
    charged = models.PositiveIntegerField(default=0)
    reminded = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    single_payments = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day"]
        constraints = [models.UniqueConstraint(fields=["merchant", "day"], name="scheduler_run_once_per_day")]

    def __str__(self) -> str:
        return f"{self.merchant} {self.day}"

    @property
    def seconds(self) -> float | None:
        return (self.finished_at - self.started_at).total_seconds() if self.finished_at else None


def _default_card_update_codes() -> list[str]:
    return list(RetryPolicy.DEFAULT_CARD_UPDATE_CODES)


class RetryPolicy(models.Model):
    """R10: which decline codes are retried, and after how many days (from the failed execute date)."""

    DEFAULT_CODES = ["51", "91"]
    DEFAULT_DAYS = [1, 3]
    DEFAULT_CARD_UPDATE_CODES = ["14", "54"]
    DEFAULT_EXPIRING_DAYS = 30

    merchant = models.OneToOneField(Merchant, on_delete=models.CASCADE, related_name="retry_policy")
    retry_codes = models.JSONField(default=list)
    retry_after_days = models.JSONField(default=list)
    # Card updates (recurring/card_updates.py): the hard declines after which the cardholder gets a card
    # update link, and how many days before its expiry a card counts as expiring (and its holder is told).
    card_update_codes = models.JSONField(default=_default_card_update_codes)
    expiring_days = models.PositiveSmallIntegerField(default=DEFAULT_EXPIRING_DAYS)

    def __str__(self) -> str:
        return f"retry {self.retry_codes} after {self.retry_after_days} days"

    @classmethod
    def for_merchant(cls, merchant: Merchant) -> RetryPolicy:
        policy = cls.objects.filter(merchant=merchant).first()
        return policy or cls(merchant=merchant, **cls.default_retries())

    @classmethod
    def default_retries(cls) -> dict:
        """The retry fields of a merchant that has not set its policy (the others have field defaults)."""
        return {"retry_codes": list(cls.DEFAULT_CODES), "retry_after_days": list(cls.DEFAULT_DAYS)}

    @property
    def retry_window_days(self) -> int:
        """How long after its execute date a failed execution may still be charged again: the policy's last
        retry day (a card updated within it recovers the charge)."""
        return max((int(days) for days in self.retry_after_days), default=0)

    def next_retry(self, execute_date: date, *, after: date) -> date | None:
        """The day of an execution's next retry: the first of the policy's days after ``execute_date`` that
        comes after ``after`` (the day of the attempt that failed); None once they are spent."""
        for days in sorted({int(days) for days in self.retry_after_days}):
            day = execute_date + timedelta(days=days)
            if day > after:
                return day
        return None


class RegistrationLink(models.Model):
    """R9: a signed, expiring, single-use link to the hosted registration page."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    nonce = models.CharField(max_length=40, unique=True)
    customer_id = models.CharField(max_length=64, blank=True)  # fixed when given
    amount = models.DecimalField(**MONEY, null=True, blank=True)  # fixed when given
    schedule_data = models.JSONField(null=True, blank=True)  # fixed when given
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)
    billing = models.OneToOneField(Billing, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Against card testing (recurring/card_attempts.py): cards tried on this link, and when and why too many
    # failures spent it (the merchant sees the reason in the Registration menu).
    card_attempts = models.PositiveSmallIntegerField(default=0)
    spent_at = models.DateTimeField(null=True, blank=True)
    spent_reason = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"link {self.pk} of {self.merchant}"

    @property
    def schedule(self) -> Schedule | None:
        return Schedule.from_dict(self.schedule_data) if self.schedule_data else None


class CardChange(CardSnapshot):
    """A card a billing had before a card update: the billing's card history (newest first)."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    billing = models.ForeignKey(Billing, on_delete=models.PROTECT, related_name="card_changes")
    replaced_at = models.DateTimeField(default=timezone.now)
    replaced_via = models.CharField(max_length=80, blank=True)  # "card update link 12"

    class Meta:
        ordering = ["-replaced_at", "-pk"]
        indexes = [models.Index(fields=["merchant", "billing", "-replaced_at"], name="card_change_billing_idx")]

    def __str__(self) -> str:
        return f"{self.billing} {self.card_masked}"


class CardUpdateLink(models.Model):
    """A signed, expiring, single-use link to the hosted card update page (``/card/<token>/``)."""

    class Reason(models.TextChoices):
        EXPIRING = "expiring", "Card expiring"
        DECLINED = "declined", "Card declined"
        MANUAL = "manual", "Sent by the merchant"

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    billing = models.ForeignKey(Billing, on_delete=models.PROTECT, related_name="card_update_links")
    nonce = models.CharField(max_length=40, unique=True)
    reason = models.CharField(max_length=10, choices=Reason.choices)
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)
    # Against card testing, as on the registration link (recurring/card_attempts.py).
    card_attempts = models.PositiveSmallIntegerField(default=0)
    spent_at = models.DateTimeField(null=True, blank=True)
    spent_reason = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"card update link {self.pk} of {self.billing_id}"

    @property
    def customer_id(self) -> str:
        return self.billing.customer_id


class CardNotice(models.Model):
    """One notice to a cardholder (an e-mail with a card update link, when the billing has an address) and
    to the merchant (a callback): at most one per billing, reason and period, whatever retries happen.

    The period: the card's expiry month (``2026-05``) for an expiring card, the execution's invoice number for
    a declined one."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    billing = models.ForeignKey(Billing, on_delete=models.PROTECT, related_name="card_notices")
    reason = models.CharField(max_length=10, choices=CardUpdateLink.Reason.choices)
    period = models.CharField(max_length=64)
    link = models.ForeignKey(CardUpdateLink, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    email = models.EmailField(blank=True)  # where it went; empty: the billing has no e-mail address
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["billing", "reason", "period"],
                name="card_notice_once_per_period",
                violation_error_message="This billing was told already.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.reason} notice of {self.billing_id} ({self.period})"

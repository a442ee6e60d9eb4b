from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F
from django.db.models.functions import Upper
from django.utils import timezone

from accounts.models import Merchant
from billing_bo.lib.money import MONEY, format_rupiah

# Whole Rupiah: 14 digits is enough for any single card charge.


class CardSnapshot(models.Model):
    """The card as the back office may keep it (DESIGN "Card data"): never the number or the CVV."""

    FREE_TEXT_FIELDS = ("holder_name",)

    card_token = models.CharField(max_length=64, blank=True)
    card_masked = models.CharField(max_length=19, blank=True)  # first 6, last 4
    card_fingerprint = models.CharField(max_length=64, blank=True)  # HMAC-SHA256 of the number, keyed outside the DB
    card_expiry = models.DateField(null=True, blank=True)  # last day of the expiry month
    card_issuer = models.CharField(max_length=80, blank=True)
    card_brand = models.CharField(max_length=20, blank=True)
    holder_name = models.CharField(max_length=120, blank=True)
    holder_phone = models.CharField(max_length=16, blank=True)

    class Meta:
        abstract = True


class Transaction(CardSnapshot):
    class Kind(models.TextChoices):
        RECURRING = "recurring", "Recurring"
        SINGLE_PAYMENT = "single_payment", "Single Payment"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        PROCESSING = "processing", "Processing"
        SUCCESS = "success", "Success"
        FAILED = "failed", "Failed"
        VOIDED = "voided", "Voided"
        REFUNDED = "refunded", "Refunded"
        PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
        CANCELLED = "cancelled", "Cancelled"

    FREE_TEXT_FIELDS = ("holder_name", "description")

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="transactions")
    invoice_number = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # A recurring execution belongs to its billing; a single payment may name a billing number only.
    # The reference is by model label, so payments imports no code of recurring.
    billing = models.ForeignKey(
        "recurring.Billing", null=True, blank=True, on_delete=models.PROTECT, related_name="transactions"
    )
    billing_number = models.CharField(max_length=64, blank=True)
    # The uploaded file a single payment came from (batch app), by model label as above.
    batch = models.ForeignKey(
        "batch.Batch", null=True, blank=True, on_delete=models.PROTECT, related_name="transactions"
    )
    customer_id = models.CharField(max_length=64, blank=True)
    description = models.CharField(max_length=255, blank=True)
    amount = models.DecimalField(**MONEY)
    execute_date = models.DateField(help_text="Merchant-local date the charge is due.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SCHEDULED)

    next_retry_date = models.DateField(
        null=True, blank=True, help_text="R10: the merchant-local day a soft-declined charge is tried again."
    )
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Charge attempts made; the current one names the idempotency key."
    )
    response_code = models.CharField(max_length=4, blank=True)
    # The code of the first decline that failed this charge; kept through its retries, so a charge that
    # failed and later succeeded (by a retry or on an updated card) is "recovered" (dashboard).
    # A database default too: rows written by raw SQL (the scheduler's INSERT ... SELECT, COPY in tests and
    # benchmarks) name only the columns they know.
    declined_code = models.CharField(max_length=4, blank=True, default="", db_default="")
    approval_code = models.CharField(max_length=12, blank=True)
    error_code = models.CharField(max_length=32, blank=True, help_text="Our code for a fault: timeout, unavailable...")
    bank_message = models.CharField(max_length=120, blank=True)
    acquirer_reference = models.CharField(max_length=64, blank=True)
    refunded_amount = models.DecimalField(**MONEY, default=Decimal("0"))

    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "invoice_number"],
                name="transaction_invoice_unique_per_merchant",
                violation_error_message="This invoice number is used already.",
            ),
            # R8: creating the same day's work twice is a no-op.
            models.UniqueConstraint(
                fields=["billing", "execute_date"],
                condition=models.Q(billing__isnull=False),
                name="transaction_once_per_billing_and_day",
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="transaction_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(refunded_amount__gte=0) & models.Q(refunded_amount__lte=models.F("amount")),
                name="transaction_refund_within_amount",
            ),
        ]
        indexes = [
            # Used by the reports (All Report date range, dashboard) and the void/refund search.
            models.Index(fields=["merchant", "execute_date", "id"], name="tx_merchant_date_id_idx"),
            models.Index(fields=["merchant", "status", "execute_date"], name="tx_merchant_status_date_idx"),
            models.Index(fields=["merchant", "billing_number"], name="tx_merchant_billing_idx"),  # sort by it
            # The billing number searches (void/refund, All Report) ignore case: UPPER(billing_number) = UPPER(%s).
            models.Index(
                F("merchant"), Upper("billing_number"), F("execute_date"), name="tx_merchant_billing_upper_idx"
            ),
            models.Index(fields=["merchant", "approval_code"], name="tx_merchant_approval_idx"),
            models.Index(fields=["merchant", "card_fingerprint"], name="tx_merchant_card_idx"),
            # Used by reports.filters.AllReportFilter (T1): every search field has an index of its own.
            models.Index(fields=["merchant", "amount", "execute_date"], name="tx_merchant_amount_idx"),
            models.Index(fields=["merchant", "holder_phone", "execute_date"], name="tx_merchant_phone_idx"),
            models.Index(fields=["merchant", "kind", "execute_date"], name="tx_merchant_kind_date_idx"),
            models.Index(fields=["merchant", "response_code", "execute_date"], name="tx_merchant_response_idx"),
            models.Index(
                fields=["merchant", "error_code", "execute_date"],
                name="tx_merchant_error_idx",
                condition=~models.Q(error_code=""),
            ),
            # Used by payments.janitor.run: the few rows in processing, oldest claim first.
            models.Index(
                fields=["claimed_at"], name="tx_processing_claimed_idx", condition=models.Q(status="processing")
            ),
            # Used by reports.dashboard.recovered: charges that failed and later succeeded, by execute date.
            models.Index(
                fields=["merchant", "execute_date"],
                name="tx_recovered_idx",
                condition=~models.Q(declined_code="") & models.Q(status__in=["success", "partially_refunded"]),
            ),
            # Used by recurring.scheduler when it queues the single payments and retries whose day has come.
            models.Index(fields=["execute_date"], name="tx_scheduled_due_idx", condition=models.Q(status="scheduled")),
        ]

    def __str__(self) -> str:
        return self.invoice_number

    @property
    def idempotency_key(self) -> str:
        """The key of the current attempt: a redelivered task reuses it, a new attempt gets a new one."""
        return f"{self.merchant_id}:{self.invoice_number}:{self.attempts}"

    @property
    def due_date(self):
        """The merchant-local day the next attempt may run: the execute date, or a retry's day (R10)."""
        return self.next_retry_date or self.execute_date

    @property
    def refundable_amount(self) -> Decimal:
        return self.amount - self.refunded_amount

    def is_settled(self, now=None) -> bool:
        """The bank settles a day's sales at the merchant-local midnight after them; only then is void closed."""
        if self.processed_at is None:
            return False
        tz = self.merchant.tzinfo
        processed_day = timezone.localtime(self.processed_at, tz).date()
        return timezone.localtime(now or timezone.now(), tz).date() > processed_day

    def void_refused_because(self, now=None) -> str:
        """Why this transaction cannot be voided now (P7), or "" when it can."""
        if self.status == self.Status.VOIDED:
            return "This transaction is voided already."
        if self.status in (self.Status.REFUNDED, self.Status.PARTIALLY_REFUNDED):
            return "A refunded transaction cannot be voided."
        if self.status != self.Status.SUCCESS:
            return f"Only successful transactions can be voided; this one is {self.get_status_display().lower()}."
        if self.is_settled(now):
            return "This transaction is settled: refund it instead."
        return ""

    def refund_refused_because(self, amount: Decimal | None = None) -> str:
        """Why ``amount`` (or any refund) cannot be refunded now (P7), or "" when it can."""
        if self.status == self.Status.REFUNDED:
            return "This transaction is refunded in full already."
        if self.status == self.Status.VOIDED:
            return "A voided transaction cannot be refunded."
        if self.status not in (self.Status.SUCCESS, self.Status.PARTIALLY_REFUNDED):
            return f"Only successful transactions can be refunded; this one is {self.get_status_display().lower()}."
        if amount is not None:
            if amount <= 0:
                return "The refund amount must be more than zero."
            if amount != amount.to_integral_value():
                return "The refund amount must be whole Rupiah."
            if amount > self.refundable_amount:
                return f"At most {format_rupiah(self.refundable_amount)} is left to refund."
        return ""


class Adjustment(models.Model):
    """A void or refund of a transaction, as sent to the bank (one row per request, keyed for idempotency)."""

    FREE_TEXT_FIELDS = ("reason",)

    class Kind(models.TextChoices):
        VOID = "void", "Void"
        REFUND = "refund", "Refund"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # sent, no answer yet (the janitor asks the bank by key)
        APPROVED = "approved", "Approved"
        DECLINED = "declined", "Declined"

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="adjustments")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    amount = models.DecimalField(**MONEY)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    idempotency_key = models.CharField(max_length=120, unique=True)
    response_code = models.CharField(max_length=4, blank=True)
    bank_message = models.CharField(max_length=120, blank=True)
    acquirer_reference = models.CharField(max_length=64, blank=True)
    reason = models.TextField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Used by payments.janitor.run: adjustments still waiting for the bank's answer.
            models.Index(fields=["created_at"], name="adj_pending_idx", condition=models.Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.transaction_id}"


class CallbackDelivery(models.Model):
    """One notification to the merchant's server (P8), with its attempts in ``CallbackAttempt``."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"  # gave up after the last retry

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    event = models.CharField(max_length=40)  # payment.succeeded, payment.failed, billing.reminder...
    url = models.URLField(max_length=500)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["merchant", "-created_at"], name="callback_merchant_created_idx"),
            # Used by payments.callbacks.send_due: pending deliveries whose next attempt has come.
            models.Index(fields=["next_attempt_at"], name="callback_due_idx", condition=models.Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.event} #{self.pk}"


class CallbackAttempt(models.Model):
    delivery = models.ForeignKey(CallbackDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    number = models.PositiveSmallIntegerField()
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"

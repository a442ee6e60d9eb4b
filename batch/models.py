from __future__ import annotations

import json
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Merchant
from billing_bo.lib.money import MONEY

from .columns import pack, unpack

# A file whose batch ended before any row could be processed (and never will be) may be uploaded again.
CAN_COME_AGAIN = ["check_failed", "expired"]


class Batch(models.Model):
    """An uploaded file (B1-B8): validated, then processed into billings or scheduled transactions."""

    class Kind(models.TextChoices):
        REGISTRATION = "registration", "Registration"
        SINGLE_PAYMENT = "single_payment", "Single Payment"

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Waiting to be checked"  # queued for a worker
        VALIDATING = "validating", "Validating"
        INVALID = "invalid", "Invalid"  # some cells are invalid: fix and upload again
        VALIDATED = "validated", "Ready to process"
        PROCESSING = "processing", "Processing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"  # processing stopped with a reason; done chunks stay, the rest can be resumed
        REJECTED = "rejected", "Rejected"  # the file itself is unusable (encoding, columns, size...)
        CHECK_FAILED = "check_failed", "Check failed"  # checking stopped with a reason: upload the file again
        EXPIRED = "expired", "Expired"  # not processed in time: the raw file is gone, upload it again

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="batches")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    file_name = models.CharField(max_length=255)
    content_hash = models.CharField(
        max_length=64, help_text="SHA-256 of the file: the same file twice is refused (B7)."
    )
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    uploaded_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.UPLOADED)
    message = models.TextField(blank=True, help_text="Why the file was rejected or processing stopped.")
    total_rows = models.PositiveIntegerField(default=0)
    invalid_rows = models.PositiveIntegerField(default=0)
    total_amount = models.DecimalField(**MONEY, default=Decimal("0"))
    rows_done = models.PositiveIntegerField(default=0, help_text="Progress of the running step (B6).")
    chunks_done = models.PositiveIntegerField(
        default=0, help_text="Processing chunks committed; a resume starts after them."
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True, help_text="A worker holds the running step until then.")
    queued_at = models.DateTimeField(null=True, blank=True, help_text="When the running step was last queued.")
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Workers that took the running step; the janitor gives up at BATCH_MAX_ATTEMPTS."
    )

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "content_hash"],
                condition=~models.Q(status__in=CAN_COME_AGAIN),
                name="batch_file_once_per_merchant",
                violation_error_message="This file was uploaded already.",
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "kind", "-uploaded_at"], name="batch_merchant_kind_idx"),
            models.Index(fields=["merchant", "file_name"], name="batch_merchant_file_idx"),
        ]

    def __str__(self) -> str:
        return self.file_name


class JSONText(models.TextField):
    """A JSON object the database keeps as text: written and read whole, never queried inside, so
    PostgreSQL does not parse it on the way in (jsonb's parse was most of a COPY's time)."""

    def from_db_value(self, value, expression, connection):
        return None if value is None else json.loads(value)

    def to_python(self, value):
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def get_prep_value(self, value):
        return None if value is None else json.dumps(value, ensure_ascii=False)

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj))


class RowCells(JSONText):
    """A file row's cells, ``{column: text}``, stored as the JSON array ``[kind, cell, cell, ...]`` in the
    kind's column order (``batch.columns.pack``): the column names were most of the bytes of a stored
    row, and of the COPY that writes a million of them. Read back as the dict; a row stored as a
    JSON object (before this field) reads as it is."""

    def from_db_value(self, value, expression, connection):
        return unpack(super().from_db_value(value, expression, connection))

    def to_python(self, value):
        return unpack(super().to_python(value))

    def get_prep_value(self, value):
        if isinstance(value, dict):
            value = pack(value)
        return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class BatchRow(models.Model):
    """One row of a batch as the back office keeps it: card numbers masked, errors per cell."""

    class Status(models.TextChoices):
        VALID = "valid", "Valid"
        INVALID = "invalid", "Invalid"
        CREATED = "created", "Created"
        FAILED = "failed", "Failed"

    # No database-level foreign keys here: a million rows come in by COPY (batch/rows.py), and PostgreSQL
    # checks a foreign key row by row (a deferred trigger event and a parent lookup each), which cost
    # more than the COPY itself. The rows are written only by batch.pipeline.validate for the
    # batch it holds; PROTECT and CASCADE are Django's (its collector). The primary key is the row's
    # place, (batch, row_number): one index where a surrogate id took a second one and a sequence
    # (a fifth of the COPY's time). The other index: the rows a user must look at (invalid, failed).
    pk = models.CompositePrimaryKey("batch", "row_number")
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="rows", db_constraint=False, db_index=False)
    row_number = models.PositiveIntegerField(help_text="The line in the file (the header is line 1).")
    data = RowCells(help_text="The row's cells ([kind, cell, ...] in the kind's column order), card number masked.")
    errors = JSONText(default=dict, blank=True, help_text="Column -> reason, for each invalid cell.")
    status = models.CharField(max_length=8, choices=Status.choices)
    amount = models.DecimalField(**MONEY, null=True, blank=True)
    reference = models.CharField(max_length=64, blank=True, help_text="Billing number or invoice number.")
    outcome = models.CharField(max_length=255, blank=True, help_text="What processing made of the row.")

    class Meta:
        ordering = ["batch", "row_number"]
        indexes = [
            models.Index(
                fields=["batch", "status", "row_number"],
                condition=models.Q(status__in=["invalid", "failed"]),
                name="batch_row_problem_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.batch_id}:{self.row_number}"

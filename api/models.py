"""The Merchant REST API's own rows: its keys and the answers it keeps for Idempotency-Key headers."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Merchant


class Scope(models.TextChoices):
    """What a key may do; each endpoint needs one."""

    BILLINGS = "billings", "Billings: register, read, change and delete"
    TRANSACTIONS = "transactions", "Transactions: read, single payments, cancel a scheduled execution"
    BATCHES = "batches", "Batches: upload, read, process"
    REFUNDS = "refunds", "Refunds: void and refund transactions"


class ApiKey(models.Model):
    """A merchant's key for the API. The key is shown once; only its prefix (to find it) and the SHA-256
    of the whole key are stored. A key has 256 random bits, so a fast hash is enough (no guessing)."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16, unique=True)
    hashed_key = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "name"],
                condition=models.Q(revoked_at__isnull=True),
                name="api_key_name_unique_per_merchant",
                violation_error_message="A key with this name exists already.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def scope_labels(self) -> list[str]:
        return [scope for scope in Scope.values if scope in self.scopes]


class IdempotencyRecord(models.Model):
    """The first answer to a write with an ``Idempotency-Key`` header, kept ``API_IDEMPOTENCY_SECONDS``.

    The row is inserted (unique per merchant and key) before the write runs, so a second request with the
    same key, even at the same moment, finds it: it waits for the first to finish and gets its answer."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path and body.")
    state = models.CharField(max_length=8, choices=State.choices, default=State.RUNNING)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    body = models.TextField(blank=True)  # the JSON answered
    content_type = models.CharField(max_length=64, blank=True)
    location = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["merchant", "key"], name="idempotency_key_once_per_merchant")]
        indexes = [models.Index(fields=["expires_at"], name="idempotency_expires_idx")]

    def __str__(self) -> str:
        return f"{self.merchant_id}:{self.key}"

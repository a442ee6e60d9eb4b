from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from .models import IdempotencyRecord


@shared_task(name="api.purge_idempotency")
def purge_idempotency() -> int:
    """Delete the answers kept for Idempotency-Key headers once their 24 hours are over."""
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted

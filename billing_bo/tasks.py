"""Operational tasks of the platform itself."""

from __future__ import annotations

from celery import shared_task
from django.db import connection


@shared_task(name="billing_bo.ping")
def ping() -> dict:
    """A round trip through the broker that also touches the worker's database connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (one,) = cursor.fetchone()
    return {"pong": True, "database": one == 1, "vendor": connection.vendor}

from __future__ import annotations

from celery import shared_task

from . import scheduler


@shared_task(name="recurring.tick")
def tick() -> list[str]:
    """Celery beat, every few minutes: run each merchant's days that have come (R7, R8)."""
    return [f"{run.merchant_id}:{run.day}:{'done' if run.finished_at else 'busy'}" for run in scheduler.tick()]

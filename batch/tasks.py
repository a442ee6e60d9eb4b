from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="batch.validate", acks_late=True, reject_on_worker_lost=True)
def validate_batch(batch_id: int) -> str:
    from . import pipeline  # pandas and Arrow: loaded where a task runs, not where one is sent

    return pipeline.validate(batch_id)


@shared_task(name="batch.process", acks_late=True, reject_on_worker_lost=True)
def process_batch(batch_id: int) -> str:
    from . import pipeline

    return pipeline.process(batch_id)


@shared_task(name="batch.janitor")
def janitor() -> int:
    services.expire_unprocessed()
    services.sweep_raw_files()
    return services.janitor()

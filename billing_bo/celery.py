"""The Celery app: settings come from Django's (CELERY_* keys), tasks from each app's tasks.py."""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_bo.settings")
# Arrow (batch validation, in the workers) allocates from the C library's malloc rather than its bundled
# mimalloc: the first batch a process validates paid ~0.1 s of system time in mimalloc's fresh pages
# (100k rows; the page faults of new segments), the system pool ~0.02 s, at the same user time (B2).
# Read by Arrow when it first allocates, so set here, before any import of it.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

app = Celery("billing_bo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.imports = ("billing_bo.tasks",)
# A task message carries a repr of its arguments for logs and monitoring (argsrepr), built char by char up to
# this size: a charge_many chunk of 200 ids filled 1,024 characters, a third of the cost of sending it.
app.amqp.argsrepr_maxsize = 160


@worker_process_init.connect
def warm_batch_validation(**_kwargs) -> None:
    """A worker process validates a few rows once when it starts (``batch.validation.warm_up``): its first
    batch then does not pay the first use of pandas', Arrow's and numpy's code paths (~10% of validating
    100k rows, B2). Imported here, in a worker process only: a web process stays without pandas."""
    try:
        from batch.validation import warm_up

        warm_up()
    except Exception:  # a warm-up must not stop a worker process; the first batch then pays the first use
        logging.getLogger(__name__).exception("batch validation warm-up failed")

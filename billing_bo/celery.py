"""The Celery app: settings come from Django's (CELERY_* keys), tasks from each app's tasks.py."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_bo.settings")

app = Celery("billing_bo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.imports = ("billing_bo.tasks",)

from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .celery import app as celery_app

logger = logging.getLogger(__name__)


def _check_database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone()[0] == 1
    except Exception:
        logger.exception("health: database check failed")
        return False


def _check_broker() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
            channel = conn.default_channel  # opening a channel talks to the broker
        return channel is not None
    except Exception:
        logger.exception("health: broker check failed")
        return False


@login_not_required
@never_cache
@require_GET
def health(request):
    """O3: 200 when the database and the broker answer, 503 otherwise (for load balancers and compose).
    Which one fails is told to signed-in platform operators only (and logged); others get the status."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    ok = all(checks.values())
    body = {"status": "ok" if ok else "unavailable"}
    user = request.user
    if user.is_authenticated and user.is_staff and user.merchant_id is None and user.is_verified():
        body.update({k: "ok" if v else "failing" for k, v in checks.items()})
    return JsonResponse(body, status=200 if ok else 503)

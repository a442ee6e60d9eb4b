"""``Idempotency-Key`` on every POST, PATCH and DELETE: the same key with the same body answers the first
response again and does nothing twice; the same key with another body is a 422. Keys live
``API_IDEMPOTENCY_SECONDS`` (24 h).

The record is inserted before the write runs, in its own committed statement, so a second request with the
key, even at the same moment, meets the unique constraint: it waits for the first one's answer (up to
``API_IDEMPOTENCY_WAIT_SECONDS``, then 409). A write that ends in a server error leaves no record (the
client may try again with the same key)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.db import IntegrityError
from django.db import transaction as db
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from .models import IdempotencyRecord
from .problems import Conflict, Unprocessable

HEADER = "Idempotency-Key"
MAX_LENGTH = 255
POLL_SECONDS = 0.05


def fingerprint(request) -> str:
    """What makes two requests "the same": method, path and body (JSON as parsed, files by their bytes)."""
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    files = getattr(request, "FILES", {}) or {}
    data = request.data
    if hasattr(data, "items"):  # a JSON object or a form: its fields, files apart
        data = {key: value for key, value in data.items() if key not in files}
    digest.update(json.dumps(data, sort_keys=True, cls=JSONEncoder, default=str).encode())
    for name in sorted(files):
        upload = files[name]
        digest.update(f"\nfile {name} {upload.name}\n".encode())
        for chunk in upload.chunks():
            digest.update(chunk)
        upload.seek(0)
    return digest.hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    response = Response(json.loads(record.body) if record.body else None, status=record.status_code)
    response.content_type = record.content_type or None
    if record.location:
        response["Location"] = record.location
    response["Idempotent-Replayed"] = "true"
    return response


def _claim(merchant_id: int, key: str, print_: str) -> tuple[bool, IdempotencyRecord | None]:
    """(True, None) when this request inserted the key's record and may run; else (False, the record
    another request holds or left), or (False, None) when that record vanished meanwhile."""
    now = timezone.now()
    mine = IdempotencyRecord.objects.filter(merchant_id=merchant_id, key=key)
    mine.filter(expires_at__lte=now).delete()
    try:
        with db.atomic():
            IdempotencyRecord.objects.create(
                merchant_id=merchant_id,
                key=key,
                fingerprint=print_,
                expires_at=now + timedelta(seconds=settings.API_IDEMPOTENCY_SECONDS),
            )
        return True, None
    except IntegrityError:
        return False, mine.first()


def _wait_for(record: IdempotencyRecord) -> IdempotencyRecord | None:
    """The record once its request finished (or vanished), or as it is after the wait."""
    deadline = time.monotonic() + settings.API_IDEMPOTENCY_WAIT_SECONDS
    while record is not None and record.state == IdempotencyRecord.State.RUNNING and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        record = IdempotencyRecord.objects.filter(merchant_id=record.merchant_id, pk=record.pk).first()
    return record


def idempotent(handler: Callable) -> Callable:
    """Wrap a view's write method (``post``, ``patch``, ``delete``) of an ``ApiView``."""

    @wraps(handler)
    def wrapped(view, request, *args, **kwargs):
        key = request.headers.get(HEADER, "").strip()
        if not key:
            return handler(view, request, *args, **kwargs)
        if len(key) > MAX_LENGTH or not key.isprintable():
            raise Unprocessable(f"The {HEADER} header must be 1 to {MAX_LENGTH} printable characters.")
        merchant_id, print_ = request.user.merchant_id, fingerprint(request)
        for _ in range(3):  # a record that vanished meanwhile (its request failed): claim the key again
            ours, existing = _claim(merchant_id, key, print_)
            if ours:
                return _run(view, handler, request, merchant_id, key, args, kwargs)
            if existing is not None and existing.fingerprint != print_:
                raise Unprocessable(f"This {HEADER} was used with another request: use a new key for this one.")
            existing = _wait_for(existing)
            if existing is None:
                continue
            if existing.state == IdempotencyRecord.State.RUNNING:
                break
            return _replay(existing)
        raise Conflict(f"A request with this {HEADER} is still running: try again in a moment.")

    return wrapped


def _run(view, handler, request, merchant_id: int, key: str, args, kwargs) -> Response:
    mine = IdempotencyRecord.objects.filter(merchant_id=merchant_id, key=key, state=IdempotencyRecord.State.RUNNING)
    try:
        try:
            response = handler(view, request, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - an API error is an answer to keep; others are re-raised
            response = view.handle_exception(exc)
    except Exception:
        mine.delete()
        raise
    if response.status_code >= 500 or response.status_code == 429:
        mine.delete()
        return response
    mine.update(
        state=IdempotencyRecord.State.DONE,
        status_code=response.status_code,
        body=json.dumps(response.data, cls=JSONEncoder) if response.data is not None else "",
        content_type=response.content_type or "",
        location=response.get("Location", ""),
    )
    return response

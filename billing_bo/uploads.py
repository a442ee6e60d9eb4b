"""Request bodies cannot fill the disk (issue #16.10): Django spools an upload to a temporary file before a
view sees it, so the limits are applied while the body streams in.

``RequestBodyLimitMiddleware`` answers 413 to a request announcing more than ``REQUEST_MAX_BYTES`` before
anything reads its body (Django never reads past Content-Length, and ignores a body without one).
``UploadSizeLimitHandler``, first of ``FILE_UPLOAD_HANDLERS``, stops spooling a file once it passes
``BATCH_MAX_BYTES`` (the rest of it is read and dropped) and marks the request, so the page can say why.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.shortcuts import render


def megabytes(size: int) -> str:
    mb = size / 1_048_576
    return f"{mb:.0f} MB" if mb >= 1 else f"{mb:.1f} MB"


def file_too_large_message() -> str:
    limit = megabytes(settings.BATCH_MAX_BYTES)
    return f"The file is larger than {limit}; at most {limit} are accepted. Split it into smaller files."


class RequestBodyLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            announced = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            announced = 0  # Django reads nothing of a body whose length it cannot parse
        if announced > settings.REQUEST_MAX_BYTES:
            return render(request, "413.html", {"limit": megabytes(settings.REQUEST_MAX_BYTES)}, status=413)
        return self.get_response(request)


class UploadSizeLimitHandler(FileUploadHandler):
    """Passes each file's chunks on until it passes BATCH_MAX_BYTES, then drops the file
    (``request.upload_over_limit`` is then True)."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.BATCH_MAX_BYTES:
            self.request.upload_over_limit = True
            raise SkipFile
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handlers keep the file

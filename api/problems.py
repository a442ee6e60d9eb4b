"""Errors as ``application/problem+json`` (RFC 9457): ``type``, ``title``, ``status``, ``detail``, and for
a validation error ``errors``, a map of each field (dotted for nested ones: ``card.number``) to its
messages. Every error of the API goes through ``exception_handler`` (REST_FRAMEWORK settings)."""

from __future__ import annotations

from http import HTTPStatus

from django.http import JsonResponse
from django.views import defaults
from rest_framework import exceptions, serializers, status
from rest_framework.views import exception_handler as drf_exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"


class Conflict(exceptions.APIException):
    """A rule of the back office refuses the change in the object's current state."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "This change is not possible in the object's current state."
    default_code = "conflict"


class Unprocessable(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request cannot be processed."
    default_code = "unprocessable"


def field_map(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"card.number": ["..."]}``."""
    found: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for name, value in detail.items():
            found.update(field_map(value, f"{prefix}{name}."))
    elif isinstance(detail, list) and detail and all(not isinstance(item, (dict, list)) for item in detail):
        found[prefix.rstrip(".") or "non_field_errors"] = [str(item) for item in detail]
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            found.update(field_map(item, f"{prefix}{index}."))
    else:
        found[prefix.rstrip(".") or "non_field_errors"] = [str(detail)]
    return found


def problem(status_code: int, detail: str, *, errors: dict | None = None, request_id: str = "") -> dict:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    if request_id:
        body["request_id"] = request_id
    return body


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500, logged with its traceback
    request = context.get("request")
    request_id = getattr(request, "request_id", "") if request is not None else ""
    if isinstance(exc, exceptions.ValidationError):
        errors = field_map(exc.detail)
        general = errors.get("non_field_errors")
        detail = " ".join(general) if general else "The request has invalid fields: see errors."
        response.data = problem(response.status_code, detail, errors=errors, request_id=request_id)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        response.data = problem(response.status_code, str(detail), request_id=request_id)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


class ProblemSerializer(serializers.Serializer):
    """The schema of every error answer."""

    type = serializers.CharField(help_text="A URI naming the kind of problem; about:blank for plain HTTP errors.")
    title = serializers.CharField(help_text="The HTTP status' phrase.")
    status = serializers.IntegerField()
    detail = serializers.CharField(help_text="What went wrong, for a person.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors: each field (dotted for nested ones) and its messages.",
    )
    request_id = serializers.CharField(required=False, help_text="The request's id (X-Request-Id).")


def not_found(request, exception=None):
    """The site's 404 (``handler404``): problem+json under /api/, the HTML page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(problem(404, "Not found."), status=404, content_type=PROBLEM_CONTENT_TYPE)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """The site's 500 (``handler500``): problem+json under /api/, the HTML page elsewhere."""
    if request.path.startswith("/api/"):
        body = problem(500, "The server failed to answer; the error is logged. Try again later.")
        return JsonResponse(body, status=500, content_type=PROBLEM_CONTENT_TYPE)
    return defaults.server_error(request)

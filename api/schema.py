"""The OpenAPI document's shared parts: the ``Api-Key`` security scheme, and (``complete_errors``, a
drf-spectacular post-processing hook) every operation's error answers as problem+json, the
``Idempotency-Key`` header of every write, and ``X-Request-Id``."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from .problems import PROBLEM_CONTENT_TYPE


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`: a key of the merchant, made in Setting Account or by "
            "`manage.py create_api_key`.",
        }


WRITES = ("post", "put", "patch", "delete")
ERRORS = {
    "400": "The request has invalid fields or parameters (see `errors`).",
    "401": "No API key, or a key that is not valid or was revoked.",
    "403": "The key lacks the scope this endpoint needs.",
    "404": "Not found (another merchant's object is never revealed to exist).",
    "405": "Method not allowed.",
    "406": "Only JSON is answered.",
    "409": "A rule refuses the change in the object's current state, or the card was refused.",
    "413": "The request is larger than REQUEST_MAX_BYTES.",
    "415": "The body's media type is not accepted.",
    "422": "The Idempotency-Key was used with another request, or is malformed.",
    "429": "Too many requests for this key: wait Retry-After seconds.",
}
GET_ERRORS = ("400", "401", "403", "404", "405", "406", "429")
WRITE_ERRORS = tuple(ERRORS)

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string", "description": "about:blank for plain HTTP errors."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "description": "Validation errors: each field (dotted for nested ones) and its messages.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "request_id": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail"],
}
IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "The same key with the same body answers the first response again (and does nothing "
    "twice); with another body: 422. Keys live 24 hours.",
}
REQUEST_ID_HEADER = {"schema": {"type": "string"}, "description": "The request's id (as sent, or made)."}


def complete_errors(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    problem = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in WRITES + ("get",):
                continue
            if path.endswith("/schema/") or path.endswith("/docs/"):
                continue
            codes = WRITE_ERRORS if method in WRITES else GET_ERRORS
            responses = operation.setdefault("responses", {})
            for code in codes:
                answer = {"description": ERRORS[code], "content": problem}
                if code == "429":
                    answer["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}}
                responses.setdefault(code, answer)
            for answer in responses.values():
                answer.setdefault("headers", {})["X-Request-Id"] = REQUEST_ID_HEADER
            if method in WRITES:
                operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
    return result

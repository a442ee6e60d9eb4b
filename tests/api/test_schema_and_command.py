"""The OpenAPI document (valid, complete: every operation with its errors as problem+json), the docs page
(no inline script or style: the site's CSP), and the operator's create_api_key command."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from openapi_spec_validator import validate

from accounts.models import AuditEntry
from api.models import ApiKey
from tests.api.conftest import ApiClient


@pytest.fixture
def schema(db) -> dict:
    response = Client().get("/api/v1/schema/?format=json")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    return response.json()


def test_the_schema_is_valid_openapi_3_and_names_every_endpoint(schema):
    validate(schema)
    assert set(schema["paths"]) == {
        "/api/v1/billings/",
        "/api/v1/billings/{billing_number}/",
        "/api/v1/billings/{billing_number}/preview/",
        "/api/v1/transactions/",
        "/api/v1/transactions/{invoice_number}/",
        "/api/v1/transactions/{invoice_number}/void/",
        "/api/v1/transactions/{invoice_number}/refund/",
        "/api/v1/transactions/{invoice_number}/cancel/",
        "/api/v1/batches/",
        "/api/v1/batches/{id}/",
        "/api/v1/batches/{id}/process/",
    }
    assert schema["components"]["securitySchemes"]["ApiKey"]["name"] == "Authorization"


def test_every_operation_documents_its_errors_and_writes_their_idempotency_key(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for code in ("400", "401", "403", "404", "429"):
                assert "application/problem+json" in responses[code]["content"], (path, method, code)
            assert "Retry-After" in responses["429"]["headers"]
            if method in ("post", "patch", "delete"):
                assert {"409", "422"} <= set(responses), (path, method)
                assert "Idempotency-Key" in [p["name"] for p in operation["parameters"] if p["in"] == "header"]


def test_the_docs_page_has_no_inline_script_or_style_and_loads_vendored_assets(db):
    page = Client().get("/api/v1/docs/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "<style" not in html and "<script>" not in html and "cdn" not in html.lower()
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    script = Client().get("/api/v1/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


def test_create_api_key_prints_the_key_alone_on_its_last_line(merchant):
    out = StringIO()
    call_command(
        "create_api_key", "--merchant", "alpha", "--name", "school system", "--scopes", "billings,refunds", stdout=out
    )
    raw = out.getvalue().strip().splitlines()[-1]
    assert raw.startswith("bbo_") and " " not in raw
    key = ApiKey.objects.get(name="school system")
    assert key.scopes == ["billings", "refunds"]
    assert ApiClient(raw).get("/api/v1/billings/").status_code == 200
    assert AuditEntry.objects.get(action="api.key.created").actor_username == "operator (create_api_key)"


def test_create_api_key_refuses_an_unknown_merchant_or_scope(merchant):
    with pytest.raises(CommandError, match="No merchant"):
        call_command("create_api_key", "--merchant", "nope", "--name", "x", stdout=StringIO())
    with pytest.raises(CommandError, match="Unknown scope"):
        call_command("create_api_key", "--merchant", "alpha", "--name", "x", "--scopes", "all", stdout=StringIO())

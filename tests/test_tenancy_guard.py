from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import override_settings
from django.urls import path

from accounts.models import AuditEntry
from tests import tenancy_guard
from tests.conftest import verified_client


def leaky_view(request):
    return HttpResponse(str(AuditEntry.objects.count()))


urlpatterns = [path("leaky/", leaky_view)]


def test_the_guard_knows_the_merchant_owned_tables():
    assert "accounts_auditentry" in tenancy_guard.guarded_tables()
    assert "accounts_user" not in tenancy_guard.guarded_tables()


@override_settings(ROOT_URLCONF=__name__)
def test_an_unscoped_query_inside_a_request_fails_the_test(alice):
    with pytest.raises(tenancy_guard.UnscopedQuery):
        verified_client(alice).get("/leaky/")


def test_queries_outside_requests_are_not_guarded(alice):
    assert AuditEntry.objects.count() >= 0

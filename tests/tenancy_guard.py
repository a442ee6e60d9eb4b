"""TESTING 11: while a request is handled, any SELECT on a merchant-owned table must filter by merchant.

Merchant-owned tables are those of models with a ``merchant`` foreign key. The user table is exempt:
signing in and loading the session's user must find a user before its merchant is known; so is the API
key table: an API request finds its key (by prefix, checked by hash) before its merchant is known. The Django
admin is the platform operators' cross-merchant view and is exempt too.
"""

from __future__ import annotations

import threading

from django.apps import apps
from django.core.signals import request_finished, request_started

EXEMPT_TABLES = {"accounts_user", "api_apikey"}
EXEMPT_PATHS = ("/admin/",)

_state = threading.local()


class UnscopedQuery(AssertionError):
    pass


def guarded_tables() -> set[str]:
    tables = set()
    for model in apps.get_models():
        field_names = {field.name for field in model._meta.get_fields()}
        if "merchant" in field_names and model._meta.db_table not in EXEMPT_TABLES:
            tables.add(model._meta.db_table)
    return tables


def _started(sender, environ=None, **kwargs):
    path = (environ or {}).get("PATH_INFO", "")
    _state.active = not path.startswith(EXEMPT_PATHS)


def _finished(sender, **kwargs):
    _state.active = False


def connect_signals() -> None:
    request_started.connect(_started, dispatch_uid="tenancy_guard_started")
    request_finished.connect(_finished, dispatch_uid="tenancy_guard_finished")


def make_wrapper(tables: set[str]):
    def guard(execute, sql, params, many, context):
        if getattr(_state, "active", False) and sql.lstrip()[:6].upper() == "SELECT":
            for table in tables:
                if f'"{table}"' in sql and '"merchant_id"' not in sql:
                    raise UnscopedQuery(f"Query on {table} without a merchant filter: {sql[:300]}")
        return execute(sql, params, many, context)

    return guard

"""The stack on real services: PostgreSQL, Redis as broker and cache, a real Celery worker.

Run through the harness (see conftest.py); the lane fails, never skips, without it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from io import StringIO

import psycopg2
import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY

from accounts import services
from accounts.models import AuditEntry
from billing_bo.celery import app as celery_app
from billing_bo.tasks import ping
from tests.conftest import PASSWORD, Persona, make_persona, verified_client
from tests.integration.conftest import PROJECT_ROOT, database_url


def manage(*args: str, database: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url(database)}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# Celery worker -------------------------------------------------------------------------------------


def test_ping_task_round_trips_through_redis_to_the_real_worker_on_postgresql(celery_worker_process):
    assert not celery_app.conf.task_always_eager
    assert celery_app.conf.broker_url.startswith("redis://")

    result = ping.delay().get(timeout=30)

    assert result == {"pong": True, "database": True, "vendor": "postgresql"}


@contextmanager
def refusing_connections(database: str) -> Iterator[None]:
    """New sessions to ``database`` are refused (open ones, like this test's, carry on)."""
    with closing(psycopg2.connect(os.environ["DATABASE_URL"])) as admin:
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            try:
                yield
            finally:
                cursor.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')


def test_worker_uses_the_test_database_pytest_django_created(celery_worker_process, settings):
    # ping only runs SELECT 1, so it cannot read a row the test wrote; instead, make the test database
    # refuse new sessions: the worker's ping then fails naming that database, and works again after.
    test_database = settings.DATABASES["default"]["NAME"]
    assert test_database.startswith("test_")

    with refusing_connections(test_database):
        with pytest.raises(Exception, match=f'database "{test_database}" is not currently accepting connections'):
            ping.delay().get(timeout=30)

    assert ping.delay().get(timeout=30) == {"pong": True, "database": True, "vendor": "postgresql"}


# Migrations on PostgreSQL ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_test_database_has_no_unapplied_migrations_and_models_have_no_missing_migration():
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []

    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit:
        pytest.fail(f"makemigrations --check found model changes without a migration:\n{out.getvalue()}")


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """An empty database on the harness's server, dropped afterwards."""
    name = f"billing_fresh_{os.getpid()}"
    with closing(psycopg2.connect(os.environ["DATABASE_URL"])) as admin:
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        try:
            yield name
        finally:
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrate_builds_a_fresh_postgresql_database_and_shows_every_migration_applied(fresh_database):
    migrate = manage("migrate", "--noinput", database=fresh_database)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    shown = manage("showmigrations", "--list", database=fresh_database)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    entries = [line.strip() for line in shown.stdout.splitlines() if line.strip().startswith("[")]
    unapplied = [line for line in entries if not line.startswith("[X]")]
    assert not unapplied, shown.stdout
    assert len(entries) == len(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)


# /health ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_health_is_200_when_postgresql_and_redis_answer(client):
    response = client.get(reverse("health"))

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}  # which check failed is for operators only


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port that refuses connections: bound (so nobody else takes it) but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.django_db
def test_health_is_503_with_broker_failing_when_the_broker_does_not_answer(client, monkeypatch, closed_port):
    # The Celery app read CELERY_BROKER_URL when it was configured, so overriding the Django setting does
    # nothing; /health opens a new connection from app.conf on every call (no pool), so patch the conf.
    monkeypatch.setitem(celery_app.conf, "broker_url", f"redis://127.0.0.1:{closed_port}/0")

    response = client.get(reverse("health"))

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}  # which check failed is for operators only
    operator = make_persona(None, "operator")
    operator.user.is_staff = True
    operator.user.save()
    detailed = verified_client(operator).get(reverse("health"))
    assert detailed.status_code == 503
    assert detailed.json() == {"status": "unavailable", "database": "ok", "broker": "failing"}


# Sign-in on PostgreSQL --------------------------------------------------------------------------------


def post_sign_in(client: Client, username: str, code: str):
    return client.post(reverse("accounts:sign_in"), {"username": username, "password": PASSWORD, "code": code})


# Passwords are hashed with MD5 here (tests/conftest.py fast_password_hashing): a PBKDF2 check costs
# ~0.4 s and sign-ins of one user are serialised by its row lock, so the race below would take ~8 s more.


@pytest.mark.django_db
def test_sign_in_with_password_and_code_works_once_per_code(alice: Persona):
    code = services.current_code(alice.device)

    first = Client()
    response = post_sign_in(first, "alice", code)
    assert response.status_code == 302
    assert first.session["_auth_user_id"] == str(alice.user.pk)
    assert first.session[DEVICE_ID_SESSION_KEY] == alice.device.persistent_id  # verified by the code

    second = Client()  # another browser, same code, same 30 s step
    response = post_sign_in(second, "alice", code)
    assert response.status_code == 200
    assert services.SIGN_IN_ERROR in response.content.decode()
    assert "_auth_user_id" not in second.session
    refusal = AuditEntry.objects.filter(action="accounts.signin.failed", actor=alice.user).get()
    assert refusal.data == {"cause": "wrong code"}


@pytest.mark.django_db
def test_sessions_live_in_redis_and_the_database_and_a_signed_out_cookie_opens_nothing(alice: Persona):
    from django.conf import settings
    from django.contrib.sessions.models import Session
    from django.core.cache import cache

    assert settings.SESSION_ENGINE.endswith("cached_db")
    browser = Client()
    assert post_sign_in(browser, "alice", services.current_code(alice.device)).status_code == 302
    key = browser.cookies[settings.SESSION_COOKIE_NAME].value
    assert cache.get(f"django.contrib.sessions.cached_db{key}")["_auth_user_id"] == str(alice.user.pk)
    assert Session.objects.filter(session_key=key).exists()
    assert browser.get(reverse("reports:all")).status_code == 200

    copied = Client()  # the same cookie in another browser
    copied.cookies[settings.SESSION_COOKIE_NAME] = key
    browser.post(reverse("accounts:sign_out"))

    assert cache.get(f"django.contrib.sessions.cached_db{key}") is None
    assert not Session.objects.filter(session_key=key).exists()
    assert copied.get(reverse("reports:all")).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_twenty_parallel_sign_ins_with_one_code_give_exactly_one_success(alice: Persona, settings):
    # TESTING.md Auth 1 (PG). Committed rows (transaction=True) and one connection per thread, so the
    # requests really meet on the user and device row locks.
    # Lockout: 5 failures would lock the account, and the later refusals would then be "locked" rather
    # than the code check; a high limit keeps every refusal about the code being used already.
    settings.SIGN_IN_MAX_FAILURES = 100
    # Throttling: after one refusal django-otp refuses further attempts for a delay, before looking at
    # the code (last_t); off here so each refusal is the one-use check. It does not change the count.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    # Rate limits (accounts.ratelimit): 20 attempts from one address and name at once are over them.
    settings.SIGN_IN_IP_SLOW_AFTER = settings.SIGN_IN_IP_REFUSE_AFTER = 1000
    settings.SIGN_IN_USERNAME_SLOW_AFTER = settings.SIGN_IN_USERNAME_REFUSE_AFTER = 1000
    parallel = 20
    code = services.current_code(alice.device)
    start = threading.Barrier(parallel)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            client = Client()
            start.wait(timeout=30)
            statuses.append(post_sign_in(client, "alice", code).status_code)
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    assert sorted(statuses) == [200] * (parallel - 1) + [302]
    assert AuditEntry.objects.filter(action="accounts.signin", actor=alice.user).count() == 1
    refusals = AuditEntry.objects.filter(action="accounts.signin.failed", actor=alice.user)
    assert [entry.data for entry in refusals] == [{"cause": "wrong code"}] * (parallel - 1)
    alice.user.refresh_from_db()
    assert not alice.user.is_sign_in_locked()

"""Shared personas (STYLE 19): a merchant admin, a staff user with some menus, and an outsider of
another merchant who must see nothing. Passwords are real; codes come from each device's real key."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.db import connection
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Merchant, User
from accounts.services import create_device
from tests import tenancy_guard

PASSWORD = "correct-horse-battery-staple"


@dataclass
class Persona:
    user: User
    device: TOTPDevice
    password: str = PASSWORD


def make_persona(merchant: Merchant | None, username: str, *, admin: bool = False, menus=()) -> Persona:
    user = User.objects.create_user(
        username=username,
        password=PASSWORD,
        email=f"{username}@example.com",
        merchant=merchant,
        is_merchant_admin=admin,
        menu_access=list(menus),
    )
    return Persona(user=user, device=create_device(user, confirmed=True))


def verified_client(persona: Persona) -> Client:
    """A client whose session passed password and TOTP (without spending a code)."""
    client = Client()
    client.force_login(persona.user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = persona.device.persistent_id
    session.save()
    return client


def pytest_configure(config):
    tenancy_guard.connect_signals()


@pytest.fixture(autouse=True)
def own_simulated_bank(settings, tmp_path):
    """Each test's own simulated bank: the bank answers a known idempotency key with its first outcome,
    so a file shared between tests (or with `make run`'s var/) would replay another run's answers."""
    settings.SIMULATED_BANK_PATH = str(tmp_path / "bank.sqlite3")


@pytest.fixture(autouse=True)
def unscoped_query_guard():
    """Every test's requests run under the guard of tests/tenancy_guard.py (TESTING 11)."""
    with connection.execute_wrapper(tenancy_guard.make_wrapper(tenancy_guard.guarded_tables())):
        yield


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Hashing cost is not under test; the hasher choice is Django's default in every real run."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def merchant(db) -> Merchant:
    return Merchant.objects.create(name="Alpha Gym", code="alpha")


@pytest.fixture
def other_merchant(db) -> Merchant:
    return Merchant.objects.create(name="Beta Insurance", code="beta")


@pytest.fixture
def alice(merchant) -> Persona:
    """Merchant admin of Alpha."""
    return make_persona(merchant, "alice", admin=True)


@pytest.fixture
def bob(merchant) -> Persona:
    """Staff of Alpha with two menus."""
    return make_persona(merchant, "bob", menus=["all_report", "batch_report"])


@pytest.fixture
def charlie(other_merchant) -> Persona:
    """Admin of Beta: an outsider to everything of Alpha."""
    return make_persona(other_merchant, "charlie", admin=True)


@pytest.fixture(autouse=True)
def empty_cache():
    """Each unit test starts with an empty local-memory cache: sign-in rate limits count per address
    across requests. Redis (integration lane) is left alone: it holds the Celery broker's queues too."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    if isinstance(caches["default"], LocMemCache):
        caches["default"].clear()

"""TESTING 10 and 13, and the Accounts issue's matrix: walk every URL pattern of the project (not a hand
list) as anonymous, staff without the menu, staff with it, and the admin of another merchant."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone

from accounts import audit
from accounts.models import AuditEntry, User
from api.models import ApiKey
from batch.models import Batch
from payments.models import CallbackDelivery, Transaction
from recurring.models import Billing
from recurring.schedule import Schedule
from tests.conftest import make_persona, verified_client

# Patterns outside the matrix, and why.
OUTSIDE = {
    "health": "public by design (O3)",
    "accounts:sign_in": "the sign-in page itself",
    "accounts:enroll": "reached by a signed one-time link, tested in test_enrollment_and_account",
    "recurring:hosted": "the cardholder's page, reached by a signed link, tested in tests/recurring/test_views",
    "recurring:hosted_preview": "the cardholder page's preview, allowed by the same signed link",
    "recurring:card_update": "the cardholder's card update page, reached by a signed link, tested in "
    "tests/recurring/test_card_update_page",
}
# The platform operators' Django admin: is_staff, tested in test_sign_in. The Merchant API: API keys, not
# sessions; its own matrix (every endpoint, each scope, another merchant's key) is in tests/api.
OUTSIDE_PREFIXES = ("admin/", "api/")

# Which model a pattern's <pk> names, by path prefix: a new pattern with a pk must be added here.
PK_MODELS = {
    "users/": User,
    "activity/": AuditEntry,
    "void/": Transaction,
    "account/callbacks/": CallbackDelivery,
    "account/api-keys/": ApiKey,
    "recurring/": Billing,
    "batch/": Batch,
    "reports/batches/": Batch,
}
# Values for the other converters of the walked routes.
CONVERTER_VALUES = {"<str:kind>": "registration", "<str:file_format>": "csv"}


def walk(resolver: URLResolver, prefix: str = "", namespace: str = ""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from walk(entry, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}", prefix + str(entry.pattern)


def project_patterns() -> list[tuple[str, str]]:
    found = []
    for name, route in walk(get_resolver()):
        if name in OUTSIDE or route.startswith(OUTSIDE_PREFIXES):
            continue
        found.append((name, route))
    return found


def url_for(route: str, pk: int | None) -> str:
    path = "/" + route.replace("<int:pk>", str(pk))
    for converter, value in CONVERTER_VALUES.items():
        path = path.replace(converter, value)
    assert "<" not in path, f"unhandled converter in {route}"
    return path


def pk_model(route: str):
    if "<int:pk>" not in route:
        return None
    for prefix, model in PK_MODELS.items():
        if route.startswith(prefix):
            return model
    raise AssertionError(f"Add the model of {route} to PK_MODELS")


PATTERNS = project_patterns()


def test_the_walk_finds_the_known_pages():
    names = {name for name, _ in PATTERNS}
    assert {"reports:dashboard", "accounts:users", "accounts:user_unlock", "accounts:activity"} <= names


@pytest.fixture
def world(alice, charlie, merchant):
    """Rows of Alpha (alice's merchant) for each pk model, and a staff user of Alpha without any menu."""
    tx = Transaction.objects.create(
        merchant=merchant,
        invoice_number="INV-A-1",
        kind=Transaction.Kind.SINGLE_PAYMENT,
        amount=100_000,
        execute_date=merchant.local_today(),
        status=Transaction.Status.SUCCESS,
        processed_at=timezone.now(),
        card_masked="411111******1111",
    )
    delivery = CallbackDelivery.objects.create(
        merchant=merchant, event="payment.succeeded", url="https://a.example/cb", payload={}
    )
    billing = Billing(
        merchant=merchant,
        billing_number="BILL-A-1",
        customer_id="C-1",
        customer_name="A",
        amount=100_000,
        source=Billing.Source.BATCH,
        card_masked="411111******1111",
    )
    billing.schedule = Schedule.by_date([1], [1])
    billing.save()
    upload = Batch.objects.create(merchant=merchant, kind="registration", file_name="a.csv", content_hash="0" * 64)
    api_key = ApiKey.objects.create(merchant=merchant, name="system", prefix="abcd1234", hashed_key="0" * 64)
    rows = {
        ApiKey: api_key,
        Batch: upload,
        Billing: billing,
        User: alice.user,
        AuditEntry: audit.record("accounts.signin", actor=alice.user),
        Transaction: tx,
        CallbackDelivery: delivery,
    }
    nomenu = make_persona(merchant, "nomenu", menus=[])
    withmenu = make_persona(
        merchant,
        "withmenu",
        menus=[
            "user_activity",
            "all_report",
            "batch_report",
            "void_transaction",
            "manage_recurring",
            "registration",
            "batch_transaction",
        ],
    )
    return {"rows": rows, "nomenu": nomenu, "withmenu": withmenu}


def menu_of(path: str) -> str | None:
    return getattr(resolve(path).func, "menu_code", None)


@pytest.mark.parametrize(("name", "route"), PATTERNS, ids=[name for name, _ in PATTERNS])
def test_anonymous_is_sent_to_sign_in(client, world, name, route):
    model = pk_model(route)
    path = url_for(route, world["rows"][model].pk if model else None)
    for method in ("get", "post"):
        response = getattr(client, method)(path)
        assert response.status_code == 302 and response.url.startswith("/sign-in/"), (method, path)


@pytest.mark.parametrize(("name", "route"), PATTERNS, ids=[name for name, _ in PATTERNS])
def test_staff_without_the_menu_get_403_with_it_the_page(world, name, route):
    model = pk_model(route)
    path = url_for(route, world["rows"][model].pk if model else None)
    code = menu_of(path)
    if getattr(resolve(path).func, "admin_only", False):
        for staff in (world["nomenu"], world["withmenu"]):
            assert verified_client(staff).get(path).status_code in (403, 405)
            assert verified_client(staff).post(path).status_code in (403, 405)
        return
    if code is None:
        return  # open to every signed-in user (dashboard, Setting Account, sign-out)
    without = verified_client(world["nomenu"])
    get, post = without.get(path).status_code, without.post(path).status_code
    assert get in (403, 405) and post in (403, 405) and 403 in (get, post)  # 405 only for the wrong method
    holder = world["withmenu"] if world["withmenu"].user.has_menu(code) else None
    if holder is not None:
        assert verified_client(holder).get(path).status_code in (200, 405)


@pytest.mark.parametrize(
    ("name", "route"), [p for p in PATTERNS if "<int:pk>" in p[1]], ids=[n for n, r in PATTERNS if "<int:pk>" in r]
)
def test_another_merchants_admin_gets_404_for_every_method_and_changes_nothing(world, charlie, name, route):
    model = pk_model(route)
    row = world["rows"][model]
    path = url_for(route, row.pk)
    before = {m: list(m.objects.filter(pk=world["rows"][m].pk).values()) for m in PK_MODELS.values()}
    entries = AuditEntry.objects.filter(merchant=row.merchant if hasattr(row, "merchant") else None).count()
    outsider = verified_client(charlie)
    statuses = [outsider.get(path).status_code]
    for data in (
        {},
        {"code": "123456", "reason": "test", "mobile_number": "+628999999999", "menu_access": ["all_report"]},
    ):
        statuses.append(outsider.post(path, data).status_code)
    assert set(statuses) <= {404, 405} and 404 in statuses  # 405 only for the wrong method
    assert {m: list(m.objects.filter(pk=world["rows"][m].pk).values()) for m in PK_MODELS.values()} == before
    assert AuditEntry.objects.filter(merchant=row.merchant).count() == entries

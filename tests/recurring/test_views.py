"""Manage Recurring (R1-R6), Cancel Execute Date (P6) and hosted registration (R9) as users see them."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import signing
from django.test import Client
from django.urls import reverse

from accounts.audit import Actor
from accounts.models import AuditEntry
from accounts.services import current_code
from payments.models import CallbackDelivery, Transaction
from recurring import scheduler, services
from recurring.models import Billing, CancelledExecution, RegistrationLink
from recurring.schedule import Schedule
from tests.conftest import make_persona, verified_client
from tests.recurring.conftest import make_billing

MONDAY = date(2026, 11, 30)
T0 = datetime(2026, 11, 30, 9, tzinfo=ZoneInfo("Asia/Jakarta")).timestamp()


@pytest.fixture
def frozen():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def rita(merchant):
    """Staff with Manage Recurring, Registration and Void Transaction (which holds Cancel Execute Date)."""
    return make_persona(merchant, "rita", menus=["manage_recurring", "registration", "void_transaction"])


def step_up(persona, at: float = T0, reason: str = "customer asked") -> dict:
    persona.device.refresh_from_db()
    return {"code": current_code(persona.device, at=at), "reason": reason}


def test_search_by_customer_id_or_billing_number_shows_own_billings_only(merchant, other_merchant, rita, frozen):
    mine = make_billing(merchant, customer_id="CUST-7")
    make_billing(other_merchant, customer_id="CUST-7")
    client = verified_client(rita)
    for params in ({"customer_id": "CUST-7"}, {"billing_number": mine.billing_number}):
        assert list(client.get(reverse("recurring:billings"), params).context["table"].data) == [mine]


def test_edit_date_saves_the_schedule_recomputes_the_next_date_and_audits_it(merchant, rita, frozen):
    billing = make_billing(merchant)
    response = verified_client(rita).post(
        reverse("recurring:schedule", args=[billing.pk]), {"kind": "date", "days": ["15"], "months": ["1", "6"]}
    )
    assert response.status_code == 302
    billing.refresh_from_db()
    assert billing.schedule == Schedule.by_date([15], [1, 6])
    assert billing.next_execute_date == date(2027, 1, 15)
    entry = AuditEntry.objects.get(action="recurring.billing.schedule_changed")
    assert entry.data["changes"]["schedule"] == {"before": "Every day", "after": billing.schedule.describe()}
    assert entry.data["changes"]["next_execute_date"]["after"] == "2027-01-15"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"kind": "date", "days": ["29"], "months": ["1"]},
            "Execute days must be 1 to 28 (every month has them): 29 is not.",
        ),
        ({"kind": "date", "days": ["1"], "months": []}, "month"),
        ({"kind": "day", "weekdays": [], "months": ["12"]}, "weekday"),
        ({"kind": "full_date", "dates": "2026-11-01"}, "the first day that can still run"),
        ({"kind": "full_date", "dates": "2026-12-40"}, "is not a date"),
        ({"kind": "weekly"}, "Select a valid choice"),
    ],
)
def test_a_bad_schedule_gets_a_clear_message_and_changes_nothing(merchant, rita, frozen, data, message):
    billing = make_billing(merchant)
    response = verified_client(rita).post(reverse("recurring:schedule", args=[billing.pk]), data)
    assert response.status_code == 200
    assert message.lower() in response.content.decode().lower()
    billing.refresh_from_db()
    assert billing.schedule_data == Schedule.by_day(range(7), range(1, 13)).to_dict()
    assert not AuditEntry.objects.filter(action__startswith="recurring.").exists()


def test_inactivate_stops_executions_and_activate_brings_them_back(merchant, rita, frozen):
    billing = make_billing(merchant)
    client = verified_client(rita)
    client.post(reverse("recurring:status", args=[billing.pk]))
    billing.refresh_from_db()
    assert (billing.status, billing.next_execute_date) == ("inactive", None)
    client.post(reverse("recurring:status", args=[billing.pk]))
    billing.refresh_from_db()
    assert (billing.status, billing.next_execute_date) == ("active", MONDAY)
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["recurring.billing.inactivated", "recurring.billing.activated"]


def test_change_type_to_reminder_is_audited(merchant, rita, frozen):
    billing = make_billing(merchant)
    verified_client(rita).post(reverse("recurring:type", args=[billing.pk]), {"billing_type": "reminder"})
    billing.refresh_from_db()
    assert billing.billing_type == "reminder"
    assert AuditEntry.objects.get(action="recurring.billing.type_changed").data["changes"]["billing_type"] == {
        "before": "recurring",
        "after": "reminder",
    }


def test_delete_needs_step_up_keeps_transactions_and_then_nothing_can_be_edited(merchant, rita, frozen):
    billing = make_billing(merchant)
    old = Transaction.objects.create(
        merchant=merchant,
        billing=billing,
        invoice_number="OLD-1",
        kind="recurring",
        amount=1000,
        execute_date=MONDAY - timedelta(days=30),
        status="success",
    )
    client = verified_client(rita)
    assert (
        client.post(reverse("recurring:delete", args=[billing.pk]), {"code": "000000", "reason": "x-y"}).status_code
        == 400
    )
    billing.refresh_from_db()
    assert not billing.is_deleted
    frozen.shift(2)
    assert (
        client.post(reverse("recurring:delete", args=[billing.pk]), step_up(rita, reason="left the gym")).status_code
        == 302
    )
    billing.refresh_from_db()
    assert billing.is_deleted and billing.next_execute_date is None
    assert Transaction.objects.filter(pk=old.pk).exists()
    assert AuditEntry.objects.get(action="recurring.billing.deleted").reason == "left the gym"
    # editing a deleted billing: a clear message, nothing changes
    response = client.post(
        reverse("recurring:schedule", args=[billing.pk]), {"kind": "date", "days": ["1"], "months": ["1"]}, follow=True
    )
    assert "is deleted: it cannot be changed" in response.content.decode()
    billing.refresh_from_db()
    assert billing.schedule_kind == "day"
    assert billing not in client.get(reverse("recurring:billings")).context["table"].data


def test_the_preview_endpoint_answers_the_next_dates_as_json(merchant, rita, frozen):
    client = verified_client(rita)
    ok = client.get(reverse("recurring:preview"), {"kind": "day", "weekdays": "0", "months": "12", "count": "5"})
    assert ok.status_code == 200
    assert ok.json()["dates"] == ["2026-12-07", "2026-12-14", "2026-12-21", "2026-12-28", "2027-12-06"]
    assert ok.json()["description"] == "Every Monday in Dec"
    bad = client.get(reverse("recurring:preview"), {"kind": "date", "days": "31", "months": "1"})
    assert bad.status_code == 400 and "1 to 28" in bad.json()["error"]
    past = client.get(reverse("recurring:preview"), {"kind": "full_date", "dates": "2020-01-01"})
    assert past.status_code == 400
    outsider = make_persona(merchant, "nomenu", menus=["all_report"])
    assert verified_client(outsider).get(reverse("recurring:preview"), {"kind": "day"}).status_code == 403


def test_cancel_execute_date_finds_the_execution_and_deletes_it_with_a_code(merchant, rita, frozen, monkeypatch):
    from payments import tasks

    monkeypatch.setattr(tasks.charge_many, "delay", lambda ids: None)
    billing = make_billing(merchant)
    client = verified_client(rita)
    tomorrow = MONDAY + timedelta(days=1)
    invoice = f"{billing.billing_number}-20261201"
    search = {"execute_date": "2026-12-01", "billing_number": billing.billing_number, "invoice_number": invoice}
    page = client.get(reverse("recurring:cancel"), search)
    assert [due.state for due in page.context["found"]] == ["scheduled"]
    response = client.post(
        reverse("recurring:cancel") + "?" + "&".join(f"{k}={v}" for k, v in search.items()), step_up(rita)
    )
    assert response.status_code == 302
    cancelled = CancelledExecution.objects.get()
    assert (cancelled.execute_date, cancelled.invoice_number, cancelled.cancelled_by) == (tomorrow, invoice, rita.user)
    assert AuditEntry.objects.get(action="recurring.execution.cancelled").data["invoice_number"] == invoice
    # the scheduler skips it, and it shows as cancelled
    scheduler.run_day(merchant, MONDAY)
    scheduler.run_day(merchant, tomorrow)
    assert not Transaction.objects.filter(billing=billing, execute_date=tomorrow).exists()
    assert [due.state for due in client.get(reverse("recurring:cancel"), search).context["found"]] == ["cancelled"]


@pytest.mark.parametrize(
    ("execute_date", "invoice", "message"),
    [
        ("2026-12-01", "WRONG-1", "The invoice number of"),
        ("2026-11-29", "", "has no execution scheduled on 2026-11-29"),
    ],
)
def test_cancelling_what_is_not_scheduled_is_refused(merchant, rita, frozen, execute_date, invoice, message):
    billing = make_billing(merchant, Schedule.by_day(range(7), range(1, 13)))
    response = verified_client(rita).get(
        reverse("recurring:cancel"),
        {"execute_date": execute_date, "billing_number": billing.billing_number, "invoice_number": invoice},
    )
    assert message in response.content.decode()
    with pytest.raises(services.RecurringError, match=message.split(" on")[0]):
        services.cancel_execution(Actor.of(rita.user), billing, date.fromisoformat(execute_date), invoice, "reason")
    assert not CancelledExecution.objects.exists()


def test_an_unknown_billing_number_says_so(merchant, rita, frozen):
    response = verified_client(rita).get(
        reverse("recurring:cancel"), {"execute_date": "2026-12-01", "billing_number": "NOPE"}
    )
    assert "No billing or single payment has the number NOPE on 2026-12-01." in response.content.decode()


# Hosted registration (R9)


def create_link(client, **data) -> str:
    response = client.post(reverse("recurring:registration_link"), {"valid_days": "7", **data})
    return (
        re.search(r'data-testid="registration-url">([^<]+)<', response.content.decode())
        .group(1)
        .replace("http://testserver", "")
    )


CARD = {
    "customer_name": "Sari Dewi",
    "email": "sari@example.com",
    "phone": "+6281311112222",
    "card_number": "4111 1111 1111 1111",
    "expiry": "12/30",
    "cvv": "123",
    "holder_name": "SARI DEWI",
}


def test_a_cardholder_registers_on_the_hosted_page(merchant, alice, frozen, django_capture_on_commit_callbacks):
    merchant.callback_url = "https://alpha.example/hooks"
    merchant.callback_secret = "merchant-signing-secret"  # no callback without one
    merchant.save()
    path = create_link(verified_client(alice), customer_id="CUST-900", amount="350.000")
    public = Client()
    page = public.get(path)
    assert (
        page.status_code == 200
        and "Alpha Gym" in page.content.decode()
        and 'class="sidebar"' not in page.content.decode()
    )
    with django_capture_on_commit_callbacks(execute=False):
        done = public.post(
            path,
            {
                **CARD,
                "schedule-kind": "date",
                "schedule-days": ["5"],
                "schedule-months": [str(m) for m in range(1, 13)],
            },
        )
    assert done.status_code == 200 and "Your card is registered" in done.content.decode()
    billing = Billing.objects.get(source="hosted")
    assert (billing.customer_id, billing.amount, billing.card_masked) == ("CUST-900", 350_000, "411111******1111")
    assert billing.next_execute_date == date(2026, 12, 5)
    assert CallbackDelivery.objects.get().event == "billing.registered"
    assert RegistrationLink.objects.get().billing == billing
    # the link works once
    assert public.get(path).status_code == 400
    # the number and CVV are nowhere in the back office's rows
    assert "4111111111111111" not in str(list(Billing.objects.values())) + str(list(AuditEntry.objects.values()))


def test_a_card_number_typed_into_a_hosted_free_text_field_is_masked_in_the_callback_and_its_log(
    merchant, alice, frozen, django_capture_on_commit_callbacks
):
    merchant.callback_url = "https://alpha.example/hooks"
    merchant.callback_secret = "merchant-signing-secret"
    merchant.save()
    admin = verified_client(alice)
    path = create_link(admin, customer_id="CUST-901", amount="350.000")
    with django_capture_on_commit_callbacks(execute=False):
        Client().post(
            path,
            {
                **CARD,
                "customer_name": "Sari 5555555555554444 Dewi",
                "schedule-kind": "date",
                "schedule-days": ["5"],
                "schedule-months": [str(m) for m in range(1, 13)],
            },
        )
    delivery = CallbackDelivery.objects.get(event="billing.registered")
    assert delivery.payload["data"]["customer_name"] == Billing.objects.get().customer_name
    assert "555555******4444" in delivery.payload["data"]["customer_name"]
    assert delivery.payload["data"]["customer_id"] == "CUST-901"
    page = admin.get(reverse("payments:callback_detail", args=[delivery.pk])).content.decode()
    assert "555555******4444" in page and "5555555555554444" not in page


def test_the_hosted_page_previews_dates_only_for_a_valid_link(merchant, alice, frozen):
    path = create_link(verified_client(alice))
    params = {"kind": "date", "days": "1", "months": "1"}
    assert Client().get(path + "preview/", params).json()["dates"][0] == "2027-01-01"
    assert Client().get(path.replace("/register/", "/register/x") + "preview/", params).status_code == 400


def test_a_tampered_or_expired_link_is_refused(merchant, alice, frozen):
    path = create_link(verified_client(alice))
    token = path.rstrip("/").rsplit("/", 1)[1]
    assert Client().get(path.replace(token, token[:-2] + "xx")).status_code == 400
    assert Client().get(reverse("recurring:hosted", args=[signing.dumps("made-up", salt="other")])).status_code == 400
    frozen.shift(timedelta(days=8))
    assert Client().get(path).status_code == 400


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"card_number": "4111 1111 1111 1112"}, "fails the check digit (Luhn)"),
        ({"expiry": "01/20"}, "The card could not be registered."),
        ({"expiry": "13/30"}, "Enter the expiry as MM/YY."),
        ({"cvv": "12"}, "Enter the 3 or 4 digits"),
        ({"email": "nope"}, "Enter a valid email address."),
    ],
)
def test_a_bad_card_on_the_hosted_page_gets_a_message_and_creates_nothing(merchant, alice, frozen, change, message):
    path = create_link(
        verified_client(alice),
        customer_id="CUST-1",
        amount="100000",
        fix_schedule="on",
        **{"schedule-kind": "date", "schedule-days": ["1"], "schedule-months": ["1"]},
    )
    response = Client().post(path, {**CARD, **change})
    assert response.status_code == 200 and message in response.content.decode()
    assert not Billing.objects.exists()
    assert Client().get(path).status_code == 200  # the link is still usable


def test_registration_lists_hosted_and_batch_registrations(merchant, rita, frozen):
    hosted = make_billing(merchant, source=Billing.Source.HOSTED, customer_id="H-1")
    batch = make_billing(merchant, source=Billing.Source.BATCH, customer_id="B-1")
    client = verified_client(rita)
    assert set(client.get(reverse("recurring:registrations")).context["table"].data) == {hosted, batch}
    assert list(client.get(reverse("recurring:registrations"), {"source": "hosted"}).context["table"].data) == [hosted]
    assert list(client.get(reverse("recurring:registrations"), {"customer_id": "B-1"}).context["table"].data) == [batch]
    assert client.get(reverse("recurring:registration_link")).status_code == 403  # staff: no links


@pytest.mark.parametrize("count", ["0", "-5", "61", "1000000", "ten", "", "\u00b2", "1.5"])
def test_the_preview_endpoint_refuses_a_count_outside_1_to_60(merchant, rita, frozen, count):
    response = verified_client(rita).get(
        reverse("recurring:preview"), {"kind": "day", "weekdays": "0", "months": "12", "count": count}
    )
    assert response.status_code == 400
    assert response.json() == {"error": "count must be a whole number from 1 to 60."}


@pytest.mark.parametrize("count, expected", [("1", 1), ("60", 60)])
def test_the_preview_endpoint_answers_counts_1_and_60(merchant, rita, frozen, count, expected):
    response = verified_client(rita).get(
        reverse("recurring:preview"), {"kind": "day", "weekdays": "0", "months": "12", "count": count}
    )
    assert response.status_code == 200 and len(response.json()["dates"]) == expected


@pytest.mark.parametrize("page", ["recurring:billings", "recurring:registrations"])
def test_a_billing_search_without_a_match_says_nothing_was_found(merchant, rita, frozen, page):
    make_billing(merchant)
    client = verified_client(rita)
    assert "Nothing found" not in client.get(reverse(page)).content.decode()
    missing = client.get(reverse(page), {"billing_number": "NO-SUCH-BILLING"}).content.decode()
    assert "Nothing found: no billing matches this search." in missing


def test_saving_edit_date_returns_to_the_search_the_user_came_from(merchant, rita, frozen):
    billing = make_billing(merchant)
    client = verified_client(rita)
    listed = client.get(reverse("recurring:billings"), {"billing_number": billing.billing_number})
    search = f"/recurring/?billing_number={billing.billing_number}"
    edit_url = f'{reverse("recurring:schedule", args=[billing.pk])}?next=%2Frecurring%2F%3Fbilling_number%3D'
    assert edit_url in listed.content.decode()
    form = client.get(reverse("recurring:schedule", args=[billing.pk]), {"next": search})
    assert f'name="next" value="{search}"' in form.content.decode()
    saved = client.post(
        reverse("recurring:schedule", args=[billing.pk]),
        {"kind": "date", "days": ["15"], "months": ["1"], "next": search},
    )
    assert saved.status_code == 302 and saved.url == search


@pytest.mark.parametrize("next_url", ["https://evil.example/recurring/", "//evil.example/", "javascript:alert(1)"])
def test_edit_date_and_inactivate_never_return_to_another_site(merchant, rita, frozen, next_url):
    billing = make_billing(merchant)
    client = verified_client(rita)
    saved = client.post(
        reverse("recurring:schedule", args=[billing.pk]),
        {"kind": "date", "days": ["15"], "months": ["1"], "next": next_url},
    )
    assert saved.url == f"{reverse('recurring:billings')}?billing_number={billing.billing_number}"
    inactivated = client.post(reverse("recurring:status", args=[billing.pk]), {"next": next_url})
    assert inactivated.url == reverse("recurring:billings")


@pytest.mark.parametrize("page", ["recurring:billings", "recurring:registrations"])
def test_a_billing_number_search_ignores_case(merchant, rita, frozen, page):
    billing = make_billing(merchant, billing_number="GYM-Case-01")
    client = verified_client(rita)
    for typed in ("gym-case-01", "GYM-CASE-01", " GYM-Case-01 "):
        assert list(client.get(reverse(page), {"billing_number": typed}).context["table"].data) == [billing]


def test_cancel_execute_date_finds_the_billing_whatever_the_case(merchant, rita, frozen):
    billing = make_billing(merchant, billing_number="GYM-Case-02")
    day = (MONDAY + timedelta(days=3)).isoformat()
    response = verified_client(rita).get(reverse("recurring:cancel"), {"execute_date": day, "billing_number": "gym-case-02"})
    assert [due.billing for due in response.context["found"]] == [billing]


def test_a_hosted_registrations_phone_is_kept_in_the_international_form(merchant, alice, frozen):
    path = create_link(verified_client(alice), customer_id="CUST-901", amount="350.000")
    form = {**CARD, "phone": "081311112222", "schedule-kind": "date", "schedule-days": ["5"], "schedule-months": ["1"]}
    assert Client().post(path, form).status_code == 200
    billing = Billing.objects.get(customer_id="CUST-901")
    assert (billing.phone, billing.holder_phone) == ("+6281311112222", "+6281311112222")

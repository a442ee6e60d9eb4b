from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from billing_bo.lib.money import format_rupiah
from reports.periods import MONTHLY, WEEKLY, period_for
from tests.conftest import make_persona, verified_client
from tests.payments.conftest import charged
from tests.recurring.conftest import make_billing
from tests.reports.conftest import CARD_A, direct_figures, mixed_history


@pytest.mark.parametrize(
    ("kind", "today", "back", "start", "end"),
    [
        (WEEKLY, date(2026, 11, 25), 0, date(2026, 11, 23), date(2026, 11, 29)),
        (WEEKLY, date(2026, 11, 23), 1, date(2026, 11, 16), date(2026, 11, 22)),
        (WEEKLY, date(2026, 1, 1), 0, date(2025, 12, 29), date(2026, 1, 4)),
        (MONTHLY, date(2026, 11, 25), 0, date(2026, 11, 1), date(2026, 11, 30)),
        (MONTHLY, date(2026, 3, 31), 1, date(2026, 2, 1), date(2026, 2, 28)),
        (MONTHLY, date(2026, 1, 15), 13, date(2024, 12, 1), date(2024, 12, 31)),
        ("nonsense", date(2026, 11, 25), -4, date(2026, 11, 23), date(2026, 11, 29)),
    ],
)
def test_periods_are_monday_weeks_and_calendar_months(kind, today, back, start, end):
    period = period_for(kind, today, back)
    assert (period.start, period.end) == (start, end)
    assert len(period.days) == (end - start).days + 1


def test_dashboard_shows_the_period_of_the_merchants_local_day(alice):
    # 2026-11-29 20:00 UTC is Monday 30 November 03:00 in Jakarta: a new week there.
    with time_machine.travel("2026-11-29 20:00:00+00:00", tick=False):
        response = verified_client(alice).get("/")
    assert response.status_code == 200
    assert response.context["period"].start == date(2026, 11, 30)
    page = response.content.decode()
    assert "Weekly" in page and "Monthly" in page and "No transactions" in page
    assert "Alpha Gym" in page


def test_dashboard_steps_back_and_ignores_a_bad_step(alice):
    client = verified_client(alice)
    with time_machine.travel("2026-11-25 05:00:00+00:00", tick=False):
        assert client.get("/", {"period": "monthly", "back": "2"}).context["period"].start == date(2026, 9, 1)
        assert client.get("/", {"period": "monthly", "back": "x"}).context["period"].start == date(2026, 11, 1)


# Figures (D2-D9) against a direct count of transactions

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Jakarta"))  # Wednesday 25 November
TODAY = NOW.date()


@pytest.fixture
def history(merchant, other_merchant, alice, charlie):
    with time_machine.travel(NOW, tick=False):
        mixed_history(merchant, other_merchant, alice, charlie, TODAY)
        yield


def test_dashboard_figures_equal_a_direct_count_of_transactions(history, alice, merchant):
    """Weekly and monthly, this period and earlier ones, with voids, refunds and retries in them."""
    client = verified_client(alice)
    for kind, back in [(WEEKLY, 0), (WEEKLY, 1), (WEEKLY, 3), (MONTHLY, 0), (MONTHLY, 1)]:
        response = client.get("/", {"period": kind, "back": back})
        period = response.context["period"]
        summary = response.context["summary"]
        expected = direct_figures(merchant, period.start, period.end)
        assert (summary.total_data, summary.success_amount, summary.unique_billings) == (
            expected.total_data,
            expected.success_amount,
            expected.unique_billings,
        ), (kind, back)
        assert (summary.success, summary.failed) == (expected.success, expected.failed), (kind, back)
        assert (summary.single_success, summary.single_failed) == (expected.single_success, expected.single_failed)
        if expected.total_data:
            assert format_rupiah(expected.success_amount) in response.content.decode()
    assert direct_figures(merchant, TODAY.replace(day=1), TODAY).total_data > 0  # the months are not empty


def test_this_weeks_figures_by_hand(history, alice):
    """Hand count of mixed_history's week (23-29 Nov): approvals of 150.000 (today), 150.000 (yesterday) and
    1.250.000 partly refunded (yesterday); 499.000 voided; 200.000 refunded in full; one 05 decline. The
    retried soft decline is back in scheduled and the future charge is not due: neither counts."""
    summary = verified_client(alice).get("/").context["summary"]
    assert summary.total_data == 6
    assert summary.success_amount == 150_000 + 150_000 + 1_250_000
    assert summary.unique_billings == 4  # GYM-1, GYM-3, GYM-4, GYM-5 (the partly refunded one has none)
    page = verified_client(alice).get("/").content.decode()
    assert "Rp 1.550.000" in page


def test_charts_return_the_periods_figures_as_chartjs_json(history, alice):
    client = verified_client(alice)
    daily = client.get("/dashboard/charts/daily/", {"period": "weekly"}).json()
    assert daily["type"] == "bar"
    assert len(daily["data"]["labels"]) == 7
    success, failed, reversed_ = (dataset["data"] for dataset in daily["data"]["datasets"])
    assert [d["label"] for d in daily["data"]["datasets"]] == ["Success", "Failed", "Reversed"]
    # Monday 23 .. Sunday 29: yesterday (Tue) 150.000 + the partly refunded one, and the 05 decline;
    # today (Wed) 150.000 approved, one voided, one refunded.
    assert success == [0, 2, 1, 0, 0, 0, 0]
    assert failed == [0, 1, 0, 0, 0, 0, 0]
    assert reversed_ == [0, 0, 2, 0, 0, 0, 0]

    failed_messages = client.get("/dashboard/charts/failed-messages/", {"period": "weekly"}).json()
    assert failed_messages["data"]["labels"] == ["05 Do not honor"]
    assert failed_messages["data"]["datasets"][0]["data"] == [1]

    single = client.get("/dashboard/charts/single-payment/", {"period": "monthly"}).json()
    assert single["type"] == "doughnut"
    assert dict(zip(single["data"]["labels"], single["data"]["datasets"][0]["data"], strict=True)) == {
        "Success": 4,  # 150.000 today and yesterday, 350.000 on the 16th, the partly refunded one
        "Failed": 1,
    }

    issuers = client.get("/dashboard/charts/top-issuers/", {"period": "monthly"}).json()
    pairs = dict(zip(issuers["data"]["labels"], issuers["data"]["datasets"][0]["data"], strict=True))
    assert pairs == {"BCA": 5, "Bank Mandiri": 1, "CIMB Niaga": 1}


def test_registration_chart_counts_billings_registered_in_the_period_by_status(merchant, alice):
    with time_machine.travel(NOW, tick=False):
        make_billing(merchant)
        make_billing(merchant, status="inactive")
        make_billing(merchant, created_at=NOW - timedelta(days=40))  # last month: not in this one
        gone = make_billing(merchant)
        gone.deleted_at = NOW
        gone.save()
        client = verified_client(alice)
        data = client.get("/dashboard/charts/registrations/", {"period": "monthly"}).json()
        page = client.get("/", {"period": "monthly"})
    assert dict(zip(data["data"]["labels"], data["data"]["datasets"][0]["data"], strict=True)) == {
        "Active": 1,
        "Inactive": 1,
    }
    assert page.context["registrations"] == {"active": 1, "inactive": 1}
    assert 'data-chart-url="/dashboard/charts/registrations/' in page.content.decode()


def test_an_empty_period_shows_empty_states_and_no_numbers(history, alice):
    page = verified_client(alice).get("/", {"period": "monthly", "back": 5}).content.decode()
    assert "data-chart-url" not in page
    assert "Rp 0" not in page
    assert page.count('class="empty-inline">No transactions in this period<') == 3
    assert "No failed transactions in this period." in page


def test_staff_without_all_report_see_why_and_no_figures(history, merchant):
    staff = make_persona(merchant, "dana", menus=["batch_transaction"])
    client = verified_client(staff)
    response = client.get("/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "summary" not in response.context
    assert 'data-testid="no-transaction-access"' in page and "All Report" in page
    assert "Rp " not in page and "data-chart-url" not in page
    for chart in ("daily", "failed-messages", "single-payment", "top-issuers", "registrations"):
        assert client.get(f"/dashboard/charts/{chart}/").status_code == 403


def test_staff_with_all_report_but_not_manage_recurring_see_transactions_only(history, bob):
    client = verified_client(bob)
    page = client.get("/").content.decode()
    assert "Total Success Amount" in page and "Rp 1.550.000" in page
    assert "Registrations come from <strong>Manage Recurring</strong>" in page
    assert client.get("/dashboard/charts/daily/").status_code == 200
    assert client.get("/dashboard/charts/registrations/").status_code == 403


def test_same_card_at_two_merchants_each_dashboard_counts_its_own(merchant, other_merchant, alice, charlie):
    """TESTING 12 (dashboard): one card charged at Alpha and at Beta."""
    with time_machine.travel(NOW, tick=False):
        charged(merchant, pan=CARD_A, amount=100_000, billing_number="SAME-1", execute_date=TODAY)
        charged(other_merchant, pan=CARD_A, amount=700_000, billing_number="SAME-1", execute_date=TODAY)
        charged(other_merchant, pan=CARD_A, amount=800_000, billing_number="SAME-2", execute_date=TODAY)
        mine = verified_client(alice).get("/").context["summary"]
        theirs = verified_client(charlie).get("/").context["summary"]
        issuers = verified_client(alice).get("/dashboard/charts/top-issuers/").json()
    assert (mine.total_data, mine.success_amount, mine.unique_billings) == (1, 100_000, 1)
    assert (theirs.total_data, theirs.success_amount, theirs.unique_billings) == (2, 1_500_000, 2)
    assert issuers["data"]["datasets"][0]["data"] == [1]


def test_chart_endpoints_refuse_post(alice):
    assert verified_client(alice).post("/dashboard/charts/daily/").status_code == 405

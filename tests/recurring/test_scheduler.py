"""The scheduler (R7, R8, R10, R11; TESTING 24): each merchant-local day once, in order, nothing twice."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Merchant
from payments import services as payments
from payments.models import CallbackDelivery, Transaction
from recurring import scheduler
from recurring.models import Billing, CancelledExecution, SchedulerRun
from recurring.schedule import Schedule
from tests.recurring.conftest import make_billing

# Real commits: charges are queued on commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)

JAKARTA = ZoneInfo("Asia/Jakarta")
MONDAY = date(2026, 11, 30)


def at_jakarta(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=JAKARTA)


@pytest.fixture
def monday():
    with time_machine.travel(at_jakarta(MONDAY), tick=False) as traveller:
        yield traveller


def test_a_due_billing_becomes_one_charged_execution_with_a_deterministic_invoice(merchant, queued, monday):
    billing = make_billing(merchant)
    assert billing.next_execute_date == MONDAY

    run = scheduler.run_day(merchant, MONDAY)

    tx = Transaction.objects.get(billing=billing)
    assert (tx.invoice_number, tx.execute_date, tx.kind, tx.amount) == (
        f"{billing.billing_number}-20261130",
        MONDAY,
        "recurring",
        250_000,
    )
    assert tx.card_masked == billing.card_masked and tx.card_token == billing.card_token
    assert queued == [tx.pk]
    assert (run.due, run.charged, run.finished_at is not None) == (1, 1, True)
    billing.refresh_from_db()
    assert billing.next_execute_date == MONDAY + timedelta(days=1)
    assert payments.charge(tx.pk) == payments.Step.DONE


def test_a_day_run_twice_creates_and_queues_each_execution_once(merchant, queued, monday):
    billings = [make_billing(merchant) for _ in range(5)]
    scheduler.run_day(merchant, MONDAY)
    again = scheduler.run_day(merchant, MONDAY)
    assert Transaction.objects.count() == 5 and len(queued) == 5
    assert again.due == 5  # the first run's counts, untouched
    # even a billing moved back to the day by hand cannot make a second execution of it
    Billing.objects.filter(pk=billings[0].pk).update(next_execute_date=MONDAY)
    SchedulerRun.objects.all().delete()
    scheduler.run_day(merchant, MONDAY)
    assert Transaction.objects.count() == 5


def test_a_crash_mid_chunk_is_resumed_without_duplicates_or_gaps(merchant, queued, monday, settings, monkeypatch):
    settings.SCHEDULER_CHUNK = 2
    for _ in range(5):
        make_billing(merchant)
    real = scheduler._run_chunk
    calls = {"n": 0}

    def crashing(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        return real(*args)

    monkeypatch.setattr(scheduler, "_run_chunk", crashing)
    with pytest.raises(RuntimeError):
        scheduler.run_day(merchant, MONDAY)
    assert Transaction.objects.count() == 2  # the first chunk committed, the second rolled back

    monkeypatch.setattr(scheduler, "_run_chunk", real)
    busy = scheduler.run_day(merchant, MONDAY)
    assert busy.finished_at is None  # the crashed runner's lease still holds the day
    later = timezone.now() + timedelta(seconds=settings.SCHEDULER_LEASE_SECONDS + 1)
    run = scheduler.run_day(merchant, MONDAY, now=later)
    assert run.finished_at is not None
    assert Transaction.objects.count() == 5
    assert Transaction.objects.values("billing", "execute_date").distinct().count() == 5
    assert sorted(queued) == sorted(Transaction.objects.values_list("pk", flat=True))


def test_a_chunk_that_fails_after_its_insert_leaves_nothing_and_the_next_run_does_it_once(
    merchant, queued, monday, settings, monkeypatch
):
    """A chunk is one transaction: executions, next dates, counts and queued charges go together."""
    billings = [make_billing(merchant) for _ in range(3)]
    move = scheduler._move_next_dates

    def fails(*args):
        raise RuntimeError("the connection went away")

    monkeypatch.setattr(scheduler, "_move_next_dates", fails)
    with pytest.raises(RuntimeError):
        scheduler.run_day(merchant, MONDAY)
    assert not Transaction.objects.exists() and queued == []
    assert Billing.objects.filter(next_execute_date=MONDAY).count() == 3  # still due
    assert SchedulerRun.objects.values_list("due", "charged").get() == (0, 0)

    monkeypatch.setattr(scheduler, "_move_next_dates", move)
    later = timezone.now() + timedelta(seconds=settings.SCHEDULER_LEASE_SECONDS + 1)
    run = scheduler.run_day(merchant, MONDAY, now=later)
    assert (run.due, run.charged, run.finished_at is not None) == (3, 3, True)
    assert sorted(Transaction.objects.values_list("billing", flat=True)) == sorted(b.pk for b in billings)
    assert sorted(queued) == sorted(Transaction.objects.values_list("pk", flat=True))


def test_a_missed_week_is_caught_up_day_by_day_in_order(merchant, queued):
    with time_machine.travel(at_jakarta(MONDAY), tick=False):
        billing = make_billing(merchant)
        scheduler.tick()
    with time_machine.travel(at_jakarta(MONDAY + timedelta(days=7)), tick=False):
        runs = scheduler.tick()
    assert [run.day for run in runs] == [MONDAY + timedelta(days=n) for n in range(1, 8)]
    days = list(Transaction.objects.filter(billing=billing).order_by("pk").values_list("execute_date", flat=True))
    assert days == [MONDAY + timedelta(days=n) for n in range(8)]


def test_inactive_deleted_and_cancelled_dates_are_skipped(merchant, queued, monday, alice):
    active = make_billing(merchant)
    inactive = make_billing(merchant, status=Billing.Status.INACTIVE, next_execute_date=MONDAY)
    deleted = make_billing(merchant, deleted_at=timezone.now(), next_execute_date=MONDAY)
    cancelled = make_billing(merchant)
    CancelledExecution.objects.create(
        merchant=merchant,
        billing=cancelled,
        execute_date=MONDAY,
        invoice_number="x",
        reason="holiday",
        cancelled_by=alice.user,
    )
    run = scheduler.run_day(merchant, MONDAY)
    assert set(Transaction.objects.values_list("billing", flat=True)) == {active.pk}
    assert (run.due, run.charged, run.skipped) == (2, 1, 1)
    cancelled.refresh_from_db()
    assert cancelled.next_execute_date == MONDAY + timedelta(days=1)
    for untouched in (inactive, deleted):
        untouched.refresh_from_db()
        assert untouched.next_execute_date == MONDAY


def test_a_reminder_billing_sends_a_reminder_and_no_charge(merchant, queued, monday):
    merchant.callback_url = "https://alpha.example/hooks"
    merchant.callback_secret = "merchant-signing-secret"  # no callback without one
    merchant.save()
    billing = make_billing(merchant, billing_type=Billing.Type.REMINDER)
    run = scheduler.run_day(merchant, MONDAY)
    assert not Transaction.objects.exists() and queued == []
    delivery = CallbackDelivery.objects.get()
    assert delivery.event == "billing.reminder"
    assert delivery.payload["data"]["billing_number"] == billing.billing_number
    assert delivery.payload["data"]["execute_date"] == "2026-11-30"
    assert run.reminded == 1


def test_a_chunks_reminders_go_to_the_broker_in_one_message_and_each_is_delivered(
    merchant, queued, monday, monkeypatch
):
    from payments import callbacks, tasks

    merchant.callback_url = "https://alpha.example/hooks"
    merchant.callback_secret = "merchant-signing-secret"  # no callback without one
    merchant.save()
    reminders = [make_billing(merchant, billing_type=Billing.Type.REMINDER) for _ in range(3)]
    charged = make_billing(merchant)
    messages: list[list[int]] = []
    monkeypatch.setattr(tasks.deliver_callbacks, "delay", lambda delivery_ids: messages.append(delivery_ids))
    monkeypatch.setattr(tasks.deliver_callback, "delay", lambda delivery_id: messages.append([delivery_id]))

    run = scheduler.run_day(merchant, MONDAY)

    deliveries = CallbackDelivery.objects.order_by("pk")
    assert messages == [[d.pk for d in deliveries]]  # one message for the chunk's three reminders
    assert sorted(d.payload["data"]["billing_number"] for d in deliveries) == sorted(
        b.billing_number for b in reminders
    )
    assert (run.reminded, run.charged, queued) == (3, 1, [Transaction.objects.get(billing=charged).pk])
    sent: list[int] = []
    monkeypatch.setattr(callbacks, "deliver", lambda delivery_id: sent.append(delivery_id) or "delivered")
    assert tasks.deliver_callbacks.run(messages[0]) == {"delivered": 3}
    assert sent == messages[0]


def test_reminder_data_reads_only_the_fields_the_scheduler_loads(merchant, django_assert_num_queries):
    billing = make_billing(merchant, billing_type=Billing.Type.REMINDER)
    loaded = Billing.objects.only(*scheduler.REMINDER_FIELDS).get(pk=billing.pk)
    with django_assert_num_queries(0):  # a field outside REMINDER_FIELDS would be one query per reminder
        data = scheduler.reminder_data(loaded, MONDAY)
    assert data == {
        "billing_number": billing.billing_number,
        "customer_id": billing.customer_id,
        "customer_name": "Budi Santoso",
        "amount": 250_000,
        "currency": "IDR",
        "execute_date": "2026-11-30",
        "card": billing.card_masked,
    }


def test_five_mondays_in_december_make_five_charges(merchant, queued):
    with time_machine.travel(at_jakarta(date(2025, 11, 30)), tick=False):
        billing = make_billing(merchant, Schedule.by_day([0], [12]))
        scheduler.tick()
    for day in range(1, 32):
        with time_machine.travel(at_jakarta(date(2025, 12, day)), tick=False):
            scheduler.tick()
    charged = list(Transaction.objects.filter(billing=billing).values_list("execute_date", flat=True))
    assert [d.day for d in sorted(charged)] == [1, 8, 15, 22, 29]


def test_the_day_is_the_merchants_local_day_not_the_servers(merchant, queued):
    """23:30 UTC on 30 November is 06:30 on 1 December in Jakarta: December's day runs."""
    with time_machine.travel(at_jakarta(MONDAY), tick=False):
        billing = make_billing(merchant, Schedule.by_date([1], [12]))
    with time_machine.travel(datetime(2026, 11, 30, 23, 30, tzinfo=ZoneInfo("UTC")), tick=False):
        runs = scheduler.tick()
    assert runs[-1].day == date(2026, 12, 1)
    assert Transaction.objects.get(billing=billing).execute_date == date(2026, 12, 1)


def test_single_payments_are_charged_on_their_execute_date_and_not_before(merchant, queued, monday):
    from tests.payments.conftest import make_transaction

    today = make_transaction(merchant, execute_date=MONDAY)
    tomorrow = make_transaction(merchant, execute_date=MONDAY + timedelta(days=1))
    run = scheduler.run_day(merchant, MONDAY)
    assert queued == [today.pk] and run.single_payments == 1
    with time_machine.travel(at_jakarta(MONDAY + timedelta(days=1)), tick=False):
        scheduler.tick()
    assert queued == [today.pk, tomorrow.pk]


def test_a_soft_decline_is_retried_after_one_and_three_days_then_left_failed(merchant, queued):
    insufficient = "4622010000000512"
    with time_machine.travel(at_jakarta(MONDAY), tick=False):
        billing = make_billing(merchant, Schedule.by_date([28], [1]), pan=insufficient, next_execute_date=MONDAY)
        scheduler.run_day(merchant, MONDAY)
        tx = Transaction.objects.get(billing=billing)
        payments.charge(tx.pk)
    tx.refresh_from_db()
    billing.refresh_from_db()
    assert (tx.status, tx.next_retry_date) == ("scheduled", MONDAY + timedelta(days=1))
    assert (billing.retry_attempts, billing.next_retry_date) == (1, MONDAY + timedelta(days=1))

    for days_later, expected in ((1, MONDAY + timedelta(days=3)), (3, None)):
        with time_machine.travel(at_jakarta(MONDAY + timedelta(days=days_later)), tick=False):
            scheduler.tick()
            assert queued[-1] == tx.pk
            payments.charge(tx.pk)
        tx.refresh_from_db()
        assert tx.next_retry_date == expected or tx.status == "failed"
    tx.refresh_from_db()
    billing.refresh_from_db()
    assert (tx.status, tx.response_code, tx.attempts) == ("failed", "51", 3)
    assert (billing.retry_attempts, billing.next_retry_date) == (0, None)


def test_a_soft_decline_approved_on_its_retry_counts_once_as_recovered(merchant, queued, monkeypatch):
    from payments.acquirer import Outcome, get_acquirer
    from reports import dashboard
    from reports.periods import MONTHLY, period_for

    insufficient = "4622010000000512"
    with time_machine.travel(at_jakarta(MONDAY), tick=False):
        billing = make_billing(merchant, Schedule.by_date([28], [1]), pan=insufficient, next_execute_date=MONDAY)
        scheduler.run_day(merchant, MONDAY)
        tx = Transaction.objects.get(billing=billing)
        payments.charge(tx.pk)
    bank = get_acquirer()

    def approved_after_top_up(token, amount, key, description):  # the customer has funds again
        return Outcome(
            True, "00", "Approved", approval_code="A1B2C3", reference="SIMTOPUP", amount=amount, idempotency_key=key
        )

    monkeypatch.setattr(type(bank), "sale", lambda self, *args: approved_after_top_up(*args))
    with time_machine.travel(at_jakarta(MONDAY + timedelta(days=1)), tick=False):
        scheduler.tick()
        payments.charge(tx.pk)
        payments.charge(tx.pk)  # a redelivered task: nothing more
    tx.refresh_from_db()
    assert (tx.status, tx.declined_code, tx.attempts) == ("success", "51", 2)
    figures = dashboard.recovered(Transaction.objects.filter(merchant=merchant), period_for(MONTHLY, MONDAY, 0))
    assert (figures.count, figures.amount) == (1, tx.amount)


def test_a_hard_decline_is_never_retried(merchant, queued, monday):
    billing = make_billing(merchant, pan="4511010000000052")
    scheduler.run_day(merchant, MONDAY)
    tx = Transaction.objects.get(billing=billing)
    payments.charge(tx.pk)
    tx.refresh_from_db()
    assert (tx.status, tx.next_retry_date) == ("failed", None)


def test_run_scheduler_runs_a_day_by_hand_and_is_a_no_op_the_second_time(merchant, queued, monday):
    make_billing(merchant)
    first, second = StringIO(), StringIO()
    call_command("run_scheduler", "--date", "2026-11-30", stdout=first)
    call_command("run_scheduler", "--date", "2026-11-30", stdout=second)
    assert "due 1, charged 1" in first.getvalue()
    assert "ran already" in second.getvalue()
    assert Transaction.objects.count() == 1


@pytest.mark.parametrize("value", ["2026-13-01", "30/11/2026", "tomorrow", "20261130"])
def test_run_scheduler_refuses_a_bad_date(db, value):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("run_scheduler", "--date", value, stdout=StringIO())


def test_run_scheduler_refuses_a_day_after_the_merchants_today_and_records_nothing(merchant, queued, monday):
    make_billing(merchant)
    tomorrow = f"{MONDAY + timedelta(days=1):%Y-%m-%d}"
    with pytest.raises(CommandError, match=f"{tomorrow} has not begun for alpha"):
        call_command("run_scheduler", "--date", tomorrow, "--merchant", "alpha", stdout=StringIO())
    assert not SchedulerRun.objects.exists() and not Transaction.objects.exists() and queued == []


def test_run_scheduler_without_a_merchant_refuses_a_day_not_begun_in_one_merchants_zone(merchant, queued):
    """At 20:00 UTC on 30 November it is 1 December in Jakarta but still 30 November in New York: the
    1st is refused for every merchant (nothing runs), the 30th runs for both."""
    Merchant.objects.create(name="West Gym", code="west", time_zone="America/New_York")
    with time_machine.travel(datetime(2026, 11, 30, 20, 0, tzinfo=ZoneInfo("UTC")), tick=False):
        with pytest.raises(CommandError, match="2026-12-01 has not begun for west"):
            call_command("run_scheduler", "--date", "2026-12-01", stdout=StringIO())
        assert not SchedulerRun.objects.exists()
        call_command("run_scheduler", "--date", "2026-11-30", stdout=StringIO())
    assert SchedulerRun.objects.filter(day=date(2026, 11, 30), finished_at__isnull=False).count() == 2


def test_a_chunk_moves_each_billing_to_its_own_schedules_next_date(merchant, queued, monday, alice):
    """Set-based chunks: billings of one schedule share a next date, computed once; others (Date, Day,
    Full Date, a date cancelled ahead, a Full Date list that runs out, one overdue from last week) each
    get what the schedule module gives them alone, and one execution on their own execute date."""
    week_ago = MONDAY - timedelta(days=7)
    shared = [make_billing(merchant, Schedule.by_day([0, 3], [11, 12])) for _ in range(3)]  # Mon and Thu
    weekly = make_billing(merchant, Schedule.by_day([0], range(1, 13)))
    listed = make_billing(merchant, Schedule.full_dates([MONDAY, MONDAY + timedelta(days=10)]))
    last = make_billing(merchant, Schedule.full_dates([MONDAY]))
    ahead = make_billing(merchant, Schedule.by_day([0], range(1, 13)))
    CancelledExecution.objects.create(
        merchant=merchant,
        billing=ahead,
        execute_date=MONDAY + timedelta(days=7),
        invoice_number="x",
        reason="holiday",
        cancelled_by=alice.user,
    )
    overdue = make_billing(merchant, Schedule.by_day([0], range(1, 13)), next_execute_date=week_ago)
    reminder = make_billing(merchant, Schedule.by_day([0], range(1, 13)), billing_type=Billing.Type.REMINDER)

    run = scheduler.run_day(merchant, MONDAY)

    expected = {billing.pk: date(2026, 12, 3) for billing in shared}
    expected |= {
        weekly.pk: MONDAY + timedelta(days=7),
        listed.pk: MONDAY + timedelta(days=10),
        last.pk: None,
        ahead.pk: MONDAY + timedelta(days=14),
        overdue.pk: MONDAY + timedelta(days=7),
        reminder.pk: MONDAY + timedelta(days=7),
    }
    assert dict(Billing.objects.values_list("pk", "next_execute_date")) == expected
    executions = dict(Transaction.objects.values_list("billing", "invoice_number"))
    on_day = [*shared, weekly, listed, last, ahead]
    assert executions == {
        **{b.pk: scheduler.invoice_number(b.billing_number, MONDAY) for b in on_day},
        overdue.pk: scheduler.invoice_number(overdue.billing_number, week_ago),
    }
    assert Transaction.objects.get(billing=overdue).execute_date == week_ago
    assert sorted(queued) == sorted(Transaction.objects.values_list("pk", flat=True))
    assert (run.due, run.charged, run.reminded, run.skipped) == (9, 8, 1, 0)

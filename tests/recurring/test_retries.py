"""R10: soft declines are retried per execution, on the policy's days after its execute date, and stop."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import transaction as db
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments import services as payments
from payments.acquirer import Outcome
from payments.models import Transaction
from recurring import scheduler
from recurring.models import Billing, RetryPolicy
from recurring.schedule import Schedule
from tests.recurring.conftest import make_billing

JAKARTA = ZoneInfo("Asia/Jakarta")
START = date(2026, 11, 30)
SOFT, HARD, APPROVED = "51", "05", "00"


def at_jakarta(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=JAKARTA)


def answer(code: str) -> Outcome:
    return Outcome(approved=code == APPROVED, response_code=code, message=f"code {code}")


def check_retry_state(billing: Billing, today: date, days: list[int]) -> None:
    """What every row shows at the end of a day: ended rows have no next retry; a pending retry is on one
    of the policy's days after its execute date and still to come; the billing shows the earliest."""
    rows = list(Transaction.objects.filter(billing=billing))
    for tx in rows:
        if tx.status in ("success", "failed"):
            assert tx.next_retry_date is None, tx
        if tx.next_retry_date is not None:
            assert tx.status == "scheduled"
            assert tx.next_retry_date > today
            assert (tx.next_retry_date - tx.execute_date).days in days
    pending = sorted((tx.next_retry_date, tx.pk, tx.attempts) for tx in rows if tx.next_retry_date)
    billing.refresh_from_db()
    expected = (pending[0][2], pending[0][0]) if pending else (0, None)
    assert (billing.retry_attempts, billing.next_retry_date) == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    days=st.lists(st.integers(1, 6), min_size=1, max_size=3, unique=True),
    executions=st.integers(1, 4),
    codes=st.lists(st.sampled_from([SOFT, SOFT, HARD, APPROVED]), min_size=1, max_size=25),
)
@pytest.mark.django_db
def test_each_execution_is_retried_on_the_policys_days_at_most_once_each_then_stops(merchant, days, executions, codes):
    """Random bank answers to a billing charged on several days in a row (its executions' retries overlap):
    each execution gets its first try on its execute date and then, while it is soft-declined, one try on
    each policy day after that date, in order, and no more."""
    answers = iter(codes)
    tries: dict[int, list[tuple[date, str]]] = defaultdict(list)
    with db.atomic():
        RetryPolicy.objects.create(merchant=merchant, retry_codes=[SOFT], retry_after_days=days)
        execute_dates = [START + timedelta(days=n) for n in range(executions)]
        with time_machine.travel(at_jakarta(START), tick=False):
            billing = make_billing(merchant, Schedule.full_dates(execute_dates, first_day=START))
        for offset in range(executions + max(days) + 1):
            today = START + timedelta(days=offset)
            with time_machine.travel(at_jakarta(today), tick=False):
                scheduler.run_day(merchant, today)
                for pk in Transaction.objects.filter(billing=billing).order_by("pk").values_list("pk", flat=True):
                    tx, _ = payments.claim(pk)
                    if tx is not None:
                        code = next(answers, SOFT)
                        payments.record_outcome(tx, answer(code))
                        tries[pk].append((today, code))
                check_retry_state(billing, today, days)
        rows = {tx.pk: tx for tx in Transaction.objects.filter(billing=billing)}
        db.set_rollback(True)

    assert sorted(tx.execute_date for tx in rows.values()) == execute_dates
    policy_days = sorted(days)
    for pk, made in tries.items():
        tx = rows[pk]
        made_days, made_codes = [day for day, _ in made], [code for _, code in made]
        assert (
            made_days == [tx.execute_date] + [tx.execute_date + timedelta(days=d) for d in policy_days][: len(made) - 1]
        )
        assert all(code == SOFT for code in made_codes[:-1])  # only a soft decline is tried again
        spent = len(made) == 1 + len(policy_days)
        assert made_codes[-1] != SOFT or spent
        assert tx.status == {APPROVED: "success", HARD: "failed", SOFT: "failed"}[made_codes[-1]]
        assert tx.attempts == len(made)


@pytest.mark.django_db(transaction=True)
def test_a_scheduler_catch_up_retries_each_execution_on_its_own_days_still_to_come_then_stops(merchant, queued):
    """The scheduler was down for five days: the catch-up charges six executions of a billing whose card is
    short of funds at once. Each is retried only on its policy days (1 and 3 after its execute date) that
    are still to come, never on a day that has passed, and none after its days are spent."""
    insufficient = "4622010000000512"
    with time_machine.travel(at_jakarta(START), tick=False):
        billing = make_billing(merchant, pan=insufficient)
        scheduler.run_day(merchant, START - timedelta(days=1))  # the last day run before the outage
    charged_on: dict[date, list[int]] = {}
    for offset in range(5, 12):
        today = START + timedelta(days=offset)
        with time_machine.travel(at_jakarta(today), tick=False):
            before = len(queued)
            scheduler.tick()
            charged_on[today] = queued[before:]
            for pk in charged_on[today]:
                payments.charge(pk)
            assert not Transaction.objects.filter(status="scheduled", next_retry_date__lte=today).exists()
    executions = {tx.execute_date: tx for tx in Transaction.objects.filter(billing=billing)}
    first = START + timedelta(days=5)  # the catch-up: START..START+5, then one execution a day
    assert len(charged_on[first]) == 6
    late = {day: executions[day].pk for day in executions}
    # retried on a policy day still to come: D+3 for START+3 and START+4, D+1 for START+5
    assert sorted(charged_on[first + timedelta(days=1)]) == sorted(
        [late[START + timedelta(days=3)], late[first], late[first + timedelta(days=1)]]
    )
    spent = [executions[START + timedelta(days=n)] for n in range(3)]  # no policy day left after the catch-up
    assert all((tx.status, tx.attempts, tx.next_retry_date) == ("failed", 1, None) for tx in spent)
    assert all(tx.attempts <= 3 for tx in executions.values())
    ended = [tx for tx in executions.values() if tx.execute_date <= START + timedelta(days=8)]
    assert all((tx.status, tx.next_retry_date) == ("failed", None) for tx in ended)

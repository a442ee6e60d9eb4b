"""The scheduler on real services (TESTING 24, DESIGN "Schedules and the scheduler"): PostgreSQL row locks,
the Redis broker, a scheduler runner process SIGKILLed in the middle of a chunk, and a real
``celery beat`` plus a real worker charging a day's billings through the simulated bank.

Figures (runs, chunks, seconds) are printed: run with ``-s`` to see them.
"""

from __future__ import annotations

import base64
import json
import os
import shelve
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import suppress
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, connections
from django.utils import timezone

from accounts.models import Merchant
from billing_bo.celery import app as celery_app
from payments import services as payments
from payments.acquirer import get_acquirer
from payments.models import Transaction
from recurring import scheduler
from recurring.models import Billing, SchedulerRun
from tests.dates import card_year
from tests.integration.conftest import PROJECT_ROOT, _die_with_parent, _log_tail, _stop, database_url
from tests.integration.test_payments import queued_charge_ids, race, wait_for
from tests.recurring.conftest import APPROVE, EVERY_DAY

pytestmark = pytest.mark.django_db(transaction=True)  # runner threads, processes and workers see commits

Status = Transaction.Status
BILLINGS = 1000
AMOUNT = 250_000


def make_due_billings(merchant: Merchant, count: int, day: date, *, tokenize_each: bool = False) -> list[Billing]:
    """``count`` active recurring billings charged every day, due on ``day``, on the approving test card
    (tokenized once, or once per billing as registrations do)."""
    card = payments.tokenize_card(APPROVE, 12, card_year(), "123", "Budi Santoso", "+628123456789")
    billings = []
    for number in range(1, count + 1):
        if tokenize_each:
            card = payments.tokenize_card(APPROVE, 12, card_year(), "123", "Budi Santoso", "+628123456789")
        billing = Billing(
            merchant=merchant,
            billing_number=f"GYM-{number:05d}",
            customer_id=f"CUST-{number:05d}",
            customer_name="Budi Santoso",
            amount=Decimal(AMOUNT),
            source=Billing.Source.BATCH,
            next_execute_date=day,
            **card,
        )
        billing.schedule = EVERY_DAY
        billings.append(billing)
    return Billing.objects.bulk_create(billings, batch_size=1000)


def assert_each_due_billing_ran_once(merchant: Merchant, billings: list[Billing], day: date) -> dict[str, int]:
    """0 duplicate (billing, execute date) rows, 0 missing, next date moved exactly one day on."""
    executions = Counter(
        Transaction.objects.filter(merchant=merchant, kind=Transaction.Kind.RECURRING).values_list(
            "billing_id", "execute_date"
        )
    )
    expected = {(billing.pk, day) for billing in billings}
    duplicates = {key: n for key, n in executions.items() if n > 1}
    missing = expected - set(executions)
    unexpected = set(executions) - expected
    assert (len(duplicates), len(missing), len(unexpected)) == (0, 0, 0), (duplicates, missing, unexpected)
    invoices = Counter(Transaction.objects.filter(merchant=merchant).values_list("invoice_number", flat=True))
    assert invoices == {scheduler.invoice_number(billing.billing_number, day): 1 for billing in billings}
    next_dates = Counter(Billing.objects.filter(merchant=merchant).values_list("next_execute_date", flat=True))
    assert next_dates == {day + timedelta(days=1): len(billings)}, next_dates  # advanced once, not twice
    return {"executions": sum(executions.values()), "duplicates": len(duplicates), "missing": len(missing)}


def assert_day_finished(merchant: Merchant, day: date, *, due: int, charged: int) -> SchedulerRun:
    """One SchedulerRun for the day, finished, with each due billing counted once."""
    run = SchedulerRun.objects.get(merchant=merchant)
    assert run.day == day and run.finished_at is not None
    assert (run.due, run.charged, run.skipped, run.reminded) == (due, charged, 0, 0)
    return run


def assert_queued_once(broker, merchant: Merchant) -> int:
    """Every execution's charge was queued exactly once (the queue holds what nobody consumed)."""
    queued = Counter(pk for chunk in queued_charge_ids(broker) for pk in chunk)
    ids = set(Transaction.objects.filter(merchant=merchant).values_list("pk", flat=True))
    assert set(queued) == ids and set(queued.values()) == {1}, {pk: n for pk, n in queued.items() if n != 1}
    return len(queued)


def assert_one_approved_sale_per_invoice(txs: list[Transaction]) -> int:
    """At the bank: every approved sale has its own key, and each execution has exactly one approved
    sale, found both by its key and by its description (which names the billing and the day, so a second
    sale under another key would show). Returns the number of approved sales."""
    bank = get_acquirer()
    assert set(bank.count_sales_by_key().values()) == {1}
    approved = [op for op in bank.operations(kind="sale") if op["approved"]]
    assert Counter(op["description"] for op in approved) == {tx.description: 1 for tx in txs}
    reference = {op["idempotency_key"]: op["reference"] for op in approved}
    assert {key: reference.get(key) for key in (tx.idempotency_key for tx in txs)} == {
        tx.idempotency_key: tx.acquirer_reference for tx in txs
    }
    return len(approved)


def run_state(merchant: Merchant, day: date) -> tuple:
    run = SchedulerRun.objects.filter(merchant=merchant, day=day).values_list("due", "charged", "finished_at").get()
    return (Transaction.objects.filter(merchant=merchant).count(), *run)


# TESTING 24: the same day run twice in sequence ------------------------------------------------------


def test_a_day_run_twice_in_sequence_creates_and_queues_each_execution_once(merchant, broker, bank_path):
    day = merchant.local_today()
    billings = make_due_billings(merchant, BILLINGS, day)

    started = time.monotonic()
    first = scheduler.run_day(merchant, day)
    took = time.monotonic() - started
    state = run_state(merchant, day)
    second = scheduler.run_day(merchant, day)
    ticked = scheduler.tick()

    assert first.finished_at is not None and second.pk == first.pk
    assert second.finished_at == first.finished_at  # R8: the second run did nothing
    assert ticked == []  # a tick starts after the last finished day
    assert run_state(merchant, day) == state
    figures = assert_each_due_billing_ran_once(merchant, billings, day)
    assert_day_finished(merchant, day, due=BILLINGS, charged=BILLINGS)
    assert assert_queued_once(broker, merchant) == BILLINGS

    # The day's record gone and every next date put back (a restore, a hand edit): a third run finds
    # the billings due again, and ON CONFLICT DO NOTHING creates nothing; nothing is queued again.
    SchedulerRun.objects.filter(merchant=merchant).delete()
    Billing.objects.filter(merchant=merchant).update(next_execute_date=day)
    third = scheduler.run_day(merchant, day)
    assert_day_finished(merchant, day, due=BILLINGS, charged=0)
    assert assert_each_due_billing_ran_once(merchant, billings, day) == figures
    assert assert_queued_once(broker, merchant) == BILLINGS
    print(
        f"\n[scheduler sequence] {BILLINGS} billings, chunks of {settings.SCHEDULER_CHUNK}: first run "
        f"{took:.2f} s ({BILLINGS / took:,.0f} billings/s); second run and a tick: no-op; a third run with the "
        f"day's record deleted: due {third.due}, created 0, queued 0; {figures}"
    )


def test_a_chunk_that_fails_after_its_insert_leaves_nothing_and_the_next_run_does_it_once(
    merchant, broker, monkeypatch
):
    """A chunk is one transaction: when moving its next dates fails, its executions go with it and
    nothing is queued; the billings stay due, and the next run creates and queues each execution once."""
    day = merchant.local_today()
    billings = make_due_billings(merchant, 50, day)
    move = scheduler._move_next_dates

    def fails(*args):
        raise DatabaseError("the connection went away")

    monkeypatch.setattr(scheduler, "_move_next_dates", fails)
    with pytest.raises(DatabaseError):
        scheduler.run_day(merchant, day)
    assert not Transaction.objects.filter(merchant=merchant).exists()
    assert Billing.objects.filter(merchant=merchant, next_execute_date=day).count() == 50  # still due
    assert queued_charge_ids(broker) == []

    monkeypatch.setattr(scheduler, "_move_next_dates", move)
    SchedulerRun.objects.filter(merchant=merchant).update(lease_until=None)  # the failed runner's lease ran out
    scheduler.run_day(merchant, day)
    assert_each_due_billing_ran_once(merchant, billings, day)
    assert_day_finished(merchant, day, due=50, charged=50)
    assert assert_queued_once(broker, merchant) == 50


# TESTING 24: the same day in parallel -----------------------------------------------------------------


class Chunks:
    """Chunks committed per runner thread (``scheduler._run_chunk`` observed). The runner that commits the
    day's first chunk is held right after it (``held`` set, no transaction open) until ``release`` is set:
    the test, not the machine's speed, decides what a second runner meets."""

    def __init__(self) -> None:
        self.by_runner: Counter[str] = Counter()
        self.held, self.release = threading.Event(), threading.Event()
        self.lock = threading.Lock()

    def committed(self) -> None:
        with self.lock:
            self.by_runner[threading.current_thread().name] += 1
            first = not self.held.is_set()
            self.held.set()
        if first:
            self.release.wait(timeout=60)


@pytest.fixture
def chunks(monkeypatch) -> Iterator[Chunks]:
    observed = Chunks()
    original = scheduler._run_chunk

    def run_chunk(merchant, day, run):
        worked = original(merchant, day, run)
        if worked:
            observed.committed()
        return worked

    monkeypatch.setattr(scheduler, "_run_chunk", run_chunk)
    yield observed
    observed.release.set()  # a failed test leaves no runner waiting


class Runner(threading.Thread):
    """A scheduler runner in a thread of this process, with its own database connection."""

    def __init__(self, call: Callable[[], object]):
        super().__init__()
        self.call, self.result, self.error = call, None, None

    def run(self) -> None:
        try:
            self.result = self.call()
        except BaseException as error:  # reported by the test
            self.error = error
        finally:
            connections.close_all()


@pytest.mark.parametrize("runners", ["run_day", "tick", "lease-expired"])
def test_a_day_run_twice_in_parallel_creates_each_execution_once(
    merchant, broker, bank_path, settings, chunks, runners
):
    """``run_day``: two runners of one day started at the same moment; the one that takes the lease is held
    after its first chunk until the other has left (lease held). ``tick``: the same with two beat ticks.
    ``lease-expired``: a second runner comes while the first is held, at a time when the first one's lease
    has run out (``now`` ahead), and commits a chunk before the first goes on; then both work through the
    rest together: only the row locks (``skip_locked``) and ON CONFLICT DO NOTHING keep them apart."""
    settings.SCHEDULER_CHUNK = 25
    now = timezone.now()
    day = timezone.localtime(now, merchant.tzinfo).date()
    billings = make_due_billings(merchant, BILLINGS, day)

    def run_day(at):
        return lambda: scheduler.run_day(Merchant.objects.get(pk=merchant.pk), day, now=at)

    def left_when_done(call):
        """``call``, and the held runner released once it returns without a chunk (it left)."""

        def run():
            try:
                return call()
            finally:
                if not chunks.by_runner[threading.current_thread().name]:
                    chunks.release.set()

        return run

    started = time.monotonic()
    if runners == "lease-expired":
        first = Runner(run_day(now))
        first.start()
        assert chunks.held.wait(20), "the first runner's first chunk"
        second = Runner(run_day(now + timedelta(seconds=2 * settings.SCHEDULER_LEASE_SECONDS)))
        second.start()
        wait_for(lambda: chunks.by_runner[second.name] >= 1, 20, "the second runner's first chunk", interval=0.01)
        chunks.release.set()
        for runner in (first, second):
            runner.join(60)
        results = [runner.result for runner in (first, second) if runner.error is None]
        errors = [runner.error for runner in (first, second) if runner.error is not None]
    else:
        call = run_day(now) if runners == "run_day" else (lambda: scheduler.tick(now=now))
        results, errors = race(left_when_done(call), left_when_done(call))
    took = time.monotonic() - started

    assert not errors, errors
    assert len(results) == 2
    if runners == "lease-expired":
        # Both runners committed chunks: they really worked side by side.
        assert len(chunks.by_runner) == 2 and min(chunks.by_runner.values()) >= 1, chunks.by_runner
    else:
        # One runner took the day; the other left at once, in the middle of it (lease held).
        assert len(chunks.by_runner) == 1, chunks.by_runner
        assert sum(chunks.by_runner.values()) == BILLINGS // settings.SCHEDULER_CHUNK
        runs = [run for result in results for run in (result if runners == "tick" else [result])]
        assert sorted(run.finished_at is None for run in runs if run.merchant_id == merchant.pk) == [False, True]
    figures = assert_each_due_billing_ran_once(merchant, billings, day)
    assert_day_finished(merchant, day, due=BILLINGS, charged=BILLINGS)
    assert assert_queued_once(broker, merchant) == BILLINGS
    print(
        f"\n[scheduler parallel: {runners}] {BILLINGS} billings, chunks of {settings.SCHEDULER_CHUNK}, "
        f"{took:.2f} s; chunks per runner {sorted(chunks.by_runner.values(), reverse=True)}; {figures}"
    )


# TESTING 24: a runner SIGKILLed in the middle of a chunk ------------------------------------------------

# A scheduler runner in its own process. In its second chunk, after the executions are inserted and the
# next dates moved but before the chunk commits, it says so and waits to be killed.
RUNNER = """
import sys, time
import django
django.setup()
from datetime import date
from django.db import connection, connections
from accounts.models import Merchant
from recurring import scheduler

chunks = 0
enqueue = scheduler.enqueue_charges

def enqueue_then_stop_in_the_second_chunk(ids, **options):
    global chunks
    chunks += 1
    enqueue(ids, **options)
    if chunks == 2:
        print("in chunk 2", flush=True)
        time.sleep(300)

scheduler.enqueue_charges = enqueue_then_stop_in_the_second_chunk
with connection.cursor() as cursor:
    cursor.execute("SELECT pg_backend_pid()")
    print("backend", cursor.fetchone()[0], flush=True)
scheduler.run_day(Merchant.objects.get(pk=int(sys.argv[1])), date.fromisoformat(sys.argv[2]))
print("finished", flush=True)
"""


@pytest.fixture
def runner_process() -> Iterator[Callable[..., subprocess.Popen]]:
    started: list[subprocess.Popen] = []

    def start(*args: str, **env: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", RUNNER, *args],
            cwd=PROJECT_ROOT,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "billing_bo.settings",
                "DATABASE_URL": database_url(settings.DATABASES["default"]["NAME"]),
                **env,
            },
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            _stop(process)
            process.stdout.close()


def read_until(process: subprocess.Popen, prefix: str, timeout: float = 60) -> str:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    timer = threading.Timer(timeout, lambda: process.kill())  # a runner that never prints is stopped
    timer.start()
    try:
        for line in process.stdout:
            lines.append(line)
            if line.startswith(prefix):
                return line.strip()
    finally:
        timer.cancel()
    state = "timed out" if time.monotonic() > deadline else f"exited {process.wait()}"
    pytest.fail(f"runner {state} before printing {prefix!r}:\n{''.join(lines)[-3000:]}", pytrace=False)


def backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0] > 0


def test_a_runner_killed_in_the_middle_of_a_chunk_is_resumed_once_its_lease_expires(
    merchant, broker, bank_path, runner_process
):
    chunk = 100
    day = merchant.local_today()
    billings = make_due_billings(merchant, BILLINGS, day)
    runner = runner_process(str(merchant.pk), day.isoformat(), SCHEDULER_CHUNK=str(chunk))
    backend = int(read_until(runner, "backend").split()[1])
    read_until(runner, "in chunk 2")
    committed = Transaction.objects.count()  # this session sees only what committed
    os.killpg(runner.pid, signal.SIGKILL)
    runner.wait()
    wait_for(lambda: not backend_alive(backend), 20, "the killed runner's session to end")

    # The first chunk committed (and was queued); nothing of the second.
    assert committed == Transaction.objects.filter(merchant=merchant).count() == chunk
    run = SchedulerRun.objects.get(merchant=merchant, day=day)
    assert (run.due, run.charged, run.finished_at) == (chunk, chunk, None)
    assert run.lease_until > timezone.now()
    moved = Billing.objects.filter(merchant=merchant, next_execute_date=day + timedelta(days=1)).count()
    assert moved == chunk
    assert len([pk for ids in queued_charge_ids(broker) for pk in ids]) == chunk

    # While the dead runner's lease lasts, later runs and ticks leave the day alone...
    assert scheduler.run_day(merchant, day).finished_at is None
    assert [run.finished_at for run in scheduler.tick()] == [None]
    assert Transaction.objects.filter(merchant=merchant).count() == chunk
    # ...and once it has expired, the next run resumes after the committed chunk.
    started = time.monotonic()
    resumed = scheduler.run_day(
        merchant, day, now=timezone.now() + timedelta(seconds=settings.SCHEDULER_LEASE_SECONDS + 1)
    )
    took = time.monotonic() - started

    assert resumed.finished_at is not None
    figures = assert_each_due_billing_ran_once(merchant, billings, day)
    assert_day_finished(merchant, day, due=BILLINGS, charged=BILLINGS)
    assert assert_queued_once(broker, merchant) == BILLINGS
    assert scheduler.run_day(merchant, day).finished_at == resumed.finished_at
    print(
        f"\n[scheduler crash] runner SIGKILLed in chunk 2 of {BILLINGS // chunk} (chunks of {chunk}) with "
        f"{committed} executions committed; resumed after the lease in {took:.2f} s; {figures}"
    )


# Beat + worker end to end ------------------------------------------------------------------------------


def overdue_beat_schedule(path: Path, entry: str) -> None:
    """Write celery beat's schedule file (the app's own schedule) as a beat that last sent ``entry`` an
    hour ago would have left it: a beat started on this file sends ``entry`` at once, as any beat does
    after downtime. The schedule itself (CELERY_BEAT_SCHEDULE, 300 s for the tick) is not changed."""
    from celery.beat import PersistentScheduler

    beat = PersistentScheduler(app=celery_app, schedule_filename=str(path), lazy=True)
    beat.setup_schedule()
    beat.schedule[entry].last_run_at = celery_app.now() - timedelta(hours=1)
    beat.close()
    with shelve.open(str(path)) as stored:  # written as intended
        assert stored["entries"][entry].last_run_at < celery_app.now() - timedelta(minutes=59)


@pytest.fixture
def beat_process(tmp_path) -> Iterator[Callable[[], subprocess.Popen]]:
    """Start a real `celery -A billing_bo beat` on the broker, with its schedule file in ``tmp_path``
    and the recurring tick overdue; stopped at teardown."""
    started: list[subprocess.Popen] = []
    log_path = tmp_path / "beat.log"

    def start() -> subprocess.Popen:
        schedule = tmp_path / "celerybeat-schedule"
        overdue_beat_schedule(schedule, "recurring-tick")
        argv = [sys.executable, "-m", "celery", "-A", "billing_bo", "beat", f"--schedule={schedule}"]
        argv += [f"--pidfile={tmp_path / 'beat.pid'}", "--loglevel=INFO"]
        env = {**os.environ, "DATABASE_URL": database_url(settings.DATABASES["default"]["NAME"])}
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                argv,
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        started.append(process)
        return process

    start.log_path = log_path  # type: ignore[attr-defined]
    try:
        yield start
    finally:
        for process in started:
            _stop(process)


def test_beat_and_a_worker_charge_a_thousand_due_billings_once(merchant, start_worker, broker, beat_process):
    """A real beat sends the app's ``recurring-tick`` entry (overdue in its schedule file, so at start);
    a real worker runs the tick (scheduler day, charges queued in chunks) and the charges at the
    simulated bank. The second tick is sent through the broker with ``send_task`` (beat's next one is
    300 s away) and runs in the same worker."""
    count = BILLINGS
    day = merchant.local_today()
    billings = make_due_billings(merchant, count, day, tokenize_each=True)
    worker = start_worker(concurrency=2)

    started = time.monotonic()
    beat = beat_process()
    run = SchedulerRun.objects.filter(merchant=merchant, finished_at__isnull=False)
    wait_for(lambda: run.exists() or beat.poll() is not None, 60, "beat's tick to run the day", interval=0.1)
    assert beat.poll() is None, _log_tail(beat_process.log_path)
    day_run = time.monotonic() - started
    settled = Transaction.objects.filter(merchant=merchant, status__in=[Status.SUCCESS, Status.FAILED])
    wait_for(lambda: settled.count() == count, 120, f"{count} charges to settle", interval=0.1)
    elapsed = time.monotonic() - started
    beat_log = beat_process.log_path.read_text()
    with suppress(ProcessLookupError):
        os.killpg(beat.pid, signal.SIGTERM)

    assert beat_log.count("Sending due task recurring-tick (recurring.tick)") == 1, beat_log[-2000:]
    txs = list(Transaction.objects.filter(merchant=merchant).select_related("merchant"))
    assert len(txs) == count
    assert Counter(tx.status for tx in txs) == {Status.SUCCESS: count}
    assert {tx.billing_id for tx in txs} == {billing.pk for billing in billings}
    assert assert_one_approved_sale_per_invoice(txs) == count
    assert_each_due_billing_ran_once(merchant, billings, day)
    day_record = assert_day_finished(merchant, day, due=count, charged=count)
    bank = get_acquirer()
    sales = len(bank.operations(kind="sale"))

    # A second tick changes nothing.
    before = sorted(Transaction.objects.filter(merchant=merchant).values_list("pk", "status", "attempts"))
    result = celery_app.send_task("recurring.tick").get(timeout=30)
    assert result == []  # the day ran: a tick starts after it
    assert sorted(Transaction.objects.filter(merchant=merchant).values_list("pk", "status", "attempts")) == before
    assert len(bank.operations(kind="sale")) == sales == count
    assert SchedulerRun.objects.filter(merchant=merchant).count() == 1
    day_record.refresh_from_db()
    assert (day_record.due, day_record.charged) == (count, count)
    print(
        f"\n[beat + worker] {count} billings due: beat started -> day run in {day_run:.2f} s, every charge "
        f"settled in {elapsed:.2f} s ({count / elapsed:,.0f} charges/s end to end); 1 approved sale per invoice; "
        f"SchedulerRun due {day_record.due} charged {day_record.charged}; second tick: no change; "
        f"worker log lines {worker.log_text().count(chr(10))}"
    )


# A chunk on PostgreSQL: each billing's next date, cancelled dates, reminders in one message -----------


def test_on_postgresql_a_chunk_moves_each_billing_to_its_own_next_date_and_sends_its_reminders_in_one_message(
    merchant, broker, bank_path
):
    """A chunk on PostgreSQL (the unit lane runs the same on SQLite): every billing gets the next date the
    schedule module gives it (a cancelled date skipped, a Full Date list that ran out: none), a date
    cancelled on the day runs nothing, a Reminder is a callback and no charge, the chunk's reminders are one
    broker message, and each created execution is queued once."""
    from payments.models import CallbackDelivery
    from recurring.models import CancelledExecution
    from recurring.schedule import Schedule
    from tests.recurring.conftest import make_billing

    merchant.callback_url = "https://alpha.example/hooks"
    merchant.callback_secret = "merchant-signing-secret"  # no callback without one
    merchant.save()
    day = merchant.local_today()
    weekly = Schedule.by_day([day.weekday()], range(1, 13))
    monthly = Schedule.by_date([min(day.day, 28)], range(1, 13))
    charged = [
        make_billing(merchant, EVERY_DAY, next_execute_date=day),
        make_billing(merchant, weekly, next_execute_date=day),
        make_billing(merchant, Schedule.full_dates([day], first_day=day), next_execute_date=day),  # runs out
    ]
    if monthly.is_execute_date(day):
        charged.append(make_billing(merchant, monthly, next_execute_date=day))
    skipped_ahead = make_billing(merchant, weekly, next_execute_date=day)  # next week's date cancelled
    cancelled_today = make_billing(merchant, weekly, next_execute_date=day)
    reminders = [
        make_billing(merchant, EVERY_DAY, next_execute_date=day, billing_type=Billing.Type.REMINDER) for _ in range(3)
    ]
    for billing, cancelled_day in ((skipped_ahead, day + timedelta(days=7)), (cancelled_today, day)):
        CancelledExecution.objects.create(
            merchant=merchant,
            billing=billing,
            execute_date=cancelled_day,
            invoice_number=scheduler.invoice_number(billing.billing_number, cancelled_day),
            reason="holiday",
        )
    charged.append(skipped_ahead)

    run = scheduler.run_day(merchant, day)

    skips = {skipped_ahead.pk: {day + timedelta(days=7)}, cancelled_today.pk: {day}}
    for billing in [*charged, cancelled_today, *reminders]:
        expected = billing.schedule.next_date(day + timedelta(days=1), skip=skips.get(billing.pk, ()))
        billing.refresh_from_db()
        assert billing.next_execute_date == expected, (billing.schedule, expected)
    assert charged[2].next_execute_date is None and skipped_ahead.next_execute_date == day + timedelta(days=14)
    executions = dict(Transaction.objects.filter(merchant=merchant).values_list("billing_id", "pk"))
    assert set(executions) == {billing.pk for billing in charged}
    assert (run.due, run.charged, run.reminded, run.skipped) == (len(charged) + 4, len(charged), 3, 1)

    messages = Counter()
    queued: list[int] = []
    for raw in broker.lrange("celery", 0, -1):
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        messages[message["headers"]["task"]] += 1
        if message["headers"]["task"] == "payments.deliver_callbacks":
            deliveries = args[0]
        else:
            queued.extend(args[0])
    assert messages == {"payments.charge_many": 1, "payments.deliver_callbacks": 1}
    assert sorted(queued) == sorted(executions.values())
    assert sorted(deliveries) == sorted(CallbackDelivery.objects.filter(merchant=merchant).values_list("pk", flat=True))
    assert len(deliveries) == 3


def test_a_billing_row_carries_only_the_indexes_its_queries_use():
    """Each due billing's next date moves every day and the row is rewritten with an entry in every index:
    the merchant foreign key has no index of its own (every index starts with the merchant), the batch a
    partial one (All Report's CSV File Name filter; hosted billings have no batch)."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Billing._meta.db_table)
    indexes = {
        tuple(info["columns"])
        for info in constraints.values()
        if info["index"] or info["primary_key"] or info["unique"]  # each of them is a btree index
    }
    assert indexes == {
        ("id",),  # the primary key
        ("merchant_id", "next_execute_date"),  # billing_due_idx: the scheduler's due billings
        ("merchant_id", "billing_number"),  # unique per merchant; Manage Recurring and Registration search
        ("merchant_id", "customer_id"),  # Manage Recurring and Registration search by customer ID
        ("merchant_id", "source", "created_at"),  # the Registration list, newest first
        ("batch_id",),  # billing_batch_idx (batch_id IS NOT NULL): All Report's CSV File Name filter
        ("merchant_id", None),  # billing_number_upper_idx (merchant, UPPER(billing_number)): searches ignoring case
        ("merchant_id", "card_expiry"),  # billing_card_expiry_idx: Cards expiring and the card notices
    }

"""The scheduler (R7, R8, R11): each merchant-local day runs once, in order, whatever restarts happen.

``tick`` (Celery beat, every few minutes) runs, for every merchant, each day from the one after its
last finished run up to its local today. ``run_day`` takes a lease on the day's ``SchedulerRun`` (a
second runner leaves at once; a crashed runner's lease expires and the next tick resumes), then works
through the due billings in chunks. A chunk is one database transaction: it locks its billings
(``skip_locked``), inserts their executions with ON CONFLICT DO NOTHING on (billing, execute date),
moves each billing's ``next_execute_date`` past the day, and queues the charges after commit. So a day
run twice, in parallel or after a crash mid-chunk, creates each execution once.
"""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta

from django.conf import settings
from django.db import connection
from django.db import transaction as db
from django.db.models import F, Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.models import Merchant
from payments import callbacks
from payments.models import CardSnapshot, Transaction
from payments.services import enqueue_charges

from .models import Billing, CancelledExecution, SchedulerRun
from .schedule import Schedule

logger = logging.getLogger(__name__)


def invoice_number(billing_number: str, day: date) -> str:
    """Deterministic: the same billing and day always name the same execution (R8, P6)."""
    return f"{billing_number}-{day:%Y%m%d}"


def due_billings(merchant: Merchant, day: date):
    # Uses the partial index billing_due_idx.
    return Billing.objects.filter(
        merchant=merchant, status=Billing.Status.ACTIVE, deleted_at__isnull=True, next_execute_date__lte=day
    )


def next_schedulable_day(merchant: Merchant, today: date | None = None) -> date:
    """The first day a changed schedule may still run: today, unless today's run is over already."""
    today = today or merchant.local_today()
    done = SchedulerRun.objects.filter(merchant=merchant, day=today, finished_at__isnull=False).exists()
    return today + timedelta(days=1) if done else today


def tick(now=None) -> list[SchedulerRun]:
    """Run every merchant's days that have come and not run, oldest first (catch-up after downtime)."""
    now = now or timezone.now()
    runs = []
    for merchant in Merchant.objects.order_by("pk"):
        today = timezone.localtime(now, merchant.tzinfo).date()
        last = (
            SchedulerRun.objects.filter(merchant=merchant, finished_at__isnull=False)
            .order_by("-day")
            .values_list("day", flat=True)
            .first()
        )
        start = last + timedelta(days=1) if last else today
        start = max(start, today - timedelta(days=settings.SCHEDULER_MAX_CATCH_UP_DAYS))
        day = start
        while day <= today:
            run = run_day(merchant, day, now=now)
            runs.append(run)
            if run.finished_at is None:
                break  # another runner holds this day: later days wait for it
            day += timedelta(days=1)
    return runs


def run_day(merchant: Merchant, day: date, *, now=None) -> SchedulerRun:
    now = now or timezone.now()
    run, _ = SchedulerRun.objects.get_or_create(merchant=merchant, day=day)
    if run.finished_at is not None:
        return run  # R8: a day runs once
    lease = now + timedelta(seconds=settings.SCHEDULER_LEASE_SECONDS)
    taken = SchedulerRun.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now), pk=run.pk, finished_at__isnull=True
    ).update(lease_until=lease)
    if not taken:
        run.refresh_from_db()
        return run
    started = timezone.now()
    while _run_chunk(merchant, day, run):
        SchedulerRun.objects.filter(pk=run.pk).update(
            lease_until=timezone.now() + timedelta(seconds=settings.SCHEDULER_LEASE_SECONDS)
        )
    if due_billings(merchant, day).exists():
        # What is left is locked by another runner (its lease expired while it worked): it, or the next
        # tick, finishes the day; ending it here could leave those billings for tomorrow.
        run.refresh_from_db()
        return run
    _queue_due_scheduled(merchant, day, run)
    SchedulerRun.objects.filter(pk=run.pk).update(finished_at=timezone.now(), lease_until=None)
    run.refresh_from_db()
    logger.info(
        "scheduler merchant=%s day=%s due=%s charged=%s reminded=%s skipped=%s single=%s retries=%s seconds=%.2f",
        merchant.code,
        day,
        run.due,
        run.charged,
        run.reminded,
        run.skipped,
        run.single_payments,
        run.retries,
        (run.finished_at - started).total_seconds(),
    )
    return run


def _run_chunk(merchant: Merchant, day: date, run: SchedulerRun) -> bool:
    """One chunk of due billings, set-based; False when none is left.

    The chunk's billings are locked (``skip_locked``) and read as plain tuples. Their executions are
    inserted with one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` per execute date (the date is a
    parameter, so the invoice number is ``<billing number>-YYYYMMDD`` in SQL; a row a run before created
    stays as it is), and their next dates are moved with one UPDATE: billings with the same schedule share
    the next date, so it is computed once per schedule (the few with cancelled dates get their own).
    Reminder deliveries are stored in one statement. The charges of the rows this chunk created (and
    only those) are queued after commit.
    """
    with db.atomic():
        rows = list(
            due_billings(merchant, day)
            .select_for_update(skip_locked=True)
            .order_by("next_execute_date")  # a range of billing_due_idx: each chunk reads its own rows only
            .annotate(schedule_text=Cast("schedule_data", TextField()))
            .values_list("pk", "next_execute_date", "billing_type", "schedule_text")[: settings.SCHEDULER_CHUNK]
        )
        if not rows:
            return False
        cancelled: dict[int, set[date]] = {}
        for billing_id, cancelled_day in CancelledExecution.objects.filter(
            merchant=merchant,
            billing__in=[pk for pk, _, _, _ in rows],
            execute_date__lte=day + timedelta(days=366),
        ).values_list("billing_id", "execute_date"):
            cancelled.setdefault(billing_id, set()).add(cancelled_day)

        executions: dict[date, list[int]] = {}  # execute date -> billing ids
        reminders: list[tuple[int, date]] = []
        moves: dict[date | None, list[int]] = {}  # next execute date -> billing ids
        next_of: dict[str, date | None] = {}  # schedule (as stored) -> its next date after the day
        skipped = 0
        for pk, execute_date, billing_type, schedule_text in rows:
            skip = cancelled.get(pk)
            if skip:
                next_date = Schedule.from_dict(json.loads(schedule_text)).next_date(day + timedelta(days=1), skip=skip)
            else:
                if schedule_text not in next_of:
                    schedule = Schedule.from_dict(json.loads(schedule_text))
                    next_of[schedule_text] = schedule.next_date(day + timedelta(days=1))
                next_date = next_of[schedule_text]
            moves.setdefault(next_date, []).append(pk)
            if skip and execute_date in skip:
                skipped += 1
            elif billing_type == Billing.Type.REMINDER:
                reminders.append((pk, execute_date))
            else:
                executions.setdefault(execute_date, []).append(pk)

        ids = []
        for execute_date, billing_ids in sorted(executions.items()):
            ids.extend(_insert_executions(billing_ids, execute_date))
        _move_next_dates(moves)
        if reminders:
            billings = Billing.objects.in_bulk([pk for pk, _ in reminders])
            callbacks.notify_many(
                merchant,
                "billing.reminder",
                [reminder_data(billings[pk], execute_date) for pk, execute_date in reminders],
            )
        enqueue_charges(ids, marked=True)  # inserted with queued_at set
        SchedulerRun.objects.filter(pk=run.pk).update(
            due=F("due") + len(rows),
            charged=F("charged") + len(ids),
            reminded=F("reminded") + len(reminders),
            skipped=F("skipped") + skipped,
        )
    return True


def _move_next_dates(moves: dict[date | None, list[int]]) -> None:
    """One UPDATE for the chunk: ``next_execute_date = CASE WHEN id IN (...) THEN <date> ... END``."""
    quote = connection.ops.quote_name
    cases, params = [], []
    for next_date, billing_ids in moves.items():
        if next_date is not None:  # a Full Date list that ran out: NULL, the ELSE
            cases.append(f"WHEN {quote('id')} IN ({', '.join(['%s'] * len(billing_ids))}) THEN %s")
            params.extend([*billing_ids, next_date])
    every = [pk for billing_ids in moves.values() for pk in billing_ids]
    value = f"CASE {' '.join(cases)} ELSE NULL END" if cases else "NULL"
    sql = (
        f"UPDATE {quote(Billing._meta.db_table)} SET {quote('next_execute_date')} = {value} "
        f"WHERE {quote('id')} IN ({', '.join(['%s'] * len(every))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params + every)


# An execution copies these from its billing (the card as the billing holds it, P2).
_COPIED = ("merchant_id", "billing_number", "customer_id", "amount", *(f.attname for f in CardSnapshot._meta.fields))


def _insert_executions(billing_ids: list[int], execute_date: date) -> list[int]:
    """Insert the executions of ``billing_ids`` on ``execute_date``; the ids of the rows created (a row
    that exists already, from an earlier run of the day, is left alone: ON CONFLICT DO NOTHING)."""
    quote = connection.ops.quote_name
    now = timezone.now()
    given = {
        "billing_id": (quote("id"), []),
        "invoice_number": (f"{quote('billing_number')} || %s", [f"-{execute_date:%Y%m%d}"]),
        "kind": ("%s", [Transaction.Kind.RECURRING]),
        "description": (f"%s || {quote('billing_number')} || %s", ["Recurring ", f" {execute_date:%Y-%m-%d}"]),
        "execute_date": ("%s", [execute_date]),
        "status": ("%s", [Transaction.Status.SCHEDULED]),
        "queued_at": ("%s", [now]),  # its charge is queued when this commits (enqueue_charges below)
    }
    columns, values, params = [], [], []
    for field in Transaction._meta.concrete_fields:
        if field.primary_key:
            continue
        if field.attname in given:
            expression, args = given[field.attname]
        elif field.attname in _COPIED:
            expression, args = quote(field.column), []
        else:  # the field's default, as a save would write it
            default = now if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False) else None
            value = default if default is not None else field.get_default()
            expression, args = "%s", [field.get_db_prep_save(value, connection)]
        columns.append(quote(field.column))
        values.append(expression)
        params.extend(args)
    sql = (
        f"INSERT INTO {quote(Transaction._meta.db_table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM {quote(Billing._meta.db_table)} "
        f"WHERE {quote('id')} IN ({', '.join(['%s'] * len(billing_ids))}) "
        f"ON CONFLICT DO NOTHING RETURNING {quote('id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params + billing_ids)
        return [pk for (pk,) in cursor.fetchall()]


def reminder_data(billing: Billing, execute_date: date) -> dict:
    return {
        "billing_number": billing.billing_number,
        "customer_id": billing.customer_id,
        "customer_name": billing.customer_name,
        "amount": int(billing.amount),
        "currency": "IDR",
        "execute_date": execute_date.isoformat(),
        "card": billing.card_masked,
    }


def _queue_due_scheduled(merchant: Merchant, day: date, run: SchedulerRun) -> None:
    """Single payments whose execute date has come (B5), and soft-declined charges whose retry day has come
    (R10): every scheduled row due by ``day`` that was never queued."""
    due = Transaction.objects.filter(
        merchant=merchant, status=Transaction.Status.SCHEDULED, queued_at__isnull=True
    ).filter(Q(next_retry_date__isnull=True, execute_date__lte=day) | Q(next_retry_date__lte=day))
    rows = list(due.values_list("pk", "kind", "next_retry_date"))
    with db.atomic():
        enqueue_charges([pk for pk, _, _ in rows])
    single = sum(1 for _, kind, retry in rows if kind == Transaction.Kind.SINGLE_PAYMENT and retry is None)
    SchedulerRun.objects.filter(pk=run.pk).update(
        single_payments=F("single_payments") + single,
        retries=F("retries") + sum(1 for _, _, retry in rows if retry is not None),
    )

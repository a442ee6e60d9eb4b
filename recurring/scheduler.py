"""The scheduler (R7, R8, R11): each merchant-local day runs once, in order, whatever restarts happen.

``tick`` (Celery beat, every few minutes) runs, for every merchant, each day from the one after its
last finished run up to its local today. ``run_day`` takes a lease on the day's ``SchedulerRun`` (a
second runner leaves at once; a crashed runner's lease expires and the next tick resumes), then works
through the due billings in chunks. A chunk is one transaction: it locks its billings (``skip_locked``),
inserts their executions with ON CONFLICT DO NOTHING on (billing, execute date), moves each billing's
``next_execute_date`` past the day, and queues the charges of the executions it created once it commits.
So a day run twice, in parallel or after a crash mid-chunk, creates and queues each execution once, and a
billing is never moved past a day without its execution.
"""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta

from django.conf import settings
from django.db import connection
from django.db import transaction as db
from django.db.models import Case, DateField, F, Q, TextField, Value, When
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
    """Run ``merchant``'s ``day`` unless it ran already or another runner holds it; its ``SchedulerRun``."""
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
    """One chunk of due billings in one transaction; False when none is left.

    The chunk's billings are locked (``skip_locked``: a second runner takes the next ones), their
    executions inserted (a row an earlier run of the day created is left alone), their next dates moved
    past the day and their reminders stored; the charges of the executions this chunk created, and only
    those, are queued when it commits. A chunk that fails leaves nothing behind: its billings stay due.
    """
    with db.atomic():
        rows = _lock_chunk(merchant, day)
        if not rows:
            return False
        cancelled = _cancelled_dates(merchant, [row.pk for row in rows], day + timedelta(days=366))
        executions, reminders, skipped = _sort_out(rows, cancelled)
        created: list[int] = []
        for execute_date, billing_ids in sorted(executions.items()):
            created += _insert_executions(billing_ids, execute_date)
        _move_next_dates(*_next_dates(rows, cancelled, after=day + timedelta(days=1)))
        _remind(merchant, reminders)
        SchedulerRun.objects.filter(pk=run.pk).update(
            due=F("due") + len(rows),
            charged=F("charged") + len(created),
            reminded=F("reminded") + len(reminders),
            skipped=F("skipped") + skipped,
        )
        enqueue_charges(created, marked=True)  # inserted with queued_at set; sent on commit
    return True


def _lock_chunk(merchant: Merchant, day: date) -> list:
    """Up to SCHEDULER_CHUNK due billings, locked, as (pk, next_execute_date, billing_type, schedule_text)
    rows; billings another runner holds are left to it."""
    rows = (
        due_billings(merchant, day)
        .select_for_update(skip_locked=True)
        .order_by("next_execute_date")  # a range of billing_due_idx: each chunk reads its own rows only
        .annotate(schedule_text=Cast("schedule_data", TextField()))  # the key of _next_dates' cache
        .values_list("pk", "next_execute_date", "billing_type", "schedule_text", named=True)
    )
    return list(rows[: settings.SCHEDULER_CHUNK])


def _sort_out(rows: list, cancelled: dict[int, set[date]]) -> tuple[dict[date, list[int]], list, int]:
    """What the chunk's billings get: executions (execute date -> billing ids), reminders ((billing id,
    execute date) pairs) and the number skipped on a cancelled execute date."""
    executions: dict[date, list[int]] = {}
    reminders: list[tuple[int, date]] = []
    skipped = 0
    for row in rows:
        if row.next_execute_date in cancelled.get(row.pk, ()):
            skipped += 1
        elif row.billing_type == Billing.Type.REMINDER:
            reminders.append((row.pk, row.next_execute_date))
        else:
            executions.setdefault(row.next_execute_date, []).append(row.pk)
    return executions, reminders, skipped


def _next_dates(rows: list, cancelled: dict[int, set[date]], after: date) -> tuple[list[int], list[date | None]]:
    """The chunk's billing ids and their next execute dates from ``after`` on. Billings with the same
    schedule (as stored) share the next date, so it is computed once per schedule; a billing with
    cancelled dates gets its own."""
    ids, dates = [], []
    next_of: dict[str, date | None] = {}
    for row in rows:
        skip = cancelled.get(row.pk)
        if skip:
            next_date = Schedule.from_dict(json.loads(row.schedule_text)).next_date(after, skip=skip)
        elif row.schedule_text in next_of:
            next_date = next_of[row.schedule_text]
        else:
            schedule = Schedule.from_dict(json.loads(row.schedule_text))
            next_date = next_of[row.schedule_text] = schedule.next_date(after)
        ids.append(row.pk)
        dates.append(next_date)
    return ids, dates


def _remind(merchant: Merchant, reminders: list[tuple[int, date]]) -> None:
    """The ``billing.reminder`` callbacks of the chunk's Reminder billings, stored in one statement."""
    if not reminders:
        return
    billings = Billing.objects.only(*REMINDER_FIELDS).in_bulk([pk for pk, _ in reminders])
    callbacks.notify_many(
        merchant,
        "billing.reminder",
        [reminder_data(billings[pk], execute_date) for pk, execute_date in reminders],
    )


def _cancelled_dates(merchant: Merchant, billing_ids: list[int], until: date) -> dict[int, set[date]]:
    """The cancelled execute dates (P6) of the chunk's billings up to ``until``: billing id -> dates."""
    rows = CancelledExecution.objects.filter(merchant=merchant, billing_id__in=billing_ids, execute_date__lte=until)
    cancelled: dict[int, set[date]] = {}
    for billing_id, execute_date in rows.values_list("billing_id", "execute_date"):
        cancelled.setdefault(billing_id, set()).add(execute_date)
    return cancelled


def _move_next_dates(billing_ids: list[int], next_dates: list[date | None]) -> None:
    """One UPDATE for the chunk: ``CASE WHEN id IN (...) THEN <date> ... END``, one branch per distinct date
    (a Full Date list that ran out: NULL, the default)."""
    by_date: dict[date, list[int]] = {}
    for pk, next_date in zip(billing_ids, next_dates, strict=True):
        if next_date is not None:
            by_date.setdefault(next_date, []).append(pk)
    branches = [When(pk__in=ids, then=Value(next_date)) for next_date, ids in by_date.items()]
    Billing.objects.filter(pk__in=billing_ids).update(
        next_execute_date=Case(*branches, default=None, output_field=DateField())
    )


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
        "queued_at": ("%s", [now]),  # queued on commit by the chunk (enqueue_charges(..., marked=True))
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
    ids = ", ".join(["%s"] * len(billing_ids))
    sql = (
        f"INSERT INTO {quote(Transaction._meta.db_table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM {quote(Billing._meta.db_table)} WHERE {quote('id')} IN ({ids}) "
        f"ON CONFLICT DO NOTHING RETURNING {quote('id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params + billing_ids)
        return [pk for (pk,) in cursor.fetchall()]


REMINDER_FIELDS = ("billing_number", "customer_id", "customer_name", "amount", "card_masked")  # reminder_data's


def reminder_data(billing: Billing, execute_date: date) -> dict:
    """The ``billing.reminder`` callback's data; it reads REMINDER_FIELDS only (the scheduler loads no more)."""
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

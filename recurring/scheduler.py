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

import logging
from datetime import date, timedelta

from django.conf import settings
from django.db import transaction as db
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Merchant
from payments import callbacks
from payments.models import Transaction
from payments.services import enqueue_charges

from .models import Billing, CancelledExecution, SchedulerRun

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
    """One chunk of due billings; False when none is left."""
    with db.atomic():
        billings = list(
            due_billings(merchant, day).select_for_update(skip_locked=True).order_by("pk")[: settings.SCHEDULER_CHUNK]
        )
        if not billings:
            return False
        cancelled: dict[int, set[date]] = {}
        for billing_id, cancelled_day in CancelledExecution.objects.filter(
            merchant=merchant, billing__in=billings, execute_date__lte=day + timedelta(days=366)
        ).values_list("billing_id", "execute_date"):
            cancelled.setdefault(billing_id, set()).add(cancelled_day)

        executions, reminders, skipped = [], [], 0
        for billing in billings:
            execute_date = billing.next_execute_date
            skip = cancelled.get(billing.pk, set())
            if execute_date in skip:
                skipped += 1
            elif billing.billing_type == Billing.Type.REMINDER:
                reminders.append((billing, execute_date))
            else:
                executions.append(_execution(billing, execute_date))
            billing.next_execute_date = billing.schedule.next_date(
                max(execute_date, day) + timedelta(days=1), skip=skip
            )
        Transaction.objects.bulk_create(executions, ignore_conflicts=True)
        Billing.objects.bulk_update(billings, ["next_execute_date"])
        for billing, execute_date in reminders:
            callbacks.notify(merchant, "billing.reminder", reminder_data(billing, execute_date))
        ids = list(
            Transaction.objects.filter(
                merchant=merchant,
                billing__in=[tx.billing_id for tx in executions],
                execute_date__in={tx.execute_date for tx in executions},
                status=Transaction.Status.SCHEDULED,
                queued_at__isnull=True,
            ).values_list("pk", flat=True)
        )
        enqueue_charges(ids)
        SchedulerRun.objects.filter(pk=run.pk).update(
            due=F("due") + len(billings),
            charged=F("charged") + len(ids),
            reminded=F("reminded") + len(reminders),
            skipped=F("skipped") + skipped,
        )
    return True


def _execution(billing: Billing, execute_date: date) -> Transaction:
    return Transaction(
        merchant_id=billing.merchant_id,
        billing=billing,
        invoice_number=invoice_number(billing.billing_number, execute_date),
        billing_number=billing.billing_number,
        customer_id=billing.customer_id,
        kind=Transaction.Kind.RECURRING,
        description=f"Recurring {billing.billing_number} {execute_date:%Y-%m-%d}",
        amount=billing.amount,
        execute_date=execute_date,
        card_token=billing.card_token,
        card_masked=billing.card_masked,
        card_fingerprint=billing.card_fingerprint,
        card_expiry=billing.card_expiry,
        card_issuer=billing.card_issuer,
        card_brand=billing.card_brand,
        holder_name=billing.holder_name,
        holder_phone=billing.holder_phone,
    )


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

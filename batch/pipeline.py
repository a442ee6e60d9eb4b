"""Validating and processing batches (B2-B6; DESIGN "Batches"): the Celery workers' side of a batch.

Validation and processing run as
Celery tasks and report progress in ``rows_done``. Processing works in chunks, one database transaction
each, and counts the chunks it committed, so a failure leaves whole chunks only and a resume continues
after them. The raw file holds card numbers: it is deleted once processing is done (or the file is
refused); what stays is the rows with masked cards, and tokens on the billings and transactions.
"""

from __future__ import annotations

import logging
import time
import traceback
from datetime import date
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.db import IntegrityError, connection
from django.db import transaction as db
from django.db.models import F
from django.utils import timezone

from billing_bo.lib.cards import mask_pans_in_text
from billing_bo.lib.phones import normalise_phone
from payments import services as payments
from payments.acquirer import AcquirerError, CardRejected
from payments.models import Transaction
from recurring.models import Billing
from recurring.schedule import Schedule

# The first day a schedule may still run is the scheduler's rule (its runs are recurring's records);
# batch/ creates billings, as recurring/ does, so it may ask recurring/ (DESIGN: data flows from both to
# payments/, and neither is imported by payments/).
from recurring.scheduler import next_schedulable_day

from . import rawfile, reader, rows, validation
from .models import Batch, BatchRow
from .services import give_up, raw_path, renew_lease, take_lease

logger = logging.getLogger(__name__)
# Rows per store step: one database transaction each, and a progress update after it.
ROWS_PER_STORE = 10_000


def validation_limits(batch: Batch, keys: pd.Series, billing_numbers: pd.Series | None = None) -> dict:
    """The keyword arguments of ``validation.validate`` for ``batch`` whose key column is ``keys``: the
    merchant's today, charge limits, stored keys and, for a single payment file
    whose billing_number column is ``billing_numbers``, the merchant's billings it may name. For a
    registration file "today" is the first day a schedule may still run (``next_schedulable_day``: tomorrow
    once today's run is over), as processing uses it: a Full Date before it is invalid, not a row that fails
    at Process."""
    merchant = batch.merchant
    registration = batch.kind == Batch.Kind.REGISTRATION
    min_amount, max_amount = merchant.charge_limits
    limits = {
        "today": next_schedulable_day(merchant) if registration else merchant.local_today(),
        "min_amount": min_amount,
        "max_amount": max_amount,
        "stored_keys": _stored_keys(batch, keys),
    }
    if billing_numbers is not None:
        limits["billings"] = _stored_keys(batch, billing_numbers, "billing_number")
    return limits


def _stored_keys(batch: Batch, candidates: pd.Series, field: str | None = None) -> set[str] | pd.Series:
    """The merchant's billing (or invoice) numbers that the file may repeat (``field``: the batch's key
    unless given; billing_number reads the billings): the candidates themselves when the file is small;
    else every key of the merchant, on PostgreSQL as one text value (``string_agg``: one row to fetch, not
    one per key)."""
    field = field or ("billing_number" if batch.kind == Batch.Kind.REGISTRATION else "invoice_number")
    model = Billing if field == "billing_number" else Transaction
    keys = model.objects.filter(merchant_id=batch.merchant_id)
    if len(candidates) <= 2000:
        return set(keys.filter(**{f"{field}__in": list(candidates)}).values_list(field, flat=True))
    if connection.vendor != "postgresql":
        return set(keys.values_list(field, flat=True).iterator(chunk_size=20_000))
    sql, params = keys.values_list(field).query.sql_with_params()
    # A key holding the separator cannot match a file's key (a reference has no newline): left out.
    query = f"SELECT string_agg(k, E'\\n') FILTER (WHERE strpos(k, E'\\n') = 0) FROM ({sql}) AS keys (k)"
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        text = cursor.fetchone()[0]
    # Split by Arrow: no Python string per key.
    return pd.Series(pc.split_pattern(pa.array([text]), "\n").flatten() if text else [], dtype=str)


def _read(batch: Batch) -> pd.DataFrame:
    """The batch's raw file (decrypted in memory) as a frame of text cells."""
    raw = rawfile.load(raw_path(batch))
    return reader.read(raw, reader.detect_format(batch.file_name, raw[:16]), batch.kind)


def _reject(batch: Batch, message: str) -> None:
    Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.REJECTED, message=message, lease_until=None)
    raw_path(batch).unlink(missing_ok=True)


def validate(batch_id: int) -> str:
    """Read and check every cell; store the rows (cards masked) with their errors. Safe to run again.
    Whatever goes wrong ends the step with a reason (never a batch left validating)."""
    batch = Batch.objects.select_related("merchant").get(pk=batch_id)
    if batch.status not in (Batch.Status.UPLOADED, Batch.Status.VALIDATING):
        return batch.status
    Batch.objects.filter(pk=batch.pk, status=Batch.Status.UPLOADED).update(status=Batch.Status.VALIDATING)
    if not take_lease(batch, Batch.Status.VALIDATING):
        return "busy"  # another worker validates it
    batch.status = Batch.Status.VALIDATING
    try:
        return _validate(batch)
    except FileNotFoundError:
        return give_up(batch, "The uploaded file is no longer on the server")
    except Exception as error:  # noqa: BLE001 - any error: a final state and a reason, not a batch stuck validating
        _log_failure("batch check failed", batch, error)
        return give_up(batch, f"Checking stopped on an unexpected error ({type(error).__name__}, batch {batch.pk})")


def _log_failure(what: str, batch: Batch, error: Exception) -> None:
    """The error and its traceback, card numbers masked (a message may quote a cell)."""
    trace = mask_pans_in_text("".join(traceback.format_exception(error)))
    logger.error("%s batch=%s error=%s\n%s", what, batch.pk, type(error).__name__, trace)


def _validate(batch: Batch) -> str:
    Batch.objects.filter(pk=batch.pk).update(rows_done=0)
    path = raw_path(batch)
    clock = _Phases()
    try:
        frame = _read(batch)
    except reader.FileRejected as refusal:
        _reject(batch, str(refusal))
        return Batch.Status.REJECTED
    renew_lease(batch, total_rows=len(frame))  # reading a large file takes a while; the progress has a total
    clock.done("read")
    key = "billing_number" if batch.kind == Batch.Kind.REGISTRATION else "invoice_number"
    billing_numbers = frame["billing_number"] if batch.kind == Batch.Kind.SINGLE_PAYMENT else None
    limits = validation_limits(batch, frame[key], billing_numbers)
    clock.done("stored_keys")
    result = validation.validate(frame, batch.kind, **limits)
    clock.done("validate")
    shown = rows.text_table(_shown(frame))
    del frame
    BatchRow.objects.filter(batch=batch).delete()  # a redelivered task starts over
    for start in range(0, shown.num_rows, ROWS_PER_STORE):
        end = min(start + ROWS_PER_STORE, shown.num_rows)
        with db.atomic():
            rows.store(rows.stored_rows(batch, shown, result, key, start, end))
        renew_lease(batch, rows_done=end)
    clock.done("store")
    total_rows, invalid_rows = shown.num_rows, result.invalid_count
    status = Batch.Status.INVALID if invalid_rows else Batch.Status.VALIDATED
    Batch.objects.filter(pk=batch.pk).update(
        status=status,
        lease_until=None,
        total_rows=total_rows,
        invalid_rows=invalid_rows,
        total_amount=result.total_amount,
        rows_done=total_rows,
    )
    if invalid_rows:
        path.unlink(missing_ok=True)  # nothing will be processed: the card numbers go now
    logger.info(
        "batch validated batch=%s rows=%s invalid=%s seconds=%s", batch.pk, total_rows, invalid_rows, clock.seconds
    )
    return status


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows as the back office keeps them: card numbers masked, PANs in free text masked."""
    shown = frame.copy()
    shown["card_number"] = validation.mask_card_column(frame["card_number"])
    for column in validation.TEXT_COLUMNS_WITH_PAN:
        if column in shown:
            shown[column] = validation.mask_pans_in_column(shown[column])
    return shown


class _Phases:
    """Seconds per step of a validation, for the log line (and B1's table)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 3)
        self._last = now


def process(batch_id: int) -> str:
    """Create the billings or transactions chunk by chunk; whatever goes wrong ends the step with a reason
    (FAILED: Process resumes after the committed chunks)."""
    batch = Batch.objects.select_related("merchant").get(pk=batch_id)
    if batch.status != Batch.Status.PROCESSING:
        return batch.status
    if not take_lease(batch, Batch.Status.PROCESSING):
        return "busy"  # another worker processes it
    batch.refresh_from_db()  # chunks_done as the last holder left it
    try:
        return _process(batch)
    except Exception as error:  # noqa: BLE001 - any error: a final state and a reason, not a batch stuck processing
        _log_failure("batch processing failed", batch, error)
        return give_up(batch, f"Processing stopped on an unexpected error ({type(error).__name__}, batch {batch.pk})")


def _process(batch: Batch) -> str:
    path = raw_path(batch)
    try:
        frame = _read(batch)
    except (OSError, reader.FileRejected, rawfile.Unreadable) as exc:
        Batch.objects.filter(pk=batch.pk).update(
            status=Batch.Status.FAILED, lease_until=None, message=f"The uploaded file cannot be read again: {exc}"
        )
        return Batch.Status.FAILED
    merchant = batch.merchant
    chunk = settings.BATCH_CHUNK
    first_day = next_schedulable_day(merchant)
    for index in range(batch.chunks_done, -(-len(frame) // chunk)):
        rows = frame.iloc[index * chunk : (index + 1) * chunk]
        try:
            _process_chunk(batch, rows, index * chunk, first_day)
        except IntegrityError:
            Batch.objects.filter(pk=batch.pk).update(
                status=Batch.Status.FAILED,
                lease_until=None,
                message=f"Rows {index * chunk + 2}-{index * chunk + len(rows) + 1}: a billing or invoice number was "
                "registered meanwhile by another upload. Nothing of these rows was created; the rows before are.",
            )
            return Batch.Status.FAILED
        except Exception as exc:  # a clear final state whatever happened; the chunk rolled back
            _log_failure(f"batch processing failed chunk={index}", batch, exc)
            Batch.objects.filter(pk=batch.pk).update(
                status=Batch.Status.FAILED,
                lease_until=None,
                message=f"Processing stopped at rows {index * chunk + 2}-{index * chunk + len(rows) + 1}: {type(exc).__name__}. Process again to resume.",
            )
            return Batch.Status.FAILED
    Batch.objects.filter(pk=batch.pk).update(
        status=Batch.Status.DONE, processed_at=timezone.now(), rows_done=len(frame), lease_until=None
    )
    path.unlink(missing_ok=True)
    if batch.kind == Batch.Kind.SINGLE_PAYMENT and first_day > merchant.local_today():
        # Today's scheduler run is over: rows due today are charged now, not tomorrow.
        due = Transaction.objects.filter(
            merchant=merchant,
            batch=batch,
            status=Transaction.Status.SCHEDULED,
            execute_date__lte=merchant.local_today(),
            queued_at__isnull=True,
        ).values_list("pk", flat=True)
        with db.atomic():
            payments.enqueue_charges(list(due))
    logger.info("batch processed batch=%s rows=%s", batch.pk, len(frame))
    return Batch.Status.DONE


def _card(row) -> dict:
    month, year = row["expiry"].split("/")
    return payments.tokenize_card(
        row["card_number"],
        int(month),
        2000 + int(year),
        None,
        mask_pans_in_text(row["holder_name"]),
        row["holder_phone"],
    )


def _process_chunk(batch: Batch, rows: pd.DataFrame, offset: int, first_day: date) -> None:
    records = rows.to_dict("records")
    positions = range(offset, offset + len(rows))
    cards, outcomes, schedules = {}, {}, {}
    for position, row in zip(positions, records, strict=True):
        if batch.kind == Batch.Kind.REGISTRATION:
            # Validated before; a Full Date of a day whose run ended since then no longer runs: this row fails.
            cells = (row[column] for column in validation.SCHEDULE_COLUMNS)
            schedules[position], faults = validation.parse_schedule(*cells, today=first_day)
            if schedules[position] is None:
                outcomes[position] = "; ".join(reason for _, reason in faults)
                continue
        try:
            cards[position] = _card(row)
        except (CardRejected, AcquirerError) as refusal:
            outcomes[position] = f"Card refused by the bank: {refusal}"
    execute_dates = (
        validation.parse_dates(rows["execute_date"]).dt.date.tolist()  # one vectorised parse per chunk
        if batch.kind == Batch.Kind.SINGLE_PAYMENT
        else [None] * len(records)
    )
    with db.atomic():
        created = []
        for position, row, execute_date in zip(positions, records, execute_dates, strict=True):
            if position in cards:
                created.append(_build(batch, row, cards[position], first_day, execute_date, schedules.get(position)))
                outcomes[position] = "created"
        model = Billing if batch.kind == Batch.Kind.REGISTRATION else Transaction
        model.objects.bulk_create(created)
        mine = BatchRow.objects.filter(merchant_id=batch.merchant_id, batch=batch)
        done = [position + 2 for position, outcome in outcomes.items() if outcome == "created"]
        mine.filter(row_number__in=done).update(status=BatchRow.Status.CREATED, outcome="created")
        for position, outcome in outcomes.items():
            if outcome != "created":
                mine.filter(row_number=position + 2).update(status=BatchRow.Status.FAILED, outcome=outcome)
        renew_lease(batch, chunks_done=F("chunks_done") + 1, rows_done=offset + len(rows))


def _build(batch: Batch, row: dict, card: dict, first_day: date, execute_date: date | None, schedule: dict | None):
    amount = Decimal(row["amount"].replace(".", ""))
    if batch.kind == Batch.Kind.REGISTRATION:
        billing = Billing(
            merchant_id=batch.merchant_id,
            batch=batch,
            billing_number=row["billing_number"],
            customer_id=row["customer_id"],
            customer_name=mask_pans_in_text(row["customer_name"]),
            email=row["email"],
            phone=normalise_phone(row["phone"]),
            amount=amount,
            billing_type=row["type"].lower(),
            source=Billing.Source.BATCH,
            **card,
        )
        billing.schedule = Schedule.from_dict(schedule)
        billing.next_execute_date = billing.schedule.next_date(first_day)
        return billing
    return Transaction(
        merchant_id=batch.merchant_id,
        batch=batch,
        invoice_number=row["invoice_number"],
        billing_number=row["billing_number"],
        customer_id=row["customer_id"],
        kind=Transaction.Kind.SINGLE_PAYMENT,
        description=mask_pans_in_text(row["description"]),  # at most 255: validated
        amount=amount,
        execute_date=execute_date,
        **card,
    )

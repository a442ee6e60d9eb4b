"""Validating and processing batches (B2-B6; DESIGN "Batches"): the Celery workers' side of a batch.

Validation and processing run as
Celery tasks and report progress in ``rows_done``. Processing works in chunks, one database transaction
each, and counts the chunks it committed, so a failure leaves whole chunks only and a resume continues
after them. The raw file holds card numbers: it is deleted once processing is done (or the file is
refused); what stays is the rows with masked cards, and tokens on the billings and transactions.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import queue
import threading
import time
import traceback
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from decimal import Decimal

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections
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
from recurring.scheduler import next_schedulable_day

from . import rawfile, reader, validation
from .columns import names
from .models import Batch, BatchRow
from .services import give_up, raw_path, renew_lease, take_lease

logger = logging.getLogger(__name__)
# Rows per store step (a progress update between steps): bulk_create on SQLite, COPY on PostgreSQL.
ROWS_PER_STORE = {False: 5000, True: 12_500}
# PostgreSQL: rows validated at once (a chunk has a fixed cost: not too small); threads that mask, build
# and COPY a part (STORE_THREADS), of which COPY_CONNECTIONS COPY at once.
ROWS_PER_VALIDATION = 50_000
STORE_THREADS = 4
COPY_CONNECTIONS = 2

try:  # Arrow builds the COPY payload by column (requirements.txt pins pyarrow)
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - then the rows go through bulk_create, slower
    pa = pc = None


def validation_limits(batch: Batch, keys: pd.Series, billing_numbers: pd.Series | None = None) -> dict:
    """The keyword arguments of ``validation.validate`` for ``batch`` whose key column is ``keys``: the
    merchant's today, charge limits, stored keys (still being fetched) and, for a single payment file
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


def _stored_keys(batch: Batch, candidates: pd.Series, field: str | None = None) -> set[str] | pd.Series | Future:
    """The merchant's billing (or invoice) numbers that the file may repeat (``field``: the batch's key
    unless given; billing_number reads the billings): the candidates themselves
    when the file is small; else every key of the merchant, on PostgreSQL as one text value
    (``string_agg``) split by Arrow (no Python string per key), as a Future that runs the query on this
    thread's connection when validation first asks for it: ``validation.validate`` asks while its pool
    runs the first pass, so the server's work overlaps it, and no connection or thread is opened for it
    (inside a transaction the query sees what the transaction wrote)."""
    field = field or ("billing_number" if batch.kind == Batch.Kind.REGISTRATION else "invoice_number")
    model = Billing if field == "billing_number" else Transaction
    rows = model.objects.filter(merchant_id=batch.merchant_id)
    if len(candidates) <= 2000:
        return set(rows.filter(**{f"{field}__in": list(candidates)}).values_list(field, flat=True))
    if connection.vendor == "postgresql" and pa is not None:
        sql, params = rows.values_list(field).query.sql_with_params()
        # A key holding the separator cannot match a file's key (a reference has no newline): left out.
        query = f"SELECT string_agg(k, E'\\n') FILTER (WHERE strpos(k, E'\\n') = 0) FROM ({sql}) AS keys (k)"
        return _OnFirstAsk(lambda: _fetch_keys(query, params))
    return set(rows.values_list(field, flat=True).iterator(chunk_size=20_000))


class _OnFirstAsk(Future):
    """A Future whose work runs in the thread that first asks for its result (and once)."""

    def __init__(self, work):
        super().__init__()
        self._work = work
        self._lock = threading.Lock()

    def result(self, timeout=None):
        with self._lock:
            work, self._work = self._work, None
        if work is not None:
            try:
                self.set_result(work())
            except BaseException as error:
                self.set_exception(error)
        return super().result(timeout)


def _fetch_keys(query: str, params) -> pd.Series:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        text = cursor.fetchone()[0]
    if not text:
        return pd.Series([], dtype=str)
    keys = pc.list_flatten(pc.split_pattern(pa.array([text], pa.large_string()), "\n"))
    return pd.Series(pd.arrays.ArrowStringArray(keys))


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
    BatchRow.objects.filter(batch=batch).delete()  # a redelivered task starts over
    total_rows = len(frame)
    if connection.vendor == "postgresql" and pa is not None:
        invalid_rows, total_amount = _validate_and_copy(batch, frame, key, limits)
        clock.done("validate_and_store")
    else:
        result = validation.validate(frame, batch.kind, **limits)
        clock.done("validate")
        shown = _shown(frame)
        del frame
        renew_lease(batch)
        for start in range(0, len(shown), ROWS_PER_STORE[False]):
            renew_lease(batch, rows_done=_insert_rows(batch, shown, result, key, start))
        clock.done("store")
        invalid_rows, total_amount = result.invalid_count, int(result.amounts.fillna(0).sum())
    status = Batch.Status.INVALID if invalid_rows else Batch.Status.VALIDATED
    Batch.objects.filter(pk=batch.pk).update(
        status=status,
        lease_until=None,
        total_rows=total_rows,
        invalid_rows=invalid_rows,
        total_amount=Decimal(total_amount),
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


def _insert_rows(batch: Batch, shown: pd.DataFrame, result: validation.Result, key: str, start: int) -> int:
    """Rows ``start`` ... of the file as BatchRows through the ORM (SQLite: tests and `make run`)."""
    end = min(start + ROWS_PER_STORE[False], len(shown))
    part = shown.iloc[start:end]
    records = part.to_dict("records")
    errors = result.errors
    invalid = result.invalid.to_numpy()
    amounts = result.amounts.to_numpy()
    BatchRow.objects.bulk_create(
        [
            BatchRow(
                merchant_id=batch.merchant_id,
                batch_id=batch.pk,
                row_number=position + 2,  # the header is line 1
                data=record,
                errors=errors.get(position, {}),
                status=BatchRow.Status.INVALID if invalid[position] else BatchRow.Status.VALID,
                amount=None if np.isnan(amounts[position]) else Decimal(int(amounts[position])),
                reference=record[key][:64],
            )
            for position, record in zip(range(start, end), records, strict=True)
        ]
    )
    return end


def _copy_escaped(text):
    """Text made safe for a field of COPY's text format: backslash, tab, newline and carriage return."""
    for char, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        text = pc.replace_substring(text, char, escaped)
    return text


def _copy_text(text: str) -> str:
    """``_copy_escaped`` for one Python string."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _literal(text: str):
    return pa.scalar(text, pa.large_string())


def _arrow_text(column: pd.Series):
    """A text column as one large_string Arrow array (no copy of the cells when pandas holds them in Arrow)."""
    return validation._arrow(column).cast(pa.large_string())


def _escaped_cells(columns: list) -> tuple[list, np.ndarray]:
    """The cells as they stand inside the row's JSON array in COPY's text format, and the rows with a
    control character in a cell (JSON and COPY escape it: those rows go through the json module; a file
    has few or none). The other characters JSON escapes, double quote and backslash, are escaped here
    by Arrow in the cells that hold them (a backslash becomes four, a quote a backslash pair and the
    quote: JSON's escape with its backslash doubled for COPY), without Python per cell or row. The
    characters are found with numpy over each column's bytes."""
    control = np.zeros(len(columns[0]) if columns else 0, dtype=bool)
    escaped = []
    for array in columns:
        bounds, raw = validation._array_buffers(array)
        text = raw[bounds[0] : bounds[-1]]
        hits = np.flatnonzero(text < 0x20)
        if len(hits):
            control[np.searchsorted(bounds, hits + bounds[0], side="right") - 1] = True
        hits = np.flatnonzero((text == ord('"')) | (text == ord("\\")))
        if len(hits):  # only those cells are rewritten
            rows = np.zeros(len(array), dtype=bool)
            rows[np.searchsorted(bounds, hits + bounds[0], side="right") - 1] = True
            cells = pc.replace_substring(array.filter(rows), "\\", "\\\\\\\\")
            array = pc.replace_with_mask(array, pa.array(rows), pc.replace_substring(cells, '"', '\\\\"'))
        escaped.append(array)
    return escaped, control


def _errors_text(result: validation.Result):
    """Each row's errors as the JSON object ``{"column": "reason", ...}`` escaped for COPY ("{}" for a
    valid row), built by column for the invalid rows: one ``take`` of the column's reasons by the rows'
    reason codes, the pieces joined element-wise."""
    invalid = result.invalid.to_numpy()
    count = int(invalid.sum())
    which = np.full(len(invalid), count)  # per row: its object among the invalid rows', or "{}" after them
    which[invalid] = np.arange(count)
    if not count:
        return pa.array(["{}"], pa.large_string()).take(which)
    pieces = []
    messages = [json.dumps(message, ensure_ascii=False) for message in result.messages]  # once per result
    for column, codes in result.codes.items():
        codes = codes[invalid]
        if codes.any():
            name = json.dumps(column, ensure_ascii=False)
            used = np.unique(codes)  # only the column's reasons that occur, numbered anew
            entries = [_copy_text(f"{name}: {messages[code]}, ") if code else "" for code in used.tolist()]
            codes = np.searchsorted(used, codes)
            pieces.append(pa.array(entries, pa.large_string()).take(pa.array(codes)))
    inner = pc.utf8_slice_codeunits(pc.binary_join_element_wise(*pieces, _literal("")), 0, -2)  # the last ", "
    objects = pc.binary_join_element_wise(_literal("{"), inner, _literal("}"), _literal(""))
    return pa.concat_arrays([objects, pa.array(["{}"], pa.large_string())]).take(which)


class _CopyColumns:
    """The fields of the BatchRows of ``shown`` (the file's rows from position ``first`` on) as Arrow
    arrays; the COPY text of rows start ... end is a slice of each, joined element-wise (``lines``)."""

    def __init__(self, batch: Batch, shown: pd.DataFrame, result: validation.Result, key: str, first: int = 0):
        self.batch = batch
        self.shown = shown
        self.cells, self.escape = _escaped_cells([_arrow_text(shown[column]) for column in names(batch.kind)])
        self.row_numbers = pc.cast(pa.array(np.arange(first + 2, first + len(shown) + 2)), pa.large_string())
        self.errors = _errors_text(result)
        invalid = result.invalid.to_numpy()
        self.status = pc.if_else(
            pa.array(invalid), _literal(BatchRow.Status.INVALID.value), _literal(BatchRow.Status.VALID.value)
        )
        amounts = result.amounts.to_numpy(dtype=float)
        known = pa.array(amounts, mask=np.isnan(amounts)).cast(pa.int64())
        self.amounts = pc.fill_null(pc.cast(known, pa.large_string()), _literal("\\N"))
        self.references = pc.utf8_slice_codeunits(_arrow_text(shown[key]), 0, 64)

    def lines(self, start: int, end: int) -> memoryview:
        """Rows ``start`` ... ``end`` as the text of a ``COPY`` into BatchRow: the cells joined into the row's
        JSON array (BatchRow.data, ``columns.pack``), then the fields joined by tabs."""
        size = end - start
        cells = [array.slice(start, size) for array in self.cells]
        kind = self.batch.kind
        data = pc.binary_join_element_wise(
            _literal(f'["{kind}","'),  # compact separators, as RowCells writes them
            pc.binary_join_element_wise(*cells, _literal('","')),
            _literal('"]'),
            _literal(""),
        )
        references = _copy_escaped(self.references.slice(start, size))
        escape = self.escape[start:end]
        if escape.any():  # the few rows with control characters: through the json module
            rows = self.shown.iloc[start:end][escape].itertuples(index=False, name=None)
            texts = [_copy_text(json.dumps([kind, *row], ensure_ascii=False, separators=(",", ":"))) for row in rows]
            data = pc.replace_with_mask(data, pa.array(escape), pa.array(texts, pa.large_string()))
        lines = pc.binary_join_element_wise(
            _literal(str(self.batch.merchant_id)),
            _literal(str(self.batch.pk)),
            self.row_numbers.slice(start, size),
            data,
            self.errors.slice(start, size),
            self.status.slice(start, size),
            self.amounts.slice(start, size),
            references,
            _literal("\n"),  # outcome: empty, then the end of the line
            _literal("\t"),
        )
        if isinstance(lines, pa.ChunkedArray):
            lines = lines.combine_chunks()
        _, offsets, data_buffer = lines.buffers()
        bounds = np.frombuffer(offsets, dtype=np.int64)[lines.offset : lines.offset + len(lines) + 1]
        return memoryview(data_buffer)[bounds[0] : bounds[-1]]


def _validate_and_copy(batch: Batch, frame: pd.DataFrame, key: str, limits: dict) -> tuple[int, int]:
    """Validate ROWS_PER_VALIDATION rows at a time and store their rows (cards masked) with one ``COPY``
    per ROWS_PER_STORE rows (PostgreSQL), progress after each; (invalid rows, total amount).

    This thread only validates; each part of ROWS_PER_STORE rows is masked, turned into COPY text and
    copied on one of STORE_THREADS threads (COPY_CONNECTIONS of their own connections, opened there for
    the file) while the next chunk is validated: Arrow's kernels and the server (another process) run
    beside Python, so the storing of a chunk overlaps the validation of the next, a part is built while
    others are copied, and what is left once the last chunk is validated is the storing of its parts."""
    invalid_rows = total_amount = stored = 0
    pending: deque = deque()
    links = _CopyConnections()
    step = ROWS_PER_STORE[True]
    try:
        with ThreadPoolExecutor(max_workers=STORE_THREADS, thread_name_prefix="batch-copy") as copier:
            for _ in range(COPY_CONNECTIONS):  # opened while the first chunk is validated
                copier.submit(links.open_one)
            chunks = validation.validate_in_chunks(frame, batch.kind, rows=ROWS_PER_VALIDATION, **limits)
            for start, end, result in chunks:
                invalid_rows += result.invalid_count
                total_amount += int(np.nansum(result.amounts.to_numpy(dtype=float)))
                while pending and pending[0].done():
                    stored += pending.popleft().result()
                    renew_lease(batch, rows_done=stored)
                for first in range(0, end - start, step):
                    last = min(first + step, end - start)
                    while len(pending) >= 2 * STORE_THREADS:  # the parts waiting hold their frame slices
                        stored += pending.popleft().result()
                        renew_lease(batch, rows_done=stored)
                    part = frame.iloc[start + first : start + last]
                    pending.append(
                        copier.submit(
                            _store_part, batch, part, _result_part(result, first, last), key, start + first, links
                        )
                    )
            while pending:
                stored += pending.popleft().result()
                renew_lease(batch, rows_done=stored)
    finally:
        links.close()
    return invalid_rows, total_amount


def _result_part(result: validation.Result, start: int, end: int) -> validation.Result:
    """Rows ``start`` ... ``end`` of a chunk's validation result."""
    return dataclasses.replace(
        result,
        codes={column: codes[start:end] for column, codes in result.codes.items()},
        index=result.index[start:end],
        invalid=result.invalid.iloc[start:end],
        amounts=result.amounts.iloc[start:end],
        execute_dates=None if result.execute_dates is None else result.execute_dates.iloc[start:end],
    )


class _CopyConnections:
    """The COPYs' own connections (not Django's; at most COPY_CONNECTIONS, opened on the store threads,
    closed at the end of the file); one not in use is in ``idle``. A store thread that finds none idle
    opens one while fewer are open, else waits for one: the threads beyond COPY_CONNECTIONS mask and
    build their part while the others' COPYs run."""

    def __init__(self):
        self.wrapper = connections[DEFAULT_DB_ALIAS]  # this thread's: its settings
        self.params = self.wrapper.get_connection_params()
        self.idle: queue.SimpleQueue = queue.SimpleQueue()
        self.opened: list = []
        self.opening = 0
        self.lock = threading.Lock()

    def _open(self):
        """A new connection, or None when COPY_CONNECTIONS are open or being opened."""
        with self.lock:
            if len(self.opened) + self.opening >= COPY_CONNECTIONS:
                return None
            self.opening += 1
        try:
            raw = self.wrapper.get_new_connection(self.params)
            self.opened.append(raw)
            return raw
        finally:
            with self.lock:
                self.opening -= 1

    def open_one(self) -> None:
        raw = self._open()
        if raw is not None:
            self.idle.put(raw)

    def take(self):
        while True:
            try:
                return self.idle.get_nowait()
            except queue.Empty:
                pass
            raw = self._open()  # raises when the database cannot be reached
            if raw is not None:
                return raw
            try:
                return self.idle.get(timeout=1)
            except queue.Empty:  # the one being opened failed: try again
                continue

    def close(self) -> None:
        for raw in self.opened:
            raw.close()


def _store_part(
    batch: Batch, part: pd.DataFrame, result: validation.Result, key: str, first: int, links: _CopyConnections
) -> int:
    """The rows of ``part`` (the file's from position ``first`` on), cards masked, stored by one COPY."""
    fields = _CopyColumns(batch, _shown(part), result, key, first=first)
    return _copy_in(links, fields.lines(0, len(part)), len(part))


def _copy_in(links: _CopyConnections, payload: memoryview, rows: int) -> int:
    """One COPY, committed, on one of ``links`` (put back after)."""
    raw = links.take()
    try:
        with raw.cursor() as cursor:
            cursor.copy_expert(
                f"COPY {BatchRow._meta.db_table} (merchant_id, batch_id, row_number, data, errors, status, amount, "
                "reference, outcome) FROM STDIN",
                io.BytesIO(payload),
                size=1 << 20,
            )
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        links.idle.put(raw)
    return rows


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
            schedules[position], faults = validation.parse_schedule(
                *(row[c] for c in validation.SCHEDULE_COLUMNS), today=first_day
            )
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

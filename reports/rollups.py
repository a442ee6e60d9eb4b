"""Keeping the dashboard's rollups current (DESIGN "Reports").

``on_transaction_changed`` turns every status change of a transaction into commutative deltas:
- ``DailyRollup``: the old status's bucket -1 and minus the amount, the new status's bucket +1 and plus
  the amount, counting only the ``REPORTED`` statuses. The amount is the charged (gross) amount: a
  refund moves the whole transaction to the refunded / partially refunded bucket.
- ``BillingPeriod``/``PeriodTotal`` (unique billing numbers, D4): when a transaction enters or leaves
  the reported set, its billing number's count in its week and month moves by one; when that count
  crosses zero the period's unique count moves with it.

Every write is an ``INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n`` (PostgreSQL, SQLite 3.35+),
never a read-modify-write: atomic per row, so concurrent charges never lose an update, and the order of
deltas does not matter (a retry's "failed -1" may even run before its "failed +1", as it does when
the retry is announced from inside the failure's signal, by recurring's receiver through payments). Rows of one statement are sorted so two transactions
lock shared rows in the same order. On PostgreSQL all the deltas of one change go in a single statement
(data-modifying CTEs): one round trip inside the charge's transaction instead of up to three (B6 measures
the cost). The receiver runs inside the database transaction that changed the row: a rollback takes the
deltas with it.

The bucket of the old status is named with the transaction's current response code, message and issuer:
those change only when a charge attempt finishes (leaving processing, which has no bucket).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal

from django.db import connections, router, transaction

from payments.models import Transaction

from .models import BillingPeriod, DailyRollup, Period, PeriodTotal

Status = Transaction.Status

# The statuses reports count (see the module docstring of reports.models).
REPORTED = frozenset({Status.SUCCESS, Status.FAILED, Status.VOIDED, Status.REFUNDED, Status.PARTIALLY_REFUNDED})
# Charges the bank approved that still stand: the dashboard's "success" (D2, D5, D7).
SUCCESSFUL = (Status.SUCCESS, Status.PARTIALLY_REFUNDED)
# Approved, then given back in full.
REVERSED = (Status.VOIDED, Status.REFUNDED)

BUCKET = ("merchant_id", "day", "kind", "status", "response_code", "bank_message", "issuer")


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def month_start(day: date) -> date:
    return day.replace(day=1)


def _table(model) -> str:
    return model._meta.db_table


def _upsert_sql(q, model, key: tuple[str, ...], add: tuple[str, ...], count: int, returning=()) -> str:
    """INSERT ``count`` rows (key values then added values); on a key conflict add the values to the stored row."""
    table = q(_table(model))
    columns = (*key, *add)
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * count)
    updates = ", ".join(f"{q(name)} = {table}.{q(name)} + excluded.{q(name)}" for name in add)
    sql = (
        f"INSERT INTO {table} ({', '.join(map(q, columns))}) VALUES {placeholders} "
        f"ON CONFLICT ({', '.join(map(q, key))}) DO UPDATE SET {updates}"
    )
    if returning:
        sql += f" RETURNING {', '.join(map(q, returning))}"
    return sql


def _upsert(cursor, model, key: tuple[str, ...], add: tuple[str, ...], rows: list[tuple], returning=()):
    sql = _upsert_sql(cursor.db.ops.quote_name, model, key, add, len(rows), returning)
    cursor.execute(sql, [value for row in rows for value in row])
    return cursor.fetchall() if returning else None


def _bucket(tx: Transaction, status: str) -> tuple:
    return (
        tx.merchant_id,
        tx.execute_date,
        tx.kind,
        str(status),
        tx.response_code or "",
        (tx.bank_message or "")[:120],
        (tx.card_issuer or "")[:80],
    )


def _add_change(daily: dict[tuple, list], tx: Transaction, old_status: str) -> int:
    """Add the daily deltas of ``tx`` moving from ``old_status`` to ``tx.status`` into ``daily`` (bucket ->
    [count, amount]); return its billing number's move: +1 entering the reported set, -1 leaving it, else 0."""
    old_in, new_in = old_status in REPORTED, tx.status in REPORTED
    amount = Decimal(tx.amount)
    for status, sign, counted in ((old_status, -1, old_in), (tx.status, +1, new_in)):
        if counted:
            entry = daily.setdefault(_bucket(tx, status), [0, Decimal(0)])
            entry[0] += sign
            entry[1] += sign * amount
    return (+1 if new_in else -1) if old_in != new_in and tx.billing_number else 0


def _daily_rows(daily: dict[tuple, list]) -> list[tuple]:
    return sorted((*key, count, total) for key, (count, total) in daily.items() if count or total)


def apply_change(tx: Transaction, old_status: str, using: str | None = None) -> None:
    """Apply the deltas of ``tx`` moving from ``old_status`` to ``tx.status``."""
    daily: dict[tuple, list] = {}
    move = _add_change(daily, tx, old_status)
    rows = _daily_rows(daily)
    if not (rows or move):
        return
    using = using or router.db_for_write(DailyRollup)
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            _apply_in_one_statement(cursor, tx, rows, move)
            return
        if rows:
            _upsert(cursor, DailyRollup, BUCKET, ("count", "amount"), rows)
        if move:
            _move_billing(cursor, tx, move)


BILLING_KEY = ("merchant_id", "period", "start", "billing_number")
TOTAL_KEY = ("merchant_id", "period", "start", "shard")


def _periods(tx: Transaction) -> list[tuple[str, date]]:
    return sorted(
        [(Period.WEEK.value, week_start(tx.execute_date)), (Period.MONTH.value, month_start(tx.execute_date))]
    )


def _shard(tx: Transaction) -> int:
    # Any shard will do (the dashboard reads the sum); spreading by transaction avoids one hot row.
    return zlib.crc32(str(tx.pk).encode()) % PeriodTotal.SHARDS


def _apply_in_one_statement(cursor, tx: Transaction, rows: list[tuple], move: int) -> None:
    """PostgreSQL: every delta of one change in a single statement (one round trip while the charge's row
    lock is held): the daily upsert, and when the transaction enters or leaves the reported set, the
    billing-number upserts of its week and month whose RETURNING feeds the unique-billing upsert of the
    periods where the count crossed zero. Data-modifying CTEs all run to completion, once, in the
    statement's snapshot; rows within each part are sorted as in the other path."""
    q = cursor.db.ops.quote_name
    daily = _upsert_sql(q, DailyRollup, BUCKET, ("count", "amount"), len(rows))
    params = [value for row in rows for value in row]
    if not move:
        cursor.execute(daily, params)
        return
    periods = _periods(tx)
    billing = _upsert_sql(
        q, BillingPeriod, BILLING_KEY, ("count",), len(periods), returning=("period", "start", "count")
    )
    params += [value for period, start in periods for value in (tx.merchant_id, period, start, tx.billing_number, move)]
    total = q(_table(PeriodTotal))
    unique = q("unique_billings")
    cursor.execute(
        f"WITH daily AS ({daily}), billing AS ({billing}) "
        f"INSERT INTO {total} ({', '.join(map(q, (*TOTAL_KEY, 'unique_billings')))}) "
        f"SELECT %s, b.{q('period')}, b.{q('start')}, %s, CASE WHEN b.{q('count')} > 0 THEN 1 ELSE -1 END "
        f"FROM billing b WHERE (b.{q('count')} - %s > 0) <> (b.{q('count')} > 0) "
        f"ORDER BY b.{q('period')}, b.{q('start')} "
        f"ON CONFLICT ({', '.join(map(q, TOTAL_KEY))}) DO UPDATE SET {unique} = {total}.{unique} + excluded.{unique}",
        [*params, tx.merchant_id, _shard(tx), move],
    )


def _move_billing(cursor, tx: Transaction, delta: int) -> None:
    _move_billings(
        cursor,
        {(tx.merchant_id, period, start, tx.billing_number): delta for period, start in _periods(tx)},
        _shard(tx),
    )


def _move_billings(cursor, moves: dict[tuple, int], shard: int) -> None:
    """Add ``moves`` ((merchant, period, start, billing number) -> delta, one entry per key) to the billing
    counts; where a count crossed zero, move its period's unique count (in ``shard``)."""
    rows = sorted((*key, delta) for key, delta in moves.items() if delta)
    if not rows:
        return
    stored = _upsert(cursor, BillingPeriod, BILLING_KEY, ("count",), rows, returning=BILLING_KEY + ("count",))
    totals: dict[tuple, int] = {}
    for merchant_id, period, start, billing_number, count in stored:
        start = _as_date(start)
        was_member, is_member = count - moves[(merchant_id, period, start, billing_number)] > 0, count > 0
        if was_member != is_member:
            key = (merchant_id, period, start, shard)
            totals[key] = totals.get(key, 0) + (1 if is_member else -1)
    rows = sorted((*key, change) for key, change in totals.items() if change)
    if rows:
        _upsert(cursor, PeriodTotal, TOTAL_KEY, ("unique_billings",), rows)


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def on_transaction_changed(sender, transaction: Transaction, old_status: str, **kwargs) -> None:
    """The ``payments.signals.transaction_changed`` receiver (connected in ``ReportsConfig.ready``)."""
    apply_change(transaction, old_status)


# Rebuild from transactions (manage.py rebuild_rollups, the data migration)


def _period_sql(vendor: str, period: str, column: str) -> str:
    if vendor == "postgresql":
        return f"CAST(date_trunc('{period}', {column}) AS date)"
    if vendor == "sqlite":  # Monday of the week: the coming Sunday (or the day itself), six days back
        return (
            f"date({column}, 'weekday 0', '-6 days')" if period == Period.WEEK else f"date({column}, 'start of month')"
        )
    raise NotImplementedError(f"rebuild_rollups supports PostgreSQL and SQLite, not {vendor}")


def rebuild(merchant_ids: Iterable[int] | None = None, *, using: str = "default", tables: dict | None = None) -> None:
    """Recompute the rollups of ``merchant_ids`` (every merchant when None) from their transactions, set-wise.

    On PostgreSQL the rollup tables are locked EXCLUSIVE first: a charge committing meanwhile waits to
    write its delta, and the recomputation (a new snapshot after the lock) sees every change committed
    before it, so no delta is lost or counted twice. ``tables`` maps "transaction", "daily", "billing",
    "total" to table names (the data migration passes its historical models' tables).
    """
    if merchant_ids is not None:
        merchant_ids = [int(pk) for pk in merchant_ids]
        if not merchant_ids:
            return
    names = tables or {
        "transaction": _table(Transaction),
        "daily": _table(DailyRollup),
        "billing": _table(BillingPeriod),
        "total": _table(PeriodTotal),
    }
    connection = connections[using]
    q = connection.ops.quote_name
    tx_table, daily, billing, total = (q(names[n]) for n in ("transaction", "daily", "billing", "total"))
    reported = sorted(str(status) for status in REPORTED)
    in_reported = ", ".join(["%s"] * len(reported))
    if merchant_ids is None:
        scope, scope_params = "", []
    else:
        scope, scope_params = f" AND {q('merchant_id')} IN ({', '.join(['%s'] * len(merchant_ids))})", merchant_ids
    bucket = ", ".join(map(q, BUCKET))
    source = ", ".join(
        map(q, ("merchant_id", "execute_date", "kind", "status", "response_code", "bank_message", "card_issuer"))
    )
    count, amount, status, billing_number = q("count"), q("amount"), q("status"), q("billing_number")
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"LOCK TABLE {daily}, {billing}, {total} IN EXCLUSIVE MODE")
        for table in (daily, billing, total):
            cursor.execute(f"DELETE FROM {table} WHERE 1 = 1{scope}", scope_params)
        cursor.execute(
            f"INSERT INTO {daily} ({bucket}, {count}, {amount}) "
            f"SELECT {source}, COUNT(*), SUM({amount}) FROM {tx_table} "
            f"WHERE {status} IN ({in_reported}){scope} GROUP BY {source}",
            [*reported, *scope_params],
        )
        for period in (Period.WEEK, Period.MONTH):
            start = _period_sql(connection.vendor, period, q("execute_date"))
            cursor.execute(
                f"INSERT INTO {billing} ({q('merchant_id')}, {q('period')}, {q('start')}, {billing_number}, {count}) "
                f"SELECT {q('merchant_id')}, %s, {start}, {billing_number}, COUNT(*) FROM {tx_table} "
                f"WHERE {status} IN ({in_reported}) AND {billing_number} <> ''{scope} "
                f"GROUP BY {q('merchant_id')}, {start}, {billing_number}",
                [period.value, *reported, *scope_params],
            )
        cursor.execute(
            f"INSERT INTO {total} ({q('merchant_id')}, {q('period')}, {q('start')}, {q('shard')}, {q('unique_billings')}) "
            f"SELECT {q('merchant_id')}, {q('period')}, {q('start')}, 0, COUNT(*) FROM {billing} "
            f"WHERE {count} > 0{scope} GROUP BY {q('merchant_id')}, {q('period')}, {q('start')}",
            scope_params,
        )

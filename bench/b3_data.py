"""B3's data: BILLINGS active billings of one merchant, DUE of them due on DAY (a Monday), generated in
PostgreSQL from a fixed seed (INSERT ... SELECT generate_series over a table of schedule "slots" drawn
with random.Random(SEED)): Date / Day / Full Date schedules (about 60 / 25 / 15 %), 3 % Reminder billings,
extra inactive and deleted billings (some of them still carrying DAY as their next date, which must be
left alone), and a few cancelled executions (0.2 % of the due billings cancelled on DAY, 0.1 % on their
next date). ``bench_b3_due`` keeps the due billings' next dates, which a reset puts back."""

from __future__ import annotations

import json
import random
import time
from datetime import date, timedelta

SEED = 20270301
DAY = date(2027, 3, 1)  # a Monday
SLOTS = 10_000  # schedule slots per table (due / not due); a billing picks one by a hash of its number


def sql(statement: str, params=None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def one(statement: str, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()


def vacuum() -> None:
    for name in ("recurring_billing", "payments_transaction", "payments_callbackdelivery", "bench_b3_due"):
        if one("SELECT to_regclass(%s)", [name])[0]:  # bench_b3_due: not before the first generation
            sql(f"VACUUM ANALYZE {name}")


def restore_next_dates() -> int:
    return sql(
        """UPDATE recurring_billing b SET next_execute_date = d.next_execute_date FROM bench_b3_due d
        WHERE b.id = d.id AND b.next_execute_date IS DISTINCT FROM d.next_execute_date"""
    )


def schedule_slots(rng: random.Random, due: bool) -> list[tuple[int, str, str, date]]:
    """SLOTS (slot, kind, schedule JSON, next execute date) rows: 60 % Date slots over 200 schedules,
    25 % Day slots over 100, 15 % Full Date slots each with its own list. Due slots run on DAY; the others
    give the next date after DAY (a billing not due today)."""
    from recurring.schedule import Schedule

    def date_schedule() -> Schedule:
        days = set(rng.sample(range(1, 29), rng.choice((1, 1, 1, 2, 3))))
        months = set(range(1, 13)) if rng.random() < 0.7 else set(rng.sample(range(1, 13), rng.randint(1, 6)))
        if due:
            days.add(DAY.day)
            months.add(DAY.month)
        return Schedule.by_date(days, months)

    def day_schedule() -> Schedule:
        weekdays = set(rng.sample(range(7), rng.choice((1, 1, 2, 5))))
        months = set(range(1, 13)) if rng.random() < 0.8 else set(rng.sample(range(1, 13), rng.randint(1, 6)))
        if due:
            weekdays.add(DAY.weekday())
            months.add(DAY.month)
        return Schedule.by_day(weekdays, months)

    def full_date_schedule() -> Schedule:
        step = rng.choice((7, 14, 30, 31, 60, 91))
        count = rng.randint(2, 12)
        first = DAY - timedelta(days=step * rng.randint(0, count - 1)) if due else DAY + timedelta(rng.randint(1, 60))
        return Schedule.full_dates(first + timedelta(days=step * k) for k in range(count))

    dates = [date_schedule() for _ in range(200)]
    days = [day_schedule() for _ in range(100)]
    rows = []
    for slot in range(SLOTS):
        share = slot % 100
        if share < 60:
            schedule = dates[rng.randrange(len(dates))]
        elif share < 85:
            schedule = days[rng.randrange(len(days))]
        else:
            schedule = full_date_schedule()
        next_date = DAY if due else schedule.next_date(DAY + timedelta(days=1))
        assert next_date is not None and schedule.is_execute_date(next_date)
        rows.append((slot, schedule.kind, json.dumps(schedule.to_dict()), next_date))
    return rows


FILES = 20  # registration files of the batch-sourced billings
GENERATE = f"""
INSERT INTO recurring_billing (
    merchant_id, billing_number, customer_id, customer_name, email, phone, amount, billing_type, status,
    source, batch_id, schedule_kind, schedule_data, next_execute_date, retry_attempts, created_at, updated_at,
    deleted_at, card_token, card_masked, card_fingerprint, card_expiry, card_issuer, card_brand,
    holder_name, holder_phone)
SELECT %(merchant)s, 'B3-' || lpad(g.i::text, 8, '0'), 'CUST-' || (g.i %% 700000), 'Customer ' || g.i,
    'customer' || g.i || '@example.com', '+62812' || lpad((g.i %% 1000000)::text, 7, '0'),
    50000 + (g.h %% 40) * 12500,
    CASE WHEN (g.h / 7) %% 100 < 3 THEN 'reminder' ELSE 'recurring' END,
    CASE WHEN g.i > %(active)s AND g.i %% 3 <> 0 THEN 'inactive' ELSE 'active' END,
    CASE WHEN g.h %% 5 = 0 THEN 'hosted' ELSE 'batch' END,
    CASE WHEN g.h %% 5 = 0 THEN NULL ELSE (%(batches)s::bigint[])[1 + g.i %% %(files)s] END,
    s.kind, s.data,
    CASE WHEN g.i > %(active)s AND g.i %% 3 <> 0 THEN NULL ELSE s.next_date END,
    0, now(), now(),
    CASE WHEN g.i > %(active)s AND g.i %% 3 = 0 THEN now() END,
    'tok_b3_' || g.i, '411111******' || lpad((g.i %% 10000)::text, 4, '0'), md5('card' || g.i),
    make_date(extract(year FROM current_date)::int + 4, 12, 31), 'Bank Bench', 'visa', 'Customer ' || g.i, ''
FROM (
    SELECT i, (i::bigint * 2654435761) %% 4294967296 AS h,
        (i <= %(active)s AND i %% %(step)s = 0) OR (i > %(active)s AND i %% 2 = 0) AS due
    FROM generate_series(1, %(total)s) AS i
) g
JOIN bench_b3_slot s ON s.due = g.due AND s.slot = (g.h / 101) %% {SLOTS}
"""

CANCEL = """
INSERT INTO recurring_cancelledexecution (merchant_id, billing_id, execute_date, invoice_number, reason, cancelled_at)
SELECT b.merchant_id, b.id, CASE WHEN c.on_day THEN b.next_execute_date ELSE s.next_after END,
    b.billing_number || '-' || to_char(CASE WHEN c.on_day THEN b.next_execute_date ELSE s.next_after END, 'YYYYMMDD'),
    'bench: cancelled', now()
FROM recurring_billing b
JOIN bench_b3_next s ON s.data = b.schedule_data
CROSS JOIN LATERAL (SELECT (b.id * 2654435761 %% 4294967296) / 4096 %% 1000 AS k) h
CROSS JOIN LATERAL (SELECT h.k < 2 AS on_day) c
WHERE b.merchant_id = %(merchant)s AND b.status = 'active' AND b.deleted_at IS NULL
    AND b.next_execute_date <= %(day)s AND h.k < 3 AND s.next_after IS NOT NULL
"""


def generate(merchant, billings: int, due: int) -> dict:
    """The merchant's billings, the day's cancellations and the reset copy; a description of the data."""
    started = time.perf_counter()
    sql("DELETE FROM recurring_cancelledexecution WHERE merchant_id = %s", [merchant.pk])
    sql("DELETE FROM recurring_billing WHERE merchant_id = %s", [merchant.pk])
    files = registration_files(merchant)
    slot_table(random.Random(SEED))
    params = {
        "merchant": merchant.pk,
        "active": billings,
        "step": billings // due,
        "total": billings + billings // 20,  # inactive and deleted billings beyond the active ones
        "batches": "{" + ",".join(str(pk) for pk in files) + "}",
        "files": FILES,
    }
    sql(GENERATE, params)
    cancellations(merchant)
    # What a reset puts back: the next date of every billing the day may move.
    sql("DROP TABLE IF EXISTS bench_b3_due")
    sql(
        "CREATE TABLE bench_b3_due AS SELECT id, next_execute_date FROM recurring_billing "
        "WHERE merchant_id = %s AND next_execute_date <= %s",
        [merchant.pk, DAY],
    )
    vacuum()
    figures = describe(merchant)
    figures["generate_s"] = round(time.perf_counter() - started, 1)
    assert figures["due"] == due, figures
    return figures


def registration_files(merchant) -> list[int]:
    """The registration files the batch-sourced billings came from (hosted ones have none); their ids."""
    from batch.models import Batch

    Batch.objects.filter(merchant=merchant).delete()
    files = Batch.objects.bulk_create(
        Batch(
            merchant=merchant,
            kind=Batch.Kind.REGISTRATION,
            file_name=f"b3-registrations-{n:02d}.csv",
            content_hash=f"b3-{n:02d}".ljust(64, "0"),
            status=Batch.Status.DONE,
        )
        for n in range(FILES)
    )
    return [batch.pk for batch in files]


def slot_table(rng: random.Random) -> None:
    """bench_b3_slot: the due and not-due schedule slots the billings pick from."""
    from django.db import connection

    sql("DROP TABLE IF EXISTS bench_b3_slot")
    sql("CREATE TABLE bench_b3_slot (due boolean, slot int, kind text, data jsonb, next_date date)")
    with connection.cursor() as cursor:
        for is_due in (True, False):
            rows = [(is_due, *row) for row in schedule_slots(rng, is_due)]
            cursor.executemany("INSERT INTO bench_b3_slot VALUES (%s, %s, %s, %s, %s)", rows)
    sql("CREATE UNIQUE INDEX ON bench_b3_slot (due, slot)")


def cancellations(merchant) -> None:
    """Cancelled executions, on DAY or on the schedule's next date after DAY (from the schedule module)."""
    from django.db import connection

    from recurring.schedule import Schedule

    sql("DROP TABLE IF EXISTS bench_b3_next")
    sql("CREATE TABLE bench_b3_next (data jsonb, next_after date)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT data::text FROM bench_b3_slot WHERE due")
        texts = [text for (text,) in cursor.fetchall()]
        rows = [(text, Schedule.from_dict(json.loads(text)).next_date(DAY + timedelta(days=1))) for text in texts]
        cursor.executemany("INSERT INTO bench_b3_next VALUES (%s::jsonb, %s)", rows)
    sql(CANCEL, {"merchant": merchant.pk, "day": DAY})


def describe(merchant) -> dict:
    """Counts of the generated data, and the executions the day must create."""
    figures = dict(
        zip(
            ("billings", "active", "due", "due_reminder", "inactive", "deleted", "deleted_or_inactive_on_day"),
            one(
                """SELECT count(*), count(*) FILTER (WHERE status = 'active' AND deleted_at IS NULL),
                    count(*) FILTER (WHERE status = 'active' AND deleted_at IS NULL AND next_execute_date <= %s),
                    count(*) FILTER (WHERE status = 'active' AND deleted_at IS NULL
                        AND next_execute_date <= %s AND billing_type = 'reminder'),
                    count(*) FILTER (WHERE status = 'inactive'), count(*) FILTER (WHERE deleted_at IS NOT NULL),
                    count(*) FILTER (WHERE (status <> 'active' OR deleted_at IS NOT NULL) AND next_execute_date = %s)
                FROM recurring_billing WHERE merchant_id = %s""",
                [DAY, DAY, DAY, merchant.pk],
            ),
            strict=True,
        )
    )
    kinds = one(
        """SELECT count(*) FILTER (WHERE schedule_kind = 'date'), count(*) FILTER (WHERE schedule_kind = 'day'),
            count(*) FILTER (WHERE schedule_kind = 'full_date'), count(DISTINCT schedule_data)
        FROM recurring_billing WHERE merchant_id = %s AND status = 'active' AND deleted_at IS NULL
            AND next_execute_date <= %s""",
        [merchant.pk, DAY],
    )
    figures["due_by_kind"] = dict(zip(("date", "day", "full_date"), kinds[:3], strict=True))
    figures["due_distinct_schedules"] = kinds[3]
    figures["cancelled_on_day"], figures["cancelled_ahead"] = one(
        """SELECT count(*) FILTER (WHERE c.execute_date = b.next_execute_date),
            count(*) FILTER (WHERE c.execute_date > b.next_execute_date)
        FROM recurring_cancelledexecution c JOIN recurring_billing b ON b.id = c.billing_id
        WHERE c.merchant_id = %s""",
        [merchant.pk],
    )
    figures["expected_executions"] = one(
        """SELECT count(*) FROM recurring_billing b WHERE b.merchant_id = %s AND b.status = 'active'
            AND b.deleted_at IS NULL AND b.next_execute_date <= %s AND b.billing_type = 'recurring'
            AND NOT EXISTS (SELECT 1 FROM recurring_cancelledexecution c
                WHERE c.billing_id = b.id AND c.execute_date = b.next_execute_date)""",
        [merchant.pk, DAY],
    )[0]
    return figures

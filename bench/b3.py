"""B3, the scheduler's day (DESIGN "Performance targets").

BILLINGS active billings of one merchant, DUE of them due on DAY (a Monday), generated in PostgreSQL
from a fixed seed (INSERT ... SELECT generate_series over a table of schedule "slots" drawn with
random.Random(SEED)): Date / Day / Full Date schedules (about 60 / 25 / 15 %), 3 % Reminder billings,
extra inactive and deleted billings (some of them still carrying DAY as their next date, which must be
left alone), and a few cancelled executions (0.2 % of the due billings cancelled on DAY, 0.1 % on their
next date). Three contenders, interleaved, each repetition in a rotated order:

- orm_loop: the naive way (``orm_loop`` below): for each due billing a transaction.atomic() with
  ``Transaction.save()`` (or, for a Reminder, ``callbacks.notify``), the next date from the schedule
  module and ``billing.save(update_fields=...)``, then ``payments.tasks.charge.delay(id)`` on commit.
  Too slow for all of DUE: it runs the first BASELINE_SAMPLE due billings and its time is scaled
  linearly to DUE (said in the output and the JSON).
- ours: ``recurring.scheduler.run_day(merchant, DAY)``, the real entry point: the SchedulerRun and its
  lease, the chunks (lock, executions inserted, next dates moved, reminder deliveries stored and queued,
  ``enqueue_charges``: queued_at written and charge_many tasks sent to Redis), Single Payments and
  retries, counts. Then run twice more, each timed and checked: ``run_day`` again (the finished
  SchedulerRun makes it a no-op), and a forced rerun (SchedulerRun deleted and the next dates put back,
  outside the timing) which must create nothing and queue nothing (ON CONFLICT DO NOTHING).
- set_sql: the floor, one ``INSERT INTO payments_transaction (...) SELECT ... FROM recurring_billing
  WHERE <due> ON CONFLICT DO NOTHING`` run raw (executions only: no next dates, no queueing), run twice.

Time is wall time of the first run. Between contenders the state is reset outside the timing: the
merchant's transactions, deliveries and SchedulerRuns deleted, next dates restored from a copy, the
Redis queue emptied, VACUUM ANALYZE. Hard gate (``gate_passed``): no (billing, day) with two
executions, nothing created or queued by a second run, every created execution queued once.

Knobs (environment): BENCH_SCALE=full; BENCH_B3_BILLINGS, BENCH_B3_DUE, BENCH_B3_REPETITIONS,
BENCH_B3_BASELINE_SAMPLE override the scale's values; SCHEDULER_CHUNK reaches the scheduler.
"""

from __future__ import annotations

import base64
import json
import os
import random
import resource
import statistics
import time
from collections import Counter
from datetime import date, timedelta

from .common import log, print_notes, scaled_config, summary, table
from .processes import ProcessSampler

SEED = 20270301
DAY = date(2027, 3, 1)  # a Monday
SCALES = {
    "default": {"billings": 200_000, "due": 10_000, "repetitions": 3, "baseline_sample": 1000},
    "full": {"billings": 2_000_000, "due": 100_000, "repetitions": 5, "baseline_sample": 5000},
}
CONTENDERS = ("orm_loop", "ours", "set_sql")
TARGETS = {"speedup_vs_orm_loop": 50.0, "cost_vs_set_sql": 2.0}
SLOTS = 10_000  # schedule slots per table (due / not due); a billing picks one by a hash of its number


def config(scale: str) -> dict:
    values = scaled_config("B3", SCALES, scale)
    values["baseline_sample"] = min(values["baseline_sample"], values["due"])
    return values


# --- Data ----------------------------------------------------------------------------------------------


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

# The floor: the executions of the day in one statement, run raw.
FLOOR = """
INSERT INTO payments_transaction (
    merchant_id, invoice_number, kind, billing_id, billing_number, batch_id, customer_id, description, amount,
    execute_date, status, next_retry_date, attempts, response_code, approval_code, error_code, bank_message,
    acquirer_reference, refunded_amount, created_at, queued_at, claimed_at, processed_at, updated_at,
    card_token, card_masked, card_fingerprint, card_expiry, card_issuer, card_brand, holder_name, holder_phone)
SELECT b.merchant_id, b.billing_number || '-' || to_char(b.next_execute_date, 'YYYYMMDD'), 'recurring', b.id,
    b.billing_number, NULL, b.customer_id,
    'Recurring ' || b.billing_number || ' ' || to_char(b.next_execute_date, 'YYYY-MM-DD'), b.amount,
    b.next_execute_date, 'scheduled', NULL, 0, '', '', '', '', '', 0, now(), NULL, NULL, NULL, now(),
    b.card_token, b.card_masked, b.card_fingerprint, b.card_expiry, b.card_issuer, b.card_brand, b.holder_name,
    b.holder_phone
FROM recurring_billing b
WHERE b.merchant_id = %(merchant)s AND b.status = 'active' AND b.deleted_at IS NULL
    AND b.next_execute_date <= %(day)s AND b.billing_type = 'recurring'
    AND NOT EXISTS (
        SELECT 1 FROM recurring_cancelledexecution c WHERE c.billing_id = b.id AND c.execute_date = b.next_execute_date
    )
ON CONFLICT DO NOTHING
"""


class SelfSampler(ProcessSampler):
    """ProcessSampler for a contender running in this process: peak RSS of this process meanwhile, CPU
    from getrusage; PostgreSQL CPU and machine load as ProcessSampler measures them."""

    def __enter__(self):
        self._usage = resource.getrusage(resource.RUSAGE_SELF)
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.own_cpu_s = usage.ru_utime + usage.ru_stime - self._usage.ru_utime - self._usage.ru_stime

    def sample(self) -> None:
        super().sample()
        with open("/proc/self/statm") as handle:
            rss = int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        self.peak_mb = max(self.peak_mb, rss / 2**20)


class PhaseTimer:
    """A database execute wrapper: seconds per kind of statement of the scheduler."""

    KINDS = (
        ('INSERT INTO "payments_transaction"', "insert executions"),
        ('UPDATE "recurring_billing"', "advance next dates"),
        ('UPDATE "payments_transaction" SET "queued_at"', "enqueue_charges UPDATE queued_at"),
        ('SELECT "recurring_billing"."id" AS "pk"', "lock + read chunk"),
    )

    def __init__(self, phases: Counter):
        self.phases = phases

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            kind = next((name for prefix, name in self.KINDS if sql.startswith(prefix)), "other SQL")
            self.phases[kind] += time.perf_counter() - started


class Bench:
    def __init__(self, scale: str):
        import redis
        from django.conf import settings
        from django.db import connection

        from accounts.models import Merchant

        self.scale, self.cfg = scale, config(scale)
        self.settings, self.connection = settings, connection
        self.merchant, _ = Merchant.objects.get_or_create(
            code="bench-b3", defaults={"name": "Bench B3", "callback_url": "https://bench-b3.example/hooks"}
        )
        self.redis = redis.Redis.from_url(os.environ["REDIS_URL"])

    def sql(self, statement: str, params=None) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.rowcount

    def one(self, statement: str, params=None):
        with self.connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchone()

    def generate(self) -> dict:
        billings, due = self.cfg["billings"], self.cfg["due"]
        extra = billings // 20  # inactive and deleted billings beyond the active ones
        started = time.perf_counter()
        self.clear()
        self.sql("DELETE FROM recurring_cancelledexecution WHERE merchant_id = %s", [self.merchant.pk])
        self.sql("DELETE FROM recurring_billing WHERE merchant_id = %s", [self.merchant.pk])
        # The registration files the batch-sourced billings came from (hosted ones have none).
        from batch.models import Batch

        Batch.objects.filter(merchant=self.merchant).delete()
        files = Batch.objects.bulk_create(
            Batch(
                merchant=self.merchant,
                kind=Batch.Kind.REGISTRATION,
                file_name=f"b3-registrations-{n:02d}.csv",
                content_hash=f"b3-{n:02d}".ljust(64, "0"),
                status=Batch.Status.DONE,
            )
            for n in range(FILES)
        )
        rng = random.Random(SEED)
        self.sql("DROP TABLE IF EXISTS bench_b3_slot")
        self.sql("CREATE TABLE bench_b3_slot (due boolean, slot int, kind text, data jsonb, next_date date)")
        with self.connection.cursor() as cursor:
            for is_due in (True, False):
                rows = [(is_due, *row) for row in schedule_slots(rng, is_due)]
                cursor.executemany("INSERT INTO bench_b3_slot VALUES (%s, %s, %s, %s, %s)", rows)
        self.sql("CREATE UNIQUE INDEX ON bench_b3_slot (due, slot)")
        self.sql(
            GENERATE,
            {
                "merchant": self.merchant.pk,
                "active": billings,
                "step": billings // due,
                "total": billings + extra,
                "batches": "{" + ",".join(str(batch.pk) for batch in files) + "}",
                "files": FILES,
            },
        )
        # Cancelled executions: each schedule's next date after DAY, computed by the schedule module.
        from recurring.schedule import Schedule

        self.sql("DROP TABLE IF EXISTS bench_b3_next")
        self.sql("CREATE TABLE bench_b3_next (data jsonb, next_after date)")
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT DISTINCT data::text FROM bench_b3_slot WHERE due")
            texts = [text for (text,) in cursor.fetchall()]
            rows = [(text, Schedule.from_dict(json.loads(text)).next_date(DAY + timedelta(days=1))) for text in texts]
            cursor.executemany("INSERT INTO bench_b3_next VALUES (%s::jsonb, %s)", rows)
        self.sql(CANCEL, {"merchant": self.merchant.pk, "day": DAY})
        # What a reset puts back: the next date of every billing the day may move.
        self.sql("DROP TABLE IF EXISTS bench_b3_due")
        self.sql(
            "CREATE TABLE bench_b3_due AS SELECT id, next_execute_date FROM recurring_billing "
            "WHERE merchant_id = %s AND next_execute_date <= %s",
            [self.merchant.pk, DAY],
        )
        self.vacuum()
        figures = dict(
            zip(
                ("billings", "active", "due", "due_reminder", "inactive", "deleted", "deleted_or_inactive_on_day"),
                self.one(
                    """SELECT count(*), count(*) FILTER (WHERE status = 'active' AND deleted_at IS NULL),
                        count(*) FILTER (WHERE status = 'active' AND deleted_at IS NULL AND next_execute_date <= %s),
                        count(*) FILTER (WHERE status = 'active' AND deleted_at IS NULL
                            AND next_execute_date <= %s AND billing_type = 'reminder'),
                        count(*) FILTER (WHERE status = 'inactive'), count(*) FILTER (WHERE deleted_at IS NOT NULL),
                        count(*) FILTER (WHERE (status <> 'active' OR deleted_at IS NOT NULL) AND next_execute_date = %s)
                    FROM recurring_billing WHERE merchant_id = %s""",
                    [DAY, DAY, DAY, self.merchant.pk],
                ),
                strict=True,
            )
        )
        kinds = self.one(
            """SELECT count(*) FILTER (WHERE schedule_kind = 'date'), count(*) FILTER (WHERE schedule_kind = 'day'),
                count(*) FILTER (WHERE schedule_kind = 'full_date'), count(DISTINCT schedule_data)
            FROM recurring_billing WHERE merchant_id = %s AND status = 'active' AND deleted_at IS NULL
                AND next_execute_date <= %s""",
            [self.merchant.pk, DAY],
        )
        figures["due_by_kind"] = dict(zip(("date", "day", "full_date"), kinds[:3], strict=True))
        figures["due_distinct_schedules"] = kinds[3]
        figures["cancelled_on_day"], figures["cancelled_ahead"] = self.one(
            """SELECT count(*) FILTER (WHERE c.execute_date = b.next_execute_date),
                count(*) FILTER (WHERE c.execute_date > b.next_execute_date)
            FROM recurring_cancelledexecution c JOIN recurring_billing b ON b.id = c.billing_id
            WHERE c.merchant_id = %s""",
            [self.merchant.pk],
        )
        figures["expected_executions"] = self.one(
            """SELECT count(*) FROM recurring_billing b WHERE b.merchant_id = %s AND b.status = 'active'
                AND b.deleted_at IS NULL AND b.next_execute_date <= %s AND b.billing_type = 'recurring'
                AND NOT EXISTS (SELECT 1 FROM recurring_cancelledexecution c
                    WHERE c.billing_id = b.id AND c.execute_date = b.next_execute_date)""",
            [self.merchant.pk, DAY],
        )[0]
        figures["generate_s"] = round(time.perf_counter() - started, 1)
        assert figures["due"] == due, figures
        return figures

    def vacuum(self) -> None:
        for name in ("recurring_billing", "payments_transaction", "payments_callbackdelivery", "bench_b3_due"):
            self.sql(f"VACUUM ANALYZE {name}")

    def clear(self) -> None:
        """Back to the generated state: nothing of the day, next dates as generated, the queue empty."""
        merchant = self.merchant.pk
        self.sql("DELETE FROM payments_transaction WHERE merchant_id = %s", [merchant])
        self.sql("DELETE FROM payments_callbackdelivery WHERE merchant_id = %s", [merchant])
        self.sql("DELETE FROM recurring_schedulerrun WHERE merchant_id = %s", [merchant])
        if self.one("SELECT to_regclass('bench_b3_due')")[0]:
            self.restore_next_dates()
        self.redis.delete("celery")

    def restore_next_dates(self) -> int:
        return self.sql(
            """UPDATE recurring_billing b SET next_execute_date = d.next_execute_date FROM bench_b3_due d
            WHERE b.id = d.id AND b.next_execute_date IS DISTINCT FROM d.next_execute_date"""
        )

    def reset(self) -> None:
        self.clear()
        self.vacuum()

    def counts(self) -> dict:
        """Executions of the merchant, duplicates per (billing, day), and the charge ids waiting in Redis."""
        rows, duplicates = self.one(
            """SELECT count(*), count(*) - count(DISTINCT (billing_id, execute_date))
            FROM payments_transaction WHERE merchant_id = %s""",
            [self.merchant.pk],
        )
        queued: Counter[int] = Counter()
        deliveries: Counter[int] = Counter()
        tasks: Counter[str] = Counter()
        for raw in self.redis.lrange("celery", 0, -1):
            message = json.loads(raw)
            task = message["headers"]["task"]
            tasks[task] += 1
            if task in (
                "payments.charge_many",
                "payments.charge",
                "payments.deliver_callbacks",
                "payments.deliver_callback",
            ):
                args, _, _ = json.loads(base64.b64decode(message["body"]))
                ids = args[0] if isinstance(args[0], list) else [args[0]]
                (queued if task.startswith("payments.charge") else deliveries).update(ids)
        return {
            "rows": rows,
            "duplicates": duplicates,
            "charges_queued": sum(queued.values()),
            "charges_queued_twice": sum(1 for n in queued.values() if n > 1),
            "deliveries_queued": sum(deliveries.values()),
            "tasks": dict(tasks),
        }

    def measure(self, work) -> tuple[float, SelfSampler]:
        with SelfSampler() as sampler:
            started = time.perf_counter()
            work()
            seconds = time.perf_counter() - started
        return seconds, sampler

    @staticmethod
    def figures(seconds: float, sampler: SelfSampler) -> dict:
        return {
            "seconds": seconds,
            "peak_rss_mb": sampler.peak_mb,
            "cpu_s": sampler.own_cpu_s,
            "postgres_cpu_s": sampler.postgres_cpu_s,
            "machine_busy": sampler.machine_busy,
            "foreign_share": max(0.0, sampler.foreign_share),
        }

    # --- Contenders ---------------------------------------------------------------------------------

    def orm_loop(self, label: str) -> dict:
        sample, due = self.cfg["baseline_sample"], self.cfg["due"]
        seconds, sampler = self.measure(lambda: orm_loop(self.merchant, DAY, sample))
        counts = self.counts()
        return {
            **self.figures(seconds * due / sample, sampler),
            "measured_billings": sample,
            "measured_seconds": round(seconds, 3),
            "scaled_from_sample": sample < due,
            **counts,
        }

    def ours(self, label: str) -> dict:
        from recurring import scheduler
        from recurring.models import SchedulerRun

        merchant = self.merchant
        phases: Counter[str] = Counter()
        with self.connection.execute_wrapper(PhaseTimer(phases)):
            seconds, sampler = self.measure(lambda: scheduler.run_day(merchant, DAY))
        # The executions' INSERT runs on connections of their own (recurring.scheduler._insert_committed),
        # which this timer does not wrap: waiting for it is in the rest, beside Python, Redis and commits.
        phases["rest (insert connection, Python, Redis, commits)"] = seconds - sum(phases.values())
        run = SchedulerRun.objects.get(merchant=merchant, day=DAY)
        first = self.counts()
        again_s, _ = self.measure(lambda: scheduler.run_day(merchant, DAY))
        second = self.counts()
        # The forced rerun: the day's record gone and every next date put back (a restore, a hand edit).
        SchedulerRun.objects.filter(merchant=merchant).delete()
        self.restore_next_dates()
        forced_s, _ = self.measure(lambda: scheduler.run_day(merchant, DAY))
        forced_run = SchedulerRun.objects.get(merchant=merchant, day=DAY)
        forced = self.counts()
        return {
            **self.figures(seconds, sampler),
            **first,
            "phases_s": dict(phases),
            "run": {
                name: getattr(run, name)
                for name in ("due", "charged", "reminded", "skipped", "single_payments", "retries")
            },
            "reminders_queued": first["deliveries_queued"],  # delivery ids, in one or more messages
            "messages": first["tasks"],
            "second_run_s": again_s,
            "second_run_created": second["rows"] - first["rows"],
            "second_run_queued": second["charges_queued"] - first["charges_queued"],
            "forced_rerun_s": forced_s,
            "forced_rerun_due": forced_run.due,
            "forced_rerun_created": forced["rows"] - first["rows"],
            "forced_rerun_queued": forced["charges_queued"] - first["charges_queued"],
            "duplicates": forced["duplicates"],
            "charges_queued_twice": forced["charges_queued_twice"],
        }

    def set_sql(self, label: str) -> dict:
        params = {"merchant": self.merchant.pk, "day": DAY}
        created = []
        seconds, sampler = self.measure(lambda: created.append(self.sql(FLOOR, params)))
        again_s, _ = self.measure(lambda: created.append(self.sql(FLOOR, params)))
        counts = self.counts()
        return {
            **self.figures(seconds, sampler),
            **counts,
            "second_run_s": again_s,
            "second_run_created": created[1],
        }

    # --- The run ------------------------------------------------------------------------------------

    def run(self) -> dict:
        log(f"B3: generating {self.cfg['billings']} active billings, {self.cfg['due']} due on {DAY}")
        data = self.generate()
        log(f"B3: data ready in {data['generate_s']} s: {data}")
        reps = self.cfg["repetitions"]
        runs: dict[str, list[dict]] = {name: [] for name in CONTENDERS}
        for rep in range(reps):
            order = CONTENDERS[rep % 3 :] + CONTENDERS[: rep % 3]
            for name in order:
                self.reset()
                log(f"B3 repetition {rep + 1}/{reps}: {name}")
                result = getattr(self, name)(f"r{rep + 1}-{name}")
                runs[name].append(result)
                scaled = f" (scaled from {result['measured_billings']})" if result.get("scaled_from_sample") else ""
                log(
                    f"  {name}: {result['seconds']:.2f} s{scaled}, rows {result['rows']}, "
                    f"duplicates {result['duplicates']}, peak {result['peak_rss_mb']:.0f} MB"
                )
        self.reset()
        return self.report(data, runs)

    def report(self, data: dict, runs: dict[str, list[dict]]) -> dict:
        due = self.cfg["due"]
        contenders = {}
        for name, results in runs.items():
            times = summary([result["seconds"] for result in results])
            entry = {
                "time_s": times,
                "rows": results[0]["rows"],
                "billings_per_s": round(due / times["median"], 1),
                "peak_rss_mb": round(max(result["peak_rss_mb"] for result in results), 1),
                "cpu_s": summary([result["cpu_s"] for result in results]),
                "postgres_cpu_s": summary([result["postgres_cpu_s"] for result in results]),
                "machine_busy": summary([result["machine_busy"] for result in results]),
                "foreign_load": summary([result["foreign_share"] for result in results]),
                "duplicates": sum(result["duplicates"] for result in results),
            }
            if name == "orm_loop":
                entry["scaled_from_sample"] = results[0]["scaled_from_sample"]
                entry["measured_billings"] = results[0]["measured_billings"]
                entry["measured_time_s"] = summary([result["measured_seconds"] for result in results])
            if name == "ours":
                entry["run"] = results[0]["run"]
                entry["phases_s"] = {
                    phase: round(statistics.median(result["phases_s"].get(phase, 0.0) for result in results), 3)
                    for phase in results[0]["phases_s"]
                }
                entry["charges_queued"] = [result["charges_queued"] for result in results]
                entry["reminders_queued"] = [result["reminders_queued"] for result in results]
                entry["messages"] = results[0]["messages"]
                entry["second_run_s"] = summary([result["second_run_s"] for result in results])
                entry["forced_rerun_s"] = summary([result["forced_rerun_s"] for result in results])
                for key in ("second_run_created", "second_run_queued", "forced_rerun_created", "forced_rerun_queued"):
                    entry[key] = sum(result[key] for result in results)
                entry["charges_queued_twice"] = sum(result["charges_queued_twice"] for result in results)
            if name == "set_sql":
                entry["second_run_s"] = summary([result["second_run_s"] for result in results])
                entry["second_run_created"] = sum(result["second_run_created"] for result in results)
            contenders[name] = entry
        medians = {name: contenders[name]["time_s"]["median"] for name in CONTENDERS}
        ratios = {
            "speedup_vs_orm_loop": round(medians["orm_loop"] / medians["ours"], 2),
            "cost_vs_set_sql": round(medians["ours"] / medians["set_sql"], 3),
        }
        paired = [
            {
                "speedup_vs_orm_loop": round(loop["seconds"] / ours["seconds"], 2),
                "cost_vs_set_sql": round(ours["seconds"] / floor["seconds"], 3),
            }
            for loop, ours, floor in zip(runs["orm_loop"], runs["ours"], runs["set_sql"], strict=True)
        ]
        ours = contenders["ours"]
        expected = data["expected_executions"]
        correct = all(
            result["rows"] == expected and result["charges_queued"] == expected for result in runs["ours"]
        ) and all(result["rows"] == expected for result in runs["set_sql"])
        met = {
            "speedup_vs_orm_loop": ratios["speedup_vs_orm_loop"] >= TARGETS["speedup_vs_orm_loop"],
            "cost_vs_set_sql": ratios["cost_vs_set_sql"] <= TARGETS["cost_vs_set_sql"],
            "duplicates": ours["duplicates"] == 0,
            "second_run_creates_nothing": ours["second_run_created"] == ours["forced_rerun_created"] == 0
            and ours["second_run_queued"] == ours["forced_rerun_queued"] == 0,
            "every_execution_queued_once": correct and ours["charges_queued_twice"] == 0,
        }
        notes = [
            f"orm_loop ran the first {self.cfg['baseline_sample']} due billings per repetition and its time is "
            f"scaled linearly to {due}"
            if self.cfg["baseline_sample"] < due
            else "orm_loop ran every due billing",
            "ours is recurring.scheduler.run_day(merchant, day): SchedulerRun + lease, executions inserted, next "
            "dates advanced, reminder deliveries stored and queued, charges queued to Redis (charge_many tasks; "
            "no worker runs), Single Payments/retries pass, counts; time of the first run",
            "second run: run_day again (finished SchedulerRun: no-op); forced rerun: SchedulerRun deleted and next "
            "dates restored outside the timing, must create and queue nothing",
            "set_sql inserts the executions only (no next dates, no queueing, no reminders)",
            f"{self.cfg['repetitions']} repetitions (5 at full scale)" if self.scale != "full" else "",
            "the machine may be shared: 'foreign' is the share of the cores busy with other work during a run",
        ]
        return {
            "id": "B3",
            "name": "scheduler day",
            "scale": {"name": self.scale, **self.cfg},
            "setup": {
                "day": DAY.isoformat(),
                "seed": SEED,
                "scheduler_chunk": self.settings.SCHEDULER_CHUNK,
                "charge_chunk": self.settings.CHARGE_CHUNK,
                "cores": os.cpu_count(),
                "data": data,
            },
            "contenders": contenders,
            "ratios": ratios,
            "ratios_per_repetition": paired,
            "duplicates": ours["duplicates"],
            "second_run_created": ours["second_run_created"] + ours["forced_rerun_created"],
            "targets": {
                "speedup_vs_orm_loop": ">= 50",
                "cost_vs_set_sql": "<= 2",
                "duplicates": 0,
                "second_run_creates_nothing": True,
            },
            "met": met,
            "gate_passed": met["duplicates"]
            and met["second_run_creates_nothing"]
            and met["every_execution_queued_once"],
            "notes": [note for note in notes if note],
        }


def orm_loop(merchant, day: date, limit: int) -> int:
    """The naive scheduler: one billing at a time through the ORM (the peer baseline)."""
    from django.db import transaction as db

    from payments import callbacks, tasks
    from payments.models import Transaction
    from recurring.models import Billing, CancelledExecution
    from recurring.scheduler import due_billings, invoice_number, reminder_data

    billings = list(due_billings(merchant, day).order_by("pk")[:limit])
    cancelled: dict[int, set[date]] = {}
    for billing_id, cancelled_day in CancelledExecution.objects.filter(billing__in=billings).values_list(
        "billing_id", "execute_date"
    ):
        cancelled.setdefault(billing_id, set()).add(cancelled_day)
    created = 0
    for billing in billings:
        execute_date = billing.next_execute_date
        skip = cancelled.get(billing.pk, set())
        with db.atomic():
            if execute_date in skip:
                pass
            elif billing.billing_type == Billing.Type.REMINDER:
                callbacks.notify(merchant, "billing.reminder", reminder_data(billing, execute_date))
            else:
                tx = Transaction(
                    merchant=merchant,
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
                tx.save()
                created += 1
                db.on_commit(lambda pk=tx.pk: tasks.charge.delay(pk))
            billing.next_execute_date = billing.schedule.next_date(
                max(execute_date, day) + timedelta(days=1), skip=skip
            )
            billing.save(update_fields=["next_execute_date"])
    return created


def print_report(result: dict) -> None:
    scale, data = result["scale"], result["setup"]["data"]
    print(
        f"\nB3 scheduler day - scale {scale['name']}: {data['active']} active billings ({data['billings']} in all), "
        f"{data['due']} due on {result['setup']['day']} ({data['due_reminder']} reminders, {data['cancelled_on_day']} "
        f"cancelled that day, {data['cancelled_ahead']} cancelled ahead, {data['due_distinct_schedules']} distinct "
        f"schedules: {data['due_by_kind']}), {scale['repetitions']} repetitions, "
        f"SCHEDULER_CHUNK {result['setup']['scheduler_chunk']}"
    )
    rows = [
        ["contender", "rows", "time s (median)", "min..max", "spread", "billings/s", "peak RSS MB"]
        + ["CPU s", "PG CPU s", "busy", "foreign", "2nd run s", "dup"]
    ]
    for name, entry in result["contenders"].items():
        times = entry["time_s"]
        measured = (
            f"{entry['rows']} of {entry['measured_billings']} (scaled)" if entry.get("scaled_from_sample") else ""
        ) or str(entry["rows"])
        second = entry.get("second_run_s")
        rows.append(
            [
                name,
                measured,
                f"{times['median']:.2f}",
                f"{times['min']:.2f}..{times['max']:.2f}",
                f"{times['spread_pct']:.0f}%",
                f"{entry['billings_per_s']:.0f}",
                f"{entry['peak_rss_mb']:.0f}",
                f"{entry['cpu_s']['median']:.1f}",
                f"{entry['postgres_cpu_s']['median']:.1f}",
                f"{entry['machine_busy']['median']:.0%}",
                f"{entry['foreign_load']['max']:.0%}",
                f"{second['median']:.3f}" if second else "-",
                str(entry["duplicates"]),
            ]
        )
    print(table(rows))
    ratios, met, ours = result["ratios"], result["met"], result["contenders"]["ours"]
    print(
        f"speedup_vs_orm_loop {ratios['speedup_vs_orm_loop']:.1f} (target >= 50: "
        f"{'met' if met['speedup_vs_orm_loop'] else 'NOT met'}); cost_vs_set_sql {ratios['cost_vs_set_sql']:.3f} "
        f"(target <= 2: {'met' if met['cost_vs_set_sql'] else 'NOT met'}); duplicates {result['duplicates']}, "
        f"created by second runs {result['second_run_created']} (hard gate: "
        f"{'passed' if result['gate_passed'] else 'FAILED'})"
    )
    print(
        f"ours: run counts {ours['run']}; charges queued {ours['charges_queued']}; reminder deliveries queued "
        f"{ours['reminders_queued']}; broker messages {ours['messages']}; second run (no-op) median {ours['second_run_s']['median']:.3f} s; forced "
        f"rerun median {ours['forced_rerun_s']['median']:.2f} s, created {ours['forced_rerun_created']}, queued "
        f"{ours['forced_rerun_queued']}"
    )
    print(f"ours, where the time goes (median s): {ours['phases_s']}")
    print_notes(result, warn_noisy=True)


def main(scale: str) -> dict:
    bench = Bench(scale)
    result = bench.run()
    print_report(result)
    return result

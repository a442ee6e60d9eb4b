"""B3, the scheduler's day (DESIGN "Performance targets").

Data: bench/b3_data.py (BILLINGS active billings of one merchant, DUE of them due on DAY, fixed seed).
Three contenders, interleaved, each repetition in a rotated order:

- orm_loop: the naive way (``orm_loop`` below): for each due billing a transaction.atomic() with
  ``Transaction.save()`` (or, for a Reminder, ``callbacks.notify``), the next date from the schedule
  module and ``billing.save(update_fields=...)``, then ``payments.tasks.charge.delay(id)`` on commit.
  Too slow for all of DUE: it runs the first BASELINE_SAMPLE due billings and its time is scaled
  linearly to DUE (said in the output and the JSON).
- ours: ``recurring.scheduler.run_day(merchant, DAY)``, the real entry point (SchedulerRun and its lease,
  the chunks, reminder deliveries, charge_many tasks sent to Redis, Single Payments and retries, counts).
  Then twice more, each timed and checked: ``run_day`` again (the finished SchedulerRun makes it a no-op),
  and a forced rerun (SchedulerRun deleted and the next dates put back, outside the timing) which must
  create nothing and queue nothing (ON CONFLICT DO NOTHING).
- set_sql: the floor, one ``INSERT INTO payments_transaction (...) SELECT ... FROM recurring_billing
  WHERE <due> ON CONFLICT DO NOTHING`` run raw (executions only: no next dates, no queueing), run twice.

Time is wall time of the first run. Between contenders the state is reset outside the timing: the
merchant's transactions, deliveries and SchedulerRuns deleted, next dates restored, the Redis queue
emptied, VACUUM ANALYZE. Hard gate (``gate_passed``): no (billing, day) with two executions, nothing
created or queued by a second run, every created execution queued once. Dropped diagnosis: the seconds
per kind of SQL statement of ours (no target asks for it).

Knobs (environment): BENCH_SCALE=full; BENCH_B3_BILLINGS, BENCH_B3_DUE, BENCH_B3_REPETITIONS,
BENCH_B3_BASELINE_SAMPLE override the scale's values; SCHEDULER_CHUNK reaches the scheduler.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections import Counter
from datetime import date, timedelta

from . import b3_data
from .b3_data import DAY, SEED
from .common import (
    gate_text,
    interleaved,
    judged,
    log,
    print_notes,
    ratios,
    scaled_config,
    summary,
    table,
    target_texts,
    verdicts,
)
from .processes import LOAD_HEADER, SelfSampler, load_cells, load_figures, load_summary

SCALES = {
    "default": {"billings": 200_000, "due": 10_000, "repetitions": 3, "baseline_sample": 1000},
    "full": {"billings": 2_000_000, "due": 100_000, "repetitions": 5, "baseline_sample": 5000},
}
CONTENDERS = ("orm_loop", "ours", "set_sql")
RATIOS = {"speedup_vs_orm_loop": ("orm_loop", "ours"), "cost_vs_set_sql": ("ours", "set_sql")}
TARGETS = {"speedup_vs_orm_loop": (">=", 20), "cost_vs_set_sql": ("<=", 3)}
OURS_TASKS = ("payments.charge_many", "payments.charge", "payments.deliver_callbacks", "payments.deliver_callback")


def config(scale: str) -> dict:
    values = scaled_config("B3", SCALES, scale)
    values["baseline_sample"] = min(values["baseline_sample"], values["due"])
    return values


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


class Bench:
    def __init__(self, scale: str):
        import redis

        from accounts.models import Merchant

        self.scale, self.cfg = scale, config(scale)
        self.merchant, _ = Merchant.objects.get_or_create(
            code="bench-b3",
            defaults={
                "name": "Bench B3",
                "callback_url": "https://bench-b3.example/hooks",
                "callback_secret": "bench-b3-signing-secret",  # no callback without one
            },
        )
        self.redis = redis.Redis.from_url(os.environ["REDIS_URL"])

    def reset(self) -> None:
        """Back to the generated state: nothing of the day, next dates as generated, the queue empty."""
        for table_name in ("payments_transaction", "payments_callbackdelivery", "recurring_schedulerrun"):
            b3_data.sql(f"DELETE FROM {table_name} WHERE merchant_id = %s", [self.merchant.pk])
        if b3_data.one("SELECT to_regclass('bench_b3_due')")[0]:
            b3_data.restore_next_dates()
        self.redis.delete("celery")
        b3_data.vacuum()

    def counts(self) -> dict:
        """Executions of the merchant, duplicates per (billing, day), and the charge ids waiting in Redis."""
        rows, duplicates = b3_data.one(
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
            if task in OURS_TASKS:
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

    @staticmethod
    def measure(work) -> dict:
        """Wall time of ``work()`` in this process, with its load figures."""
        with SelfSampler() as sampler:
            started = time.perf_counter()
            work()
            seconds = time.perf_counter() - started
        return {"seconds": seconds, **load_figures(sampler, cpu_s=sampler.own_cpu_s)}

    # --- Contenders ---------------------------------------------------------------------------------

    def orm_loop(self) -> dict:
        sample, due = self.cfg["baseline_sample"], self.cfg["due"]
        figures = self.measure(lambda: orm_loop(self.merchant, DAY, sample))
        figures["measured_seconds"] = figures["seconds"]
        figures["seconds"] *= due / sample
        return {**figures, "measured_billings": sample, **self.counts()}

    def ours(self) -> dict:
        from recurring import scheduler
        from recurring.models import SchedulerRun

        merchant = self.merchant
        figures = self.measure(lambda: scheduler.run_day(merchant, DAY))
        run = SchedulerRun.objects.get(merchant=merchant, day=DAY)
        first = self.counts()
        again_s = self.measure(lambda: scheduler.run_day(merchant, DAY))["seconds"]
        second = self.counts()
        # The forced rerun: the day's record gone and every next date put back (a restore, a hand edit).
        SchedulerRun.objects.filter(merchant=merchant).delete()
        b3_data.restore_next_dates()
        forced_s = self.measure(lambda: scheduler.run_day(merchant, DAY))["seconds"]
        forced = self.counts()
        return {
            **figures,
            **first,
            "run": {
                name: getattr(run, name)
                for name in ("due", "charged", "reminded", "skipped", "single_payments", "retries")
            },
            "reminders_queued": first["deliveries_queued"],  # delivery ids, in one or more messages
            "second_run_s": again_s,
            "second_run_created": second["rows"] - first["rows"],
            "second_run_queued": second["charges_queued"] - first["charges_queued"],
            "forced_rerun_s": forced_s,
            "forced_rerun_created": forced["rows"] - first["rows"],
            "forced_rerun_queued": forced["charges_queued"] - first["charges_queued"],
            "duplicates": forced["duplicates"],
            "charges_queued_twice": forced["charges_queued_twice"],
        }

    def set_sql(self) -> dict:
        params = {"merchant": self.merchant.pk, "day": DAY}
        created = []
        figures = self.measure(lambda: created.append(b3_data.sql(FLOOR, params)))
        again_s = self.measure(lambda: created.append(b3_data.sql(FLOOR, params)))["seconds"]
        return {**figures, **self.counts(), "second_run_s": again_s, "second_run_created": created[1]}

    # --- The run ------------------------------------------------------------------------------------

    def run(self) -> dict:
        log(f"B3: generating {self.cfg['billings']} active billings, {self.cfg['due']} due on {DAY}")
        self.reset()
        data = b3_data.generate(self.merchant, self.cfg["billings"], self.cfg["due"])
        log(f"B3: data ready in {data['generate_s']} s: {data}")

        def run_one(name: str, rep: int) -> dict:
            self.reset()
            result = getattr(self, name)()
            log(f"  {name}: {result['seconds']:.2f} s, rows {result['rows']}, duplicates {result['duplicates']}")
            return result

        runs = interleaved(CONTENDERS, self.cfg["repetitions"], run_one, "B3")
        self.reset()
        return self.report(data, runs)

    def contenders(self, runs: dict[str, list[dict]]) -> dict:
        """Each contender's figures over its runs."""
        contenders = {}
        for name, results in runs.items():
            times = summary([result["seconds"] for result in results])
            contenders[name] = {
                "time_s": times,
                "rows": results[0]["rows"],
                "billings_per_s": round(self.cfg["due"] / times["median"], 1),
                "duplicates": sum(result["duplicates"] for result in results),
                **load_summary(results),
            }
            for key in ("second_run_s", "forced_rerun_s", "measured_seconds"):
                if key in results[0]:
                    contenders[name][key] = summary([result[key] for result in results])
            for key in ("second_run_created", "second_run_queued", "forced_rerun_created", "forced_rerun_queued"):
                if key in results[0]:
                    contenders[name][key] = sum(result[key] for result in results)
        ours = contenders["ours"]
        ours["run"] = runs["ours"][0]["run"]
        ours["charges_queued"] = [result["charges_queued"] for result in runs["ours"]]
        ours["reminders_queued"] = [result["reminders_queued"] for result in runs["ours"]]
        ours["messages"] = runs["ours"][0]["tasks"]
        ours["charges_queued_twice"] = sum(result["charges_queued_twice"] for result in runs["ours"])
        contenders["orm_loop"]["measured_billings"] = self.cfg["baseline_sample"]
        return contenders

    def report(self, data: dict, runs: dict[str, list[dict]]) -> dict:
        from django.conf import settings

        contenders = self.contenders(runs)
        ours = contenders["ours"]
        found, paired = ratios({name: [r["seconds"] for r in results] for name, results in runs.items()}, RATIOS)
        expected = data["expected_executions"]
        correct = all(r["rows"] == expected and r["charges_queued"] == expected for r in runs["ours"]) and all(
            r["rows"] == expected for r in runs["set_sql"]
        )
        met = {
            **judged(found, TARGETS),
            "duplicates": ours["duplicates"] == 0,
            "second_run_creates_nothing": ours["second_run_created"] == ours["forced_rerun_created"] == 0
            and ours["second_run_queued"] == ours["forced_rerun_queued"] == 0,
            "every_execution_queued_once": correct and ours["charges_queued_twice"] == 0,
        }
        notes = [
            f"orm_loop ran the first {self.cfg['baseline_sample']} due billings per repetition and its time is "
            f"scaled linearly to {self.cfg['due']}"
            if self.cfg["baseline_sample"] < self.cfg["due"]
            else "orm_loop ran every due billing",
            "ours is recurring.scheduler.run_day(merchant, day), charges queued to Redis (no worker runs); time of "
            "the first run. Second run: run_day again (no-op); forced rerun: SchedulerRun deleted and next dates "
            "restored outside the timing, must create and queue nothing",
            "set_sql inserts the executions only (no next dates, no queueing, no reminders)",
        ]
        return {
            "id": "B3",
            "name": "scheduler day",
            "scale": {"name": self.scale, **self.cfg},
            "setup": {
                "day": DAY.isoformat(),
                "seed": SEED,
                "scheduler_chunk": settings.SCHEDULER_CHUNK,
                "charge_chunk": settings.CHARGE_CHUNK,
                "cores": os.cpu_count(),
                "data": data,
            },
            "contenders": contenders,
            "ratios": found,
            "ratios_per_repetition": paired,
            "duplicates": ours["duplicates"],
            "second_run_created": ours["second_run_created"] + ours["forced_rerun_created"],
            "targets": {**target_texts(TARGETS), "duplicates": 0, "second_run_creates_nothing": True},
            "met": met,
            "gate_passed": met["duplicates"]
            and met["second_run_creates_nothing"]
            and met["every_execution_queued_once"],
            "notes": notes,
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
        f"cancelled that day, {data['cancelled_ahead']} cancelled ahead; {data['due_by_kind']}), "
        f"{scale['repetitions']} repetitions, SCHEDULER_CHUNK {result['setup']['scheduler_chunk']}"
    )
    rows = [
        ["contender", "rows", "time s (median)", "min..max", "spread", "billings/s", *LOAD_HEADER, "2nd run s", "dup"]
    ]
    for name, entry in result["contenders"].items():
        times, second = entry["time_s"], entry.get("second_run_s")
        measured = f" (of {entry['measured_billings']}, scaled)" if name == "orm_loop" else ""
        rows.append(
            [
                name,
                f"{entry['rows']}{measured}",
                f"{times['median']:.2f}",
                f"{times['min']:.2f}..{times['max']:.2f}",
                f"{times['spread_pct']:.0f}%",
                f"{entry['billings_per_s']:.0f}",
                *load_cells(entry),
                f"{second['median']:.3f}" if second else "-",
                str(entry["duplicates"]),
            ]
        )
    print(table(rows))
    print(
        f"{verdicts(result['ratios'], TARGETS, result['met'])}; duplicates {result['duplicates']}, created by second "
        f"runs {result['second_run_created']} (hard gate: {gate_text(result['gate_passed'])})"
    )
    ours = result["contenders"]["ours"]
    print(
        f"ours: run counts {ours['run']}; charges queued {ours['charges_queued']}; reminder deliveries queued "
        f"{ours['reminders_queued']}; broker messages {ours['messages']}; forced rerun median "
        f"{ours['forced_rerun_s']['median']:.2f} s, created {ours['forced_rerun_created']}, queued "
        f"{ours['forced_rerun_queued']}"
    )
    print_notes(result, warn_noisy=True)


def main(scale: str) -> dict:
    result = Bench(scale).run()
    print_report(result)
    return result

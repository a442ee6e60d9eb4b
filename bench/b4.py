"""B4, charge execution (DESIGN "Performance targets").

N due charges on the simulated bank (latency p50 50 ms / p99 300 ms, 1% time-outs), four contenders
interleaved in one run, each repetition in a rotated order:

- celery_defaults: one naive task per charge (bench/baseline_app.py), a worker with Celery's defaults
  (prefork, one process per core). Too slow for the whole N: it runs BASELINE_SAMPLE charges and its
  time is scaled linearly to N (said in the output and in the JSON).
- celery_threads: the same naive task on a worker with ``--pool threads`` at our concurrency (2 x
  CHARGE_THREADS bank calls in flight, one process). It runs THREADS_SAMPLE charges (all of N at the
  default scale), scaled the same way when fewer.
- ours: ``payments.services.enqueue_charges`` -> ``charge_many`` tasks (CHARGE_CHUNK ids each, claimed at
  once, CHARGE_THREADS bank calls in flight per task; a time-out goes on as a single ``charge`` task
  with the real back-off, CHARGE_RETRY_COUNTDOWNS) on ``celery -A billing_bo worker --concurrency 2``,
  the worker SIGKILLed (whole process group) and started again KILLS times, then janitor passes.
- bare_client: 2 processes x CHARGE_THREADS threads calling ``payments.services.charge`` directly (the
  same number of bank calls in flight as ours), no broker; a time-out is retried at once (bench/floor.py).

Time is wall time from the first enqueue (or "go") to the last of the rows settled; ours includes its
restarts, the janitor passes and the work they requeue. NOT the real janitor timings: the janitor runs
from this process, once the queue is empty and nothing moved for IDLE_SECONDS, with a ``now`` ahead of
the clock (what a killed worker held counts as stuck or lost at once), standing in for the minutes a
deployment waits (CHARGE_STUCK_SECONDS, CHARGE_REQUEUE_SECONDS, the beat schedule) - said in the JSON.

lost = rows not ending success (every test card here approves) or without their approved sale at the
bank; duplicates = approved sales beyond one per invoice, or per idempotency key. Both must be 0 for ours
(hard gate: `make bench` exits non-zero).

Knobs (environment): BENCH_SCALE=full; BENCH_B4_CHARGES, BENCH_B4_REPETITIONS, BENCH_B4_KILLS,
BENCH_B4_BASELINE_SAMPLE, BENCH_B4_THREADS_SAMPLE override the scale's values; CHARGE_CHUNK /
CHARGE_THREADS reach every process.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import date
from decimal import Decimal

from . import b4_runs
from .common import (
    fresh_dir,
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
from .processes import LOAD_HEADER, load_cells, load_summary

BANK_FAULTS = {
    "SIMULATED_BANK_LATENCY_MS": "50",
    "SIMULATED_BANK_LATENCY_P99_MS": "300",
    "SIMULATED_BANK_TIMEOUT_RATE": "0.01",
    "SIMULATED_BANK_TRANSIENT_RATE": "0",
}
SCALES = {
    # The full scale's kill density (one SIGKILL per 10,000 charges): a restart (~3 s) and the killed
    # chunks' janitor pass are a fixed cost per kill, so a denser rate measures the kills, not the charging.
    "default": {"charges": 10_000, "repetitions": 3, "kills": 1, "baseline_sample": 200, "threads_sample": 10_000},
    "full": {"charges": 100_000, "repetitions": 5, "kills": 10, "baseline_sample": 2000, "threads_sample": 20_000},
}
CONTENDERS = ("celery_defaults", "celery_threads", "ours", "bare_client")
SAMPLED = {"celery_defaults": "baseline_sample", "celery_threads": "threads_sample"}
RATIOS = {
    "speedup_vs_celery_defaults": ("celery_defaults", "ours"),
    "speedup_vs_celery_threads": ("celery_threads", "ours"),
    "cost_vs_bare_client": ("ours", "bare_client"),
}
TARGETS = {
    "speedup_vs_celery_defaults": (">=", 10),
    "speedup_vs_celery_threads": (">=", 1),
    "cost_vs_bare_client": ("<=", 1.43),  # >= 70% of the floor's throughput
}
PAN = "4111111111111111"


def config(scale: str) -> dict:
    values = scaled_config("B4", SCALES, scale)
    for key in SAMPLED.values():
        values[key] = min(values[key], values["charges"])
    return values


class Bench:
    def __init__(self, scale: str):
        import redis
        from django.conf import settings

        from accounts.models import Merchant

        self.scale, self.cfg = scale, config(scale)
        self.settings = settings
        self.workdir = fresh_dir("b4")
        self.merchant, _ = Merchant.objects.get_or_create(code="bench-b4", defaults={"name": "Bench B4"})
        self.redis = redis.Redis.from_url(os.environ["REDIS_URL"])
        self.threads = settings.CHARGE_THREADS

    def prepare(self, label: str, count: int) -> tuple[list[int], dict[str, str]]:
        """``count`` due charges in a fresh bank file; the environment every process of this run gets."""
        from payments import services
        from payments.models import Transaction

        self.clear()
        bank_path = self.workdir / f"bank-{label}.sqlite3"
        self.settings.SIMULATED_BANK_PATH = str(bank_path)
        for name in BANK_FAULTS:  # this process only tokenizes, asks find() and runs the janitor
            setattr(self.settings, name, 0)
        card = services.tokenize_card(PAN, 12, date.today().year + 4, "123", "Bench Customer")
        self.today = self.merchant.local_today()
        rows = [
            Transaction(
                merchant=self.merchant,
                invoice_number=f"B4-{label}-{number:06d}",
                kind=Transaction.Kind.RECURRING,
                amount=Decimal(150_000),
                execute_date=self.today,
                **card,
            )
            for number in range(count)
        ]
        ids = [tx.pk for tx in Transaction.objects.bulk_create(rows, batch_size=5000)]
        self.rows = count
        return ids, {**os.environ, **BANK_FAULTS, "SIMULATED_BANK_PATH": str(bank_path)}

    def clear(self) -> None:
        from django.db import connection

        from bench.baseline_app import QUEUE

        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM payments_transaction WHERE merchant_id = %s", [self.merchant.pk])
        self.redis.delete("celery", "unacked", "unacked_index", "unacked_mutex", QUEUE)

    def open_count(self) -> int:
        """Rows still open: two counts on the partial indexes of open rows (scheduled, processing)."""
        from payments.models import Transaction

        scheduled = Transaction.objects.filter(status=Transaction.Status.SCHEDULED, execute_date__lte=self.today)
        return scheduled.count() + Transaction.objects.filter(status=Transaction.Status.PROCESSING).count()

    def wait_settled(self, timeout: float, on_tick=None) -> bool:
        """Poll until no row is open, every 0.1 s for 2,000 rows up to every 2 s from 40,000 (a count reads
        every open row; the same for every contender)."""
        deadline = time.perf_counter() + timeout
        interval = min(2.0, max(0.1, self.rows / 20_000))
        while (left := self.open_count()) > 0:
            if on_tick is not None:
                on_tick(left)
            if time.perf_counter() > deadline:
                return False
            time.sleep(interval)
        return True

    def verify(self, count: int) -> dict:
        """lost and duplicates of this run's rows, from the database and the bank's own records."""
        from payments.acquirer import get_acquirer
        from payments.models import Transaction

        rows = list(
            Transaction.objects.filter(merchant=self.merchant).values_list("invoice_number", "status", "attempts")
        )
        bank = get_acquirer()
        per_key = bank.count_sales_by_key()
        per_invoice = Counter(op["description"] for op in bank.operations(kind="sale") if op["approved"])
        success = {invoice for invoice, status, _ in rows if status == Transaction.Status.SUCCESS}
        lost = (count - len(rows)) + sum(
            1 for invoice, _, _ in rows if invoice not in success or not per_invoice[invoice]
        )
        duplicates = sum(n - 1 for n in per_invoice.values() if n > 1) + sum(n - 1 for n in per_key.values() if n > 1)
        return {
            "lost": lost,
            "duplicates": duplicates,
            "statuses": dict(Counter(status for _, status, _ in rows)),
            "attempts_not_1": sum(1 for _, _, attempts in rows if attempts != 1),
        }

    def run_one(self, name: str, rep: int) -> dict:
        label = f"r{rep + 1}-{name}"
        count = self.cfg[SAMPLED[name]] if name in SAMPLED else self.cfg["charges"]
        ids, env = self.prepare(label, count)
        if name == "ours":
            result = b4_runs.ours(self, ids, env, label)
        elif name == "bare_client":
            result = b4_runs.bare_client(self, ids, env, label)
        else:
            pool = ["--pool=threads", f"--concurrency={2 * self.threads}"] if name == "celery_threads" else []
            result = b4_runs.naive_worker(self, ids, env, label, pool)
        result.update(self.verify(count), measured_charges=count, measured_seconds=result["seconds"])
        result["seconds"] *= self.cfg["charges"] / count  # scaled to N when a sample ran
        if not result.pop("settled"):
            log(f"{label}: not settled in time; {result['statuses']}")
        log(
            f"  {name}: {result['seconds']:.2f} s for {self.cfg['charges']} charges (measured {count}), "
            f"lost {result['lost']}, duplicates {result['duplicates']}, peak {result['peak_rss_mb']:.0f} MB"
        )
        return result

    def run(self) -> dict:
        runs = interleaved(CONTENDERS, self.cfg["repetitions"], self.run_one, "B4")
        self.clear()
        return self.report(runs)

    def contenders(self, runs: dict[str, list[dict]]) -> dict:
        """Each contender's figures over its runs."""
        count = self.cfg["charges"]
        contenders = {}
        for name, results in runs.items():
            times = summary([result["seconds"] for result in results])
            contenders[name] = {
                "time_s": times,
                "charges_per_s": round(count / times["median"], 1),
                "measured_charges": results[0]["measured_charges"],
                "scaled_from_sample": results[0]["measured_charges"] < count,
                "measured_time_s": summary([result["measured_seconds"] for result in results]),
                "lost": sum(result["lost"] for result in results),
                "duplicates": sum(result["duplicates"] for result in results),
                **load_summary(results),
            }
        ours = contenders["ours"]
        for key in (
            "kills",
            "janitor_passes",
            "restart_seconds",
            "timeouts_seen",
            "attempts_not_1",
            "janitor_at_s_open",
        ):
            ours[key] = [result[key] for result in runs["ours"]]
        contenders["bare_client"]["retried"] = [result["retried"] for result in runs["bare_client"]]
        return contenders

    def report(self, runs: dict[str, list[dict]]) -> dict:
        count = self.cfg["charges"]
        contenders = self.contenders(runs)
        ours = contenders["ours"]
        found, paired = ratios({name: [r["seconds"] for r in results] for name, results in runs.items()}, RATIOS)
        met = {**judged(found, TARGETS), "lost": ours["lost"] == 0, "duplicates": ours["duplicates"] == 0}
        notes = [
            *(
                f"{name} ran {self.cfg[key]} charges per repetition, its time scaled linearly to {count}"
                for name, key in SAMPLED.items()
                if self.cfg[key] < count
            ),
            "ours runs with the real back-off (a time-out becomes a charge task after CHARGE_RETRY_COUNTDOWNS[0] s) "
            "but NOT the real janitor timings: the janitor runs with a `now` ahead of the clock once the queue is "
            f"empty and nothing moved for {b4_runs.IDLE_SECONDS} s, standing in for CHARGE_STUCK_SECONDS / "
            "CHARGE_REQUEUE_SECONDS of waiting (so it may settle a timed-out row before its back-off ends)",
            f"celery_threads: one worker process, --pool threads --concurrency {2 * self.threads} (ours: 2 processes "
            f"x CHARGE_THREADS {self.threads})",
            f"kills per ours run: {self.cfg['kills']} (10 per 100,000 at full scale)",
        ]
        return {
            "id": "B4",
            "name": "charge execution",
            "scale": {"name": self.scale, **self.cfg},
            "setup": {
                **{name.lower(): float(value) for name, value in BANK_FAULTS.items()},
                "charge_chunk": self.settings.CHARGE_CHUNK,
                "charge_threads": self.threads,
                "ours_worker_concurrency": 2,
                "celery_threads_concurrency": 2 * self.threads,
                "bare_client": f"2 processes x {self.threads} threads",
                "real_janitor_timings": False,
                "cores": os.cpu_count(),
            },
            "contenders": contenders,
            "ratios": found,
            "ratios_per_repetition": paired,
            "lost": ours["lost"],
            "duplicates": ours["duplicates"],
            "targets": {**target_texts(TARGETS), "lost": 0, "duplicates": 0},
            "met": met,
            "gate_passed": met["lost"] and met["duplicates"],
            "notes": notes,
        }


def print_report(result: dict) -> None:
    scale = result["scale"]
    print(
        f"\nB4 charge execution - scale {scale['name']}: {scale['charges']} charges, {scale['repetitions']} "
        f"repetitions, bank p50 50 ms / p99 300 ms, 1% time-outs, ours killed {scale['kills']}x per run"
    )
    rows = [
        ["contender", "charges run", "time s (median)", "min..max", "spread", "charges/s", *LOAD_HEADER, "lost", "dup"]
    ]
    for name, entry in result["contenders"].items():
        times = entry["time_s"]
        rows.append(
            [
                name,
                str(entry["measured_charges"]) + (" (scaled)" if entry["scaled_from_sample"] else ""),
                f"{times['median']:.2f}",
                f"{times['min']:.2f}..{times['max']:.2f}",
                f"{times['spread_pct']:.0f}%",
                f"{entry['charges_per_s']:.0f}",
                *load_cells(entry),
                str(entry["lost"]),
                str(entry["duplicates"]),
            ]
        )
    print(table(rows))
    print(
        f"{verdicts(result['ratios'], TARGETS, result['met'])}; lost {result['lost']}, duplicates "
        f"{result['duplicates']} (hard gate: {gate_text(result['gate_passed'])})"
    )
    ours = result["contenders"]["ours"]
    print(
        f"ours per run: kills {ours['kills']}, restart s {ours['restart_seconds']}, janitor passes "
        f"{ours['janitor_passes']}, time-outs seen {ours['timeouts_seen']}, attempts != 1 {ours['attempts_not_1']}, "
        f"janitor passes at (s, rows open) {ours['janitor_at_s_open']}"
    )
    print_notes(result, warn_noisy=True)


def main(scale: str) -> dict:
    result = Bench(scale).run()
    print_report(result)
    return result

"""B4, charge execution (DESIGN "Performance targets").

N due charges on the simulated bank (latency p50 50 ms / p99 300 ms, 1% time-outs), three contenders
interleaved in one run, each repetition in a rotated order:

- celery_defaults: one naive task per charge (bench/baseline_app.py), a worker with Celery's defaults
  (prefork, one process per core). Too slow for the whole N: it runs a sample and its time is scaled
  to N (said in the output and in the JSON).
- ours: ``payments.services.enqueue_charges`` -> ``charge_many`` chunks (CHARGE_CHUNK ids,
  CHARGE_THREADS bank calls in flight per task) on `celery -A billing_bo worker --concurrency 2`, the
  worker SIGKILLed (whole process group) and started again KILLS times, then janitor passes.
- bare_client: 2 processes x CHARGE_THREADS threads calling ``payments.services.charge`` directly (the
  same number of bank calls in flight as ours), no broker; a time-out is retried at once.

Time is wall time from the first enqueue (or "go") to the last of the N rows settled; ours includes
its restarts, the janitor passes and the work they requeue. The janitor runs with a ``now`` ahead of the
clock (what a killed worker held counts as stuck or lost at once), which compresses the minutes a real
deployment would wait (CHARGE_STUCK_SECONDS, CHARGE_REQUEUE_SECONDS) - said in the JSON too.

lost = rows not ending success (every test card here approves) or without their approved sale at the
bank; duplicates = approved sales beyond one per invoice, or per idempotency key. Both must be 0 for
ours (hard gate: `make bench` exits non-zero).

Ours runs with the app's defaults (CHARGE_CHUNK 200, CHARGE_THREADS 16 on PostgreSQL): a chunk is claimed
in two queries, its bank calls go to a thread pool that lives as long as the worker process and keeps
its database connections, and the task waits for its slowest call.

Knobs (environment): BENCH_SCALE=full; BENCH_B4_CHARGES, BENCH_B4_REPETITIONS, BENCH_B4_KILLS,
BENCH_B4_BASELINE_SAMPLE override the scale's values; CHARGE_CHUNK / CHARGE_THREADS reach every process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

from .common import (
    PROJECT_ROOT,
    ProcessSampler,
    Worker,
    fresh_dir,
    log,
    print_notes,
    scaled_config,
    summary,
    table,
)

BANK_FAULTS = {
    "SIMULATED_BANK_LATENCY_MS": "50",
    "SIMULATED_BANK_LATENCY_P99_MS": "300",
    "SIMULATED_BANK_TIMEOUT_RATE": "0.01",
    "SIMULATED_BANK_TRANSIENT_RATE": "0",
}
SCALES = {
    # ~7 minutes on 2 cores. The full scale's kill density (one SIGKILL per 10,000 charges): a worker
    # restart (~3 s) plus the killed chunks' janitor pass are a fixed cost per kill, so 1 kill in 2,000
    # charges (5x the density) measured the kills more than the charging.
    "default": {"charges": 10_000, "repetitions": 3, "kills": 1, "baseline_sample": 200},
    "full": {"charges": 100_000, "repetitions": 5, "kills": 10, "baseline_sample": 2000},
}
CONTENDERS = ("celery_defaults", "ours", "bare_client")
TARGETS = {"speedup_vs_celery_defaults": 10.0, "cost_vs_bare_client": 1 / 0.7}
OURS_QUEUE_KEYS = ("celery", "unacked", "unacked_index", "unacked_mutex")
IDLE_SECONDS = 0.5
MAX_JANITOR_PASSES = 20
PAN = "4111111111111111"


def config(scale: str) -> dict:
    values = scaled_config("B4", SCALES, scale)
    values["baseline_sample"] = min(values["baseline_sample"], values["charges"])
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

    # --- Data ---------------------------------------------------------------------------------------

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
        today = self.today = self.merchant.local_today()
        rows = [
            Transaction(
                merchant=self.merchant,
                invoice_number=f"B4-{label}-{number:06d}",
                kind=Transaction.Kind.RECURRING,
                amount=Decimal(150_000),
                execute_date=today,
                **card,
            )
            for number in range(count)
        ]
        ids = [tx.pk for tx in Transaction.objects.bulk_create(rows, batch_size=5000)]
        self.rows = count
        env = {**os.environ, **BANK_FAULTS, "SIMULATED_BANK_PATH": str(bank_path)}
        return ids, env

    def clear(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM payments_transaction WHERE merchant_id = %s", [self.merchant.pk])
        self.redis.delete(*OURS_QUEUE_KEYS)

    def open_count(self) -> int:
        from payments.models import Transaction

        # Two counts on the partial indexes of open rows (scheduled, processing): their cost follows the
        # rows still open, not the table. Only this merchant's rows exist in the bench database.
        scheduled = Transaction.objects.filter(status=Transaction.Status.SCHEDULED, execute_date__lte=self.today)
        return scheduled.count() + Transaction.objects.filter(status=Transaction.Status.PROCESSING).count()

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

    def wait_settled(self, timeout: float, on_tick=None) -> bool:
        """Poll until no row is open. A count reads every open row, so it is spaced out with the run's
        size: 0.1 s for 2,000 rows, 1 s for 20,000, 2 s from 40,000 (the same for every contender)."""
        deadline = time.perf_counter() + timeout
        interval = min(2.0, max(0.1, self.rows / 20_000))
        while True:
            left = self.open_count()
            if left == 0:
                return True
            if on_tick is not None:
                on_tick(left)
            if time.perf_counter() > deadline:
                return False
            time.sleep(interval)

    # --- Contenders ---------------------------------------------------------------------------------

    def celery_defaults(self, label: str) -> dict:
        from bench.baseline_app import QUEUE, naive_charge

        sample, count = self.cfg["baseline_sample"], self.cfg["charges"]
        ids, env = self.prepare(label, sample)
        self.redis.delete(QUEUE)
        worker = Worker("bench.baseline_app", "b4-baseline", env, self.workdir / f"{label}.log", ["--loglevel=INFO"])
        worker.start()
        try:
            with ProcessSampler(groups=(worker.pgid,)) as memory:
                started = time.perf_counter()
                for transaction_id in ids:
                    naive_charge.delay(transaction_id)
                settled = self.wait_settled(timeout=max(120.0, sample / 5))
                seconds = time.perf_counter() - started
        finally:
            worker.stop()
        checks = self.verify(sample)
        if not settled:
            log(f"{label}: not settled in time; {checks['statuses']}")
        return {
            "seconds": seconds * count / sample,
            "measured_charges": sample,
            "measured_seconds": round(seconds, 3),
            "scaled_from_sample": sample < count,
            "peak_rss_mb": memory.peak_mb,
            "cpu_s": memory.cpu_s,
            "machine_busy": memory.machine_busy,
            "postgres_cpu_s": memory.postgres_cpu_s,
            "foreign_share": memory.foreign_share,
            **checks,
        }

    def ours(self, label: str) -> dict:
        from django.utils import timezone

        from payments import services

        count, kills = self.cfg["charges"], self.cfg["kills"]
        ids, env = self.prepare(label, count)
        worker = Worker(
            "billing_bo",
            "b4-ours",
            env,
            self.workdir / f"{label}.log",
            ["--loglevel=INFO", "--concurrency=2"],
        )
        worker.start()
        thresholds = [count * (k + 1) / (kills + 1) for k in range(kills)]
        step = timedelta(seconds=self.settings.CHARGE_REQUEUE_SECONDS + self.settings.CHARGE_STUCK_SECONDS + 60)
        assert step * (MAX_JANITOR_PASSES + 1) < timedelta(seconds=self.settings.CHARGE_GIVE_UP_SECONDS)
        state = {"last": -1, "changed": 0.0, "killed": 0, "restart_s": 0.0, "janitor": [], "janitor_at": []}
        try:
            with ProcessSampler(groups=(worker.pgid,)) as memory:

                def tick(left: int) -> None:
                    moment = time.perf_counter()
                    if thresholds and count - left >= thresholds[0]:
                        thresholds.pop(0)
                        memory.sample()
                        worker.kill()
                        memory.groups.discard(worker.pgid)
                        state["killed"] += 1
                        state["restart_s"] += worker.start()
                        memory.groups.add(worker.pgid)
                        state["last"], state["changed"] = left, time.perf_counter()
                    elif left != state["last"]:
                        state["last"], state["changed"] = left, moment
                    elif self.redis.llen("celery") == 0 and moment - state["changed"] >= IDLE_SECONDS:
                        if len(state["janitor"]) >= MAX_JANITOR_PASSES:
                            return
                        passes = len(state["janitor"]) + 1
                        state["janitor_at"].append((round(moment - started, 2), left))
                        state["janitor"].append(services.janitor(now=timezone.now() + step * passes))
                        state["changed"] = time.perf_counter()

                started = time.perf_counter()
                services.enqueue_charges(ids)  # autocommit: sent at once
                settled = self.wait_settled(timeout=max(180.0, count / 20), on_tick=tick)
                seconds = time.perf_counter() - started
        finally:
            worker.stop()
        checks = self.verify(count)
        if not settled:
            log(f"{label}: not settled in time; {checks['statuses']}")
        log_text = (self.workdir / f"{label}.log").read_text(errors="replace")
        return {
            "seconds": seconds,
            "measured_charges": count,
            "kills": state["killed"],
            "restart_seconds": round(state["restart_s"], 3),
            "janitor_passes": len(state["janitor"]),
            "janitor": state["janitor"],
            "janitor_at_s_open": state["janitor_at"],
            "timeouts_seen": log_text.count("charge in doubt: bank timed out"),
            "peak_rss_mb": memory.peak_mb,
            "cpu_s": memory.cpu_s,
            "machine_busy": memory.machine_busy,
            "postgres_cpu_s": memory.postgres_cpu_s,
            "foreign_share": memory.foreign_share,
            **checks,
        }

    def bare_client(self, label: str) -> dict:
        count = self.cfg["charges"]
        ids, env = self.prepare(label, count)
        processes = []
        try:
            for part in range(2):
                ids_file = self.workdir / f"{label}-ids-{part}.json"
                ids_file.write_text(json.dumps(ids[part::2]))
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "bench.floor", str(self.threads), str(ids_file)],
                        cwd=PROJECT_ROOT,
                        env=env,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=(self.workdir / f"{label}-{part}.log").open("wb"),
                        text=True,
                        start_new_session=True,
                    )
                )
            for process in processes:
                if process.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"bare client did not start; see {self.workdir}/{label}-*.log")
            with ProcessSampler(groups=tuple(process.pid for process in processes)) as memory:
                started = time.perf_counter()
                for process in processes:
                    process.stdin.write("go\n")
                    process.stdin.flush()
                    process.stdin.close()
                # The same watching as the other contenders get (the bench's polling costs a little
                # database time), until both processes have finished.
                self.wait_settled(timeout=max(180.0, count / 20))
                seconds = time.perf_counter() - started  # all settled, as for the other contenders
                for process in processes:
                    process.wait(60)
                reports = [json.loads(process.stdout.readline() or "{}") for process in processes]
            if not all(report and report["errors"] == 0 for report in reports):
                raise RuntimeError(f"bare client failed: {reports}; see {self.workdir}/{label}-*.log")
        finally:
            for process in processes:
                process.wait(30)
        return {
            "seconds": seconds,
            "measured_charges": count,
            "retried": sum(report["retried"] for report in reports),
            "peak_rss_mb": memory.peak_mb,
            "cpu_s": memory.cpu_s,
            "machine_busy": memory.machine_busy,
            "postgres_cpu_s": memory.postgres_cpu_s,
            "foreign_share": memory.foreign_share,
            **self.verify(count),
        }

    # --- The run ------------------------------------------------------------------------------------

    def run(self) -> dict:
        reps = self.cfg["repetitions"]
        runs: dict[str, list[dict]] = {name: [] for name in CONTENDERS}
        for rep in range(reps):
            order = CONTENDERS[rep % 3 :] + CONTENDERS[: rep % 3]
            for name in order:
                label = f"r{rep + 1}-{name}"
                log(f"B4 repetition {rep + 1}/{reps}: {name}")
                result = getattr(self, name)(label)
                runs[name].append(result)
                scaled = f" (scaled from {result['measured_charges']})" if result.get("scaled_from_sample") else ""
                log(
                    f"  {name}: {result['seconds']:.2f} s for {self.cfg['charges']} charges{scaled}, "
                    f"lost {result['lost']}, duplicates {result['duplicates']}, peak {result['peak_rss_mb']:.0f} MB"
                )
        self.clear()
        return self.report(runs)

    def report(self, runs: dict[str, list[dict]]) -> dict:
        count = self.cfg["charges"]
        contenders = {}
        for name, results in runs.items():
            times = summary([result["seconds"] for result in results])
            entry = {
                "time_s": times,
                "charges_per_s": round(count / times["median"], 1),
                "peak_rss_mb": round(max(result["peak_rss_mb"] for result in results), 1),
                "lost": sum(result["lost"] for result in results),
                "duplicates": sum(result["duplicates"] for result in results),
                "measured_charges": results[0]["measured_charges"],
                # Diagnosis: CPU of the contender's own processes and of the PostgreSQL server, and the
                # share of the machine's cores busy (anything) while it ran.
                "cpu_s": summary([result["cpu_s"] for result in results]),
                "postgres_cpu_s": summary([result["postgres_cpu_s"] for result in results]),
                "machine_busy": summary([result["machine_busy"] for result in results]),
                "foreign_load": summary([result["foreign_share"] for result in results]),
            }
            if name == "celery_defaults":
                entry["scaled_from_sample"] = results[0]["scaled_from_sample"]
                entry["measured_time_s"] = summary([result["measured_seconds"] for result in results])
            if name == "ours":
                for key in ("kills", "janitor_passes", "restart_seconds", "timeouts_seen", "attempts_not_1"):
                    entry[key] = [result[key] for result in results]
                entry["janitor"] = [result["janitor"] for result in results]
                entry["janitor_at_s_open"] = [result["janitor_at_s_open"] for result in results]
            if name == "bare_client":
                entry["retried"] = [result["retried"] for result in results]
            contenders[name] = entry
        medians = {name: contenders[name]["time_s"]["median"] for name in CONTENDERS}
        paired = [
            {
                "speedup_vs_celery_defaults": round(base["seconds"] / ours["seconds"], 2),
                "cost_vs_bare_client": round(ours["seconds"] / bare["seconds"], 3),
            }
            for base, ours, bare in zip(runs["celery_defaults"], runs["ours"], runs["bare_client"], strict=True)
        ]
        ratios = {
            "speedup_vs_celery_defaults": round(medians["celery_defaults"] / medians["ours"], 2),
            "cost_vs_bare_client": round(medians["ours"] / medians["bare_client"], 3),
        }
        lost, duplicates = contenders["ours"]["lost"], contenders["ours"]["duplicates"]
        met = {
            "speedup_vs_celery_defaults": ratios["speedup_vs_celery_defaults"] >= TARGETS["speedup_vs_celery_defaults"],
            "cost_vs_bare_client": ratios["cost_vs_bare_client"] <= TARGETS["cost_vs_bare_client"],
            "lost": lost == 0,
            "duplicates": duplicates == 0,
        }
        notes = [
            f"celery_defaults ran {self.cfg['baseline_sample']} charges per repetition and its time is scaled "
            f"linearly to {count}"
            if self.cfg["baseline_sample"] < count
            else "celery_defaults ran every charge",
            "ours: the janitor runs with a `now` ahead of the clock once the queue is empty and nothing moves for "
            f"{IDLE_SECONDS} s, standing in for CHARGE_STUCK_SECONDS / CHARGE_REQUEUE_SECONDS of waiting",
            f"kills per ours run: {self.cfg['kills']} (10 per 100,000 at full scale: the same density)"
            if self.scale != "full"
            else "",
            f"{self.cfg['repetitions']} repetitions (5 at full scale; fewer at the default scale to finish in minutes)"
            if self.scale != "full"
            else "",
            "the machine may be shared: 'foreign' is the share of the cores busy with other work during a run",
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
                "bare_client": f"2 processes x {self.threads} threads",
                "cores": os.cpu_count(),
            },
            "contenders": contenders,
            "ratios": ratios,
            "ratios_per_repetition": paired,
            "lost": lost,
            "duplicates": duplicates,
            "targets": {
                "speedup_vs_celery_defaults": ">= 10",
                "cost_vs_bare_client": "<= 1.43 (>= 70% of the floor)",
                "lost": 0,
                "duplicates": 0,
            },
            "met": met,
            "gate_passed": met["lost"] and met["duplicates"],
            "notes": [note for note in notes if note],
        }


def print_report(result: dict) -> None:
    scale = result["scale"]
    print(
        f"\nB4 charge execution - scale {scale['name']}: {scale['charges']} charges, {scale['repetitions']} repetitions, "
        f"bank p50 50 ms / p99 300 ms, 1% time-outs, ours killed {scale['kills']}x per run"
    )
    rows = [
        ["contender", "charges run", "time s (median)", "min..max", "spread", "charges/s", "peak RSS MB"]
        + ["CPU s", "PG CPU s", "busy", "foreign", "lost", "dup"]
    ]
    for name, entry in result["contenders"].items():
        times = entry["time_s"]
        measured = str(entry["measured_charges"]) + (" (scaled)" if entry.get("scaled_from_sample") else "")
        rows.append(
            [
                name,
                measured,
                f"{times['median']:.2f}",
                f"{times['min']:.2f}..{times['max']:.2f}",
                f"{times['spread_pct']:.0f}%",
                f"{entry['charges_per_s']:.0f}",
                f"{entry['peak_rss_mb']:.0f}",
                f"{entry['cpu_s']['median']:.1f}",
                f"{entry['postgres_cpu_s']['median']:.1f}",
                f"{entry['machine_busy']['median']:.0%}",
                f"{entry['foreign_load']['max']:.0%}",
                str(entry["lost"]),
                str(entry["duplicates"]),
            ]
        )
    print(table(rows))
    ratios, met = result["ratios"], result["met"]
    print(
        f"speedup_vs_celery_defaults {ratios['speedup_vs_celery_defaults']:.2f} (target >= 10: "
        f"{'met' if met['speedup_vs_celery_defaults'] else 'NOT met'}); cost_vs_bare_client "
        f"{ratios['cost_vs_bare_client']:.3f} (target <= 1.43: {'met' if met['cost_vs_bare_client'] else 'NOT met'}); "
        f"lost {result['lost']}, duplicates {result['duplicates']} (hard gate: {'passed' if result['gate_passed'] else 'FAILED'})"
    )
    ours = result["contenders"]["ours"]
    print(
        f"ours per run: kills {ours['kills']}, restart s {ours['restart_seconds']}, janitor passes {ours['janitor_passes']}, "
        f"time-outs seen {ours['timeouts_seen']}, attempts != 1 {ours['attempts_not_1']}, "
        f"janitor passes at (s, rows open) {ours['janitor_at_s_open']}"
    )
    print_notes(result, warn_noisy=True)


def main(scale: str) -> dict:
    bench = Bench(scale)
    result = bench.run()
    print_report(result)
    return result

"""B6, the dashboard over many transactions while charges settle (DESIGN "Performance targets").

Data (fixed seed: every attribute is a hash of the row number, so a run at a scale always generates the
same rows): one merchant with N transactions spread over the current month and the MONTHS - 1 before it
(up to today), 70% recurring / 30% single payments, success 80%, failed 15% (eight response codes),
voided, refunded, partially refunded and cancelled, twelve issuers (skewed), N / 20 billing numbers, and
N / 20 registrations (billings). Written by ``INSERT ... SELECT generate_series`` with the transaction
table's plain indexes dropped and created again afterwards; the rollups are then built by
``reports.rollups.rebuild`` (what ``manage.py rebuild_rollups`` runs).

Reads: a verified session (password + TOTP device, as tests/conftest.py makes one) loads the month view
through ``django.test.Client`` - the page ``/?period=monthly&back=B`` and the five chart endpoints it
loads - B alternating 0 (this month, being written) and 1 (last month). Every request is timed; p95 is
over all requests of a repetition (>= 200 for ours). Two contenders, interleaved in a rotated order:

- ours: the views as they are (``reports.dashboard`` over the rollups).
- live_group_by: the same views with ``reports.views.figures`` replaced by ``bench/b6_live.py``, the same
  figures by GROUP BY through the ORM over payments_transaction. Slow at full scale: it runs fewer page
  loads (``baseline_pages``), said in the output; its p95 is still over its own requests.

Both run while ``bench/b6_writer.py`` (a process of its own) charges scheduled rows of today through
``payments.services.charge`` against the simulated bank without latency, so rollup rows of this month
change under the reads. Before the writer starts, ours and the baseline must give the same chart JSON
and summary for both months (hard gate); after it stops, the incrementally kept rollups must equal a
rebuild (hard gate).

Rollup cost ("keeping rollups costs <= 5% of charge throughput"), each with the rollup receiver connected
vs disconnected, in alternating blocks (N / BLOCKS each, the order rotated per repetition), as (wall
connected / wall disconnected - 1) x 100, median of the repetitions' paired ratios:
``rollup_cost_pct``: N charges the way a worker process charges them (``charge_many``'s chunk claim and
CHARGE_THREADS bank calls in flight, the bank at B4's latency p50 50 ms / p99 300 ms), the target's
figure; ``rollup_cpu_cost_pct`` the same on CPU time (this process + the PostgreSQL server);
``rollup_cost_pct_record_outcome``: ``payments.services.record_outcome`` alone on processing rows (85%
approved / 15% declined with 05), the strictest denominator, with ``per_table`` (diagnosis: the deltas
written table by table, the previous three statements); ``rollup_cost_pct_charge_path``:
``payments.services.charge`` one at a time, the bank without latency. Also a read diagnosis, ``ours_functions``: the figure
functions of ``reports.dashboard`` called directly (no session, authentication, template or JSON).

Knobs (environment): BENCH_SCALE=full; BENCH_B6_TRANSACTIONS, BENCH_B6_REPETITIONS, BENCH_B6_PAGES,
BENCH_B6_BASELINE_PAGES, BENCH_B6_SETTLE, BENCH_B6_WRITER_ROWS, BENCH_B6_WRITER_RATE (charges per second,
0 = as fast as it goes) override the scale's values.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import date
from decimal import Decimal

from .common import PROJECT_ROOT, fresh_dir, log, print_notes, scaled_config, summary, table
from .processes import ProcessSampler, _self_cpu_s, postgres_cpu_s

SCALES = {
    "default": {
        "transactions": 1_000_000,
        "repetitions": 3,
        "pages": 40,  # x 6 requests = 240 requests per repetition
        "baseline_pages": 20,
        "settle": 2000,
        "writer_rows": 60_000,
        "writer_rate": 0,
    },
    "full": {
        "transactions": 10_000_000,
        "repetitions": 5,
        "pages": 40,
        "baseline_pages": 3,
        "settle": 5000,
        "writer_rows": 150_000,
        "writer_rate": 0,
    },
}
MONTHS = 6
CONTENDERS = ("ours", "live_group_by")
FUNCTIONS = "ours_functions"  # diagnosis: reports.dashboard's functions alone, no HTTP stack
TARGETS = {"p95_ms": 50.0, "rollup_cost_pct": 5.0}
NOISY = 0.15
CHUNK = 1_000_000
BANK_ENV = {
    "SIMULATED_BANK_LATENCY_MS": "0",
    "SIMULATED_BANK_LATENCY_P99_MS": "0",
    "SIMULATED_BANK_TIMEOUT_RATE": "0",
    "SIMULATED_BANK_TRANSIENT_RATE": "0",
}
# Cards of the simulated bank for the writer and the charge-path cost: two approve, two decline.
WRITER_CARDS = ("4111111111111111", "5555555555554444", "4511010000000052", "4622010000000512")
ISSUERS = (
    "BCA", "Bank Mandiri", "BRI", "BNI", "CIMB Niaga", "Danamon",
    "Permata", "OCBC NISP", "Maybank", "Panin", "BTN", "Bank Mega",
)  # fmt: skip
DECLINES = (
    ("05", "Do not honor"), ("51", "Insufficient funds"), ("54", "Expired card"), ("14", "Invalid card number"),
    ("91", "Issuer unavailable"), ("96", "System malfunction"), ("12", "Invalid transaction"),
    ("57", "Transaction not permitted"),
)  # fmt: skip
CHARTS = ("chart_daily", "chart_failed_messages", "chart_single_payment", "chart_registrations", "chart_top_issuers")
RECEIVER = "reports.rollups.on_transaction_changed"
# Rollup cost: the modes compared per kind of work (per_table: the previous three-statement path, a diagnosis).
COST_MODES = {
    "throughput": ("connected", "disconnected"),
    "settle": ("connected", "disconnected", "per_table"),
    "charge_path": ("connected", "disconnected"),
}
# B4's bank for the charge-throughput measure (no time-outs: a time-out leaves a row for a later task).
THROUGHPUT_BANK = {"SIMULATED_BANK_LATENCY_MS": 50, "SIMULATED_BANK_LATENCY_P99_MS": 300}
BLOCKS = 10


def config(scale: str) -> dict:
    values = scaled_config("B6", SCALES, scale)
    return values


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * 95 // 100) - 1)]


class SelfMemory:
    """Peak resident memory of this process (the one serving the requests) while a phase runs."""

    def __init__(self, interval: float = 0.05):
        self.interval, self.peak_mb = interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        with open("/proc/self/statm") as handle:
            self.peak_mb = max(self.peak_mb, int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> SelfMemory:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


class Bench:
    def __init__(self, scale: str):
        from django.conf import settings

        from accounts.models import Merchant

        self.scale, self.cfg = scale, config(scale)
        self.settings = settings
        self.workdir = fresh_dir("b6")
        self.bank_path = self.workdir / "bank.sqlite3"
        settings.SIMULATED_BANK_PATH = str(self.bank_path)
        for name, value in BANK_ENV.items():
            setattr(settings, name, float(value))
        self.merchant, _ = Merchant.objects.get_or_create(code="bench-b6", defaults={"name": "Bench B6"})
        self.today = self.merchant.local_today()
        self.first_day = self._month_start(MONTHS - 1)
        self.sequence = 0  # row numbers of generated rows (invoice numbers) across the whole run

    def _month_start(self, back: int):
        from reports.periods import MONTHLY, period_for

        return period_for(MONTHLY, self.today, back).start

    # --- Data ---------------------------------------------------------------------------------------

    @contextmanager
    def plain_indexes_dropped(self):
        """Drop the transaction table's indexes that back no constraint; create them again afterwards."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'payments_transaction' "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint) AND indexname NOT LIKE '%%_pkey'"
            )
            indexes = cursor.fetchall()
            for name, _ in indexes:
                cursor.execute(f'DROP INDEX "{name}"')
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                for _, definition in indexes:
                    cursor.execute(definition)

    def generate(self) -> dict:
        from django.db import connection

        from reports.rollups import rebuild

        count = self.cfg["transactions"]
        span = (self.today - self.first_day).days + 1
        billings = max(1, count // 20)
        timings = {}
        began = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM payments_transaction WHERE merchant_id = %s", [self.merchant.pk])
            cursor.execute("DELETE FROM recurring_billing WHERE merchant_id = %s", [self.merchant.pk])
        with self.plain_indexes_dropped():
            for low in range(1, count + 1, CHUNK):
                high = min(count, low + CHUNK - 1)
                with connection.cursor() as cursor:
                    cursor.execute(TRANSACTIONS_SQL, self._params(low, high, span, billings))
                log(f"B6 data: {high:,} of {count:,} transactions")
            timings["insert_s"] = time.perf_counter() - began
        timings["indexes_s"] = time.perf_counter() - began - timings["insert_s"]
        self.sequence = count
        with connection.cursor() as cursor:
            cursor.execute(BILLINGS_SQL, [self.merchant.pk, self.first_day, span, billings])
            cursor.execute("ANALYZE payments_transaction")
            cursor.execute("ANALYZE recurring_billing")
        moment = time.perf_counter()
        rebuild([self.merchant.pk])
        timings["rebuild_s"] = time.perf_counter() - moment
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE reports_dailyrollup")
            cursor.execute("ANALYZE reports_billingperiod")
            cursor.execute("ANALYZE reports_periodtotal")
            cursor.execute("SELECT COUNT(*) FROM reports_dailyrollup WHERE merchant_id = %s", [self.merchant.pk])
            timings["rollup_rows"] = cursor.fetchone()[0]
        timings["total_s"] = time.perf_counter() - began
        return {key: round(value, 1) if isinstance(value, float) else value for key, value in timings.items()}

    def _params(self, low: int, high: int, span: int, billings: int) -> dict:
        return {
            "merchant": self.merchant.pk,
            "low": low,
            "high": high,
            "first_day": self.first_day,
            "span": span,
            "billings": billings,
            "issuers": list(ISSUERS),
            "codes": [code for code, _ in DECLINES],
            "messages": [message for _, message in DECLINES],
        }

    def tokens(self) -> list[dict]:
        from payments import services

        if not hasattr(self, "_cards"):
            self._cards = [
                services.tokenize_card(pan, 12, date.today().year + 4, "123", f"Bench Holder {n}") for n, pan in enumerate(WRITER_CARDS)
            ]
        return self._cards

    def open_rows(self, count: int, status: str, label: str) -> list[int]:
        """``count`` rows of today in ``status`` (scheduled: due for a charge; processing: attempt 1 waiting
        for its outcome), on the writer cards, billing numbers among the generated ones and new ones."""
        from payments.models import Transaction

        cards = self.tokens()
        billings = max(1, self.cfg["transactions"] // 20)
        rows = []
        for number in range(count):
            self.sequence += 1
            card = cards[number % len(cards)]
            rows.append(
                Transaction(
                    merchant=self.merchant,
                    invoice_number=f"B6-{label}-{self.sequence}",
                    kind=Transaction.Kind.RECURRING if number % 10 < 7 else Transaction.Kind.SINGLE_PAYMENT,
                    billing_number=f"BN-{(self.sequence * 2654435761) % (billings * 2)}",
                    amount=Decimal(50_000 + (number % 40) * 25_000),
                    execute_date=self.today,
                    status=status,
                    attempts=1 if status == Transaction.Status.PROCESSING else 0,
                    **card,
                )
            )
        created = Transaction.objects.bulk_create(rows, batch_size=5000)
        # Fresh statistics: with the scheduled rows unknown to the planner, the charge's claim
        # (pk = x AND status = 'scheduled') picks the partial index of scheduled rows and walks all of them.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE payments_transaction")
        return [tx.pk for tx in created]

    # --- Reads --------------------------------------------------------------------------------------

    def client(self):
        from django.test import Client
        from django_otp import DEVICE_ID_SESSION_KEY

        from accounts.models import User
        from accounts.services import create_device

        user = User.objects.filter(username="bench-b6-admin").first() or User.objects.create_user(
            username="bench-b6-admin",
            password="bench-b6-not-a-real-password",
            email="bench-b6@example.com",
            merchant=self.merchant,
            is_merchant_admin=True,
        )
        device = create_device(user, confirmed=True)
        client = Client()
        client.force_login(user)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
        return client

    def urls(self, back: int) -> list[tuple[str, str]]:
        from django.urls import reverse

        query = f"?period=monthly&back={back}"
        return [("dashboard", reverse("reports:dashboard") + query)] + [
            (name, reverse(f"reports:{name}") + query) for name in CHARTS
        ]

    @contextmanager
    def contender(self, name: str):
        from reports import views

        if name == "ours":
            yield
            return
        from bench.b6_live import LiveFigures

        original = views.figures
        views.figures = LiveFigures(self.merchant.pk)
        try:
            yield
        finally:
            views.figures = original

    def load_pages(self, client, name: str, pages: int) -> dict:
        if name == FUNCTIONS:
            return self.call_functions(pages)
        times: list[float] = []
        per_url: dict[str, list[float]] = {}
        with self.contender(name), SelfMemory() as memory, ProcessSampler(groups=self.writer_group) as machine:
            began = time.perf_counter()
            for page in range(pages):
                for url_name, url in self.urls(page % 2):
                    moment = time.perf_counter()
                    response = client.get(url)
                    elapsed = (time.perf_counter() - moment) * 1000
                    if response.status_code != 200:
                        raise RuntimeError(f"{name}: {url} answered {response.status_code}")
                    times.append(elapsed)
                    per_url.setdefault(url_name, []).append(elapsed)
            seconds = time.perf_counter() - began
        return self._read_figures(times, per_url, seconds, memory, machine)

    def call_functions(self, pages: int) -> dict:
        """Diagnosis: the figure functions the views call (``reports.dashboard``), without the HTTP stack
        (session, authentication, OTP, template, JSON), on the querysets the views pass them."""
        from recurring.models import Billing
        from reports import dashboard
        from reports.models import DailyRollup, PeriodTotal
        from reports.periods import MONTHLY, period_for

        rollups = DailyRollup.objects.filter(merchant=self.merchant)
        totals = PeriodTotal.objects.filter(merchant=self.merchant)
        billings = Billing.objects.filter(merchant=self.merchant)
        tz = self.merchant.tzinfo
        calls = {
            "dashboard": lambda p: (dashboard.summary(rollups, totals, p), dashboard.registrations(billings, p, tz)),
            "chart_daily": lambda p: dashboard.daily(rollups, p),
            "chart_failed_messages": lambda p: dashboard.failed_messages(rollups, p),
            "chart_single_payment": lambda p: dashboard.summary(rollups, totals, p),
            "chart_registrations": lambda p: dashboard.registrations(billings, p, tz),
            "chart_top_issuers": lambda p: dashboard.top_issuers(rollups, p),
        }
        times: list[float] = []
        per_url: dict[str, list[float]] = {}
        with SelfMemory() as memory, ProcessSampler(groups=self.writer_group) as machine:
            began = time.perf_counter()
            for page in range(pages):
                period = period_for(MONTHLY, self.merchant.local_today(), page % 2)
                for name, call in calls.items():
                    moment = time.perf_counter()
                    call(period)
                    elapsed = (time.perf_counter() - moment) * 1000
                    times.append(elapsed)
                    per_url.setdefault(name, []).append(elapsed)
            seconds = time.perf_counter() - began
        return self._read_figures(times, per_url, seconds, memory, machine)

    @staticmethod
    def _read_figures(times, per_url, seconds, memory, machine) -> dict:
        return {
            "requests": len(times),
            "p50_ms": statistics.median(times),
            "p95_ms": p95(times),
            "max_ms": max(times),
            "seconds": seconds,
            "peak_rss_mb": memory.peak_mb,
            "per_url_ms": per_url,
            "machine_busy": machine.machine_busy,
            "foreign_share": machine.foreign_share,
        }

    def same_numbers(self, client) -> dict:
        """Ours and the baseline give the same figures for both months (before the writer starts)."""
        from accounts.tenancy import merchant_rows  # noqa: F401 - the views' scoping, used through them
        from bench.b6_live import LiveFigures
        from reports import dashboard
        from reports.models import DailyRollup, PeriodTotal
        from reports.periods import MONTHLY, period_for

        live = LiveFigures(self.merchant.pk)
        mismatches = []
        for back in (0, 1):
            period = period_for(MONTHLY, self.today, back)
            rollups = DailyRollup.objects.filter(merchant=self.merchant)
            totals = PeriodTotal.objects.filter(merchant=self.merchant)
            if dashboard.summary(rollups, totals, period) != live.summary(None, None, period):
                mismatches.append(f"summary back={back}")
            answers = {}
            for name in CONTENDERS:
                with self.contender(name):
                    answers[name] = [client.get(url).json() for url_name, url in self.urls(back)[1:]]
            for chart, ours, theirs in zip(CHARTS, answers["ours"], answers["live_group_by"], strict=True):
                if ours != theirs:
                    mismatches.append(f"{chart} back={back}")
        return {"numbers_match": not mismatches, "mismatches": mismatches}

    def rollups_equal_rebuild(self) -> dict:
        from reports.models import DailyRollup, PeriodTotal
        from reports.rollups import rebuild

        def state():
            daily = {
                (r.day, r.kind, r.status, r.response_code, r.bank_message, r.issuer): (r.count, r.amount)
                for r in DailyRollup.objects.filter(merchant=self.merchant, day__gte=self._month_start(0))
                if r.count or r.amount
            }
            totals: dict = {}
            for r in PeriodTotal.objects.filter(merchant=self.merchant):
                totals[(r.period, r.start)] = totals.get((r.period, r.start), 0) + r.unique_billings
            return daily, {key: value for key, value in totals.items() if value}

        incremental = state()
        rebuild([self.merchant.pk])
        rebuilt = state()
        return {
            "rollups_equal_rebuild": incremental == rebuilt,
            "this_month_settled": sum(count for count, _ in rebuilt[0].values()),
        }

    # --- The writer ---------------------------------------------------------------------------------

    def start_writer(self) -> subprocess.Popen:
        env = {**os.environ, **BANK_ENV, "SIMULATED_BANK_PATH": str(self.bank_path)}
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.b6_writer", str(self.merchant.pk), str(self.cfg["writer_rate"])],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(self.workdir / "writer.log").open("wb"),
            text=True,
            start_new_session=True,
        )
        if process.stdout.readline().strip() != "ready":
            process.kill()
            raise RuntimeError(f"writer did not start; see {self.workdir}/writer.log")
        return process

    @staticmethod
    def stop_writer(process: subprocess.Popen) -> dict:
        process.stdin.write("stop\n")
        process.stdin.flush()
        process.stdin.close()
        report = json.loads(process.stdout.readline() or "{}")
        process.wait(60)
        return report

    # --- Rollup cost --------------------------------------------------------------------------------

    @contextmanager
    def rollup_mode(self, mode: str):
        """connected: the app as it is; disconnected: the rollup receiver off; per_table (diagnosis): the
        receiver on, but with the deltas written table by table (three statements, the previous way)."""
        from payments.signals import transaction_changed
        from reports import rollups
        from reports.models import DailyRollup

        if mode == "connected":
            yield
            return
        if mode == "per_table":

            def per_table(cursor, tx, rows, move):
                if rows:
                    rollups._upsert(cursor, DailyRollup, rollups.BUCKET, ("count", "amount"), rows)
                if move:
                    rollups._move_billing(cursor, tx, move)

            original = rollups._apply_in_one_statement
            rollups._apply_in_one_statement = per_table
            try:
                yield
            finally:
                rollups._apply_in_one_statement = original
            return
        transaction_changed.disconnect(dispatch_uid=RECEIVER)
        try:
            yield
        finally:
            transaction_changed.connect(rollups.on_transaction_changed, dispatch_uid=RECEIVER)

    def settle_work(self, count: int, label: str):
        """``count`` processing rows and their outcomes (85% approved, 15% declined 05): settled by
        ``payments.services.record_outcome``, the step that moves a charge to its final state."""
        from payments.acquirer.base import Outcome
        from payments.models import Transaction
        from payments.services import record_outcome

        ids = self.open_rows(count, Transaction.Status.PROCESSING, label)
        txs = list(Transaction.objects.select_related("merchant").filter(pk__in=ids).order_by("pk"))
        work = []
        for number, tx in enumerate(txs):
            approved = number % 20 >= 3
            outcome = Outcome(
                approved=approved,
                response_code="00" if approved else "05",
                message="Approved" if approved else "Do not honor",
                approval_code=f"{number:06d}" if approved else "",
                reference=f"B6-REF-{tx.pk}",
                amount=int(tx.amount),
                issuer=ISSUERS[number % len(ISSUERS)],
            )
            work.append(lambda tx=tx, outcome=outcome: record_outcome(tx, outcome))
        return work

    def charge_work(self, count: int, label: str):
        """``count`` due rows charged by ``payments.services.charge`` (claim, the simulated bank, outcome)."""
        from payments import services
        from payments.models import Transaction

        ids = self.open_rows(count, Transaction.Status.SCHEDULED, label)
        return [lambda transaction_id=transaction_id: services.charge(transaction_id) for transaction_id in ids]

    def throughput_work(self, count: int, label: str):
        """``count`` due rows charged the way a worker process charges them: ``charge_many``'s
        ``charge_chunk`` on CHARGE_CHUNK ids with CHARGE_THREADS bank calls in flight, the bank
        with B4's latency (p50 50 ms / p99 300 ms)."""
        from django.conf import settings

        from payments import tasks
        from payments.models import Transaction

        ids = self.open_rows(count, Transaction.Status.SCHEDULED, label)
        chunk, threads = settings.CHARGE_CHUNK, settings.CHARGE_THREADS

        def run(block: list[int]) -> None:
            previous = {name: getattr(settings, name) for name in THROUGHPUT_BANK}
            for name, value in THROUGHPUT_BANK.items():
                setattr(settings, name, value)
            try:
                for first in range(0, len(block), chunk):
                    tasks.charge_chunk(block[first : first + chunk], threads)
            finally:
                for name, value in previous.items():
                    setattr(settings, name, value)

        return ids, run

    def cost_repetition(self, kind: str, modes: tuple[str, ...], rep: int) -> dict[str, dict[str, float]]:
        """N settles per mode, run in BLOCKS alternating blocks of the modes (rotated per repetition), so
        drift in the machine's load falls on every mode alike. Wall time, and CPU time of this process plus
        the PostgreSQL server (what caps throughput when the cores are saturated)."""
        count = self.cfg["settle"]
        if kind == "throughput":
            made = {mode: self.throughput_work(count, f"{kind}-{mode}-{rep}") for mode in modes}
            work = {mode: ids for mode, (ids, _) in made.items()}
            run_block = {mode: runner for mode, (_, runner) in made.items()}
        else:
            make = self.settle_work if kind == "settle" else self.charge_work
            work = {mode: make(count, f"{kind}-{mode}-{rep}") for mode in modes}
            run_block = dict.fromkeys(modes, lambda calls: [call() for call in calls])
        order = modes[rep % len(modes) :] + modes[: rep % len(modes)]
        totals = {mode: {"wall_s": 0.0, "cpu_s": 0.0} for mode in modes}
        size = -(-count // BLOCKS)
        for first in range(0, count, size):
            for mode in order:
                with self.rollup_mode(mode):
                    pg = postgres_cpu_s()
                    cpu = _self_cpu_s()
                    began = time.perf_counter()
                    run_block[mode](work[mode][first : first + size])
                    totals[mode]["wall_s"] += time.perf_counter() - began
                    cpu = _self_cpu_s() - cpu  # before the next /proc scan, which costs CPU of its own
                    totals[mode]["cpu_s"] += cpu + postgres_cpu_s() - pg
        return totals

    # --- The run ------------------------------------------------------------------------------------

    def run(self) -> dict:
        from payments.models import Transaction

        log(f"B6: generating {self.cfg['transactions']:,} transactions over {MONTHS} months")
        data = self.generate()
        log(f"B6 data: {data}")
        client = self.client()
        client.get(self.urls(0)[0][1])  # first request: imports, template loading
        check = self.same_numbers(client)
        log(f"B6: ours and live_group_by agree: {check['numbers_match']} {check['mismatches']}")
        self.open_rows(self.cfg["writer_rows"], Transaction.Status.SCHEDULED, "writer")
        reps = self.cfg["repetitions"]
        reads: dict[str, list[dict]] = {name: [] for name in (*CONTENDERS, FUNCTIONS)}
        writer = self.start_writer()
        try:
            self.writer_group = (writer.pid,)
            with ProcessSampler(groups=(writer.pid,)) as machine:
                for rep in range(reps):
                    order = CONTENDERS[rep % 2 :] + CONTENDERS[: rep % 2] + (FUNCTIONS,)
                    for name in order:
                        pages = self.cfg["baseline_pages"] if name == "live_group_by" else self.cfg["pages"]
                        result = self.load_pages(client, name, pages)
                        reads[name].append(result)
                        log(
                            f"B6 repetition {rep + 1}/{reps} {name}: {result['requests']} requests, "
                            f"p50 {result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms, max {result['max_ms']:.1f} ms"
                        )
        finally:
            written = self.stop_writer(writer)
        written.update(
            peak_rss_mb=round(machine.peak_mb, 1),
            charges_per_s=round(written.get("settled", 0) / max(written.get("seconds", 0), 1e-9), 1),
            machine_busy=round(machine.machine_busy, 3),
            foreign_share=round(machine.foreign_share, 3),
            postgres_cpu_s=round(machine.postgres_cpu_s, 1),
        )
        log(f"B6 writer: {written}")
        consistent = self.rollups_equal_rebuild()
        log(f"B6: rollups after the concurrent writes equal a rebuild: {consistent}")
        # The per-charge INFO line of payments.services is silenced here (it would flood the table's output
        # and only adds the same cost to both modes, which makes the ratio look smaller).
        logging.getLogger("payments.services").setLevel(logging.WARNING)
        cost: dict[str, dict[str, list[dict]]] = {kind: {} for kind in COST_MODES}
        for rep in range(reps):
            for kind, modes in COST_MODES.items():
                for mode, figures in self.cost_repetition(kind, modes, rep).items():
                    cost[kind].setdefault(mode, []).append(figures)
                log(
                    f"B6 cost repetition {rep + 1}/{reps} {kind} ({self.cfg['settle']} each): "
                    + ", ".join(
                        f"{mode} {runs[-1]['wall_s']:.3f} s wall {runs[-1]['cpu_s']:.3f} s CPU"
                        for mode, runs in cost[kind].items()
                    )
                )
        return self.report(data, check, reads, written, consistent, cost)

    def report(self, data, check, reads, written, consistent, cost) -> dict:
        contenders = {}
        for name, results in reads.items():
            pooled = {}
            for result in results:
                for url_name, values in result["per_url_ms"].items():
                    pooled.setdefault(url_name, []).extend(values)
            contenders[name] = {
                "requests_per_repetition": results[0]["requests"],
                "p50_ms": summary([r["p50_ms"] for r in results]),
                "p95_ms": summary([r["p95_ms"] for r in results]),
                "max_ms": summary([r["max_ms"] for r in results]),
                "peak_rss_mb": round(max(r["peak_rss_mb"] for r in results), 1),
                "machine_busy": summary([r["machine_busy"] for r in results]),
                "foreign_load": summary([r["foreign_share"] for r in results]),
                "per_endpoint_p95_ms": {url_name: round(p95(values), 2) for url_name, values in pooled.items()},
            }
        ours_p95 = contenders["ours"]["p95_ms"]["median"]
        live_p95 = contenders["live_group_by"]["p95_ms"]["median"]
        costs = {}
        for kind, by_mode in cost.items():
            off = by_mode["disconnected"]
            entry = {"n": self.cfg["settle"]}
            for mode, runs in by_mode.items():
                entry[mode] = {
                    "wall_s": summary([run["wall_s"] for run in runs]),
                    "cpu_s": summary([run["cpu_s"] for run in runs]),
                    "per_s": round(self.cfg["settle"] / statistics.median(run["wall_s"] for run in runs), 1),
                    "cpu_ms_per_settle": round(
                        1000 * statistics.median(run["cpu_s"] for run in runs) / self.cfg["settle"], 3
                    ),
                }
                if mode != "disconnected":
                    wall = [100 * (on["wall_s"] / base["wall_s"] - 1) for on, base in zip(runs, off, strict=True)]
                    cpu = [
                        100 * (on["cpu_s"] / base["cpu_s"] - 1)
                        for on, base in zip(runs, off, strict=True)
                        if base["cpu_s"]
                    ]
                    entry[mode]["cost_pct_per_repetition"] = [round(value, 1) for value in wall]
                    entry[mode]["cost_pct"] = round(statistics.median(wall), 1)
                    entry[mode]["cpu_cost_pct"] = round(statistics.median(cpu), 1) if cpu else None
            costs[kind] = entry
        throughput_cost = costs["throughput"]["connected"]
        settle_cost, charge_cost = costs["settle"]["connected"], costs["charge_path"]["connected"]
        ratios = {
            "speedup_vs_live_group_by": round(live_p95 / ours_p95, 1),
            "rollup_cost_pct": throughput_cost["cost_pct"],
            "rollup_cost_pct_record_outcome": settle_cost["cost_pct"],
            "rollup_cost_pct_charge_path": charge_cost["cost_pct"],
            "rollup_cpu_cost_pct": throughput_cost["cpu_cost_pct"],
        }
        met = {
            "p95_ms": ours_p95 <= TARGETS["p95_ms"],
            "rollup_cost_pct": ratios["rollup_cost_pct"] <= TARGETS["rollup_cost_pct"],
            "numbers_match": check["numbers_match"],
            "rollups_equal_rebuild": consistent["rollups_equal_rebuild"],
        }
        notes = [
            f"{MONTHS} months of data up to today; month view = /?period=monthly&back=0|1 (alternating) and its five "
            "chart endpoints, every request timed, p95 over all requests of a repetition",
            f"live_group_by ran {self.cfg['baseline_pages']} page loads ({self.cfg['baseline_pages'] * 6} requests) per "
            f"repetition, ours {self.cfg['pages']} ({self.cfg['pages'] * 6})",
            "reads in this process through django.test.Client with a verified session; the writer is another process "
            "charging through payments.services.charge (simulated bank, no latency) during every read repetition",
            "rollup_cost_pct: charge throughput as a worker process charges (charge_many's chunk claim and "
            "CHARGE_THREADS bank calls in flight, bank p50 50 ms / p99 300 ms), rollups connected vs "
            "disconnected; rollup_cost_pct_record_outcome: record_outcome alone (one UPDATE per settle without "
            "the rollups: the strictest denominator); rollup_cost_pct_charge_path: charge() one at a time, "
            "bank without latency",
            f"{self.cfg['repetitions']} repetitions (5 at full scale)" if self.scale != "full" else "",
            "the machine may be shared: 'foreign' is the share of the cores busy with other work meanwhile",
        ]
        return {
            "id": "B6",
            "name": "dashboard month view while charges settle",
            "scale": {"name": self.scale, "months": MONTHS, **self.cfg},
            "data": data,
            "contenders": contenders,
            "p95_ms": ours_p95,
            "writer": written,
            "rollup_cost": costs,
            "rollup_cost_pct": ratios["rollup_cost_pct"],
            "ratios": ratios,
            "checks": {**check, **consistent},
            "targets": {
                "p95_ms": "<= 50",
                "rollup_cost_pct": "<= 5",
                "numbers_match": True,
                "rollups_equal_rebuild": True,
            },
            "met": met,
            "gate_passed": met["numbers_match"] and met["rollups_equal_rebuild"],
            "notes": [note for note in notes if note],
        }


def print_report(result: dict) -> None:
    scale = result["scale"]
    print(
        f"\nB6 dashboard month view - scale {scale['name']}: {scale['transactions']:,} transactions over "
        f"{scale['months']} months ({result['data']['rollup_rows']:,} rollup rows), {scale['repetitions']} repetitions, "
        f"writer charging {result['writer'].get('charges_per_s', 0):.0f}/s meanwhile"
    )
    rows = [["contender", "requests", "p50 ms", "p95 ms (median)", "p95 min..max", "spread", "max ms", "peak RSS MB"]]
    rows[0] += ["busy", "foreign"]
    for name, entry in result["contenders"].items():
        p95s = entry["p95_ms"]
        rows.append(
            [
                name,
                str(entry["requests_per_repetition"]),
                f"{entry['p50_ms']['median']:.1f}",
                f"{p95s['median']:.1f}",
                f"{p95s['min']:.1f}..{p95s['max']:.1f}",
                f"{p95s['spread_pct']:.0f}%",
                f"{entry['max_ms']['max']:.1f}",
                f"{entry['peak_rss_mb']:.0f}",
                f"{entry['machine_busy']['median']:.0%}",
                f"{entry['foreign_load']['max']:.0%}",
            ]
        )
    print(table(rows))
    print(f"{FUNCTIONS} is a diagnosis (reports.dashboard's functions called directly, no HTTP stack), not a target")
    for name, entry in result["contenders"].items():
        print(
            f"{name} p95 per endpoint (ms): " + ", ".join(f"{k} {v}" for k, v in entry["per_endpoint_p95_ms"].items())
        )
    cost_rows = [
        [
            "rollup cost",
            "mode",
            "N",
            "wall s",
            "min..max",
            "per s",
            "CPU ms/settle",
            "cost %",
            "CPU cost %",
            "per rep %",
        ]
    ]
    for kind, entry in result["rollup_cost"].items():
        for mode, figures in entry.items():
            if mode == "n":
                continue
            wall = figures["wall_s"]
            cost_rows.append(
                [
                    {"throughput": "charge throughput", "settle": "record_outcome"}.get(kind, "charge path"),
                    mode + (" (diagnosis)" if mode == "per_table" else ""),
                    str(entry["n"]),
                    f"{wall['median']:.3f}",
                    f"{wall['min']:.3f}..{wall['max']:.3f}",
                    f"{figures['per_s']:.0f}",
                    f"{figures['cpu_ms_per_settle']:.3f}",
                    f"{figures['cost_pct']:.1f}" if "cost_pct" in figures else "-",
                    f"{figures['cpu_cost_pct']:.1f}" if figures.get("cpu_cost_pct") is not None else "-",
                    " ".join(f"{value:.1f}" for value in figures.get("cost_pct_per_repetition", [])) or "-",
                ]
            )
    print(table(cost_rows))
    ratios, met = result["ratios"], result["met"]
    print(
        f"p95_ms {result['p95_ms']:.1f} (target <= 50: {'met' if met['p95_ms'] else 'NOT met'}); "
        f"speedup_vs_live_group_by {ratios['speedup_vs_live_group_by']:.1f}; rollup_cost_pct {ratios['rollup_cost_pct']:.1f} "
        f"(target <= 5: {'met' if met['rollup_cost_pct'] else 'NOT met'}); rollup_cost_pct_record_outcome "
        f"{ratios['rollup_cost_pct_record_outcome']:.1f}; rollup_cost_pct_charge_path {ratios['rollup_cost_pct_charge_path']:.1f}"
    )
    checks = result["checks"]
    print(
        f"checks: ours == live_group_by {checks['numbers_match']} {checks['mismatches'] or ''}; rollups after the "
        f"concurrent writes == rebuild {checks['rollups_equal_rebuild']} (hard gates: "
        f"{'passed' if result['gate_passed'] else 'FAILED'})"
    )
    print_notes(result)
    if result["writer"].get("foreign_share", 0) > NOISY:
        print(
            f"WARNING: {result['writer']['foreign_share']:.0%} of the cores were busy with other work: figures are noisy"
        )
    if result["writer"].get("exhausted"):
        print("WARNING: the writer ran out of scheduled rows before the reads ended (raise BENCH_B6_WRITER_ROWS)")


def main(scale: str) -> dict:
    bench = Bench(scale)
    result = bench.run()
    print_report(result)
    return result


# Transactions: every attribute a hash of the row number i (Knuth's multiplicative hash with different
# multipliers), so the data is the same at every run of a scale.
TRANSACTIONS_SQL = """
WITH g AS (
    SELECT i,
           (i * 2654435761) %% 4294967296 AS h1,
           (i * 2246822519) %% 4294967296 AS h2,
           (i * 3266489917) %% 4294967296 AS h3,
           (i * 668265263) %% 4294967296 AS h4,
           (i * 374761393) %% 4294967296 AS h5
    FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS i
), s AS (
    SELECT g.*,
           CASE WHEN h5 %% 1000 < 800 THEN 'success'
                WHEN h5 %% 1000 < 950 THEN 'failed'
                WHEN h5 %% 1000 < 965 THEN 'voided'
                WHEN h5 %% 1000 < 980 THEN 'refunded'
                WHEN h5 %% 1000 < 995 THEN 'partially_refunded'
                ELSE 'cancelled' END AS status,
           (50000 + (h4 %% 40) * 25000)::numeric AS amount,
           1 + (h2 / 7) %% 8 AS decline,
           1 + LEAST(11, (h3 / 11) %% 100 / 7) AS issuer
    FROM g
)
INSERT INTO payments_transaction (
    merchant_id, invoice_number, kind, billing_id, billing_number, batch_id, customer_id, description,
    amount, execute_date, status, next_retry_date, attempts, response_code, approval_code, error_code,
    bank_message, acquirer_reference, refunded_amount, created_at, queued_at, claimed_at, processed_at,
    updated_at, card_token, card_masked, card_fingerprint, card_expiry, card_issuer, card_brand,
    holder_name, holder_phone
)
SELECT %(merchant)s, 'B6-' || i, CASE WHEN h2 %% 10 < 7 THEN 'recurring' ELSE 'single_payment' END,
       NULL, 'BN-' || (h3 %% %(billings)s), NULL, 'C-' || (h3 %% %(billings)s), '',
       amount, %(first_day)s::date + (h1 %% %(span)s)::int, status, NULL,
       CASE WHEN status = 'cancelled' THEN 0 ELSE 1 END,
       CASE WHEN status = 'failed' THEN (%(codes)s::text[])[decline] WHEN status = 'cancelled' THEN '' ELSE '00' END,
       CASE WHEN status IN ('failed', 'cancelled') THEN '' ELSE lpad((h4 %% 1000000)::text, 6, '0') END,
       '',
       CASE WHEN status = 'failed' THEN (%(messages)s::text[])[decline]
            WHEN status = 'cancelled' THEN '' ELSE 'Approved' END,
       CASE WHEN status = 'cancelled' THEN '' ELSE 'R' || i END,
       CASE WHEN status = 'refunded' THEN amount WHEN status = 'partially_refunded' THEN amount / 2 ELSE 0 END,
       (%(first_day)s::date + (h1 %% %(span)s)::int)::timestamptz, NULL, NULL,
       CASE WHEN status = 'cancelled' THEN NULL
            ELSE (%(first_day)s::date + (h1 %% %(span)s)::int)::timestamptz + interval '3 hours' END,
       now(), 'tok-b6-' || (h3 %% 1000), '411111******' || lpad((h3 %% 10000)::text, 4, '0'),
       'fp-' || (h3 %% %(billings)s), NULL, (%(issuers)s::text[])[issuer], 'Visa',
       'Holder ' || (h3 %% %(billings)s), '+62812' || lpad((h3 %% %(billings)s)::text, 7, '0')
FROM s
"""

# Registrations (D8): one billing per billing number, created over the same months, 80% active.
BILLINGS_SQL = """
INSERT INTO recurring_billing (
    merchant_id, billing_number, customer_id, customer_name, email, phone, amount, billing_type, status,
    source, batch_id, schedule_kind, schedule_data, next_execute_date, retry_attempts, next_retry_date,
    created_at, updated_at, deleted_at, card_token, card_masked, card_fingerprint, card_expiry, card_issuer,
    card_brand, holder_name, holder_phone
)
SELECT %s, 'BN-' || n, 'C-' || n, 'Customer ' || n, '', '', 150000, 'recurring',
       CASE WHEN (n * 2654435761) %% 10 < 8 THEN 'active' ELSE 'inactive' END,
       CASE WHEN n %% 3 = 0 THEN 'hosted' ELSE 'batch' END, NULL, 'monthly', '{}'::jsonb, NULL, 0, NULL,
       (%s::date + ((n * 2246822519) %% %s)::int)::timestamptz, now(), NULL,
       'tok-b6-' || (n %% 1000), '411111******' || lpad((n %% 10000)::text, 4, '0'), 'fp-' || n, NULL, 'BCA',
       'Visa', 'Holder ' || n, ''
FROM generate_series(0, %s - 1) AS n
"""

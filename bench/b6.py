"""B6, the dashboard over many transactions while charges settle (DESIGN "Performance targets").

Data: bench/b6_data.py (one merchant, N transactions over six months, its billings, the rollups rebuilt).

Reads: a verified session loads the month view through ``django.test.Client`` - the page
``/?period=monthly&back=B`` and the five chart endpoints it loads - B alternating 0 (this month, being
written) and 1 (last month). Every request is timed; p95 is over all requests of a repetition. Two
contenders, interleaved in a rotated order:

- ours: the views as they are (``reports.dashboard`` over the rollups).
- live_group_by: the same views with ``reports.views.figures`` (and ``reports.charts.figures``) replaced by ``bench/b6_live.py``, the same
  figures by GROUP BY through the ORM over payments_transaction. Slow at full scale: it runs fewer page
  loads (``baseline_pages``), said in the output; its p95 is still over its own requests.

Both run while ``bench/b6_writer.py`` (a process of its own) charges scheduled rows of today through
``payments.services.charge`` against the simulated bank without latency, so rollup rows of this month
change under the reads. Hard gates: before the writer starts, ours and the baseline give the same chart
JSON and summary for both months; after it stops, the incrementally kept rollups equal a rebuild.

Rollup cost ("keeping rollups costs <= 5% of charge throughput, reported with its run-to-run spread"):
SETTLE due rows per mode charged the way a worker charges them (``payments.tasks.charge_chunk`` on
CHARGE_CHUNK ids, CHARGE_THREADS bank calls in flight, the bank at B4's latency p50 50 ms / p99 300 ms),
with the rollup receiver connected vs disconnected, in BLOCKS alternating blocks (the order rotated per
repetition). Per repetition (wall connected / wall disconnected - 1) x 100; ``rollup_cost_pct`` is their
median, ``rollup_cost_spread_pct`` their max - min (percentage points), printed beside the target. Also
the same on CPU time (this process + the PostgreSQL server), a figure without a target.

Dropped diagnoses (no target asks for them): the figure functions called without the HTTP stack, the
rollup cost of ``record_outcome`` alone and of ``charge`` one at a time, and the per-table variant of the
rollup writes (it patched private functions of reports.rollups).

Knobs (environment): BENCH_SCALE=full; BENCH_B6_TRANSACTIONS, BENCH_B6_REPETITIONS, BENCH_B6_PAGES,
BENCH_B6_BASELINE_PAGES, BENCH_B6_SETTLE, BENCH_B6_WRITER_ROWS, BENCH_B6_WRITER_RATE (charges per second,
0 = as fast as it goes) override the scale's values.
"""

from __future__ import annotations

import os
import statistics
import time
from contextlib import contextmanager

from . import b6_cost, b6_data, b6_writer
from .common import NOISY, fresh_dir, log, p95, print_notes, rotated, scaled_config, signed_in_client, summary, table
from .processes import ProcessSampler, SelfSampler

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
CONTENDERS = ("ours", "live_group_by")
P95_TARGET_MS = 50.0
COST_TARGET_PCT = 5.0
NO_LATENCY = {
    "SIMULATED_BANK_LATENCY_MS": "0",
    "SIMULATED_BANK_LATENCY_P99_MS": "0",
    "SIMULATED_BANK_TIMEOUT_RATE": "0",
    "SIMULATED_BANK_TRANSIENT_RATE": "0",
}
CHARTS = ("chart_daily", "chart_failed_messages", "chart_single_payment", "chart_registrations", "chart_top_issuers")


class Bench:
    def __init__(self, scale: str):
        from django.conf import settings

        from accounts.models import Merchant

        self.scale, self.cfg = scale, scaled_config("B6", SCALES, scale)
        self.settings = settings
        self.workdir = fresh_dir("b6")
        self.bank_path = self.workdir / "bank.sqlite3"
        settings.SIMULATED_BANK_PATH = str(self.bank_path)
        for name, value in NO_LATENCY.items():
            setattr(settings, name, float(value))
        self.merchant, _ = Merchant.objects.get_or_create(code="bench-b6", defaults={"name": "Bench B6"})
        self.open_rows = b6_data.OpenRows(self.merchant, self.cfg["transactions"])

    # --- Reads --------------------------------------------------------------------------------------

    def urls(self, back: int) -> list[tuple[str, str]]:
        from django.urls import reverse

        query = f"?period=monthly&back={back}"
        return [(name, reverse(f"reports:{name}") + query) for name in ("dashboard", *CHARTS)]

    @contextmanager
    def contender(self, name: str):
        """ours: the views as they are; live_group_by: their figures from bench/b6_live.py."""
        from bench.b6_live import LiveFigures
        from reports import charts, views

        original = views.figures
        if name == "live_group_by":
            views.figures = charts.figures = LiveFigures(self.merchant.pk)
        try:
            yield
        finally:
            views.figures = charts.figures = original

    def load_pages(self, client, name: str, pages: int, writer_pid: int) -> dict:
        """``pages`` month views (page + charts), every request timed."""
        per_url: dict[str, list[float]] = {}
        with self.contender(name), SelfSampler(groups=(writer_pid,), interval=0.05) as sampler:
            for page in range(pages):
                for url_name, url in self.urls(page % 2):
                    moment = time.perf_counter()
                    response = client.get(url)
                    per_url.setdefault(url_name, []).append((time.perf_counter() - moment) * 1000)
                    if response.status_code != 200:
                        raise RuntimeError(f"{name}: {url} answered {response.status_code}")
        times = [value for values in per_url.values() for value in values]
        return {
            "requests": len(times),
            "p50_ms": statistics.median(times),
            "p95_ms": p95(times),
            "max_ms": max(times),
            "per_url_ms": per_url,
            "peak_rss_mb": sampler.peak_mb,
            "machine_busy": sampler.machine_busy,
            "foreign_share": sampler.foreign_share,
        }

    def same_numbers(self, client) -> dict:
        """Ours and the baseline give the same figures for both months (before the writer starts)."""
        from bench.b6_live import LiveFigures
        from reports import dashboard
        from reports.models import DailyRollup, PeriodTotal
        from reports.periods import MONTHLY, period_for

        live = LiveFigures(self.merchant.pk)
        rollups = DailyRollup.objects.filter(merchant=self.merchant)
        totals = PeriodTotal.objects.filter(merchant=self.merchant)
        mismatches = []
        for back in (0, 1):
            period = period_for(MONTHLY, self.merchant.local_today(), back)
            if dashboard.summary(rollups, totals, period) != live.summary(None, None, period):
                mismatches.append(f"summary back={back}")
            answers = {}
            for name in CONTENDERS:
                with self.contender(name):
                    answers[name] = [client.get(url).json() for _, url in self.urls(back)[1:]]
            for chart, ours, theirs in zip(CHARTS, answers["ours"], answers["live_group_by"], strict=True):
                if ours != theirs:
                    mismatches.append(f"{chart} back={back}")
        return {"numbers_match": not mismatches, "mismatches": mismatches}

    def rollups_equal_rebuild(self) -> dict:
        from reports.models import DailyRollup, PeriodTotal
        from reports.rollups import rebuild

        def state():
            this_month = DailyRollup.objects.filter(
                merchant=self.merchant, day__gte=b6_data.month_start(self.merchant, 0)
            )
            daily = {
                (r.day, r.kind, r.status, r.response_code, r.bank_message, r.issuer): (r.count, r.amount)
                for r in this_month
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

    def reads_while_writing(self, client) -> tuple[dict, dict]:
        """The read repetitions, the writer charging meanwhile; the reads and the writer's report."""
        from payments.models import Transaction

        self.open_rows(self.cfg["writer_rows"], Transaction.Status.SCHEDULED, "writer")
        env = {**os.environ, **NO_LATENCY, "SIMULATED_BANK_PATH": str(self.bank_path)}
        writer = b6_writer.start(self.merchant.pk, self.cfg["writer_rate"], env, self.workdir / "writer.log")
        reads: dict[str, list[dict]] = {name: [] for name in CONTENDERS}
        reps = self.cfg["repetitions"]
        try:
            with ProcessSampler(groups=(writer.pid,)) as machine:
                for rep in range(reps):
                    for name in rotated(CONTENDERS, rep):
                        pages = self.cfg["baseline_pages"] if name == "live_group_by" else self.cfg["pages"]
                        result = self.load_pages(client, name, pages, writer.pid)
                        reads[name].append(result)
                        log(
                            f"B6 repetition {rep + 1}/{reps} {name}: {result['requests']} requests, "
                            f"p50 {result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms"
                        )
        finally:
            written = b6_writer.stop(writer)
        written.update(
            peak_rss_mb=round(machine.peak_mb, 1),
            charges_per_s=round(written.get("settled", 0) / max(written.get("seconds", 0), 1e-9), 1),
            machine_busy=round(machine.machine_busy, 3),
            foreign_share=round(machine.foreign_share, 3),
        )
        return reads, written

    # --- The run ------------------------------------------------------------------------------------

    def run(self) -> dict:
        log(f"B6: generating {self.cfg['transactions']:,} transactions over {b6_data.MONTHS} months")
        data = b6_data.generate(self.merchant, self.cfg["transactions"])
        log(f"B6 data: {data}")
        client, _ = signed_in_client("bench-b6-admin", self.merchant.pk)
        client.get(self.urls(0)[0][1])  # first request, off the clock: imports, template loading
        check = self.same_numbers(client)
        log(f"B6: ours and live_group_by agree: {check['numbers_match']} {check['mismatches']}")
        reads, written = self.reads_while_writing(client)
        log(f"B6 writer: {written}")
        consistent = self.rollups_equal_rebuild()
        log(f"B6: rollups after the concurrent writes equal a rebuild: {consistent}")
        cost = b6_cost.rollup_cost(self.open_rows, self.cfg["settle"], self.cfg["repetitions"])
        return self.report(data, check, reads, written, consistent, cost)

    def report(self, data, check, reads, written, consistent, cost) -> dict:
        contenders = {}
        for name, results in reads.items():
            pooled: dict[str, list[float]] = {}
            for result in results:
                for url_name, values in result["per_url_ms"].items():
                    pooled.setdefault(url_name, []).extend(values)
            contenders[name] = {
                "requests_per_repetition": results[0]["requests"],
                **{key: summary([r[key] for r in results]) for key in ("p50_ms", "p95_ms", "max_ms")},
                "peak_rss_mb": round(max(r["peak_rss_mb"] for r in results), 1),
                "machine_busy": summary([r["machine_busy"] for r in results]),
                "foreign_load": summary([r["foreign_share"] for r in results]),
                "per_endpoint_p95_ms": {url_name: round(p95(values), 2) for url_name, values in pooled.items()},
            }
        p95_ms = contenders["ours"]["p95_ms"]["median"]
        met = {
            "p95_ms": p95_ms <= P95_TARGET_MS,
            "rollup_cost_pct": cost["cost_pct"] <= COST_TARGET_PCT,
            "numbers_match": check["numbers_match"],
            "rollups_equal_rebuild": consistent["rollups_equal_rebuild"],
        }
        notes = [
            f"{b6_data.MONTHS} months of data up to today; month view = /?period=monthly&back=0|1 (alternating) "
            "and its five chart endpoints, every request timed, p95 over all requests of a repetition",
            f"live_group_by ran {self.cfg['baseline_pages']} page loads per repetition, ours {self.cfg['pages']}",
            "reads in this process through django.test.Client with a verified session; the writer is another "
            "process charging through payments.services.charge (simulated bank, no latency) meanwhile",
            "rollup_cost_pct: charges as a worker charges them (charge_chunk, CHARGE_THREADS bank calls in flight, "
            "bank p50 50 ms / p99 300 ms), rollups connected vs disconnected; spread = max - min of the "
            "repetitions' costs, in percentage points",
            "B6 has no ratio key (DESIGN): its figures are p95_ms and rollup_cost_pct with its spread",
        ]
        return {
            "id": "B6",
            "name": "dashboard month view while charges settle",
            "scale": {"name": self.scale, "months": b6_data.MONTHS, **self.cfg},
            "data": data,
            "contenders": contenders,
            "p95_ms": p95_ms,
            "rollup_cost_pct": cost["cost_pct"],
            "rollup_cost_spread_pct": cost["spread_pct"],
            "rollup_cost": cost,
            "writer": written,
            "ratios": {},
            "checks": {**check, **consistent},
            "targets": {
                "p95_ms": "<= 50",
                "rollup_cost_pct": "<= 5",
                "numbers_match": True,
                "rollups_equal_rebuild": True,
            },
            "met": met,
            "gate_passed": met["numbers_match"] and met["rollups_equal_rebuild"],
            "notes": notes,
        }


def print_report(result: dict) -> None:
    scale = result["scale"]
    print(
        f"\nB6 dashboard month view - scale {scale['name']}: {scale['transactions']:,} transactions over "
        f"{scale['months']} months ({result['data']['rollup_rows']:,} rollup rows), {scale['repetitions']} "
        f"repetitions, writer charging {result['writer'].get('charges_per_s', 0):.0f}/s meanwhile"
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
    for name, entry in result["contenders"].items():
        print(
            f"{name} p95 per endpoint (ms): " + ", ".join(f"{k} {v}" for k, v in entry["per_endpoint_p95_ms"].items())
        )
    cost, met = result["rollup_cost"], result["met"]
    print(
        f"rollup cost ({cost['charges_per_mode']} charges per mode): connected {cost['connected']['wall_s']['median']:.2f} s, "
        f"disconnected {cost['disconnected']['wall_s']['median']:.2f} s (median wall); per repetition "
        f"{cost['cost_pct_per_repetition']} %; CPU cost {cost['cpu_cost_pct']:.1f} %"
    )
    print(
        f"p95_ms {result['p95_ms']:.1f} (target <= 50: {'met' if met['p95_ms'] else 'NOT met'}); rollup_cost_pct "
        f"{result['rollup_cost_pct']:.1f}, spread {result['rollup_cost_spread_pct']:.1f} points over the repetitions "
        f"(target <= 5: "
        f"{'met' if met['rollup_cost_pct'] else 'NOT met'})"
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
    result = Bench(scale).run()
    print_report(result)
    return result

"""B7, CSV export (DESIGN "Performance targets"): ROWS rows of All Report to CSV, memory and speed.

Data: bench/reports_data.py (the same transactions as B5). The export is bench-big's search over a date
range chosen so the result holds ROWS rows (1M at full scale; 200k at the default scale, whose 1M
transactions hold fewer than 1M rows of one merchant in a range).

Contenders, each run in a fresh child process (``python -m bench.b7 <contender> ...``) whose time covers
the request and the whole body consumed, and whose peak RSS (VmHWM of the child, and
ProcessSampler from outside) is reported; rotated order per repetition:
- ours: the app's export view through django.test.Client with a verified session, requested by the
  "Export CSV" link of the result page the user is looking at (the page is loaded first, off the clock; its
  link carries the signed totals, so the audit entry takes the count from it), ``streaming_content`` read to
  the end (on PostgreSQL: COPY of the app's own SQL through a bounded queue, see reports/exports.py).
- naive (baseline): ``StreamingHttpResponse`` over ``rows(queryset).values_list(...).iterator()`` +
  ``csv.writer``, the file name by a join (``Coalesce(batch__file_name, billing__batch__file_name)``), kind
  and status labels mapped in Python: the plain Django way, no neutralising.
- copy (floor): ``COPY (<the app's queryset SQL: same filters, same order, the transaction columns>) TO
  STDOUT WITH CSV`` via psycopg2 ``copy_expert`` into a sink that counts bytes (no file-name join, no
  labels, no neutralising).

Ratio: cost_vs_copy = ours median time / copy median time; and peak_rss_mb, ours' peak (< 150 MB). The
naive baseline is in the table (no ratio key of its own). Dropped: ``ours_counting`` (the export by a URL
without the page's totals, so the view counts first), a diagnosis no target asks for.
Knobs (environment): BENCH_SCALE=full; BENCH_REPORTS_ROWS (transactions), BENCH_B7_ROWS (rows
exported), BENCH_B7_REPETITIONS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from urllib.parse import urlencode

from .common import (
    PROJECT_ROOT,
    interleaved,
    judged,
    log,
    print_notes,
    ratios,
    scaled_config,
    setup_django,
    signed_in_client,
    summary,
    table,
    target_texts,
    verdicts,
)
from .processes import ProcessSampler, peak_rss_mb, rss_mb
from .reports_data import generate, report_search, scale_rows

SCALES = {"default": {"rows": 200_000, "repetitions": 3}, "full": {"rows": 1_000_000, "repetitions": 5}}
CONTENDERS = ("naive", "ours", "copy")
RATIOS = {"cost_vs_copy": ("ours", "copy")}
TARGETS = {"cost_vs_copy": ("<=", 1.5), "peak_rss_mb": ("<", 150)}


def config(scale: str) -> dict:
    values = scaled_config("B7", SCALES, scale)  # rows: the rows exported
    values["transactions"] = scale_rows(scale)
    return values


def search_for(merchant_id: int, today, wanted: int) -> tuple[dict, int]:
    """The date range ending today whose bench-big rows reach ``wanted`` (at most 366 days)."""
    from django.db.models import Count

    from payments.models import Transaction

    per_day = (
        Transaction.objects.filter(merchant_id=merchant_id, execute_date__lte=today)
        .values("execute_date")
        .annotate(n=Count("id"))
        .order_by("-execute_date")
    )
    total, start = 0, today
    for day in per_day[:366]:
        total += day["n"]
        start = day["execute_date"]
        if total >= wanted:
            break
    return {"start_date": start.isoformat(), "end_date": today.isoformat()}, total


# --- Child process: one contender, one run ---------------------------------------------------------------


def child(contender: str, merchant_id: int, params: dict) -> dict:
    """One contender's export in this (fresh) process: seconds, bytes and lines out, peak RSS."""
    setup_django(migrate=False)
    from django.db import connection

    client, user = signed_in_client("bench-reports", merchant_id)
    # A serving process has the project imported: one small export (one day) first, off the clock.
    warm = {"start_date": params["end_date"], "end_date": params["end_date"], "format": "csv"}
    b"".join(client.get("/reports/all/export/?" + urlencode(warm)).streaming_content)
    before = rss_mb()
    began = time.perf_counter()
    size = lines = 0
    if contender == "ours":  # the Export CSV link of the result page the user is looking at
        page = client.get("/reports/all/?" + urlencode(params)).content.decode()
        url = page.split('data-testid="export-csv"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
        began = time.perf_counter()
        response = client.get(url)
        assert response.status_code == 200, response.status_code
        for chunk in response.streaming_content:
            size += len(chunk)
            lines += chunk.count(b"\n")
        response.close()
    elif contender == "naive":
        for chunk in naive_response(user, params).streaming_content:
            size += len(chunk)
            lines += chunk.count(b"\n")
    else:
        sql = copy_floor_sql(user, params)

        class Sink:
            def write(self, data):
                nonlocal size, lines
                size += len(data)
                lines += data.count("\n") if isinstance(data, str) else data.count(b"\n")

        with connection.cursor() as cursor:
            cursor.cursor.copy_expert(sql, Sink())
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "bytes": size, "lines": lines, "peak_rss_mb": peak_rss_mb(), "rss_before_mb": before}


def naive_response(user, params: dict):
    """The baseline: the plain Django streaming CSV (docs "Streaming large CSV files")."""
    import csv

    from django.db.models import F
    from django.db.models.functions import Coalesce
    from django.http import StreamingHttpResponse

    from reports.services import COLUMNS, KIND_LABELS, STATUS_LABELS

    filtered, _, _, order = report_search(user, params)
    names = [c.name for c in COLUMNS]
    queryset = (
        filtered.annotate(file_name=Coalesce(F("batch__file_name"), F("billing__batch__file_name")))
        .order_by(*order)
        .values_list(*names)
    )
    kind, status = names.index("kind"), names.index("status")

    class Echo:
        def write(self, value):
            return value

    writer = csv.writer(Echo())

    def lines():
        yield writer.writerow([c.label for c in COLUMNS])
        for row in queryset.iterator(chunk_size=2000):
            row = list(row)
            row[kind], row[status] = KIND_LABELS.get(row[kind], row[kind]), STATUS_LABELS.get(row[status], row[status])
            yield writer.writerow(row)

    return StreamingHttpResponse((line.encode() for line in lines()), content_type="text/csv")


def copy_floor_sql(user, params: dict) -> str:
    from django.db import connection

    from reports.services import MODEL_FIELDS

    filtered, _, _, order = report_search(user, params)
    ordered = filtered.order_by(*order).values(*MODEL_FIELDS)
    sql, args = ordered.query.sql_with_params()
    with connection.cursor() as cursor:
        bound = cursor.mogrify(sql, args).decode()
    return f"COPY ({bound}) TO STDOUT WITH (FORMAT csv)"


# --- Parent -------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, scale: str):
        self.scale, self.cfg = scale, config(scale)

    def spawn(self, contender: str, params: dict) -> dict:
        argv = [sys.executable, "-m", "bench.b7", contender, str(self.merchant_id), json.dumps(params)]
        process = subprocess.Popen(argv, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, start_new_session=True)
        with ProcessSampler(groups=(process.pid,), interval=0.1) as sampler:
            out, _ = process.communicate()
        if process.returncode:
            raise RuntimeError(f"B7 {contender} child failed ({process.returncode})")
        result = json.loads(out.decode().strip().splitlines()[-1])
        result["sampled_peak_mb"] = sampler.peak_mb
        return result

    def run(self) -> dict:
        from accounts.models import Merchant

        info = generate(self.cfg["transactions"])
        self.merchant_id = info["merchants"]["bench-big"]
        signed_in_client("bench-reports", self.merchant_id)  # the user the children sign in as
        today = Merchant.objects.get(pk=self.merchant_id).local_today()
        params, found = search_for(self.merchant_id, today, self.cfg["rows"])
        log(f"B7: exporting {found:,} rows ({params['start_date']}..{params['end_date']})")

        def run_one(name: str, rep: int) -> dict:
            result = self.spawn(name, params)
            log(
                f"  {name} {result['seconds']:.2f} s, {result['lines']:,} lines, "
                f"{result['bytes'] / 2**20:.0f} MB out, peak RSS {result['peak_rss_mb']:.0f} MB"
            )
            return result

        runs = interleaved(CONTENDERS, self.cfg["repetitions"], run_one, "B7")
        return self.report(info, params, found, runs)

    def report(self, info: dict, params: dict, found: int, runs: dict) -> dict:
        contenders = {}
        for name, results in runs.items():
            times = summary([r["seconds"] for r in results])
            contenders[name] = {
                "time_s": times,
                "rows_per_s": round(found / times["median"]),
                "peak_rss_mb": round(max(r["peak_rss_mb"] for r in results), 1),
                "rss_before_mb": round(max(r["rss_before_mb"] for r in results), 1),
                "growth_mb": round(max(r["peak_rss_mb"] - r["rss_before_mb"] for r in results), 1),
                "sampled_peak_mb": round(max(r["sampled_peak_mb"] for r in results), 1),
                "lines": results[0]["lines"],
                "mb_out": round(results[0]["bytes"] / 2**20, 1),
            }
        found_ratios, paired = ratios({name: [r["seconds"] for r in results] for name, results in runs.items()}, RATIOS)
        ours = contenders["ours"]
        peak = max(ours["peak_rss_mb"], ours["sampled_peak_mb"])
        return {
            "id": "B7",
            "name": "CSV export",
            "scale": {
                "name": self.scale,
                "transactions": self.cfg["transactions"],
                "exported_rows": found,
                "repetitions": self.cfg["repetitions"],
                "generation_s": info["generation_s"],
            },
            "search": params,
            "contenders": contenders,
            "peak_rss_mb": peak,
            "ratios": found_ratios,
            "ratios_per_repetition": paired,
            "targets": target_texts(TARGETS),
            "met": judged({**found_ratios, "peak_rss_mb": peak}, TARGETS),
            "notes": [
                "time = request + whole body consumed, in a fresh child process (Django set up before the clock).",
                "peak_rss_mb = the larger of the child's VmHWM (not ru_maxrss: Linux carries that over exec from "
                "the bench runner) and ProcessSampler's peak (includes Django and the project imported: each child "
                "first exports one day, off the clock, as a serving process would have done); growth = peak minus "
                "the RSS just before the timed export.",
                "ours = the result page's Export CSV link (carries the signed totals the page showed: no count "
                "before the stream); ours streams COPY of the app's SQL (labels, file names, formula neutralising "
                "in SQL) on PostgreSQL; the Python path (SQLite, XLSX) is not measured here.",
                "copy floor = COPY of the app's queryset SQL (transaction columns, same filters and order) into a "
                "byte-counting sink: no file-name join, no labels, no neutralising.",
                "naive = StreamingHttpResponse over .iterator(chunk_size=2000) + csv.writer.",
            ],
        }


def print_report(result: dict) -> None:
    scale = result["scale"]
    print(
        f"\nB7 CSV export - scale {scale['name']}: {scale['exported_rows']:,} rows of {scale['transactions']:,} "
        f"transactions (generated in {scale['generation_s']} s), {scale['repetitions']} repetitions"
    )
    rows = [["contender", "time s (median)", "min..max", "spread", "rows/s", "peak RSS MB", "sampled MB"]]
    rows[0] += ["RSS before MB", "growth MB", "MB out"]
    for name, entry in result["contenders"].items():
        t = entry["time_s"]
        rows.append(
            [
                name,
                f"{t['median']:.2f}",
                f"{t['min']:.2f}..{t['max']:.2f}",
                f"{t['spread_pct']:.0f}%",
                f"{entry['rows_per_s']:,}",
                f"{entry['peak_rss_mb']:.0f}",
                f"{entry['sampled_peak_mb']:.0f}",
                f"{entry['rss_before_mb']:.0f}",
                f"{entry['growth_mb']:.0f}",
                f"{entry['mb_out']:.0f}",
            ]
        )
    print(table(rows))
    print(verdicts({**result["ratios"], "peak_rss_mb": result["peak_rss_mb"]}, TARGETS, result["met"]))
    print_notes(result)


def main(scale: str) -> dict:
    bench = Bench(scale)
    result = bench.run()
    print_report(result)
    return result


if __name__ == "__main__":
    outcome = child(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]))
    print(json.dumps(outcome))

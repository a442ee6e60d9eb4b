"""B5, All Report (DESIGN "Performance targets"): p95 of the page against the same SQL run raw, and deep
pages against Django's Paginator.

Data: bench/reports_data.py (N transactions of three merchants; 1M by default, 10M at full scale). The
searches are those of bench-big's merchant admin: COMBOS seeded filter combinations (random.Random(5)):
every T1 field alone (Billing Number, Invoice Number, CSV File Name, Amount, Card No, Card Holder Name,
Card Holder Phone, Start Date, End Date, Batch Type, Payment Status, Payment Response / Approval / Error
Code), then combinations of 2 to 4 fields taken from a sampled transaction, often with a date range and
a sort order.

Contenders, interleaved per search and repetition in rotated order:
- ours: the All Report view itself (``GET /reports/all/?...`` through django.test.Client with a signed-in,
  TOTP-verified session: middleware, form, totals, keyset page, file names, django-tables2, template).
  "first": the result URL (totals counted + first page). "deep": the page 90% into the result, i.e. the
  URL a user's "Next" link carries there: ``after=<cursor of the row at offset 0.9 * Total Data>`` and the
  ``totals`` token the links carry (so the totals are not counted again). Keyset pagination reaches it by
  clicking Next (each click is one such request, the same cost at any depth) or by "Last" then
  Previous; it cannot jump to page k, so the comparison is per page request at that depth.
- raw: the SQL statements the view ran for the report (captured: totals aggregate, page query, file-name
  lookups; not the session/user/merchant look-ups) re-run through a plain cursor, rows fetched.
- paginator (deep pages): the same deep-page request (same URL, same client, same view) with Django's
  Paginator in the place of the keyset paginator (``OffsetPages`` stands for ``reports.views.KeysetPaginator``
  while it runs): ``Paginator(<same queryset, same order>, REPORTS_PAGE_SIZE).page(k)``, k the page at 90%
  of the result, read with OFFSET. Counted the way ours counts there: the paginator is given the Total Data
  the search's first page counted (ours carries it in the totals token), so no COUNT. The rest of the
  request (session, form, totals token, file names, django-tables2, template) is the view's own, so the
  two differ by the page read alone; the first deep pages of a run are checked to show the same rows.

Deep pages exist only for results of at least DEEP_MIN_ROWS rows. Ratios: cost_vs_raw_sql = p95 of ours
(first and deep requests) / p95 of raw (the same requests' SQL); speedup_vs_paginator_deep = p95 of
paginator deep pages / p95 of ours deep pages. Beside them ``p95_ms``, ours' p95 in milliseconds (target
<= 300 at the default scale): a slower SQL would improve cost_vs_raw_sql, never p95_ms.

Knobs (environment): BENCH_SCALE=full; BENCH_REPORTS_ROWS (transactions), BENCH_B5_COMBOS,
BENCH_B5_REPETITIONS override the scale's values.
"""

from __future__ import annotations

import html
import random
import re
import statistics
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlencode

from .common import judged, log, p95, print_notes, rotated, scaled_config, signed_in_client, summary, table, verdicts
from .reports_data import generate, report_search, scale_rows

SCALES = {"default": {"combos": 200, "repetitions": 3}, "full": {"combos": 200, "repetitions": 5}}
TARGETS = {"cost_vs_raw_sql": ("<=", 2), "speedup_vs_paginator_deep": (">=", 10)}
P95_TARGET_MS = ("<=", 300)  # at the default scale
DEEP_MIN_ROWS = 1000
DEEP_SHARE = 0.9
REPORT_TABLES = ('"payments_transaction"', '"batch_batch"', '"recurring_billing"')
NEXT_LINK = re.compile(r'href="([^"]+)" rel="next"')
INVOICE = re.compile(r'<tr data-invoice="([^"]*)"')


def config(scale: str) -> dict:
    values = scaled_config("B5", SCALES, scale)
    values["rows"] = scale_rows(scale)
    return values


FIELDS = (
    "billing_number", "invoice_number", "file_name", "amount", "card_no", "holder_name", "holder_phone",
    "batch_type", "status", "response_code", "approval_code", "error_code",
)  # fmt: skip
SAMPLED = (
    "id", "billing_number", "invoice_number", "amount", "card_fingerprint", "card_masked", "holder_name",
    "holder_phone", "execute_date", "kind", "status", "response_code", "approval_code", "error_code", "batch_id",
    "billing__batch_id",
)  # fmt: skip


def sample_rows(merchant_id: int, rng: random.Random) -> list[dict]:
    """About 600 random transactions of the merchant, and one failed with an error code."""
    from django.db.models import Max, Min

    from payments.models import Transaction

    mine = Transaction.objects.filter(merchant_id=merchant_id)
    lowest, highest = mine.aggregate(low=Min("id"), high=Max("id")).values()
    sample = list(mine.filter(id__in=[rng.randint(lowest, highest) for _ in range(600)]).values(*SAMPLED))
    sample.append(mine.exclude(error_code="").order_by("-id").values(*SAMPLED)[10])
    return sample


def field_value(row: dict, name: str, files: dict, rng: random.Random):
    """What a user types in the search field ``name`` to find ``row``."""
    from reports.filters import CardSearch

    if name == "file_name":
        return files.get(row["batch_id"] or row["billing__batch_id"])
    if name == "card_no":
        return CardSearch(row["card_fingerprint"], row["card_masked"]).token
    if name == "holder_name":
        return row["holder_name"][: rng.choice((3, 5, 8))]
    if name == "batch_type":
        return "single_payment" if row["kind"] == "single_payment" else "registration"
    if name == "amount":
        return str(row["amount"])
    return row.get(name) or None


def random_search(row: dict, files: dict, rng: random.Random, today) -> dict:
    """1 to 3 fields of ``row``, often with broad fields (the big results that have deep pages), a date
    range and a sort order."""
    from reports.services import SORTS

    params = {name: field_value(row, name, files, rng) for name in rng.sample(FIELDS, rng.randint(1, 3))}
    params = {key: value for key, value in params.items() if value}
    if rng.random() < 0.5:
        params["status"] = row["status"]
    if rng.random() < 0.3:
        params["batch_type"] = "single_payment" if row["kind"] == "single_payment" else "registration"
    if rng.random() < 0.6:
        span = rng.choice((7, 31, 90, 180, 365))
        end = min(today, row["execute_date"] + timedelta(days=rng.randint(0, span - 1)))
        params["start_date"] = max(end - timedelta(days=span - 1), today - timedelta(days=365)).isoformat()
        params["end_date"] = end.isoformat()
    if rng.random() < 0.3:
        params["sort"] = rng.choice(("-", "")) + rng.choice(list(SORTS))
    return params


def make_combos(info: dict, count: int) -> list[dict]:
    """Seeded searches: every field alone, a few broad ones, then combinations from sampled rows."""
    from batch.models import Batch

    rng = random.Random(5)
    merchant_id, today = info["merchants"]["bench-big"], info["today"]
    sample = sample_rows(merchant_id, rng)
    files = dict(Batch.objects.filter(merchant_id=merchant_id).values_list("pk", "file_name"))
    failed = next(row for row in sample if row["error_code"])
    combos = [{name: field_value(failed if name == "error_code" else sample[0], name, files, rng)} for name in FIELDS]
    combos += [
        {"start_date": (today - timedelta(days=90)).isoformat()},
        {"end_date": (today - timedelta(days=200)).isoformat()},
        {"batch_type": "single_payment"},
        {"status": "failed"},
        {"response_code": "51"},
        {"start_date": (today - timedelta(days=365)).isoformat(), "end_date": today.isoformat()},
    ]
    while len(combos) < count:
        combos.append(random_search(rng.choice(sample), files, rng, today))
    return combos[:count]


class OffsetPages:
    """Django's Paginator where the view builds its ``KeysetPaginator(queryset, keys, ...)``: the same
    queryset in the same order, page ``number`` read with OFFSET. Counted the way ours counts a deep page:
    given the Total Data the search's first page counted (ours carries it in its totals token), so no
    COUNT. Everything else in the request (session, form, totals token, file names, table, template) is
    the view's own."""

    def __init__(self, number: int, count: int):
        self.number, self.count = number, count

    def __call__(self, queryset, keys, *, descending: bool, sort: str, per_page: int) -> OffsetPages:
        self.ordered = queryset.order_by(*(f"-{key}" if descending else key for key in keys))
        self.per_page = per_page
        return self

    def page(self, params):
        from django.core.paginator import Paginator

        from reports.pagination import Page

        paginator = Paginator(self.ordered, self.per_page)
        paginator.count = self.count  # a cached_property: set, it is not counted again
        found = paginator.page(self.number)
        return Page(list(found.object_list), has_next=found.has_next(), has_previous=found.has_previous())


class Bench:
    def __init__(self, scale: str):
        self.scale, self.cfg = scale, config(scale)

    def setup(self) -> None:
        log(f"B5: generating {self.cfg['rows']:,} transactions")
        self.info = generate(self.cfg["rows"])
        made = "reused" if self.info["reused"] else f"generated in {self.info['generation_s']} s"
        log(f"B5: data ready ({made})")
        self.merchant_id = self.info["merchants"]["bench-big"]
        self.client, self.user = signed_in_client("bench-reports", self.merchant_id)
        self.combos = make_combos(self.info, self.cfg["combos"])
        self.view({})  # off the clock: the first request imports and loads the templates

    # --- One search -----------------------------------------------------------------------------------

    def view(self, params: dict) -> tuple[float, list[str], str, list[str]]:
        """ours: one GET of the view; the report's SQL it ran; the next link's query string; the rows'
        invoice numbers."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        url = "/reports/all/?" + urlencode(params)
        with CaptureQueriesContext(connection) as queries:
            began = time.perf_counter()
            response = self.client.get(url)
            elapsed = time.perf_counter() - began
        if response.status_code != 200:
            raise RuntimeError(f"B5: {url} answered {response.status_code}")
        text = response.content.decode()
        found = NEXT_LINK.search(text)
        sql = [q["sql"] for q in queries.captured_queries if any(t in q["sql"] for t in REPORT_TABLES)]
        invoices = INVOICE.findall(text)
        return elapsed, sql, html.unescape(found.group(1)) if found else "", invoices

    def raw(self, statements: list[str]) -> float:
        from django.db import connection

        began = time.perf_counter()
        with connection.cursor() as cursor:
            raw = cursor.cursor  # psycopg2's own cursor: no Django wrapper
            for sql in statements:
                raw.execute(sql)
                raw.fetchall()
        return time.perf_counter() - began

    def paginator(self, case: dict, params: dict) -> tuple[float, list[str]]:
        """The baseline: the deep page's request (``params``, the URL ours was given) through the same view
        with ``OffsetPages`` in the place of ``reports.views.KeysetPaginator``; its time and row invoices."""
        from reports import views

        keyset = views.KeysetPaginator
        views.KeysetPaginator = OffsetPages(case["deep"]["page"], case["count"])
        try:
            elapsed, _, _, invoices = self.view(params)
        finally:
            views.KeysetPaginator = keyset
        return elapsed, invoices

    def prepare(self, params: dict) -> dict:
        """Total Data, the deep page's URL parameters, the Paginator's page number, the SQL ours runs."""
        from django.conf import settings

        from reports.pagination import encode_cursor
        from reports.services import rows, totals

        per_page = settings.REPORTS_PAGE_SIZE
        filtered, sort, keys, order = report_search(self.user, params)
        ordered = rows(filtered).order_by(*order)
        count = totals(ordered).count
        case = {"params": params, "count": count, "deep": None}
        if count >= DEEP_MIN_ROWS:
            offset = int(count * DEEP_SHARE) // per_page * per_page
            values = list(ordered.values_list(*keys)[offset - 1 : offset][0])
            case["deep"] = {"offset": offset, "page": offset // per_page + 1, "cursor": encode_cursor(sort, values)}
            case["ordered"] = ordered
        return case

    def run(self) -> dict:
        self.setup()
        cases = [self.prepare(params) for params in self.combos]
        deep_cases = sum(1 for case in cases if case["deep"])
        log(f"B5: {len(cases)} searches, {deep_cases} with a deep page; {self.cfg['repetitions']} repetitions")
        samples = {name: [] for name in ("ours_first", "ours_deep", "raw_first", "raw_deep", "paginator_deep")}
        contenders = ("ours", "raw", "paginator")
        checked = 0
        for rep in range(self.cfg["repetitions"]):
            began = time.perf_counter()
            for number, case in enumerate(cases):
                order = rotated(contenders, rep + number)
                # ours first, always before raw (raw replays the statements ours sent)
                first_s, first_sql, next_link, _ = self.view(case["params"])
                deep_s = deep_sql = deep_params = None
                if case["deep"]:
                    link = parse_qs(next_link.lstrip("?")) if next_link else {}
                    deep_params = {**case["params"], "after": case["deep"]["cursor"]}
                    if "totals" in link:
                        deep_params["totals"] = link["totals"][0]
                    deep_s, deep_sql, _, deep_rows = self.view(deep_params)
                    if rep == 0 and checked < 5:  # the deep page must not count again, nor skip rows
                        assert not any("COUNT(" in sql or "OFFSET" in sql for sql in deep_sql), deep_sql
                        assert self.paginator(case, deep_params)[1] == deep_rows, "the baseline's page differs"
                        checked += 1
                for name in order:
                    if name == "ours":
                        samples["ours_first"].append(first_s)
                        if deep_s is not None:
                            samples["ours_deep"].append(deep_s)
                    elif name == "raw":
                        samples["raw_first"].append(self.raw(first_sql))
                        if deep_sql is not None:
                            samples["raw_deep"].append(self.raw(deep_sql))
                    elif case["deep"]:
                        samples["paginator_deep"].append(self.paginator(case, deep_params)[0])
            log(f"B5 repetition {rep + 1}: {time.perf_counter() - began:.1f} s")
        return self.report(cases, samples)

    def report(self, cases: list[dict], samples: dict) -> dict:
        ms = {name: [value * 1000 for value in values] for name, values in samples.items()}
        ms["ours_all"], ms["raw_all"] = ms["ours_first"] + ms["ours_deep"], ms["raw_first"] + ms["raw_deep"]
        figures = {
            name: {
                "n": len(values),
                "p50_ms": round(statistics.median(values), 2) if values else None,
                "p95_ms": round(p95(values), 2) if values else None,
                "max_ms": round(max(values), 2) if values else None,
            }
            for name, values in ms.items()
        }
        deep = ms["ours_deep"] and ms["paginator_deep"]
        ratios = {
            "cost_vs_raw_sql": round(p95(ms["ours_all"]) / p95(ms["raw_all"]), 3),
            "speedup_vs_paginator_deep": round(p95(ms["paginator_deep"]) / p95(ms["ours_deep"]), 2) if deep else None,
        }
        p95_ms = figures["ours_all"]["p95_ms"]
        targets = {key: limit for key, limit in TARGETS.items() if ratios[key] is not None}
        met = {**judged(ratios, targets), **judged({"p95_ms": p95_ms}, {"p95_ms": P95_TARGET_MS})}
        counts = sorted(case["count"] for case in cases)
        offsets = [case["deep"]["offset"] for case in cases if case["deep"]]
        return {
            "id": "B5",
            "name": "All Report",
            "scale": {
                "name": self.scale,
                "transactions": self.cfg["rows"],
                "searches": len(cases),
                "searches_with_deep_page": len(offsets),
                "repetitions": self.cfg["repetitions"],
                "generation_s": self.info["generation_s"],
            },
            "result_rows": {"median": statistics.median(counts), "max": counts[-1], "empty": counts.count(0)},
            "deep_offsets": summary([float(value) for value in offsets]) if offsets else {},
            "p95_ms": p95_ms,
            "figures": figures,
            "ratios": ratios,
            "targets": {
                "cost_vs_raw_sql": "<= 2 (p95 against p95)",
                "speedup_vs_paginator_deep": ">= 10",
                "p95_ms": "<= 300 at the default scale",
            },
            "met": met,
            "notes": [
                "ours = the All Report view through django.test.Client with a verified session (whole request).",
                "raw = the report's SQL statements the view sent (totals, page, file names), re-run on a plain "
                "psycopg2 cursor with rows fetched; session/user/merchant look-ups are not in the floor.",
                "p95_ms = ours' p95 over all its requests, the absolute figure beside the ratio (a slower SQL "
                "would make the ratio look better; this would not).",
                f"deep page = the page at offset {DEEP_SHARE:.0%} of Total Data (results of >= {DEEP_MIN_ROWS} rows). "
                "Keyset: the URL the Next link carries there (cursor + totals token), one Next click at that depth. "
                "Paginator: the same request through the same view with Paginator(same queryset, REPORTS_PAGE_SIZE) "
                "in the keyset paginator's place, given the Total Data the first page counted (counted as ours: no "
                "COUNT on a deep page), .page(k) jumped to directly (OFFSET); same rows, table and template.",
                "first page = the search's result URL: ours counts the totals (COUNT + SUM) and reads the first page.",
                "p95 (nearest rank) over every search x repetition; cost_vs_raw_sql uses first and deep requests.",
            ],
        }


def print_report(result: dict) -> None:
    scale = result["scale"]
    print(
        f"\nB5 All Report - scale {scale['name']}: {scale['transactions']:,} transactions "
        f"(generated in {scale['generation_s']} s), {scale['searches']} searches ({scale['searches_with_deep_page']} "
        f"with a deep page), {scale['repetitions']} repetitions"
    )
    rows = [["measure", "requests", "p50 ms", "p95 ms", "max ms"]]
    labels = {
        "ours_first": "ours: first page (view)",
        "raw_first": "raw SQL: first page",
        "ours_deep": "ours: deep page (view, keyset)",
        "raw_deep": "raw SQL: deep page",
        "paginator_deep": "Django Paginator: deep page",
        "ours_all": "ours: all requests",
        "raw_all": "raw SQL: all requests",
    }
    for key, label in labels.items():
        entry = result["figures"][key]
        cells = [f"{entry[name]:.1f}" if entry[name] is not None else "-" for name in ("p50_ms", "p95_ms", "max_ms")]
        rows.append([label, str(entry["n"]), *cells])
    print(table(rows))
    ratios = {key: value for key, value in result["ratios"].items() if value is not None}
    p95_line = verdicts({"p95_ms": result["p95_ms"]}, {"p95_ms": P95_TARGET_MS}, result["met"])
    print(f"{p95_line}; {verdicts(ratios, {key: TARGETS[key] for key in ratios}, result['met'])}")
    print_notes(result)


def main(scale: str) -> dict:
    bench = Bench(scale)
    result = bench.run()
    print_report(result)
    return result

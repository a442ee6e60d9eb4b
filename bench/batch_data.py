"""B1/B2's data: a registration file from a fixed seed with 1% bad cells in every column, the cells
planted (row, column) so a run can check that every bad cell is reported and no good one, and the
merchant's stored billing numbers (the "duplicates against what is stored" rule).

Every bad cell sits in a row of its own (16 columns x 1% = 16% of the rows hold exactly one bad cell):
a row with two bad schedule cells gets one reason (the schedule is parsed as a whole), which would
make the count of reported cells differ from the planted one for a reason that is not a miss.
"""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from batch.columns import names

from .common import PROJECT_ROOT, RESULTS_DIR, interleaved, log, luhn_complete, summary, table
from .processes import LOAD_HEADER, load_cells, load_summary

SEED = 20261125
BAD_SHARE = 0.01
FIRST_NAMES = ("Andi", "Siti", "Budi", "Dewi", "Agus", "Rina", "Joko", "Sri", "Eko", "Lina", "Hadi", "Wati")
LAST_NAMES = ("Wijaya", "Rahmawati", "Santoso", "Lestari", "Pratama", "Kusuma", "Hidayat", "Saputra")
MONTH_SETS = ("all", "1|4|7|10", "1|2|3|4|5|6", "all", "3|6|9|12")
DAY_SETS = ("1|15", "5", "10|20", "28", "1", "7|14|21")
WEEKDAY_SETS = ("mon|fri", "tue", "wed|sat", "0|2|4", "sun")


def stored_key(number: int) -> str:
    return f"ST-{number:07d}"


def _good_row(rng: random.Random, i: int, pans: list[str], today: date) -> dict[str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    pan = rng.choice(pans)
    kind = rng.choices(("date", "day", "full_date"), weights=(6, 3, 1))[0]
    row = {
        "billing_number": f"BN-{i:07d}",
        "customer_id": f"C-{i:07d}",
        "customer_name": f"{first} {last}",
        "email": f"{first.lower()}.{i}@example.com",
        "phone": f"+62812{rng.randrange(10_000_000):07d}",
        "card_number": " ".join(pan[k : k + 4] for k in range(0, 16, 4)) if i % 3 == 0 else pan,
        "expiry": f"{rng.randint(1, 12):02d}/{rng.randint(today.year % 100 + 1, today.year % 100 + 5):02d}",
        "holder_name": f"{first} {last}".upper(),
        "holder_phone": f"08{rng.randrange(10**10):010d}" if i % 2 else "",
        "amount": str(rng.randrange(10_000, 5_000_000, 1000)),
        "type": rng.choice(("recurring", "reminder")),
        "schedule_type": kind,
        "schedule_days": rng.choice(DAY_SETS) if kind == "date" else "",
        "schedule_weekdays": rng.choice(WEEKDAY_SETS) if kind == "day" else "",
        "schedule_months": rng.choice(MONTH_SETS) if kind != "full_date" else "",
        "schedule_dates": "|".join(
            (today + timedelta(days=rng.randint(30, 400))).strftime(rng.choice(("%Y-%m-%d", "%d/%m/%Y")))
            for _ in range(rng.randint(1, 3))
        )
        if kind == "full_date"
        else "",
    }
    if i % 4 == 1:
        amount = int(row["amount"])
        row["amount"] = f"{amount:,}".replace(",", ".")
    return row


def _plant(rng: random.Random, row: dict[str, str], column: str, i: int, stored: int) -> bool:
    """Make ``row[column]`` invalid; False when this row cannot hold that kind of bad cell."""
    kind = row["schedule_type"]
    choice = rng.random() < 0.5
    if column == "billing_number":
        row[column] = stored_key(rng.randrange(stored)) if choice and stored else f"BAD NUMBER {i}!"
    elif column in ("customer_id", "holder_name"):
        row[column] = ""
    elif column == "customer_name":
        row[column] = "" if choice else '=HYPERLINK("http://evil.example","x")'
    elif column == "email":
        row[column] = f"user{i}-at-example.com"
    elif column in ("phone", "holder_phone"):
        row[column] = "12ab" if choice else "+62 812 555"
    elif column == "card_number":
        digits = row[column].replace(" ", "")
        row[column] = digits[:-1] + str((int(digits[-1]) + 1) % 10) if choice else "1234 5678"
    elif column == "expiry":
        row[column] = "13/28" if choice else "01/20"
    elif column == "amount":
        row[column] = "12,5" if choice else "5"
    elif column == "type":
        row[column] = "monthly"
    elif column == "schedule_type":
        row[column] = "weekly"
    elif column == "schedule_days":
        if kind != "date":
            return False
        row[column] = "31" if choice else "1|x"
    elif column == "schedule_weekdays":
        if kind != "day":
            return False
        row[column] = "funday"
    elif column == "schedule_months":
        if kind == "full_date":
            return False
        row[column] = "13"
    elif column == "schedule_dates":
        if kind != "full_date":
            return False
        row[column] = "2027-13-45"
    return True


def generate(path: Path, rows: int, stored: int, today: date) -> list[tuple[int, str]]:
    """Write the file; returns the planted bad cells as (line in the file, column), header = line 1."""
    rng = random.Random(SEED)
    columns = names("registration")
    pans = [luhn_complete(f"4{rng.randrange(10**14):014d}") for _ in range(5000)]
    data = [_good_row(rng, i, pans, today) for i in range(rows)]
    per_column = max(1, int(rows * BAD_SHARE))
    free = list(range(rows))
    rng.shuffle(free)
    planted: list[tuple[int, str]] = []
    for column in columns:
        done, skipped = 0, []
        while done < per_column and free:
            index = free.pop()
            if _plant(rng, data[index], column, index, stored):
                planted.append((index + 2, column))
                done += 1
            else:
                skipped.append(index)
        free.extend(skipped)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(data)
    return sorted(planted)


def seed_stored_billings(merchant_id: int, count: int) -> None:
    """``count`` billings of the merchant (billing numbers ST-0000000...), in one INSERT ... SELECT: every
    NOT NULL column gets a plain value of its type."""
    from django.db import connection, models

    from recurring.models import Billing
    from recurring.schedule import Schedule

    fixed = {
        "amount": 150_000,
        "status": Billing.Status.INACTIVE.value,  # stored keys only: nothing for a scheduler to pick up
        "source": Billing.Source.BATCH.value,
        "schedule_kind": "date",
        "schedule_data": json.dumps(Schedule.by_date([1], range(1, 13)).to_dict()),
    }
    columns, values, params = [], [], []
    for field in Billing._meta.concrete_fields:
        if field.primary_key or field.null:
            continue
        columns.append(field.column)
        if field.name == "merchant":
            values.append(str(int(merchant_id)))
        elif field.name == "billing_number":
            values.append("'ST-' || lpad(n::text, 7, '0')")
        elif field.name in fixed:
            values.append("%s::jsonb" if isinstance(field, models.JSONField) else "%s")
            params.append(fixed[field.name])
        elif field.has_default() and not callable(field.default):
            values.append("%s")
            params.append(field.default)
        elif isinstance(field, models.JSONField):
            values.append("'{}'::jsonb")
        elif isinstance(field, models.DateTimeField):
            values.append("now()")
        elif isinstance(field, models.DateField):
            values.append("current_date")
        elif isinstance(field, models.BooleanField):
            values.append("false")
        elif isinstance(field, (models.IntegerField, models.DecimalField)):
            values.append("0")
        else:
            values.append("'x'")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM recurring_billing WHERE merchant_id = %s", [merchant_id])
        cursor.execute(
            f"INSERT INTO recurring_billing ({', '.join(columns)}) "
            f"SELECT {', '.join(values)} FROM generate_series(0, %s) AS n",
            [*params, count - 1],
        )
        # As autovacuum leaves a table a minute after a bulk insert (all-visible: the merchant's keys are an
        # index-only scan), not as the insert left it (the first scans set every row's hint bits). One VACUUM
        # right after the insert may leave pages not all-visible (seen: 4020 of 4546, or too few for the
        # planner to choose the index-only scan: a sequential scan of the whole heap, twice the server's
        # time): vacuumed again until every page is, as it would be a minute later.
        for _ in range(5):
            cursor.execute("VACUUM ANALYZE recurring_billing")
            cursor.execute("SELECT relallvisible >= relpages FROM pg_class WHERE oid = 'recurring_billing'::regclass")
            if cursor.fetchone()[0]:
                break
            time.sleep(0.5)


# --- The run's setup, shared by B1 and B2 -----------------------------------------------------------


def prepare(rows: int, stored: int, peer_sample: int) -> dict:
    """The merchant, its uploader, the file (made once per size and day), the planted cells, a sample of
    the file for a sampled peer, and ``stored`` billings of the merchant. Returns the contenders' config."""
    from django.contrib.auth import get_user_model

    from accounts.models import Merchant

    merchant, _ = Merchant.objects.get_or_create(code="bench-batch", defaults={"name": "Bench B1/B2"})
    user, _ = get_user_model().objects.get_or_create(
        username="bench-batch-uploader", defaults={"merchant": merchant, "menu_access": ["registration"]}
    )
    today = merchant.local_today()
    workdir = RESULTS_DIR / "batch"
    path = workdir / f"registrations-{rows}-{today:%Y%m%d}.csv"
    planted_path = path.with_suffix(".planted.json")
    if not (path.exists() and planted_path.exists()):
        planted = generate(path, rows, stored, today)
        planted_path.write_text(json.dumps(planted))
    sample_path = path.with_suffix(f".first-{peer_sample}.csv")
    if not sample_path.exists():
        with path.open(encoding="utf-8") as source, sample_path.open("w", encoding="utf-8", newline="") as out:
            reader, writer = csv.reader(source), csv.writer(out)
            for number, line in enumerate(reader):
                if number > peer_sample:
                    break
                writer.writerow(line)
    from recurring.models import Billing

    if Billing.objects.filter(merchant=merchant).count() != stored:
        seed_stored_billings(merchant.pk, stored)
    return {
        "merchant_id": merchant.pk,
        "user_id": user.pk,
        "file": str(path),
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "planted": str(planted_path),
        "peer_file": str(sample_path),
        "workdir": str(workdir),
        "rows": rows,
        "stored": stored,
    }


def clear_batches(merchant_id: int) -> None:
    """Drop the merchant's batches and their rows (the same file is uploaded once per run)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM batch_batchrow WHERE merchant_id = %s", [merchant_id])
        cursor.execute("DELETE FROM batch_batch WHERE merchant_id = %s", [merchant_id])
        cursor.execute("VACUUM ANALYZE batch_batchrow")


def run_contender(name: str, cfg: dict) -> dict:
    """One contender in a fresh process (bench/batch_worker.py); its JSON line."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.batch_worker", name, json.dumps(cfg)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"{name} failed:\n{done.stderr[-4000:]}")
    if os.environ.get("BENCH_BATCH_PROFILE"):  # the child's profile (bench/batch_worker.py), on our stderr
        sys.stderr.write(f"--- profile of {name}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_all(contenders: tuple[str, ...], repetitions: int, cfg: dict, label: str) -> dict:
    """Every contender once per repetition in a rotated order, each in a fresh process. Before each run
    of B1's ours, the merchant's batches are dropped (the same file is uploaded at every run)."""

    def run_one(name: str, rep: int) -> dict:
        if name == "b1_ours":
            clear_batches(cfg["merchant_id"])
        result = run_contender(name, cfg)
        log(f"  {name}: {result['seconds']:.2f} s, peak {result['peak_rss_mb']:.0f} MB")
        return result

    return interleaved(contenders, repetitions, run_one, label)


def entry(results: list[dict], rows: int, sampled: bool) -> dict:
    times = summary([result["seconds"] for result in results])
    found = {
        "time_s": times,
        "rows_per_s": round(rows / times["median"], 1),
        **load_summary(results),
        "measured_rows": results[0]["rows"],
        "scaled_from_sample": sampled,
    }
    for key in ("planted_cells", "reported_cells", "missed_cells", "extra_cells"):
        if key in results[0]:
            found[key] = [result[key] for result in results]
    return found


def print_table(title: str, contenders: dict, rows: int) -> None:
    print(f"\n{title}")
    lines = [["contender", "rows run", "time s (median)", "min..max", "spread", "rows/s", *LOAD_HEADER, "bad cells"]]
    for name, found in contenders.items():
        times = found["time_s"]
        cells = f"{found['reported_cells'][0]}/{found['planted_cells'][0]}" if "reported_cells" in found else "-"
        lines.append(
            [
                name,
                f"{found['measured_rows']}" + (f" (scaled to {rows})" if found["scaled_from_sample"] else ""),
                f"{times['median']:.2f}",
                f"{times['min']:.2f}..{times['max']:.2f}",
                f"{times['spread_pct']:.0f}%",
                f"{found['rows_per_s']:.0f}",
                *load_cells(found),
                cells,
            ]
        )
    print(table(lines))

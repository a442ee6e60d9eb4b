"""B1/B2's data: a registration file from a fixed seed with 1% bad cells in every column, the cells
planted (row, column) so a run can check that every bad cell is reported and no good one, and the
merchant's stored billing numbers (the "duplicates against what is stored" rule).

Every bad cell sits in a row of its own (16 columns x 1% = 16% of the rows hold exactly one bad cell):
a row with two bad schedule cells gets one reason (the schedule is parsed as a whole), which would
make the count of reported cells differ from the planted one for a reason that is not a miss.
"""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

from batch.columns import names

SEED = 20261125
BAD_SHARE = 0.01
FIRST_NAMES = ("Andi", "Siti", "Budi", "Dewi", "Agus", "Rina", "Joko", "Sri", "Eko", "Lina", "Hadi", "Wati")
LAST_NAMES = ("Wijaya", "Rahmawati", "Santoso", "Lestari", "Pratama", "Kusuma", "Hidayat", "Saputra")
MONTH_SETS = ("all", "1|4|7|10", "1|2|3|4|5|6", "all", "3|6|9|12")
DAY_SETS = ("1|15", "5", "10|20", "28", "1", "7|14|21")
WEEKDAY_SETS = ("mon|fri", "tue", "wed|sat", "0|2|4", "sun")


def luhn_complete(body: str) -> str:
    """``body`` plus the check digit that makes it pass Luhn."""
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:  # these get doubled once the check digit is appended
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return body + str((10 - total % 10) % 10)


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

    columns, values = [], []
    for field in Billing._meta.concrete_fields:
        if field.primary_key or field.null:
            continue
        columns.append(field.column)
        if field.name == "merchant":
            values.append(str(int(merchant_id)))
        elif field.name == "billing_number":
            values.append("'ST-' || lpad(n::text, 7, '0')")
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
            [count - 1],
        )
        cursor.execute("ANALYZE recurring_billing")

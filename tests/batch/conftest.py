"""Batch fixtures: files built in memory, tasks run in-process right after commit."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile

from batch import pipeline, tasks
from batch.columns import names

TODAY = date(2026, 11, 30)
REGISTRATION_ROW = {
    "billing_number": "GYM-1001",
    "customer_id": "CUST-501",
    "customer_name": "Andi Wijaya",
    "email": "andi@example.com",
    "phone": "+6281234567890",
    "card_number": "4111 1111 1111 1111",
    "expiry": "12/28",
    "holder_name": "ANDI WIJAYA",
    "holder_phone": "+6281234567890",
    "amount": "250.000",
    "type": "recurring",
    "schedule_type": "date",
    "schedule_days": "1|15",
    "schedule_weekdays": "",
    "schedule_months": "all",
    "schedule_dates": "",
}
PAYMENT_ROW = {
    "invoice_number": "INV-0001",
    "billing_number": "",  # a billing_number must name a stored billing: tests that want one store it
    "customer_id": "CUST-502",
    "card_number": "5555555555554444",
    "expiry": "06/29",
    "holder_name": "SITI RAHMAWATI",
    "holder_phone": "",
    "amount": "499000",
    "execute_date": f"{TODAY + timedelta(days=1):%Y-%m-%d}",  # tomorrow of the frozen today
    "description": "Personal training pack",
}


def rows_of(kind: str, count: int, **changes) -> list[dict]:
    base = REGISTRATION_ROW if kind == "registration" else PAYMENT_ROW
    key = "billing_number" if kind == "registration" else "invoice_number"
    return [{**base, key: f"{base[key]}-{i:04d}", **changes} for i in range(count)]


def csv_bytes(rows: list[dict], *, kind: str, delimiter: str = ",", bom: bool = False, columns=None) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns or names(kind), delimiter=delimiter, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return (("\ufeff" if bom else "") + buffer.getvalue()).encode("utf-8")


def upload_file(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


@pytest.fixture(autouse=True)
def batch_environment(settings, tmp_path, monkeypatch):
    settings.BATCH_UPLOAD_DIR = tmp_path / "uploads"
    settings.SIMULATED_BANK_PATH = str(tmp_path / "bank.sqlite3")
    settings.SIMULATED_BANK_LATENCY_MS = 0
    settings.SIMULATED_BANK_TIMEOUT_RATE = 0
    settings.SIMULATED_BANK_TRANSIENT_RATE = 0
    monkeypatch.setattr(tasks.validate_batch, "delay", pipeline.validate)
    monkeypatch.setattr(tasks.process_batch, "delay", pipeline.process)
    from payments import tasks as payment_tasks

    queued: list[int] = []
    monkeypatch.setattr(payment_tasks.charge_many, "delay", lambda ids: queued.extend(ids))
    return queued


@pytest.fixture
def today():
    with time_machine.travel(datetime(2026, 11, 30, 9, tzinfo=ZoneInfo("Asia/Jakarta")), tick=False):
        yield TODAY

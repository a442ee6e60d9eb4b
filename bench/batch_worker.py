"""One contender of B1 or B2 in a process of its own (`python -m bench.batch_worker NAME CONFIG_JSON`):
Django is set up before the clock starts, the contender's work is timed, and the process's peak
resident memory (VmHWM) is that contender's alone. Prints one JSON line.

B1 contenders: ``b1_ours`` (the app: services.upload + pipeline.validate, as the Celery task runs it),
``b1_import_export`` (django-import-export, fastest documented settings, on a sample), ``b1_floor``
(COPY of the file's own bytes into a table of the file's columns, no parsing in Python).
B2 contenders: ``b2_ours`` (stored keys + validation.validate on the read frame), ``b2_loop`` (the same
rules in a per-row Python loop, bench/batch_rules.py), ``b2_read`` (pandas read of the file: the floor).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import sys
import time
from pathlib import Path

from bench.processes import SelfSampler, load_figures, peak_rss_mb

FLOOR_TABLE = "bench_b1_floor"
PEER_TABLE = "bench_b1_import_export"


def _planted(cfg: dict, sample: int | None = None) -> set[tuple[int, str]]:
    cells = {(row, column) for row, column in json.loads(Path(cfg["planted"]).read_text())}
    return {cell for cell in cells if sample is None or cell[0] <= sample + 1}


def _compare(reported: set[tuple[int, str]], planted: set[tuple[int, str]]) -> dict:
    return {
        "planted_cells": len(planted),
        "reported_cells": len(reported),
        "missed_cells": len(planted - reported),
        "extra_cells": len(reported - planted),
    }


def _merchant(cfg: dict):
    from accounts.models import Merchant

    return Merchant.objects.get(pk=cfg["merchant_id"])


def _rules(merchant):
    """The peers' rules with the merchant's stored billing numbers fetched as a set (one query)."""
    from bench.batch_rules import Rules
    from recurring.models import Billing

    stored = Billing.objects.filter(merchant=merchant).values_list("billing_number", flat=True).iterator(20_000)
    return Rules(
        today=merchant.local_today(),
        min_amount=merchant.min_charge_amount,
        max_amount=merchant.max_charge_amount,
        stored=set(stored),
    )


# --- B1 ---------------------------------------------------------------------------------------------


def b1_ours(cfg: dict) -> dict:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.files import File
    from django.db import connection

    from accounts.audit import Actor
    from batch import pipeline, services, tasks
    from batch.models import BatchRow

    settings.BATCH_UPLOAD_DIR = Path(cfg["workdir"]) / "uploads"
    settings.BATCH_MAX_BYTES = max(settings.BATCH_MAX_BYTES, Path(cfg["file"]).stat().st_size)
    tasks.validate_batch.delay = lambda batch_id: None  # run below, in this process, as the worker would
    actor = Actor.of(get_user_model().objects.get(pk=cfg["user_id"]))
    phases = {}

    class Phases(logging.Handler):
        def emit(self, record):
            if record.msg.startswith("batch validated"):
                phases.update(record.args[-1])

    logging.getLogger("batch.pipeline").addHandler(Phases())
    logging.getLogger("batch.pipeline").setLevel(logging.INFO)
    started = time.perf_counter()
    with open(cfg["file"], "rb") as handle:
        batch = services.upload(actor, File(handle, name="registrations.csv"), "registration")
    status = pipeline.validate(batch.pk)
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM batch_batchrow WHERE batch_id = %s", [batch.pk])
        stored = cursor.fetchone()[0]
        cursor.execute(
            "SELECT row_number, jsonb_object_keys(errors::jsonb) FROM batch_batchrow WHERE batch_id = %s", [batch.pk]
        )
        reported = {(row, column) for row, column in cursor.fetchall()}
    # The card cell of every stored row as the app reads it back (BatchRow.data, whatever its storage form).
    cards = BatchRow.objects.filter(batch_id=batch.pk).values_list("data", flat=True).iterator(chunk_size=20_000)
    full_pans = sum(1 for data in cards if re.search(r"[0-9]{13}", data["card_number"]))
    return {
        "seconds": seconds,
        "rows": stored,
        "status": status,
        "stored_rows_with_a_13_digit_run": full_pans,
        "phases_s": phases,
        **_compare(reported, _planted(cfg)),
    }


def _peer_model():
    from django.db import models

    class PeerRegistration(models.Model):
        """The file's row as a model: the registration's fields, card masked, amount as a number."""

        billing_number = models.CharField(max_length=64)
        customer_id = models.CharField(max_length=64)
        customer_name = models.CharField(max_length=255)
        email = models.CharField(max_length=255, blank=True)
        phone = models.CharField(max_length=32, blank=True)
        card_number = models.CharField(max_length=32)
        expiry = models.CharField(max_length=8)
        holder_name = models.CharField(max_length=255)
        holder_phone = models.CharField(max_length=32, blank=True)
        amount = models.BigIntegerField()
        type = models.CharField(max_length=16)
        schedule_type = models.CharField(max_length=16)
        schedule_days = models.CharField(max_length=255, blank=True)
        schedule_weekdays = models.CharField(max_length=255, blank=True)
        schedule_months = models.CharField(max_length=255, blank=True)
        schedule_dates = models.CharField(max_length=255, blank=True)

        class Meta:
            app_label = "batch"
            db_table = PEER_TABLE
            managed = False

        def __str__(self) -> str:
            return self.billing_number

    return PeerRegistration


def _peer_resource(model, holder: dict, batch_size: int):
    """A ModelResource of ``model`` with the fastest documented settings, each field cleaned by a widget
    that applies ``holder["rules"]`` (a bad cell raises ValueError: a row error) and masks the card."""
    from import_export import fields, resources, widgets

    from billing_bo.lib.cards import mask_pan, mask_pans_in_text

    class RuleWidget(widgets.Widget):
        def __init__(self, column: str):
            super().__init__()
            self.column = column

        def clean(self, value, row=None, **kwargs):
            value = "" if value is None else str(value).strip()
            reason = holder["rules"].cell_error(self.column, value, row)
            if reason:
                raise ValueError(reason)
            if self.column == "card_number":
                return mask_pan(value.replace(" ", "").replace("-", ""))
            if self.column == "amount":
                return int(value.replace(".", ""))
            if self.column in ("customer_name", "holder_name"):
                return mask_pans_in_text(value)
            return value

    columns = [field.name for field in model._meta.fields if field.name != "id"]
    declared = {
        name: fields.Field(attribute=name, column_name=name, widget=RuleWidget(name), saves_null_values=False)
        for name in columns
    }

    Meta = type(
        "Meta",
        (),
        {
            "model": model,
            "fields": tuple(columns),
            "import_id_fields": ("billing_number",),
            "use_bulk": True,
            "batch_size": batch_size,
            "skip_diff": True,
            "skip_html_diff": True,
            "skip_unchanged": False,
            "report_skipped": False,
            "force_init_instance": True,
            "use_transactions": True,
            "clean_model_instances": False,
        },
    )
    return type("PeerResource", (resources.ModelResource,), {**declared, "Meta": Meta})


def b1_import_export(cfg: dict) -> dict:
    """django-import-export with its fastest documented settings: bulk inserts (use_bulk, batch_size),
    no diff (skip_diff, skip_html_diff), no instance lookup (force_init_instance), one transaction
    (use_transactions), skip_unchanged off. Each cell is checked by its widget's clean() with the
    same rules (bench/batch_rules.py). The merchant's stored billing numbers are loaded once, timed
    apart: only the import of the sample is scaled to the file's rows, the one-off load is not."""
    from django.db import connection
    from tablib import Dataset

    model = _peer_model()
    with connection.schema_editor() as editor:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {PEER_TABLE}")
        editor.create_model(model)
    merchant = _merchant(cfg)
    holder: dict = {}
    resource_class = _peer_resource(model, holder, cfg["peer_batch_size"])
    sample_path = Path(cfg["peer_file"])
    started = time.perf_counter()
    holder["rules"] = _rules(merchant)
    keys_seconds = time.perf_counter() - started
    started = time.perf_counter()
    dataset = Dataset().load(sample_path.read_text(encoding="utf-8-sig"), format="csv")
    result = resource_class().import_data(dataset, dry_run=False, raise_errors=False, use_transactions=True)
    seconds = time.perf_counter() - started
    reported = set()
    for invalid in result.invalid_rows:
        for column in invalid.error_dict:
            reported.add((invalid.number + 1, column))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {PEER_TABLE}")
        stored_rows = cursor.fetchone()[0]
    return {
        "seconds": keys_seconds + seconds * cfg["rows"] / len(dataset),
        "measured_seconds": keys_seconds + seconds,
        "keys_seconds": keys_seconds,
        "rows": len(dataset),
        "stored_valid_rows": stored_rows,
        "row_errors": len(result.row_errors()),
        **_compare(reported, _planted(cfg, sample=len(dataset))),
    }


def b1_floor(cfg: dict) -> dict:
    """The floor: PostgreSQL COPY of the file's own bytes into a table of text columns (no parsing in Python)."""
    from django.db import connection

    from batch.columns import names

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        cursor.execute(f"CREATE TABLE {FLOOR_TABLE} ({', '.join(f'{name} text' for name in names('registration'))})")
    started = time.perf_counter()
    with open(cfg["file"], "rb") as handle, connection.cursor() as cursor:
        cursor.copy_expert(f"COPY {FLOOR_TABLE} FROM STDIN WITH (FORMAT csv, HEADER true)", handle)
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {FLOOR_TABLE}")
        rows = cursor.fetchone()[0]
        cursor.execute(f"DROP TABLE {FLOOR_TABLE}")
    return {"seconds": seconds, "rows": rows}


# --- B2 ---------------------------------------------------------------------------------------------


def b2_ours(cfg: dict) -> dict:
    import numpy as np

    from batch import pipeline, reader, validation
    from batch.models import Batch

    merchant = _merchant(cfg)
    frame = reader.read(Path(cfg["file"]), "csv", "registration")
    batch = Batch(merchant=merchant, kind=Batch.Kind.REGISTRATION)
    started = time.perf_counter()
    result = validation.validate(frame, "registration", **pipeline.validation_limits(batch, frame["billing_number"]))
    seconds = time.perf_counter() - started
    # Every invalid cell with its reason: result.codes (per column, a reason number per row) and
    # result.messages (the reasons).
    reported = {
        (int(position) + 2, column)
        for column, codes in result.codes.items()
        for position in np.flatnonzero(codes)
        if result.messages[codes[position]]
    }
    return {"seconds": seconds, "rows": len(frame), **_compare(reported, _planted(cfg))}


def b2_loop(cfg: dict) -> dict:
    """The stored keys as a set (one query), then the rules row by row; the loop runs on a sample of
    the rows and its time is scaled to the file (the key query is not scaled)."""
    merchant = _merchant(cfg)
    with open(cfg["file"], newline="", encoding="utf-8-sig") as handle:
        rows = [row for _, row in zip(range(cfg["loop_sample"]), csv.DictReader(handle), strict=False)]
    started = time.perf_counter()
    rules = _rules(merchant)
    keys_seconds = time.perf_counter() - started
    started = time.perf_counter()
    reported = set()
    for number, row in enumerate(rows, 2):
        for column in rules.row_errors(row):
            reported.add((number, column))
    loop_seconds = time.perf_counter() - started
    return {
        "seconds": keys_seconds + loop_seconds * cfg["rows"] / len(rows),
        "measured_seconds": keys_seconds + loop_seconds,
        "keys_seconds": keys_seconds,
        "rows": len(rows),
        **_compare(reported, _planted(cfg, sample=len(rows))),
    }


def b2_read(cfg: dict) -> dict:
    import pandas as pd

    started = time.perf_counter()
    frame = pd.read_csv(cfg["file"], engine="pyarrow", dtype=str, keep_default_na=False)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": len(frame)}


CONTENDERS = {
    name: globals()[name] for name in ("b1_ours", "b1_import_export", "b1_floor", "b2_ours", "b2_loop", "b2_read")
}


def _warm_up() -> None:
    """Every contender starts with the libraries loaded and Arrow's CSV reader used once, so the clock
    does not count first-use imports (the app's worker process is a long-lived one), and as a worker
    process starts: billing_bo.celery.warm_batch_validation (a few rows validated once)."""
    import pandas as pd

    pd.read_csv(io.BytesIO(b"a,b\n1,2\n"), engine="pyarrow", dtype=str)
    import import_export.resources  # noqa: F401
    import tablib  # noqa: F401

    from batch import reader, services, validation  # noqa: F401
    from billing_bo.celery import warm_batch_validation

    warm_batch_validation()


def main() -> None:
    name, cfg = sys.argv[1], json.loads(sys.argv[2])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_bo.settings")
    import django

    django.setup()
    _warm_up()
    with SelfSampler() as sampler:  # the load figures: this process's CPU, PostgreSQL's, the machine's
        if os.environ.get("BENCH_BATCH_PROFILE"):  # diagnosis: where a contender's time goes
            import cProfile
            import pstats

            profile = cProfile.Profile()
            result = profile.runcall(CONTENDERS[name], cfg)
            # On stderr: the bench runner passes it on to its own (bench/batch_data.run_contender).
            pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
        else:
            result = CONTENDERS[name](cfg)
    result.update(load_figures(sampler, cpu_s=sampler.own_cpu_s))
    result["peak_rss_mb"] = peak_rss_mb()  # VmHWM: the peak between two samples included
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

"""B1, batch import end to end (DESIGN "Performance targets").

A registration file from a fixed seed (bench/batch_data.py): N rows, 1% bad cells in every column
(each bad cell in a row of its own), the merchant holding S stored billings (half the bad billing
numbers are stored ones). Three contenders, each in a process of its own (bench/batch_worker.py),
interleaved in one run, each repetition in a rotated order:

- import_export: django-import-export (requirements-dev.txt) with its fastest documented settings -
  use_bulk, batch_size, skip_diff, skip_html_diff, force_init_instance (no instance loader lookup),
  skip_unchanged off, use_transactions - into a model of the file's shape, each field checked by its
  widget's clean() with the app's rules (bench/batch_rules.py). The merchant's stored keys are loaded
  once (one query, timed apart). Too slow for the whole file: it imports the first PEER_SAMPLE rows and
  that import's time is scaled linearly to N, the one-off key load added unscaled (said in the output
  and the JSON). Its valid rows are stored, its errors kept in its Result (in memory), as import-export
  does.
- ours: the app's path for an uploaded file up to "validated, rows and errors stored":
  ``batch.services.upload`` then ``batch.pipeline.validate`` as the Celery task runs it, in-process.
- floor: PostgreSQL ``COPY ... FROM STDIN (FORMAT csv, HEADER)`` of the file's own bytes into a table of
  the file's 16 columns (text, no index): no parsing in Python.

Hard gate (`gate_passed`): every run of ours reports exactly the planted bad cells (count and cells),
stores one row per line of the file, and stores no 13-digit run in a row's card number.

Knobs (environment): BENCH_SCALE=full (1M rows, 1M stored keys, 5 repetitions); BENCH_B1_ROWS,
BENCH_B1_STORED, BENCH_B1_REPETITIONS, BENCH_B1_PEER_SAMPLE, BENCH_B1_PEER_BATCH_SIZE override the
scale's values. The file is written once per size and day under var/bench/batch/.
"""

from __future__ import annotations

import os

from . import batch_data
from .common import gate_text, judged, print_notes, ratios, scaled_config, target_texts, verdicts

SCALES = {
    "default": {"rows": 100_000, "stored": 100_000, "repetitions": 3, "peer_sample": 5_000, "peer_batch_size": 5000},
    "full": {"rows": 1_000_000, "stored": 1_000_000, "repetitions": 5, "peer_sample": 20_000, "peer_batch_size": 5000},
}
CONTENDERS = ("b1_import_export", "b1_ours", "b1_floor")
NAMES = {"b1_import_export": "import_export", "b1_ours": "ours", "b1_floor": "floor"}
RATIOS = {"speedup_vs_import_export": ("import_export", "ours"), "cost_vs_floor": ("ours", "floor")}
TARGETS = {"speedup_vs_import_export": (">=", 15), "cost_vs_floor": ("<=", 4)}


def config(scale: str) -> dict:
    values = scaled_config("B1", SCALES, scale)
    values["peer_sample"] = min(values["peer_sample"], values["rows"])
    return values


def every_cell_reported(results: list[dict], rows: int) -> bool:
    """The hard gate: each run of ours reported exactly the planted cells, stored every line, no full PAN."""
    return all(
        result["missed_cells"] == 0
        and result["extra_cells"] == 0
        and result["reported_cells"] == result["planted_cells"]
        and result["rows"] == rows
        and result["stored_rows_with_a_13_digit_run"] == 0
        for result in results
    )


def main(scale: str) -> dict:
    cfg = config(scale)
    data = batch_data.prepare(cfg["rows"], cfg["stored"], cfg["peer_sample"])
    data["peer_batch_size"] = cfg["peer_batch_size"]
    runs = {
        NAMES[name]: results for name, results in batch_data.run_all(CONTENDERS, cfg["repetitions"], data, "B1").items()
    }
    sampled = cfg["peer_sample"] < cfg["rows"]
    contenders = {
        name: batch_data.entry(results, cfg["rows"], sampled and name == "import_export")
        for name, results in runs.items()
    }
    peer = contenders["import_export"]
    peer["measured_time_s"] = [round(result["measured_seconds"], 3) for result in runs["import_export"]]
    peer["keys_time_s"] = [round(result["keys_seconds"], 3) for result in runs["import_export"]]
    peer["stored_valid_rows"] = [result["stored_valid_rows"] for result in runs["import_export"]]
    contenders["ours"]["stored_rows"] = [result["rows"] for result in runs["ours"]]
    contenders["ours"]["phases_s"] = [result["phases_s"] for result in runs["ours"]]  # from the app's log line
    found, paired = ratios({name: [r["seconds"] for r in results] for name, results in runs.items()}, RATIOS)
    every_cell = every_cell_reported(runs["ours"], cfg["rows"])
    notes = [
        f"import_export imported the first {cfg['peer_sample']} rows per repetition; that time is scaled linearly "
        f"to {cfg['rows']} rows, its one-off load of the stored keys added unscaled"
        if sampled
        else "import_export ran every row",
        "bad cells: 1% of the rows per column, one bad cell per row; half the bad billing numbers are stored ones",
        f"file {data['file_mb']} MB"
        + ("; ours raises BATCH_MAX_BYTES to the file's size" if data["file_mb"] > 50 else ""),
        "floor: COPY of the file's own bytes (FORMAT csv, HEADER) into a table of text columns",
        "each contender runs in a fresh process (Django set up before the clock): peak RSS is that process's",
    ]
    result = {
        "id": "B1",
        "name": "batch import end to end",
        "scale": {"name": scale, **cfg},
        "setup": {"file_mb": data["file_mb"], "cores": os.cpu_count(), "peer_batch_size": cfg["peer_batch_size"]},
        "contenders": contenders,
        "ratios": found,
        "ratios_per_repetition": paired,
        "targets": {**target_texts(TARGETS), "every_bad_cell_reported": True},
        "met": {**judged(found, TARGETS), "every_bad_cell_reported": every_cell},
        "gate_passed": every_cell,
        "notes": notes,
    }
    print_report(result)
    return result


def print_report(result: dict) -> None:
    scale = result["scale"]
    batch_data.print_table(
        f"B1 batch import end to end - scale {scale['name']}: {scale['rows']} registration rows, "
        f"{scale['stored']} stored billings, 1% bad cells per column, {scale['repetitions']} repetitions",
        result["contenders"],
        scale["rows"],
    )
    print(
        f"{verdicts(result['ratios'], TARGETS, result['met'])}; every bad cell reported (hard gate): "
        f"{gate_text(result['gate_passed'])}"
    )
    print_notes(result, warn_noisy=True)

"""B2, validation alone (DESIGN "Performance targets").

The rows of B1's file (bench/batch_data.py, the same seed and planted cells) validated against the
merchant's S stored billing numbers. Three contenders, each in a process of its own
(bench/batch_worker.py), interleaved, each repetition in a rotated order:

- loop: the same rules in a plain per-row Python loop (bench/batch_rules.py: compiled regexes,
  datetime, billing_bo.lib.cards.luhn_valid), the stored keys fetched as a set with one query. On a
  sample of LOOP_SAMPLE rows when smaller than the file; the loop's time is then scaled linearly (the
  key query is not). The rows are read with csv.DictReader before the clock.
- ours: ``batch.pipeline._stored_keys`` (the merchant's keys, one ``string_agg`` query run on this
  connection when validation asks, while its first pass runs) + ``batch.validation.validate`` on the
  frame the reader made (read before the clock), up to every invalid cell with its reason.
- read: ``pandas.read_csv(engine="pyarrow")`` of the file: the floor (cost_vs_read = ours / read,
  reported without a target).

Hard gate: ours reports exactly the planted bad cells in every run.

Knobs (environment): BENCH_SCALE=full (1M rows, 1M stored keys, 5 repetitions); BENCH_B2_ROWS,
BENCH_B2_STORED, BENCH_B2_REPETITIONS, BENCH_B2_LOOP_SAMPLE override the scale's values.
"""

from __future__ import annotations

import os

from . import batch_data
from .common import gate_text, judged, print_notes, ratios, scaled_config, target_texts, verdicts

SCALES = {
    "default": {"rows": 100_000, "stored": 100_000, "repetitions": 3, "loop_sample": 100_000},
    "full": {"rows": 1_000_000, "stored": 1_000_000, "repetitions": 5, "loop_sample": 200_000},
}
CONTENDERS = ("b2_loop", "b2_ours", "b2_read")
NAMES = {"b2_loop": "loop", "b2_ours": "ours", "b2_read": "read"}
RATIOS = {"cost_vs_read": ("ours", "read"), "speedup_vs_loop": ("loop", "ours")}
TARGETS = {"speedup_vs_loop": (">=", 10)}  # cost_vs_read is reported, without a target


def config(scale: str) -> dict:
    values = scaled_config("B2", SCALES, scale)
    values["loop_sample"] = min(values["loop_sample"], values["rows"])
    return values


def main(scale: str) -> dict:
    cfg = config(scale)
    data = batch_data.prepare(cfg["rows"], cfg["stored"], 1000)
    data["loop_sample"] = cfg["loop_sample"]
    runs = {
        NAMES[name]: results for name, results in batch_data.run_all(CONTENDERS, cfg["repetitions"], data, "B2").items()
    }
    sampled = cfg["loop_sample"] < cfg["rows"]
    contenders = {
        name: batch_data.entry(results, cfg["rows"], sampled and name == "loop") for name, results in runs.items()
    }
    contenders["loop"]["measured_time_s"] = [round(result["measured_seconds"], 3) for result in runs["loop"]]
    contenders["loop"]["keys_time_s"] = [round(result["keys_seconds"], 3) for result in runs["loop"]]
    found, paired = ratios({name: [r["seconds"] for r in results] for name, results in runs.items()}, RATIOS)
    every_cell = all(
        result["missed_cells"] == 0
        and result["extra_cells"] == 0
        and result["reported_cells"] == result["planted_cells"]
        for result in runs["ours"]
    )
    loop_agrees = all(result["missed_cells"] == 0 and result["extra_cells"] == 0 for result in runs["loop"])
    notes = [
        f"loop ran {cfg['loop_sample']} rows per repetition and its time is scaled linearly to {cfg['rows']} "
        "(its stored-key query is not scaled)"
        if sampled
        else "loop ran every row",
        "the loop finds the same bad cells as ours" if loop_agrees else "WARNING: the loop's bad cells differ",
        "ours and loop include fetching the merchant's stored billing numbers; neither includes reading the file",
    ]
    result = {
        "id": "B2",
        "name": "validation alone",
        "scale": {"name": scale, **cfg},
        "setup": {"file_mb": data["file_mb"], "cores": os.cpu_count()},
        "contenders": contenders,
        "ratios": found,
        "ratios_per_repetition": paired,
        "targets": {**target_texts(TARGETS), "cost_vs_read": "reported", "every_bad_cell_reported": True},
        "met": {**judged(found, TARGETS), "every_bad_cell_reported": every_cell},
        "gate_passed": every_cell,
        "notes": notes,
    }
    print_report(result)
    return result


def print_report(result: dict) -> None:
    scale = result["scale"]
    batch_data.print_table(
        f"B2 validation alone - scale {scale['name']}: {scale['rows']} registration rows, {scale['stored']} "
        f"stored billing numbers, 1% bad cells per column, {scale['repetitions']} repetitions",
        result["contenders"],
        scale["rows"],
    )
    print(
        f"{verdicts(result['ratios'], TARGETS, result['met'])}; cost_vs_read {result['ratios']['cost_vs_read']:g} "
        f"(reported); every bad cell reported (hard gate): {gate_text(result['gate_passed'])}"
    )
    print_notes(result, warn_noisy=True)

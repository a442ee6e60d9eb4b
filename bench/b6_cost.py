"""B6's rollup cost ("keeping rollups costs <= 5% of charge throughput, reported with its run-to-run
spread"): due rows charged the way a worker charges them (``payments.tasks.charge_chunk`` on CHARGE_CHUNK
ids, CHARGE_THREADS bank calls in flight, the bank at B4's latency), the rollup receiver connected vs
disconnected, in BLOCKS alternating blocks (the order rotated per repetition)."""

from __future__ import annotations

import logging
import statistics
import time
from contextlib import contextmanager

from .common import log, rotated, summary
from .processes import postgres_cpu_s, self_cpu_s

RECEIVER = "reports.rollups.on_transaction_changed"
MODES = ("connected", "disconnected")
# B4's bank (no time-outs: a time-out leaves a row for a later task).
THROUGHPUT_BANK = {"SIMULATED_BANK_LATENCY_MS": 50, "SIMULATED_BANK_LATENCY_P99_MS": 300}
BLOCKS = 10


@contextmanager
def rollup_mode(mode: str):
    """connected: the app as it is; disconnected: the rollup receiver off."""
    from payments.signals import transaction_changed
    from reports import rollups

    if mode == "connected":
        yield
        return
    transaction_changed.disconnect(dispatch_uid=RECEIVER)
    try:
        yield
    finally:
        transaction_changed.connect(rollups.on_transaction_changed, dispatch_uid=RECEIVER)


def charge_block(ids: list[int]) -> None:
    """Charge ``ids`` as a worker does: charge_chunk per CHARGE_CHUNK ids, the bank at B4's latency."""
    from django.conf import settings

    from payments import tasks

    previous = {name: getattr(settings, name) for name in THROUGHPUT_BANK}
    for name, value in THROUGHPUT_BANK.items():
        setattr(settings, name, value)
    try:
        chunk = settings.CHARGE_CHUNK
        for first in range(0, len(ids), chunk):
            tasks.charge_chunk(ids[first : first + chunk], settings.CHARGE_THREADS)
    finally:
        for name, value in previous.items():
            setattr(settings, name, value)


def repetition(open_rows, count: int, rep: int) -> dict[str, dict[str, float]]:
    """SETTLE charges per mode in BLOCKS alternating blocks (rotated per repetition), so drift in the
    machine's load falls on both modes alike. Wall time, and CPU of this process + PostgreSQL."""
    from payments.models import Transaction

    ids = {mode: open_rows(count, Transaction.Status.SCHEDULED, f"cost-{mode}-{rep}") for mode in MODES}
    totals = {mode: {"wall_s": 0.0, "cpu_s": 0.0} for mode in MODES}
    size = -(-count // BLOCKS)
    for first in range(0, count, size):
        for mode in rotated(MODES, rep):
            with rollup_mode(mode):
                pg, cpu, began = postgres_cpu_s(), self_cpu_s(), time.perf_counter()
                charge_block(ids[mode][first : first + size])
                totals[mode]["wall_s"] += time.perf_counter() - began
                cpu = self_cpu_s() - cpu  # before the next /proc scan, which costs CPU of its own
                totals[mode]["cpu_s"] += cpu + postgres_cpu_s() - pg
    return totals


def rollup_cost(open_rows, count: int, repetitions: int) -> dict:
    """The rollup cost over ``repetitions``: median, spread (max - min, percentage points), CPU cost."""
    # The per-charge INFO line of payments.services is silenced (it adds the same cost to both modes,
    # which would make the ratio look smaller).
    logging.getLogger("payments.services").setLevel(logging.WARNING)
    runs = []
    for rep in range(repetitions):
        runs.append(repetition(open_rows, count, rep))
        log(f"B6 cost repetition {rep + 1}: " + ", ".join(f"{m} {runs[-1][m]['wall_s']:.2f} s" for m in MODES))
    wall = [100 * (run["connected"]["wall_s"] / run["disconnected"]["wall_s"] - 1) for run in runs]
    cpu = [100 * (run["connected"]["cpu_s"] / run["disconnected"]["cpu_s"] - 1) for run in runs]
    return {
        "charges_per_mode": count,
        **{mode: {key: summary([run[mode][key] for run in runs]) for key in ("wall_s", "cpu_s")} for mode in MODES},
        "cost_pct_per_repetition": [round(value, 1) for value in wall],
        "cost_pct": round(statistics.median(wall), 1),
        "spread_pct": round(max(wall) - min(wall), 1),
        "cpu_cost_pct": round(statistics.median(cpu), 1),
    }

"""What every benchmark shares: the scale and its knobs, Django on the harness's services, the
interleaved repetitions, median and spread, p95, ratios against targets, a signed-in client, the table
and var/bench/results.json. (Processes and their sampling: bench/processes.py.)"""

from __future__ import annotations

import json
import math
import operator
import os
import shutil
import statistics
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = PROJECT_ROOT / "var" / "bench"
RESULTS = RESULTS_DIR / "results.json"
NOISY = 0.15  # share of the cores busy with other work above which a table warns
HARNESS = ".venv/bin/python -m tests.integration.services .venv/bin/python -m bench.run"


def scale() -> str:
    value = os.environ.get("BENCH_SCALE", "default").strip().lower() or "default"
    if value not in ("default", "full"):
        sys.exit(f"BENCH_SCALE must be 'default' or 'full', not {value!r}")
    return value


def scaled_config(benchmark_id: str, scales: dict[str, dict], scale: str) -> dict:
    """The scale's values, each overridable by ``BENCH_<ID>_<KEY>`` in the environment."""
    values = dict(scales[scale])
    for key in values:
        override = os.environ.get(f"BENCH_{benchmark_id}_{key.upper()}")
        if override:
            values[key] = int(override)
    changed = {key: value for key, value in values.items() if value != scales[scale][key]}
    if changed:
        log(f"{benchmark_id}: scale {scale} overridden by the environment: {changed}")
    return values


def setup_django(migrate: bool = True) -> None:
    """Django on the harness's PostgreSQL and Redis, migrated (``migrate=False`` in a contender's child
    process: the runner migrated, and migrating would set that process's peak memory). Refuses SQLite:
    the figures would be meaningless (and `make bench` runs through the harness)."""
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
    if missing:
        sys.exit(f"bench needs {' and '.join(missing)} (PostgreSQL and Redis): run `make bench` or `{HARNESS}`")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_bo.settings")
    import django

    django.setup()
    from django.core.management import call_command

    if migrate:
        call_command("migrate", "--noinput", verbosity=0)
    from billing_bo.celery import app

    app.set_current()  # shared tasks (payments.tasks) are sent through the project's app


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- Figures ------------------------------------------------------------------------------------------


def summary(values: list[float]) -> dict:
    """Median and spread of repeated measurements."""
    median = statistics.median(values)
    return {
        "median": round(median, 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "spread_pct": round(100 * (max(values) - min(values)) / median, 1) if median else 0.0,
        "runs": [round(value, 3) for value in values],
    }


def write_results(benchmark_id: str, result: dict) -> Path:
    """Merge one benchmark's object into var/bench/results.json (other IDs are kept)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    existing = {}
    if RESULTS.exists():
        with suppress(ValueError):
            existing = json.loads(RESULTS.read_text())
    existing[benchmark_id] = result
    RESULTS.write_text(json.dumps(existing, indent=2, sort_keys=False) + "\n")
    return RESULTS


def fresh_dir(name: str) -> Path:
    """var/bench/<name>, emptied: a benchmark's logs and files of this run only."""
    path = RESULTS_DIR / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def print_notes(result: dict, warn_noisy: bool = False) -> None:
    """A result's notes; with ``warn_noisy``, a warning when another job kept the cores busy during a run."""
    for note in result["notes"]:
        print(f"note: {note}")
    if warn_noisy:
        noisy = max(entry["foreign_load"]["max"] for entry in result["contenders"].values())
        if noisy > NOISY:
            print(f"WARNING: up to {noisy:.0%} of the cores were busy with other work during a run: figures are noisy")


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
        )
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def rotated(names: tuple[str, ...], rep: int) -> tuple[str, ...]:
    """The contenders in the order of repetition ``rep``: rotated by one each time, so none always goes first."""
    shift = rep % len(names)
    return names[shift:] + names[:shift]


def interleaved(names: tuple[str, ...], repetitions: int, run_one: Callable[[str, int], dict], label: str) -> dict:
    """Each repetition runs every contender once (``run_one(name, rep)``), in a rotated order; their results."""
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for rep in range(repetitions):
        for name in rotated(names, rep):
            log(f"{label} repetition {rep + 1}/{repetitions}: {name}")
            runs[name].append(run_one(name, rep))
    return runs


def p95(values: list[float]) -> float:
    """The nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def ratios(seconds: dict[str, list[float]], spec: dict[str, tuple[str, str]]) -> tuple[dict, list[dict]]:
    """Each ratio of ``spec`` (key: (numerator, denominator) contenders) on the median times, and per
    repetition (the runs of one repetition paired)."""
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    overall = {key: round(medians[top] / medians[bottom], 3) for key, (top, bottom) in spec.items()}
    count = min(len(values) for values in seconds.values())
    paired = [
        {key: round(seconds[top][rep] / seconds[bottom][rep], 3) for key, (top, bottom) in spec.items()}
        for rep in range(count)
    ]
    return overall, paired


OPERATORS = {">=": operator.ge, "<=": operator.le, "<": operator.lt, "==": operator.eq}


def judged(values: dict, targets: dict[str, tuple[str, float]]) -> dict[str, bool]:
    """Whether each figure meets its target, e.g. ``{"cost_vs_floor": ("<=", 4)}``."""
    return {key: OPERATORS[op](values[key], limit) for key, (op, limit) in targets.items()}


def target_texts(targets: dict[str, tuple[str, float]]) -> dict[str, str]:
    return {key: f"{op} {limit:g}" for key, (op, limit) in targets.items()}


def verdicts(values: dict, targets: dict[str, tuple[str, float]], met: dict[str, bool]) -> str:
    """One line: each figure, its target and met / NOT met."""
    return "; ".join(
        f"{key} {values[key]:g} (target {op} {limit:g}: {'met' if met[key] else 'NOT met'})"
        for key, (op, limit) in targets.items()
    )


def gate_text(passed: bool) -> str:
    return "passed" if passed else "FAILED"


def signed_in_client(username: str, merchant_id: int):
    """A django.test.Client signed in as the merchant admin ``username`` (made once) with a confirmed TOTP
    device in its session, as after the second factor; and the user."""
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import User
    from accounts.services import create_device

    user = User.objects.filter(username=username).first() or User.objects.create_user(
        username=username,
        password=f"{username}-not-a-real-password",
        email=f"{username}@example.com",
        merchant_id=merchant_id,
        is_merchant_admin=True,
    )
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or create_device(user, confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client, user


def luhn_complete(body: str) -> str:
    """``body`` plus the check digit that makes it pass Luhn (test card numbers)."""
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char) * (2 if position % 2 == 0 else 1)  # doubled once the check digit is appended
        total += digit - 9 if digit > 9 else digit
    return body + str((10 - total % 10) % 10)

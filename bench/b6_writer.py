"""B6's concurrent writer: charges the bench merchant's due scheduled rows one after another through the
real charge path (``payments.services.charge``: claim, the simulated bank without latency,
``record_outcome``, the ``transaction_changed`` receivers, so the rollups move) until told to stop.

    python -m bench.b6_writer <merchant_id> [rate_per_s]     # "stop" on stdin ends it; prints a JSON report

Run by bench/b6.py as a process of its own (its own connection, its own core share), with the bank file
and no-latency settings in the environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.common import PROJECT_ROOT


def main() -> int:
    merchant_id = int(sys.argv[1])
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_bo.settings")
    import django

    django.setup()
    from django.db import connection

    from accounts.models import Merchant
    from payments import services
    from payments.models import Transaction

    merchant = Merchant.objects.get(pk=merchant_id)
    stop = threading.Event()

    def wait_for_stop() -> None:
        sys.stdin.readline()
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    print("ready", flush=True)
    settled = errors = 0
    started = time.perf_counter()
    exhausted = False
    while not stop.is_set():
        ids = list(
            Transaction.objects.filter(
                merchant_id=merchant_id, status=Transaction.Status.SCHEDULED, execute_date=merchant.local_today()
            )
            .order_by("pk")
            .values_list("pk", flat=True)[:500]
        )
        if not ids:
            exhausted = True
            stop.wait()
            break
        for transaction_id in ids:
            if stop.is_set():
                break
            try:
                services.charge(transaction_id)
                settled += 1
            except Exception as error:  # noqa: BLE001 - counted and reported, the run goes on
                errors += 1
                print(f"charge {transaction_id}: {error!r}", file=sys.stderr, flush=True)
            if rate:
                time.sleep(max(0.0, started + settled / rate - time.perf_counter()))
    seconds = time.perf_counter() - started
    connection.close()
    print(json.dumps({"settled": settled, "errors": errors, "seconds": seconds, "exhausted": exhausted}), flush=True)
    return 0


def start(merchant_id: int, rate: float, env: dict, log_path: Path) -> subprocess.Popen:
    """The writer in a process of its own, once it is ready."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.b6_writer", str(merchant_id), str(rate)],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log_path.open("wb"),
        text=True,
        start_new_session=True,
    )
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise RuntimeError(f"writer did not start; see {log_path}")
    return process


def stop(process: subprocess.Popen) -> dict:
    """Tell the writer to stop; its report."""
    process.stdin.write("stop\n")
    process.stdin.flush()
    process.stdin.close()
    report = json.loads(process.stdout.readline() or "{}")
    process.wait(60)
    return report


if __name__ == "__main__":
    sys.exit(main())

"""B4 floor: a bare threaded client. No broker: THREADS threads call ``payments.services.charge`` on the
ids given, each with its own database connection kept for the run; a charge left in doubt (time-out)
is retried at once (same key; ``charge`` resumes it). Run by bench/b4.py, two processes at a time.

    python -m bench.floor THREADS IDS_FILE   # prints "ready", waits for a line on stdin, prints a JSON summary
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time

import django


def main(threads: int, ids_file: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_bo.settings")
    django.setup()
    from django.db import connection

    from payments import services

    with open(ids_file) as handle:
        ids = json.load(handle)
    work: queue.SimpleQueue[int] = queue.SimpleQueue()
    for transaction_id in ids:
        work.put(transaction_id)
    counts = {"charged": 0, "retried": 0, "errors": 0}
    lock = threading.Lock()

    def run() -> None:
        try:
            while True:
                try:
                    transaction_id = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    step = services.charge(transaction_id)
                except Exception as error:  # counted and shown: the bench refuses a run with errors
                    with lock:
                        counts["errors"] += 1
                    print(f"charge {transaction_id}: {error!r}", file=sys.stderr, flush=True)
                    continue
                with lock:
                    if step in (services.Step.RETRY_SAME_KEY, services.Step.RETRY_NEW_ATTEMPT):
                        counts["retried"] += 1
                        work.put(transaction_id)
                    else:
                        counts["charged"] += 1
        finally:
            connection.close()

    print("ready", flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    print(json.dumps({**counts, "seconds": time.perf_counter() - started}), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])

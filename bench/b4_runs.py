"""B4's contenders, one run each (bench/b4.py prepares the rows, verifies and scales): a worker of the naive
baseline app (Celery defaults, or its threads pool), ours on the project's worker with kills and janitor
passes, and the bare threaded client (bench/floor.py). Each returns its time, whether every row settled,
and its processes' load (processes.load_figures)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta

from .common import PROJECT_ROOT
from .processes import ProcessSampler, Worker, load_figures

IDLE_SECONDS = 0.5  # queue empty and no row moved this long: ours gets a janitor pass
MAX_JANITOR_PASSES = 20


def naive_worker(bench, ids: list[int], env: dict, label: str, pool_args: list[str]) -> dict:
    """One bench.naive_charge task per row on a worker of bench/baseline_app.py (Celery's defaults, plus
    ``pool_args``)."""
    from bench.baseline_app import naive_charge

    log_path = bench.workdir / f"{label}.log"
    worker = Worker("bench.baseline_app", f"b4-{label}", env, log_path, ["--loglevel=INFO", *pool_args])
    worker.start()
    try:
        with ProcessSampler(groups=(worker.pgid,)) as sampler:
            started = time.perf_counter()
            for transaction_id in ids:
                naive_charge.delay(transaction_id)
            settled = bench.wait_settled(timeout=max(120.0, len(ids) / 5))
            seconds = time.perf_counter() - started
    finally:
        worker.stop()
    return {"seconds": seconds, "settled": settled, **load_figures(sampler)}


class Kills:
    """Ours' watcher, called at every poll with the rows still open: SIGKILLs the worker at evenly spaced
    progress marks and starts it again; when the queue is empty and nothing moved for IDLE_SECONDS, a
    janitor pass with a ``now`` ahead of the clock (one step further each pass)."""

    def __init__(self, bench, worker: Worker, sampler: ProcessSampler, count: int):
        settings = bench.settings
        self.bench, self.worker, self.sampler = bench, worker, sampler
        kills = bench.cfg["kills"]
        self.marks = [count * (k + 1) / (kills + 1) for k in range(kills)]
        self.count, self.killed, self.restart_s = count, 0, 0.0
        self.step = timedelta(seconds=settings.CHARGE_REQUEUE_SECONDS + settings.CHARGE_STUCK_SECONDS + 60)
        assert self.step * (MAX_JANITOR_PASSES + 1) < timedelta(seconds=settings.CHARGE_GIVE_UP_SECONDS)
        self.last, self.changed, self.started = -1, time.perf_counter(), time.perf_counter()
        self.janitor_at: list[tuple[float, int]] = []

    def __call__(self, left: int) -> None:
        from django.utils import timezone

        from payments import janitor

        moment = time.perf_counter()
        if self.marks and self.count - left >= self.marks[0]:
            self.marks.pop(0)
            self.sampler.sample()
            self.worker.kill()
            self.sampler.groups.discard(self.worker.pgid)
            self.killed += 1
            self.restart_s += self.worker.start()
            self.sampler.groups.add(self.worker.pgid)
            self.last, self.changed = left, time.perf_counter()
        elif left != self.last:
            self.last, self.changed = left, moment
        elif self.bench.redis.llen("celery") == 0 and moment - self.changed >= IDLE_SECONDS:
            if len(self.janitor_at) < MAX_JANITOR_PASSES:
                self.janitor_at.append((round(moment - self.started, 2), left))
                janitor.run(now=timezone.now() + self.step * len(self.janitor_at))
                self.changed = time.perf_counter()


def ours(bench, ids: list[int], env: dict, label: str) -> dict:
    """``enqueue_charges`` to the project's worker (``--concurrency 2``), killed and restarted meanwhile."""
    from payments import services

    log_path = bench.workdir / f"{label}.log"
    worker = Worker("billing_bo", "b4-ours", env, log_path, ["--loglevel=INFO", "--concurrency=2"])
    worker.start()
    try:
        with ProcessSampler(groups=(worker.pgid,)) as sampler:
            kills = Kills(bench, worker, sampler, len(ids))
            started = kills.started = time.perf_counter()
            services.enqueue_charges(ids)  # autocommit: sent at once
            settled = bench.wait_settled(timeout=max(180.0, len(ids) / 20), on_tick=kills)
            seconds = time.perf_counter() - started
    finally:
        worker.stop()
    return {
        "seconds": seconds,
        "settled": settled,
        "kills": kills.killed,
        "restart_seconds": round(kills.restart_s, 3),
        "janitor_passes": len(kills.janitor_at),
        "janitor_at_s_open": kills.janitor_at,
        "timeouts_seen": log_path.read_text(errors="replace").count("charge in doubt: bank timed out"),
        **load_figures(sampler),
    }


def bare_client(bench, ids: list[int], env: dict, label: str) -> dict:
    """2 processes of bench/floor.py, CHARGE_THREADS threads each, on half the ids each."""
    processes = []
    try:
        for part in range(2):
            ids_file = bench.workdir / f"{label}-ids-{part}.json"
            ids_file.write_text(json.dumps(ids[part::2]))
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bench.floor", str(bench.threads), str(ids_file)],
                    cwd=PROJECT_ROOT,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=(bench.workdir / f"{label}-{part}.log").open("wb"),
                    text=True,
                    start_new_session=True,
                )
            )
        for process in processes:
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError(f"bare client did not start; see {bench.workdir}/{label}-*.log")
        with ProcessSampler(groups=tuple(process.pid for process in processes)) as sampler:
            started = time.perf_counter()
            for process in processes:
                process.stdin.write("go\n")
                process.stdin.flush()
                process.stdin.close()
            # Watched as the other contenders are (the polling costs a little database time).
            settled = bench.wait_settled(timeout=max(180.0, len(ids) / 20))
            seconds = time.perf_counter() - started
            for process in processes:
                process.wait(60)
            reports = [json.loads(process.stdout.readline() or "{}") for process in processes]
        if not all(report and report["errors"] == 0 for report in reports):
            raise RuntimeError(f"bare client failed: {reports}; see {bench.workdir}/{label}-*.log")
    finally:
        for process in processes:
            process.wait(30)
    return {
        "seconds": seconds,
        "settled": settled,
        "retried": sum(report["retried"] for report in reports),
        **load_figures(sampler),
    }

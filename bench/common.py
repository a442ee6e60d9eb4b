"""What every benchmark shares: the scale, Django on the harness's services, worker processes, peak
memory sampling, median and spread, and var/bench/results.json."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit

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


# --- Processes ----------------------------------------------------------------------------------------


def _group_processes(pgid: int) -> Iterator[str]:
    """The /proc entries of every process in a process group (Linux)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{entry.name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # field 5 of stat: the process group
                yield entry.name


def _stat(pid: str) -> tuple[int, float]:
    """Resident bytes and CPU seconds (user + system) of one process."""
    with open(f"/proc/{pid}/statm") as handle:
        rss = int(handle.read().split()[1]) * PAGE
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / TICKS  # fields 14, 15: utime, stime


def _system_busy() -> tuple[float, float]:
    """Busy and total CPU seconds of the machine since boot (/proc/stat)."""
    with open("/proc/stat") as handle:
        values = [int(value) for value in handle.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / TICKS, sum(values) / TICKS


def _postmaster_pid() -> int | None:
    """The PostgreSQL server of DATABASE_URL (there may be others on the machine): the postgres process
    whose command line names its port."""
    port = str(urlsplit(os.environ.get("DATABASE_URL", "")).port or "")
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with suppress(OSError):
                with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                    argv = handle.read().decode(errors="replace").split("\0")
                if argv and argv[0].endswith("postgres") and port and port in " ".join(argv).split():
                    return int(entry.name)
    return None


def postgres_cpu_s() -> float:
    """CPU seconds used so far by DATABASE_URL's PostgreSQL server: the postmaster with the backends it
    has reaped (cutime, cstime) plus its live children. The difference of two calls is the server's CPU
    time in between, short-lived backends included. 0 when the server is not a local process."""
    postmaster = _postmaster_pid()
    if postmaster is None:
        return 0.0
    total = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{entry.name}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                pid = int(entry.name)
                if pid == postmaster:
                    total += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
                elif int(fields[1]) == postmaster:
                    total += int(fields[11]) + int(fields[12])
    return total / TICKS


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


class ProcessSampler:
    """Samples the process groups in ``groups`` every ``interval`` s: ``peak_mb`` is the highest summed
    resident memory, ``cpu_s`` their CPU time (the last sample of each process, killed ones included),
    ``machine_busy`` the share of all cores busy (any process) meanwhile, ``postgres_cpu_s`` the
    PostgreSQL server's CPU time meanwhile, ``foreign_share`` the share of all cores busy with anything
    else (not this process, the contender or PostgreSQL)."""

    def __init__(self, groups: tuple[int, ...] = (), interval: float = 0.2):
        self.interval, self.groups, self.peak_mb = interval, set(groups), 0.0
        self._cpu: dict[str, float] = {}
        self._base: dict[str, float] = {}  # CPU the processes alive at the start had used before it
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.machine_busy = 0.0
        self.postgres_cpu_s = 0.0
        self.foreign_share = 0.0

    @property
    def cpu_s(self) -> float:
        return sum(cpu - self._base.get(key, 0.0) for key, cpu in self._cpu.items())

    def __enter__(self) -> ProcessSampler:
        self.sample()
        self._base = dict(self._cpu)
        self._self_start = _self_cpu_s()
        self._busy_start = _system_busy()
        self._postgres_start = postgres_cpu_s()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.sample()
        busy, total = _system_busy()
        self.machine_busy = (busy - self._busy_start[0]) / max(total - self._busy_start[1], 1e-9)
        self.postgres_cpu_s = postgres_cpu_s() - self._postgres_start
        # Whatever else kept the cores busy meanwhile (other jobs on the machine, Redis): a run with a
        # large share is not a clean measurement.
        foreign = (busy - self._busy_start[0]) - self.cpu_s - self.postgres_cpu_s - (_self_cpu_s() - self._self_start)
        self.foreign_share = max(0.0, foreign) / max(total - self._busy_start[1], 1e-9)
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        rss = 0
        for pgid in list(self.groups):
            for pid in _group_processes(pgid):
                with suppress(OSError, IndexError, ValueError):
                    process_rss, cpu = _stat(pid)
                    rss += process_rss
                    self._cpu[f"{pgid}/{pid}"] = cpu
        self.peak_mb = max(self.peak_mb, rss / 2**20)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


class Worker:
    """A `celery -A <app> worker` in a process group of its own (started, SIGKILLed, started again)."""

    def __init__(self, app: str, name: str, env: dict[str, str], log_path: Path, args: list[str]):
        self.app, self.name, self.env, self.log_path, self.args = app, name, env, log_path, args
        self.process: subprocess.Popen | None = None
        self.hostname = ""
        self.starts = 0

    def start(self, timeout: float = 60.0) -> float:
        """Start and wait until it answers a ping; returns the seconds that took."""
        from billing_bo.celery import app as control_app

        began = time.perf_counter()
        self.starts += 1
        self.hostname = f"{self.name}-{os.getpid()}-{self.starts}@localhost"
        argv = [sys.executable, "-m", "celery", "-A", self.app, "worker", f"--hostname={self.hostname}", *self.args]
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                argv,
                cwd=PROJECT_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while not control_app.control.ping(destination=[self.hostname], timeout=0.25):
            if self.process.poll() is not None or time.perf_counter() - began > timeout:
                self.stop()
                raise RuntimeError(f"worker {self.hostname} did not start; see {self.log_path}")
        return time.perf_counter() - began

    @property
    def pgid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the main process and its pool children at once."""
        assert self.process is not None
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(20)
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


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


def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM of /proc/self/status. (Not ru_maxrss: Linux carries
    that over exec from the parent, here the bench runner that started the process.)"""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

"""Processes and what they cost: the contenders' worker processes (start, SIGKILL, stop), and sampling of
their peak memory and CPU, the PostgreSQL server's CPU and the machine's load, from /proc (Linux)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit

from .common import PROJECT_ROOT


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


def self_cpu_s() -> float:
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
        self._self_start = self_cpu_s()
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
        foreign = (busy - self._busy_start[0]) - self.cpu_s - self.postgres_cpu_s - (self_cpu_s() - self._self_start)
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


def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM of /proc/self/status. (Not ru_maxrss: Linux carries
    that over exec from the parent, here the bench runner that started the process.)"""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class SelfSampler(ProcessSampler):
    """ProcessSampler for work running in this process: ``peak_mb`` is this process's peak resident memory
    alone, ``own_cpu_s`` its CPU time meanwhile; the ``groups`` (a helper process) only count as the
    contender's CPU, not as foreign load."""

    def __enter__(self) -> SelfSampler:
        self._own_start = self_cpu_s()
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self.own_cpu_s = self_cpu_s() - self._own_start

    def sample(self) -> None:
        peak = self.peak_mb
        super().sample()  # the groups' CPU; their memory is not this process's
        self.peak_mb = max(peak, rss_mb())


def rss_mb() -> float:
    """This process's resident memory now."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE / 2**20


def load_figures(sampler: ProcessSampler, cpu_s: float | None = None) -> dict:
    """One run's figures from its sampler: peak RSS, CPU (the contender's), PostgreSQL's CPU, the machine."""
    return {
        "peak_rss_mb": sampler.peak_mb,
        "cpu_s": sampler.cpu_s if cpu_s is None else cpu_s,
        "postgres_cpu_s": sampler.postgres_cpu_s,
        "machine_busy": sampler.machine_busy,
        "foreign_share": sampler.foreign_share,
    }


def load_summary(results: list[dict]) -> dict:
    """The load figures of a contender's runs (``load_figures`` each): peak, medians and spreads."""
    from .common import summary

    return {
        "peak_rss_mb": round(max(result["peak_rss_mb"] for result in results), 1),
        "cpu_s": summary([result["cpu_s"] for result in results]),
        "postgres_cpu_s": summary([result["postgres_cpu_s"] for result in results]),
        "machine_busy": summary([result["machine_busy"] for result in results]),
        "foreign_load": summary([result["foreign_share"] for result in results]),
    }


LOAD_HEADER = ["peak RSS MB", "CPU s", "PG CPU s", "busy", "foreign"]


def load_cells(entry: dict) -> list[str]:
    """The table cells of ``load_summary``, under LOAD_HEADER."""
    return [
        f"{entry['peak_rss_mb']:.0f}",
        f"{entry['cpu_s']['median']:.1f}",
        f"{entry['postgres_cpu_s']['median']:.1f}",
        f"{entry['machine_busy']['median']:.0%}",
        f"{entry['foreign_load']['max']:.0%}",
    ]

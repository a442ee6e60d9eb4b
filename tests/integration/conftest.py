"""Integration lane fixtures: checks that the harness is in place, and real Celery workers.

Run the lane through the harness, which starts PostgreSQL and Redis:
    .venv/bin/python -m tests.integration.services .venv/bin/pytest tests/integration

Workers: ``celery_worker_process`` is one worker for the whole session (plain tasks such as ping);
``start_worker`` starts function-scoped workers a test can SIGKILL and start again, sharing a fresh
simulated bank file (``bank_path``) with the test process through the environment.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HARNESS = ".venv/bin/python -m tests.integration.services .venv/bin/pytest tests/integration"
WORKER_START_TIMEOUT = 30.0
# The default queue and kombu's bookkeeping of unacknowledged messages (redis transport).
BROKER_KEYS = ("celery", "unacked", "unacked_index", "unacked_mutex")


def pytest_configure(config: pytest.Config) -> None:
    """Fail the whole lane, never skip it, when it is not running on the harness's PostgreSQL and Redis."""
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
    if missing:
        raise pytest.UsageError(
            f"The integration lane needs {' and '.join(missing)} (a real PostgreSQL and Redis). "
            f"Run it through the harness: `make test-integration` or `{HARNESS}`."
        )
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        raise pytest.UsageError(
            f"The integration lane runs on PostgreSQL, but DATABASE_URL gives {connection.vendor!r}. "
            f"Run it through the harness: `{HARNESS}`."
        )
    if not str(settings.CELERY_BROKER_URL).startswith("redis://"):
        raise pytest.UsageError(f"The integration lane needs the Redis broker (REDIS_URL). Run `{HARNESS}`.")


def database_url(name: str) -> str:
    """The harness's DATABASE_URL pointed at another database on the same server."""
    return urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}"))


def _die_with_parent() -> None:
    """In the worker (before exec): get SIGTERM if pytest dies without tearing down (Linux only)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (AttributeError, OSError):
        pass


def _log_tail(path: Path, lines: int = 60) -> str:
    text = path.read_text(errors="replace") if path.exists() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _stop(worker: subprocess.Popen) -> None:
    """SIGTERM the worker's process group (main process and pool children), then SIGKILL what is left."""
    with suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        worker.wait(15)
    with suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGKILL)  # a stuck main process, or pool children it left behind
    worker.wait()


class CeleryWorker:
    """A real `celery -A billing_bo worker` on the Redis broker and the test database, in a process group
    of its own: ``start()`` (waits until it answers a ping), ``kill()`` (SIGKILL to the main process and
    its pool children at once, as a crashed machine), ``start()`` again, ``stop()`` (SIGTERM, then KILL).

    ``env`` is added to this process's environment (DATABASE_URL is set to ``database``); every start
    gets a new node name, so a ping can only be answered by the process just started.
    """

    _numbers = itertools.count(1)

    def __init__(
        self,
        name: str,
        log_path: Path,
        database: str,
        env: dict[str, str] | None = None,
        concurrency: int = 2,
        loglevel: str = "INFO",
    ):
        self.name, self.log_path, self.concurrency, self.loglevel = name, log_path, concurrency, loglevel
        self.env = {**os.environ, **(env or {}), "DATABASE_URL": database_url(database)}
        self.process: subprocess.Popen | None = None
        self.hostname = ""
        self.starts = 0
        self.kills = 0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> CeleryWorker:
        from billing_bo.celery import app

        assert not self.alive, "stop or kill the worker before starting it again"
        self.hostname = f"{self.name}-{os.getpid()}-{next(self._numbers)}@localhost"
        argv = [sys.executable, "-m", "celery", "-A", "billing_bo", "worker", f"--hostname={self.hostname}"]
        argv += [f"--concurrency={self.concurrency}", "--without-mingle", "--without-gossip"]
        argv += [f"--loglevel={self.loglevel}"]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                argv,
                cwd=PROJECT_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.starts += 1
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while not app.control.ping(destination=[self.hostname], timeout=0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                state = (
                    f"exited with code {self.process.returncode} before answering"
                    if self.process.poll() is not None
                    else f"did not answer within {WORKER_START_TIMEOUT:.0f} s"
                )
                self.stop()
                pytest.fail(
                    f"Celery worker {state}. Log tail ({self.log_path}):\n{_log_tail(self.log_path)}",
                    pytrace=False,
                )
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group: no task finishes, nothing is acknowledged or restored."""
        assert self.process is not None
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


_session_worker: CeleryWorker | None = None


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, tmp_path_factory) -> Iterator[subprocess.Popen]:
    """A real `celery -A billing_bo worker` on the Redis broker and the test database; yields the process."""
    global _session_worker
    from django.conf import settings

    worker = CeleryWorker(
        "integration",
        tmp_path_factory.mktemp("celery") / "worker.log",
        settings.DATABASES["default"]["NAME"],
    )
    try:
        worker.start()
        _session_worker = worker
        yield worker.process
    finally:
        _session_worker = None
        worker.stop()


@pytest.fixture
def broker() -> Iterator:
    """The Redis broker, to itself: the session worker (if one runs) stops consuming the default queue,
    and the queue and kombu's unacked bookkeeping are emptied before and after the test (a SIGKILLed
    worker's messages would otherwise come back after the visibility timeout)."""
    import redis
    from django.conf import settings

    from billing_bo.celery import app

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    paused = _session_worker if _session_worker is not None and _session_worker.alive else None
    if paused is not None:
        app.control.cancel_consumer("celery", destination=[paused.hostname], reply=True, timeout=5)
    client.delete(*BROKER_KEYS)
    try:
        yield client
    finally:
        client.delete(*BROKER_KEYS)
        if paused is not None and paused.alive:
            app.control.add_consumer("celery", destination=[paused.hostname], reply=True, timeout=5)
        client.close()


@pytest.fixture
def bank_path(settings, tmp_path) -> Path:
    """A fresh simulated bank file for this test; the test process uses it without latency or faults
    (workers get their own fault settings through ``start_worker``)."""
    path = tmp_path / "bank.sqlite3"
    settings.SIMULATED_BANK_PATH = str(path)
    settings.SIMULATED_BANK_LATENCY_MS = 0
    settings.SIMULATED_BANK_LATENCY_P99_MS = 0
    settings.SIMULATED_BANK_TIMEOUT_RATE = 0
    settings.SIMULATED_BANK_TRANSIENT_RATE = 0
    return path


@pytest.fixture
def start_worker(transactional_db, broker, bank_path, tmp_path) -> Iterator[Callable[..., CeleryWorker]]:
    """Start a real worker for this test (committed rows only: transactional_db) sharing ``bank_path``.

        worker = start_worker(concurrency=2, SIMULATED_BANK_LATENCY_MS=20)
        worker.kill(); worker.start()

    Keyword arguments other than ``concurrency`` and ``loglevel`` become environment variables of the
    worker (settings such as SIMULATED_BANK_* and CHARGE_* read them). Stopped at teardown, before the
    test database is flushed.
    """
    from django.conf import settings

    workers: list[CeleryWorker] = []
    faults = {
        "SIMULATED_BANK_LATENCY_MS": 0,
        "SIMULATED_BANK_LATENCY_P99_MS": 0,
        "SIMULATED_BANK_TIMEOUT_RATE": 0,
        "SIMULATED_BANK_TRANSIENT_RATE": 0,
    }

    def start(concurrency: int = 2, loglevel: str = "INFO", **env) -> CeleryWorker:
        environment = {name: str(value) for name, value in {**faults, **env}.items()}
        environment["SIMULATED_BANK_PATH"] = str(bank_path)
        worker = CeleryWorker(
            "payments",
            tmp_path / f"worker-{len(workers) + 1}.log",
            settings.DATABASES["default"]["NAME"],
            env=environment,
            concurrency=concurrency,
            loglevel=loglevel,
        )
        workers.append(worker)
        return worker.start()

    try:
        yield start
    finally:
        for worker in workers:
            worker.stop()

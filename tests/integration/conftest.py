"""Integration lane fixtures: checks that the harness is in place, and a real Celery worker.

Run the lane through the harness, which starts PostgreSQL and Redis:
    .venv/bin/python -m tests.integration.services .venv/bin/pytest tests/integration
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HARNESS = ".venv/bin/python -m tests.integration.services .venv/bin/pytest tests/integration"
WORKER_START_TIMEOUT = 30.0


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


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, tmp_path_factory) -> Iterator[subprocess.Popen]:
    """A real `celery -A billing_bo worker` on the Redis broker and the test database; yields the process."""
    from django.conf import settings

    from billing_bo.celery import app

    hostname = f"integration-{os.getpid()}@localhost"
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    env = {**os.environ, "DATABASE_URL": database_url(settings.DATABASES["default"]["NAME"])}
    argv = [sys.executable, "-m", "celery", "-A", "billing_bo", "worker", f"--hostname={hostname}"]
    argv += ["--concurrency=2", "--without-mingle", "--without-gossip", "--loglevel=INFO"]
    with log_path.open("wb") as log_file:
        worker = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    try:
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while not app.control.ping(destination=[hostname], timeout=0.5):
            if worker.poll() is not None or time.monotonic() > deadline:
                state = (
                    f"exited with code {worker.returncode} before answering"
                    if worker.poll() is not None
                    else f"did not answer within {WORKER_START_TIMEOUT:.0f} s"
                )
                pytest.fail(
                    f"Celery worker {state}. Log tail ({log_path}):\n{_log_tail(log_path)}",
                    pytrace=False,
                )
        yield worker
    finally:
        _stop(worker)

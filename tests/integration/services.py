"""Run a command beside a throwaway PostgreSQL and Redis.

    python -m tests.integration.services .venv/bin/pytest tests/integration

Starts PostgreSQL (initdb in a temp folder, 127.0.0.1 on a free port, trust auth, fsync off) and
redis-server (temp folder, free port, no persistence), exports DATABASE_URL and REDIS_URL, runs the
command, then stops both servers and removes their folders whatever happened. Exits with the
command's exit code. A missing server binary is an error that says what to install, never a skip.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

DATABASE = "billing"
START_TIMEOUT = 30.0


class MissingDependency(Exception):
    """A binary or user the lane needs is not on this machine; the message says what to install."""


def log(message: str) -> None:
    print(f"[services] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bindir() -> Path | None:
    """Debian keeps the server binaries out of PATH, in /usr/lib/postgresql/<version>/bin; newest first."""
    versions = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    debian = sorted(versions, key=lambda p: int(p.parent.name), reverse=True)
    on_path = [Path(found).parent for found in [shutil.which("initdb")] if found]
    for bindir in [*debian, *on_path]:
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl", "createdb")):
            return bindir
    return None


def has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def find_servers() -> tuple[Path, str]:
    """PostgreSQL's bin folder and redis-server, checked before anything starts."""
    bindir, redis_server = postgres_bindir(), shutil.which("redis-server")
    missing = []
    if bindir is None or (os.geteuid() == 0 and not has_user("postgres")):
        missing.append("postgresql")
    if redis_server is None:
        missing.append("redis-server")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        missing.append("util-linux")  # runuser: PostgreSQL refuses to run as root
    if bindir is None or redis_server is None or missing:
        raise MissingDependency(
            f"missing {', '.join(missing)}. Install with: apt-get install -y {' '.join(missing)}"
            " (or run `make system-deps` as root)"
        )
    return bindir, redis_server


def as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` system user."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def postgresql(bindir: Path) -> Iterator[str]:
    """A PostgreSQL server with an empty ``billing`` database; yields its URL."""
    tmp = Path(tempfile.mkdtemp(prefix="billing-it-pg-"))
    data, server_log, port = tmp / "data", tmp / "postgres.log", free_port()
    try:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(tmp, owner.pw_uid, owner.pw_gid)
        initdb = [str(bindir / "initdb"), "-D", str(data), *"-U postgres -A trust -E UTF8 --locale=C --no-sync".split()]
        run(as_postgres(initdb))
        # Throwaway data: durability off for speed; the socket goes to tmp, not /var/run/postgresql.
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp} -c fsync=off -c synchronous_commit=off"
        start = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(server_log), "-o", options, "-w", "start"]
        try:
            run(as_postgres(start))
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n{server_log.read_text() if server_log.exists() else ''}") from None
        run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", DATABASE])
        log(f"PostgreSQL {bindir.parent.name} on 127.0.0.1:{port}")
        yield f"postgres://postgres@127.0.0.1:{port}/{DATABASE}"
    finally:
        if (data / "postmaster.pid").exists():  # started, even if not ready: stop it, no shutdown checkpoint
            stop_server = [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
            subprocess.run(as_postgres(stop_server), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def redis(binary: str) -> Iterator[str]:
    """A redis-server without persistence; yields its URL."""
    tmp = Path(tempfile.mkdtemp(prefix="billing-it-redis-"))
    port = free_port()
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(tmp), "--logfile", str(tmp / "log")]
    argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    # Its own session: a Ctrl-C in the terminal must not stop it before the tests have torn down.
    server = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_redis(port, server)
        log(f"Redis on 127.0.0.1:{port}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(server)
        shutil.rmtree(tmp, ignore_errors=True)


def wait_for_redis(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {server.returncode}")
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not answer on port {port} within {START_TIMEOUT:.0f} s")


def run(argv: list[str]) -> None:
    """Run a setup step quietly; on failure show its output."""
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM while starting: unwind through the cleanup like Ctrl-C


def run_command(argv: list[str]) -> int:
    """Run the lane's command. Ctrl-C reaches it from the terminal; SIGTERM is passed on as SIGINT,
    because pytest tears its fixtures (the Celery worker) down on SIGINT but not on SIGTERM."""
    try:
        child = subprocess.Popen(argv)
    except OSError as error:
        log(f"cannot run {argv[0]}: {error}")
        return 127

    def forward(signum: int, frame: object) -> None:
        with suppress(ProcessLookupError):
            child.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, forward)
    try:
        code = child.wait()
    except KeyboardInterrupt:
        log("interrupted: letting the command tear down (Ctrl-C again to kill it)")
        try:
            code = child.wait(30)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            child.kill()
            code = child.wait()
    finally:
        # From here on only the cleanup runs; it is short and must not be cut.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return code if code >= 0 else 128 - code


def main(argv: list[str]) -> int:
    if not argv:
        print(f"usage: python -m tests.integration.services COMMAND [ARG...]\n{__doc__}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, interrupt)
    try:
        postgres_bin, redis_server = find_servers()
        with postgresql(postgres_bin) as database_url, redis(redis_server) as redis_url:
            os.environ["DATABASE_URL"] = database_url
            os.environ["REDIS_URL"] = redis_url
            return run_command(argv)
    except MissingDependency as error:
        log(f"cannot run the integration lane: {error}")
        return 1
    except (RuntimeError, OSError) as error:
        log(f"could not start the services: {error}")
        return 1
    except KeyboardInterrupt:
        log("interrupted while starting the services")
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

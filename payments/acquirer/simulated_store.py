"""The simulated bank's own SQLite file (``settings.SIMULATED_BANK_PATH``), through the standard library's
``sqlite3``, never the Django ORM: the bank lives outside the back office (``simulated``).

Concurrency: Celery prefork workers (several processes) each run threads. Every thread of every process
gets its own connection (``threading.local`` keyed by path and process id, because tests change the path
and a forked child must not reuse its parent's connection). Every read-decide-insert runs inside
``BEGIN IMMEDIATE``, which takes SQLite's single write lock up front, so two callers with the same
idempotency key are serialised and the second one finds the first one's row. WAL mode lets readers run
beside the writer, and a 30 s busy timeout makes writers queue instead of failing.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

BUSY_TIMEOUT_S = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS cards (
    token TEXT PRIMARY KEY,
    masked TEXT NOT NULL,
    expiry TEXT NOT NULL,
    holder_name TEXT NOT NULL,
    issuer TEXT NOT NULL,
    brand TEXT NOT NULL,
    behaviour TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS operations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    token TEXT NOT NULL DEFAULT '',
    parent_reference TEXT NOT NULL DEFAULT '',
    amount INTEGER NOT NULL,
    approved INTEGER NOT NULL,
    response_code TEXT NOT NULL,
    message TEXT NOT NULL,
    approval_code TEXT NOT NULL DEFAULT '',
    reference TEXT NOT NULL UNIQUE,
    issuer TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS operations_parent ON operations (parent_reference);
"""

_local = threading.local()


def connection() -> sqlite3.Connection:
    """This thread's connection to the bank file (opened and the schema created on first use).

    Keyed by (path, pid): tests point the bank at a new file, and a forked Celery child must open
    its own connection rather than use the one it inherited (SQLite forbids carrying one across
    fork). Inherited connections are kept referenced, never closed, so the child cannot disturb the
    parent's locks; this thread's connections to other paths are closed so files do not pile up.
    """
    path = str(settings.SIMULATED_BANK_PATH)
    pid = os.getpid()
    connections: dict[tuple[str, int], sqlite3.Connection] | None = getattr(_local, "connections", None)
    if connections is None:
        connections = _local.connections = {}
    conn = connections.get((path, pid))
    if conn is None:
        for other in [key for key in connections if key[1] == pid]:
            connections.pop(other).close()
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        # isolation_level=None: no implicit transactions, we issue BEGIN IMMEDIATE / COMMIT ourselves.
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode survives a killed process (only an OS crash may lose the last commits).
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(SCHEMA)
        connections[(path, pid)] = conn
    return conn


@contextmanager
def write() -> Iterator[sqlite3.Connection]:
    """A write transaction holding SQLite's write lock from the start, committed on its own."""
    conn = connection()
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise

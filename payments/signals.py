"""How payments announces outcomes without importing its listeners (DESIGN "Layout").

``transaction_changed`` is sent inside the database transaction that changed the row, with
``transaction`` (the row after the change), ``old_status`` and ``batch``. Listeners that must not run on
a rollback (e-mails, callbacks) use ``django.db.transaction.on_commit`` themselves.

``batch`` is None for a change made on its own (a void, a refund, one charge). When many changes are made
in one database transaction (a chunk of charge outcomes, ``services.record_outcomes``), each is sent with
the same ``ChangeBatch``: a receiver may gather its work there and write it once for all of them; the
sender flushes the batch before that transaction ends, so the gathered writes commit or roll back with
the changes.
"""

from __future__ import annotations

from collections.abc import Callable

from django.dispatch import Signal

transaction_changed = Signal()


class ChangeBatch:
    """Work of ``transaction_changed`` receivers gathered over the changes of one database transaction."""

    def __init__(self) -> None:
        self._gathered: dict[str, object] = {}

    def gather(self, key: str, factory: Callable[[], object]):
        """The receiver's accumulator for this batch (``factory()`` the first time), an object with a
        ``flush()`` that ``flush`` calls once."""
        if key not in self._gathered:
            self._gathered[key] = factory()
        return self._gathered[key]

    def flush(self) -> None:
        """Write what the receivers gathered (called by the sender inside the batch's transaction)."""
        gathered, self._gathered = self._gathered, {}
        for accumulator in gathered.values():
            accumulator.flush()

"""How payments announces outcomes without importing its listeners (DESIGN "Layout").

``transaction_changed`` is sent inside the database transaction that changed the row, with
``transaction`` (the row after the change) and ``old_status``: a receiver's writes (the rollups) commit
or roll back with the change. Listeners that must not run on a rollback (e-mails, callbacks) use
``django.db.transaction.on_commit`` themselves.
"""

from __future__ import annotations

from django.dispatch import Signal

transaction_changed = Signal()

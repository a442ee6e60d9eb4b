"""The status changes other apps ask payments for (R5, R10, P6): payments writes them and announces them."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from payments import services
from payments.models import Transaction
from payments.signals import transaction_changed
from tests.payments.conftest import make_transaction

Status = Transaction.Status


@pytest.fixture
def announced():
    seen = []

    def receiver(sender, transaction, old_status, **kwargs):
        seen.append((transaction.pk, old_status, transaction.status))

    transaction_changed.connect(receiver, weak=False, dispatch_uid="test_state_changes")
    yield seen
    transaction_changed.disconnect(dispatch_uid="test_state_changes")


def test_schedule_retry_moves_a_failed_charge_back_to_scheduled_and_announces_it(merchant, announced):
    day = merchant.local_today() + timedelta(days=3)
    failed = make_transaction(merchant, status=Status.FAILED, queued_at=timezone.now())
    assert services.schedule_retry(failed, day) is True
    assert failed.status == Status.FAILED  # the caller's row (a receiver's) still shows the failure
    failed.refresh_from_db()
    assert (failed.status, failed.next_retry_date, failed.queued_at) == (Status.SCHEDULED, day, None)
    assert announced == [(failed.pk, Status.FAILED, Status.SCHEDULED)]


def test_schedule_retry_leaves_a_row_that_is_not_failed(merchant, announced):
    done = make_transaction(merchant, status=Status.SUCCESS)
    assert services.schedule_retry(done, merchant.local_today()) is False
    done.refresh_from_db()
    assert (done.status, done.next_retry_date) == (Status.SUCCESS, None)
    assert announced == []


def test_clear_retry_date_only_on_the_status_the_caller_saw(merchant):
    day = merchant.local_today()
    ended = make_transaction(merchant, status=Status.SUCCESS, next_retry_date=day)
    moved_on = make_transaction(merchant, status=Status.SCHEDULED, next_retry_date=day)
    services.clear_retry_date(ended)
    moved_on.status = Status.FAILED  # as read before another run scheduled it again
    services.clear_retry_date(moved_on)
    ended.refresh_from_db()
    moved_on.refresh_from_db()
    assert (ended.next_retry_date, moved_on.next_retry_date) == (None, day)


def test_cancel_scheduled_cancels_only_what_was_not_sent_to_the_bank(merchant, other_merchant, announced):
    waiting = make_transaction(merchant)
    queued = make_transaction(merchant, queued_at=timezone.now())
    charged = make_transaction(merchant, status=Status.SUCCESS)
    theirs = make_transaction(other_merchant)
    assert services.cancel_scheduled(Transaction.objects.filter(merchant_id=merchant.pk)) == 1
    statuses = dict(Transaction.objects.values_list("pk", "status"))
    assert statuses == {
        waiting.pk: Status.CANCELLED,
        queued.pk: Status.SCHEDULED,
        charged.pk: Status.SUCCESS,
        theirs.pk: Status.SCHEDULED,
    }
    assert announced == [(waiting.pk, Status.SCHEDULED, Status.CANCELLED)]


def _writes_transaction_status(tree: ast.AST) -> bool:
    """``tx.status = ...`` or ``Transaction.objects....update(status=...)`` in a module's syntax tree."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr == "status" and "tx" in ast.unparse(target):
                    return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update":
            if "Transaction" in ast.unparse(node.func.value) and any(k.arg == "status" for k in node.keywords):
                return True
    return False


def test_no_app_but_payments_writes_a_transaction_status():
    """DESIGN "Layout": payments executes the work and owns its states; the others ask it."""
    root = Path(settings.BASE_DIR)
    offenders = [
        str(path.relative_to(root))
        for app in ("accounts", "batch", "recurring", "reports")
        for path in (root / app).rglob("*.py")
        if "migrations" not in path.parts and _writes_transaction_status(ast.parse(path.read_text()))
    ]
    assert offenders == []

"""Phone numbers are kept in one form, so 0812... and +62812... are one number to every search."""

from __future__ import annotations

import pytest

from payments import services
from tests.dates import card_year


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("081234567890", "+6281234567890"),
        ("0812-3456-7890", "+6281234567890"),
        ("6281234567890", "+6281234567890"),
        ("+62 812 3456 7890", "+6281234567890"),
        ("+6281234567890", "+6281234567890"),
        ("+65 9123 4567", "+6591234567"),  # another country's number stays as it is
        ("", ""),
    ],
)
def test_a_card_holders_phone_is_kept_in_one_form_whichever_way_it_is_typed(db, typed, kept):
    card = services.tokenize_card("4111111111111111", 12, card_year(), "123", "Budi Santoso", typed)
    assert card["holder_phone"] == kept


@pytest.mark.django_db(transaction=True)
def test_phones_stored_before_are_moved_to_the_one_form_by_the_migration(merchant):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from payments.models import Transaction
    from recurring.models import Billing
    from tests.recurring.conftest import make_billing

    billing = make_billing(merchant)
    Billing.objects.filter(pk=billing.pk).update(phone="081298765432", holder_phone="6281298765432")
    tx = Transaction.objects.create(
        merchant=merchant,
        invoice_number="INV-P1",
        amount=1000,
        execute_date=merchant.local_today(),
        holder_phone="081298765432",
    )
    other = Transaction.objects.create(
        merchant=merchant,
        invoice_number="INV-P2",
        amount=1000,
        execute_date=merchant.local_today(),
        holder_phone="+6591234567",
    )
    before = [("payments", "0004_billing_number_upper_index"), ("recurring", "0004_billing_number_upper_index")]
    after = [("payments", "0005_phones_in_one_form"), ("recurring", "0005_phones_in_one_form")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    executor.loader.build_graph()
    executor.migrate(after)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())  # the schema the other tests expect

    billing.refresh_from_db()
    assert (billing.phone, billing.holder_phone) == ("+6281298765432", "+6281298765432")
    assert Transaction.objects.get(pk=tx.pk).holder_phone == "+6281298765432"
    assert Transaction.objects.get(pk=other.pk).holder_phone == "+6591234567"

"""R10: a merchant admin sets the retry policy in Setting Account; bad input changes nothing; the next
decline follows the new policy; each change is audited; staff and other merchants cannot touch it."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from accounts.models import AuditEntry
from payments import services as payments
from payments.acquirer import Outcome
from recurring import scheduler
from recurring.models import RetryPolicy
from tests.conftest import verified_client
from tests.recurring.conftest import make_billing

URL = "/account/retry-policy/"
GOOD = {"retry_codes": ["05", "51"], "retry_after_days": "2, 1, 5", "card_update_codes": ["54"], "expiring_days": "45"}
START = date(2026, 11, 30)


def stored(merchant) -> tuple:
    policy = RetryPolicy.for_merchant(merchant)
    return (policy.retry_codes, policy.retry_after_days, policy.card_update_codes, policy.expiring_days)


@pytest.mark.django_db
def test_setting_account_shows_the_default_policy_and_an_admin_saves_a_new_one(alice, merchant):
    client = verified_client(alice)
    page = client.get("/account/").content.decode()
    assert "51 Insufficient funds, 91 Issuer unavailable, on days 1, 3 after the execute date" in page
    assert "14 Invalid card number, 54 Expired card; cards count as expiring 30 days" in page

    response = client.post(URL, GOOD)

    assert response.status_code == 302 and response["Location"] == "/account/"
    assert stored(merchant) == (["05", "51"], [1, 2, 5], ["54"], 45)
    entry = AuditEntry.objects.get(action="recurring.retry_policy.changed")
    assert (entry.actor_username, entry.data["retry_after_days"]) == ("alice", {"before": [1, 3], "after": [1, 2, 5]})
    assert "expiring_days" in entry.data and entry.merchant == merchant


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"retry_codes": ["51", "54"]}, "retry_codes", "Select a valid choice"),
        ({"card_update_codes": ["51"]}, "card_update_codes", "Select a valid choice"),
        ({"retry_after_days": "1, 0"}, "retry_after_days", "from 1 to 30"),
        ({"retry_after_days": "1, 31"}, "retry_after_days", "from 1 to 30"),
        ({"retry_after_days": "1, two"}, "retry_after_days", "whole numbers"),
        ({"retry_after_days": "1,2,3,4,5,6"}, "retry_after_days", "At most 5 retries"),
        ({"retry_after_days": ""}, "retry_after_days", "at least one day"),
        ({"expiring_days": "0"}, "expiring_days", "greater than or equal to 1"),
        ({"expiring_days": "91"}, "expiring_days", "less than or equal to 90"),
    ],
)
def test_a_bad_policy_is_refused_with_its_reason_and_changes_nothing(alice, merchant, change, field, message):
    before = stored(merchant)

    response = verified_client(alice).post(URL, {**GOOD, **change})

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert stored(merchant) == before
    assert not AuditEntry.objects.filter(action="recurring.retry_policy.changed").exists()


@pytest.mark.django_db
def test_no_retry_at_all_is_a_policy_too(alice, merchant):
    verified_client(alice).post(URL, {"retry_after_days": "", "expiring_days": "30"})
    assert stored(merchant) == ([], [], [], 30)
    assert "Charged again after: <strong>never</strong>" in verified_client(alice).get("/account/").content.decode()


@pytest.mark.django_db
def test_staff_cannot_open_or_change_the_policy_and_another_merchants_admin_changes_only_their_own(
    alice, bob, charlie, merchant, other_merchant
):
    assert verified_client(bob).get(URL).status_code == 403
    assert verified_client(bob).post(URL, GOOD).status_code == 403
    assert "Retries and card updates" not in verified_client(bob).get("/account/").content.decode()
    before = stored(merchant)

    verified_client(charlie).post(URL, GOOD)

    assert stored(merchant) == before
    assert stored(other_merchant) == (["05", "51"], [1, 2, 5], ["54"], 45)


@pytest.mark.django_db
def test_the_next_decline_follows_the_saved_policy(alice, merchant):
    """05 Do not honor is not retried by default; once the admin ticks it, a 05 decline gets a retry on the
    policy's first day."""
    verified_client(alice).post(URL, GOOD)
    with time_machine.travel(datetime(2026, 11, 30, 9, tzinfo=ZoneInfo("Asia/Jakarta")), tick=False):
        billing = make_billing(merchant)
        scheduler.run_day(merchant, START)
        tx, _ = payments.claim(billing.transactions.get().pk)
        payments.record_outcome(tx, Outcome(approved=False, response_code="05", message="Do not honor"))
    tx.refresh_from_db()
    assert (tx.status, tx.next_retry_date) == ("scheduled", date(2026, 12, 1))

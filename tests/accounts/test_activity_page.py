"""User Activity (L1-L3) as the admin reads it: JSON, not Python's dict text, and merchant-local times."""

from __future__ import annotations

from datetime import UTC, datetime
from html import unescape

import pytest
import time_machine
from django.urls import reverse

from accounts import audit
from tests.conftest import verified_client

NOON_UTC = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # the clock is frozen here: 12:00 in Asia/Jakarta


@pytest.fixture
def entry(alice):
    with time_machine.travel(NOON_UTC, tick=False):
        return audit.record(
            "accounts.user.locked_out",
            actor=alice.user,
            data={
                "locked_until": datetime(2026, 11, 30, 5, 30, tzinfo=UTC).isoformat(),
                "menu_access": {"before": ["all_report"], "after": ["all_report", "user_activity"]},
                "failures": 5,
            },
        )


def test_the_activity_detail_shows_the_data_as_json_in_merchant_local_time(alice, entry):
    page = unescape(verified_client(alice).get(reverse("accounts:activity_detail", args=[entry.pk])).content.decode())
    assert "2026-11-30 12:00:00 WIB" in page
    assert '"locked_until": "2026-11-30T12:30:00+07:00"' in page
    assert '"menu_access": {\n    "before": [\n      "all_report"\n    ],' in page
    assert "{'before'" not in page and "+00:00" not in page


def test_the_activity_list_shows_the_data_as_json_in_merchant_local_time(alice, entry):
    page = unescape(verified_client(alice).get(reverse("accounts:activity")).content.decode())
    assert "2026-11-30 12:00:00" in page
    assert "locked_until: 2026-11-30T12:30:00+07:00" in page
    assert 'menu_access: {"before": ["all_report"], "after": ["all_report", "user_activity"]}' in page
    assert "{'before'" not in page and "+00:00" not in page

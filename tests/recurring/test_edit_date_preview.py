"""Edit Date (R2, R6): after a failed save the preview shows the submitted schedule's errors, not the
billing's old dates, and every bad Full Date is named."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.urls import reverse

from accounts.models import AuditEntry
from recurring.models import Billing
from tests.conftest import verified_client
from tests.recurring.conftest import make_billing
from tests.recurring.test_views import T0

BAD_DATES = "2026-12-24, 2026-11-20\n2027-02-30, 2026-11-02, 2027-13-01"


@pytest.fixture
def frozen():
    with time_machine.travel(T0, tick=False) as traveller:  # Monday 2026-11-30 in Jakarta
        yield traveller


def preview_box(html: str) -> tuple[list[str], str]:
    dates = re.search(r"<ol class=\"preview-dates\" data-preview-dates>(.*?)</ol>", html, re.S).group(1)
    error = re.search(r"<div class=\"field-error\" data-preview-error>(.*?)</div>", html, re.S).group(1)
    return re.findall(r"<li>(.*?)</li>", dates), error


def test_a_failed_full_date_save_previews_the_submitted_errors_not_the_old_dates(merchant, alice, frozen):
    billing = make_billing(merchant)  # every day
    page = verified_client(alice).get(reverse("recurring:schedule", args=[billing.pk]))
    old_dates, _ = preview_box(page.content.decode())
    assert old_dates[:1] == ["Mon 30 Nov 2026"] and len(old_dates) == 12

    response = verified_client(alice).post(
        reverse("recurring:schedule", args=[billing.pk]), {"kind": "full_date", "dates": BAD_DATES}
    )
    assert response.status_code == 200
    dates, error = preview_box(response.content.decode())
    assert dates == []
    assert "2027-02-30 and 2027-13-01 are not dates: use YYYY-MM-DD." in error
    assert "the first day that can still run: 2026-11-02 and 2026-11-20 are." in error
    assert Billing.objects.get().schedule_kind == "day"
    assert not AuditEntry.objects.filter(action__startswith="recurring.").exists()


def test_the_preview_endpoint_names_each_bad_full_date(merchant, alice, frozen):
    answer = verified_client(alice).get(
        reverse("recurring:preview"), {"kind": "full_date", "dates": BAD_DATES.replace("\n", ",")}
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == (
        "2027-02-30 and 2027-13-01 are not dates: use YYYY-MM-DD. "
        "A Full Date cannot be before 2026-11-30, the first day that can still run: 2026-11-02 and 2026-11-20 are."
    )


def test_a_valid_full_date_list_still_previews_its_dates(merchant, alice, frozen):
    answer = verified_client(alice).get(
        reverse("recurring:preview"), {"kind": "full_date", "dates": "2026-12-24,2027-01-02"}
    )
    assert answer.json()["dates"] == ["2026-12-24", "2027-01-02"]

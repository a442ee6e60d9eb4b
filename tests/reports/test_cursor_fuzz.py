"""Issue #16.7: a page cursor that does not decode to valid values of its sort keys is the first page,
never a 500 (All Report ``after`` / ``before``, Batch Report ``after``). Hand-made cursors with values
out of every key's range, and random ones from Hypothesis."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
from django.db.models import CharField
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from batch.models import Batch, BatchRow
from payments.models import Transaction
from reports.services import SORTS
from tests.conftest import verified_client
from tests.reports.conftest import make_row

OUT_OF_RANGE = [
    str(2**63),
    str(-(2**63) - 1),
    "9" * 40,
    "1e400",
    "-1e-400",
    "NaN",
    "Infinity",
    "10000-01-01",
    "0000-00-00",
    "2026-02-30",
    "a\x00b",
    "x" * 5000,
    "",
]
ALL_SORTS = [f"{sign}{name}" for name in SORTS for sign in ("", "-")]


def raw_cursor(items: list) -> str:
    text = json.dumps(items, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.fixture
def report(merchant, alice, settings):
    settings.REPORTS_PAGE_SIZE = 2
    today = merchant.local_today()
    for amount in (100_000, 200_000, 300_000):
        make_row(merchant, amount=amount, execute_date=today)
    return verified_client(alice)


def invoices(response) -> list[str]:
    return [row["invoice_number"] for row in response.context["page"].rows]


@pytest.mark.parametrize("sort", ALL_SORTS)
def test_all_report_cursors_with_out_of_range_values_give_the_first_page(report, sort):
    first = report.get("/reports/all/", {"sort": sort})
    assert first.status_code == 200
    good = json.loads(base64.urlsafe_b64decode(first.context["page"].next_cursor + "=="))
    for position, key in enumerate(SORTS[sort.lstrip("-")], start=1):
        # any text is a place in a text column's order (a page, maybe empty); other columns have a range
        text_column = isinstance(Transaction._meta.get_field(key), CharField)
        for bad in OUT_OF_RANGE:
            cursor = raw_cursor([*good[:position], bad, *good[position + 1 :]])
            for param in ("after", "before"):
                response = report.get("/reports/all/", {"sort": sort, param: cursor})
                assert response.status_code == 200, (sort, position, bad, param)
                if not text_column or "\x00" in bad:
                    assert invoices(response) == invoices(first), (sort, position, bad, param)


@pytest.fixture
def batch_report(merchant, alice, settings):
    settings.REPORTS_PAGE_SIZE = 2
    upload = Batch.objects.create(merchant=merchant, kind="registration", file_name="a.csv", content_hash="0" * 64)
    for number in (2, 3, 4):
        BatchRow.objects.create(
            merchant=merchant, batch=upload, row_number=number, status="valid", amount=Decimal(1000), data={}
        )
    return verified_client(alice), f"/reports/batches/{upload.pk}/"


def test_batch_report_cursors_with_out_of_range_values_give_the_first_page(batch_report):
    client, url = batch_report
    first = client.get(url)
    for bad in OUT_OF_RANGE:
        for param in ("after", "before"):
            response = client.get(url, {param: raw_cursor(["row", bad])})
            assert response.status_code == 200, (bad, param)
            assert response.context["page"].rows == first.context["page"].rows


JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.lists(st.integers(), max_size=2),
)


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sort=st.sampled_from(ALL_SORTS),
    values=st.lists(JSON_VALUES, max_size=4),
    param=st.sampled_from(["after", "before"]),
    garbage=st.one_of(st.none(), st.text(max_size=40)),
)
def test_random_cursors_never_fail_a_report_page(report, batch_report, sort, values, param, garbage):
    name = sort.lstrip("-")
    cursor = garbage if garbage is not None else raw_cursor([sort if values else name, *values])
    assert report.get("/reports/all/", {"sort": sort, param: cursor}).status_code == 200
    client, url = batch_report
    assert client.get(url, {param: cursor if garbage is not None else raw_cursor(["row", *values])}).status_code == 200

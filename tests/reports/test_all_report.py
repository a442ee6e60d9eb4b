"""All Report (T1, T2, T5): every filter alone and in combinations against hand-counted rows, totals,
bad input, card-number handling, keyset pages, tenancy and menu access."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext

from batch.models import Batch
from payments.models import Transaction
from reports.services import rows as report_rows
from reports.services import with_file_names
from tests.conftest import make_persona, verified_client
from tests.recurring.conftest import make_billing
from tests.reports.conftest import CARD_A, CARD_B, make_row

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Jakarta"))
TODAY = NOW.date()
DAY = timedelta(days=1)
URL = "/reports/all/"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def batch(merchant, kind, file_name):
    return Batch.objects.create(merchant=merchant, kind=kind, file_name=file_name, content_hash=f"{file_name}-{kind}")


@pytest.fixture
def rows(merchant, other_merchant):
    """Alpha's rows A1-A7 and one row of Beta with the same card, invoice, billing number and file name."""
    payments_file = batch(merchant, Batch.Kind.SINGLE_PAYMENT, "payments-nov.csv")
    members_file = batch(merchant, Batch.Kind.REGISTRATION, "members.csv")
    member = make_billing(merchant, billing_number="B-100", batch=members_file)
    recurring = Transaction.Kind.RECURRING
    made = {
        "A1": make_row(
            merchant,
            invoice_number="INV-A1",
            billing_number="B-100",
            amount=150_000,
            pan=CARD_A,
            holder="Budi Santoso",
            phone="+628111",
            execute_date=TODAY,
            response_code="00",
            approval_code="APP001",
            batch=payments_file,
        ),
        "A2": make_row(
            merchant,
            invoice_number="INV-A2",
            billing_number="B-100",
            amount=250_000,
            pan=CARD_B,
            holder="Siti Rahma",
            phone="+628222",
            execute_date=TODAY - DAY,
            status="failed",
            response_code="05",
            kind=recurring,
            billing=member,
        ),
        "A3": make_row(
            merchant,
            invoice_number="INV-A3",
            billing_number="B-200",
            amount=150_000,
            pan=CARD_A,
            holder="budi hartono",
            phone="+628333",
            execute_date=TODAY - 5 * DAY,
            status="voided",
            response_code="00",
            approval_code="APP003",
        ),
        "A4": make_row(
            merchant,
            invoice_number="INV-A4",
            billing_number="B-300",
            amount=1_250_000,
            pan=CARD_B,
            holder="Andi",
            phone="+628111",
            execute_date=TODAY - 20 * DAY,
            status="refunded",
            response_code="00",
            approval_code="APP004",
            kind=recurring,
            refunded_amount=1_250_000,
        ),
        "A5": make_row(
            merchant,
            invoice_number="INV-A5",
            billing_number="B-300",
            amount=99_000,
            pan=CARD_A,
            holder="Andi",
            phone="+628444",
            execute_date=TODAY - 3 * DAY,
            status="failed",
            response_code="91",
            error_code="timeout",
        ),
        "A6": make_row(merchant, invoice_number="INV-A6", amount=150_000, pan=CARD_A, execute_date=TODAY - 60 * DAY),
        "A7": make_row(
            merchant,
            invoice_number="INV-A7",
            amount=150_000,
            pan=CARD_A,
            execute_date=TODAY + 3 * DAY,
            status="scheduled",
        ),
    }
    theirs_file = batch(other_merchant, Batch.Kind.SINGLE_PAYMENT, "payments-nov.csv")
    made["B1"] = make_row(
        other_merchant,
        invoice_number="INV-A1",
        billing_number="B-100",
        amount=150_000,
        pan=CARD_A,
        holder="Budi Santoso",
        phone="+628111",
        execute_date=TODAY,
        response_code="00",
        approval_code="APP001",
        batch=theirs_file,
    )
    return made


def search(client, **params):
    """The result page of ``params`` (a card number in the URL is first moved out of it by a redirect)."""
    response = client.get(URL, {"search": "1", **params}, follow=True)
    assert response.status_code == 200
    return response


def invoices(response) -> list[str]:
    return [row["invoice_number"] for row in response.context["page"].rows]


FILTER_CASES = [
    ({"billing_number": "B-100"}, {"A1", "A2"}),
    ({"billing_number": " B-100 "}, {"A1", "A2"}),
    ({"billing_number": "b-100"}, {"A1", "A2"}),  # ignoring case
    ({"invoice_number": "INV-A3"}, {"A3"}),
    ({"file_name": "payments-nov.csv"}, {"A1"}),
    ({"file_name": "members.csv"}, {"A2"}),  # the charges of the billings that file registered
    ({"file_name": "nothing.csv"}, set()),
    ({"amount": "150000"}, {"A1", "A3"}),
    ({"amount": "Rp 150.000"}, {"A1", "A3"}),
    ({"card_no": CARD_A}, {"A1", "A3", "A5"}),
    ({"card_no": "5555 5555 5555 4444"}, {"A2", "A4"}),
    ({"holder_name": "budi"}, {"A1", "A3"}),
    ({"holder_name": "Santoso"}, set()),  # starts with, not contains
    ({"holder_phone": "+62 811-1"}, {"A1", "A4"}),
    ({"holder_phone": "08111"}, {"A1", "A4"}),  # the national form finds the international one
    ({"holder_phone": "628111"}, {"A1", "A4"}),
    ({"start_date": (TODAY - 5 * DAY).isoformat()}, {"A1", "A2", "A3", "A5"}),
    ({"end_date": (TODAY - 4 * DAY).isoformat()}, {"A3", "A4"}),
    (
        {"start_date": (TODAY - 70 * DAY).isoformat(), "end_date": TODAY.isoformat()},
        {"A1", "A2", "A3", "A4", "A5", "A6"},
    ),
    ({"end_date": (TODAY + 3 * DAY).isoformat()}, {"A1", "A2", "A3", "A4", "A5", "A7"}),
    ({"batch_type": "registration"}, {"A2", "A4"}),
    ({"batch_type": "single_payment"}, {"A1", "A3", "A5"}),
    ({"status": "failed"}, {"A2", "A5"}),
    ({"status": "scheduled"}, set()),  # A7 is due after today: outside the default range
    ({"response_code": "05"}, {"A2"}),
    ({"approval_code": "APP003"}, {"A3"}),
    ({"error_code": "timeout"}, {"A5"}),
    ({}, {"A1", "A2", "A3", "A4", "A5"}),  # no filter: the last 31 days
    # combinations
    ({"card_no": CARD_A, "status": "failed"}, {"A5"}),
    ({"billing_number": "B-300", "batch_type": "registration", "amount": "1.250.000"}, {"A4"}),
    ({"holder_name": "BUDI", "start_date": (TODAY - 2 * DAY).isoformat()}, {"A1"}),
    ({"file_name": "payments-nov.csv", "status": "failed"}, set()),
    ({"billing_number": "B-100", "holder_phone": "+628222", "response_code": "05"}, {"A2"}),
]


def test_each_filter_alone_and_combined_finds_the_hand_counted_rows(rows, alice):
    client = verified_client(alice)
    by_invoice = {row.invoice_number: name for name, row in rows.items() if row.merchant_id == alice.user.merchant_id}
    wrong = []
    for params, expected in FILTER_CASES:
        response = search(client, **params)
        found = {by_invoice[number] for number in invoices(response)}
        totals = response.context["totals"]
        amount = sum(rows[name].amount for name in expected)
        if found != expected or (totals.count, totals.amount) != (len(expected), amount):
            wrong.append((params, sorted(found), (totals.count, totals.amount), sorted(expected)))
    assert not wrong


def test_totals_criteria_and_the_show_search_form_link(rows, alice):
    response = search(verified_client(alice), status="failed", amount="99.000", batch_type="single_payment")
    page = response.content.decode()
    assert response.context["criteria"] == [
        ("Amount", "Rp 99.000"),
        ("Start Date", (TODAY - 30 * DAY).isoformat()),
        ("End Date", TODAY.isoformat()),
        ("Batch Type", "Single Payment"),
        ("Payment Status", "Failed"),
    ]
    assert re.search(r'data-testid="report-total-data">1<', page)
    assert 'data-testid="report-total-amount">Rp 99.000<' in page
    assert "Show Search Form" in page
    assert 'id="search-form"' not in page  # the form is written only when asked for


def test_show_search_form_opens_the_same_result_with_the_form_filled_in_and_counts_no_more(rows, alice, settings):
    settings.REPORTS_PAGE_SIZE = 1
    client = verified_client(alice)
    result = search(client, status="failed", sort="amount")
    link = re.search(r'href="\?([^"]+)"[^>]*data-testid="show-search-form"', result.content.decode()).group(1)
    query = QueryDict(html.unescape(link))
    assert query["form"] == "1" and query["status"] == "failed" and query["sort"] == "amount" and query["totals"]
    assert result.context["totals"].count > 1
    with CaptureQueriesContext(connection) as queries:
        edit = client.get(URL, query)
    page = edit.content.decode()
    assert 'id="search-form"' in page and "Show Search Form" not in page
    form = edit.context["filter"].form
    assert form["status"].value() == "failed"
    assert '<input type="hidden" name="sort" value="amount">' in page
    assert invoices(edit) == invoices(result) and edit.context["totals"] == result.context["totals"]
    assert not any("COUNT(" in q["sql"] for q in queries.captured_queries)  # the totals ride in the link
    assert "form=" not in edit.context["links"]["next"]  # paging on closes the form again


def test_totals_are_one_aggregate_query_and_a_page_is_one_limited_query(rows, alice, settings):
    settings.REPORTS_PAGE_SIZE = 2
    client = verified_client(alice)
    first = search(client)
    after = first.context["page"].next_cursor
    with CaptureQueriesContext(connection) as queries:
        search(client, after=after)
    on_transactions = [q["sql"] for q in queries.captured_queries if '"payments_transaction"' in q["sql"]]
    assert len(on_transactions) == 2
    assert any("COUNT(" in sql and "SUM(" in sql for sql in on_transactions)
    assert not any("OFFSET" in sql for sql in on_transactions)


def test_keyset_pages_walk_every_row_once_in_order_both_ways(rows, alice, settings):
    settings.REPORTS_PAGE_SIZE = 2
    client = verified_client(alice)
    params = {"start_date": (TODAY - 70 * DAY).isoformat()}
    expected = list(
        Transaction.objects.filter(
            merchant=alice.user.merchant, execute_date__gte=TODAY - 70 * DAY, execute_date__lte=TODAY
        )
        .order_by("-execute_date", "-id")
        .values_list("invoice_number", flat=True)
    )
    seen, response, pages = [], search(client, **params), 0
    while True:
        pages += 1
        seen += invoices(response)
        link = response.context["links"].get("next")
        if not link:
            break
        response = client.get(URL + link)
    assert seen == expected and pages == 3

    last = client.get(
        URL + response.context["links"].get("first", "?" + "&".join(f"{k}={v}" for k, v in params.items()))
    )
    last = client.get(URL + last.context["links"]["last"])
    assert invoices(last) == expected[-2:]
    previous = client.get(URL + last.context["links"]["previous"])
    assert invoices(previous) == expected[-4:-2]


@pytest.mark.parametrize("sort", ["amount", "-amount", "invoice_number", "-billing_number", "status"])
def test_every_sort_order_pages_the_same_rows_as_a_plain_order_by(rows, alice, settings, sort):
    settings.REPORTS_PAGE_SIZE = 2
    from reports.services import SORTS

    keys = SORTS[sort.lstrip("-")]
    expected = list(
        Transaction.objects.filter(
            merchant=alice.user.merchant, execute_date__gte=TODAY - 30 * DAY, execute_date__lte=TODAY
        )
        .order_by(*(f"-{k}" if sort.startswith("-") else k for k in keys))
        .values_list("invoice_number", flat=True)
    )
    client = verified_client(alice)
    response, seen = search(client, sort=sort), []
    while True:
        seen += invoices(response)
        if "next" not in response.context["links"]:
            break
        response = client.get(URL + response.context["links"]["next"])
    assert seen == expected


def test_a_cursor_of_another_sort_or_garbage_means_the_first_page(rows, alice, settings):
    settings.REPORTS_PAGE_SIZE = 2
    client = verified_client(alice)
    first = search(client)
    cursor = first.context["page"].next_cursor
    assert invoices(search(client, sort="amount", after=cursor)) == invoices(search(client, sort="amount"))
    assert invoices(search(client, after="not-a-cursor!")) == invoices(first)


def test_a_card_number_is_posted_and_never_shown_or_put_in_a_url(rows, alice):
    client = verified_client(alice)
    response = client.post(URL, {"card_no": "4111 1111 1111 1111", "status": ""})
    assert response.status_code == 302
    assert "4111" not in response.url.replace("411111", "")  # at most the masked first six
    assert "1111111111" not in response.url
    token = parse_qs(urlsplit(response.url).query)["card_no"][0]
    result = client.get(response.url)
    page = result.content.decode()
    assert set(invoices(result)) == {"INV-A1", "INV-A3", "INV-A5"}
    assert "4111111111111111" not in page and "4111 1111 1111 1111" not in page
    assert "411111******1111" in page
    # the form keeps the search: the masked number and its token post back as the same card
    again = client.post(URL, {"card_no": "411111******1111", "card_no_token": token, "status": "failed"})
    assert set(invoices(client.get(again.url))) == {"INV-A5"}


def test_a_hand_made_url_with_a_card_number_is_moved_out_of_the_address_bar(rows, alice):
    response = verified_client(alice).get(URL, {"card_no": CARD_A})
    assert response.status_code == 302 and CARD_A not in response.url


BAD_INPUTS = [
    ({"start_date": TODAY.isoformat(), "end_date": (TODAY - DAY).isoformat()}, "before the Start Date"),
    ({"start_date": (TODAY - 400 * DAY).isoformat(), "end_date": TODAY.isoformat()}, "at most 366 days"),
    ({"amount": "12abc"}, "whole Rupiah amount"),
    ({"amount": "-5"}, "whole Rupiah amount"),
    ({"card_no": "4111111111111112"}, "not a valid card number"),
    ({"card_no": "4111"}, "full card number"),
    ({"card_no": "garbage-token"}, "full card number"),
    ({"status": "paid"}, "Select a valid choice"),
    ({"batch_type": "everything"}, "Select a valid choice"),
    ({"start_date": "2026-13-45"}, "Enter a valid date"),
    ({"invoice_number": "X" * 65}, "at most 64 characters"),
]


def test_bad_input_shows_a_clear_error_and_runs_no_query(rows, alice):
    client = verified_client(alice)
    for params, message in BAD_INPUTS:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(URL, params)
        assert response.status_code == 200, params
        page = response.content.decode()
        assert message in page and "The search was not run" in page, params
        assert "page" not in response.context, params
        assert not [q for q in queries.captured_queries if '"payments_transaction"' in q["sql"]], params
        posted = client.post(URL, params)
        assert posted.status_code == 200 and message in posted.content.decode(), params


def test_a_rejected_card_number_is_not_echoed_back(alice):
    page = verified_client(alice).post(URL, {"card_no": "4111111111111112"}).content.decode()
    assert "4111111111111112" not in page


def test_same_card_at_two_merchants_a_card_search_shows_only_the_own_rows(rows, alice, charlie):
    """TESTING 12: the card and the invoice/billing numbers exist at Beta too."""
    mine = search(verified_client(alice), card_no=verified_card_token(alice))
    theirs = search(verified_client(charlie), card_no=verified_card_token(charlie))
    assert set(invoices(mine)) == {"INV-A1", "INV-A3", "INV-A5"}
    assert invoices(theirs) == ["INV-A1"]
    assert {row["id"] for row in theirs.context["page"].rows} == {rows["B1"].pk}
    assert theirs.context["totals"].count == 1 and theirs.context["totals"].amount == 150_000
    assert search(verified_client(charlie), file_name="members.csv").context["totals"].count == 0


def verified_card_token(persona) -> str:
    response = verified_client(persona).post(URL, {"card_no": CARD_A})
    return parse_qs(urlsplit(response.url).query)["card_no"][0]


def test_the_landing_page_shows_the_form_and_runs_no_search(rows, alice):
    with CaptureQueriesContext(connection) as queries:
        response = verified_client(alice).get(URL)
    assert response.status_code == 200 and "page" not in response.context
    assert not [q for q in queries.captured_queries if '"payments_transaction"' in q["sql"]]
    assert "Card Holder Phone" in response.content.decode()


def test_staff_without_all_report_are_refused_and_bob_with_it_searches(rows, merchant, bob):
    staff = make_persona(merchant, "erin", menus=["batch_report"])
    for path in (URL, URL + "?status=failed", "/reports/all/export/"):
        assert verified_client(staff).get(path).status_code == 403
    assert verified_client(staff).post(URL, {"status": "failed"}).status_code == 403
    assert set(invoices(search(verified_client(bob), status="failed"))) == {"INV-A2", "INV-A5"}


def test_result_rows_show_masked_cards_labels_and_rupiah(rows, alice):
    page = search(verified_client(alice), invoice_number="INV-A4").content.decode()
    assert "555555******4444" in page and "5555555555554444" not in page
    assert "Rp 1.250.000" in page and "Registration" in page and "Refunded" in page


def test_the_csv_file_name_column_names_the_payment_file_or_the_registration_file(rows, alice):
    response = search(verified_client(alice), billing_number="B-100")
    names = {row["invoice_number"]: row["file_name"] for row in response.context["page"].rows}
    assert names == {"INV-A1": "payments-nov.csv", "INV-A2": "members.csv"}


def test_file_names_are_one_statement_per_chunk_and_only_the_merchants_own(rows, merchant, other_merchant):
    theirs = batch(other_merchant, Batch.Kind.SINGLE_PAYMENT, "theirs.csv")
    their_billing = make_billing(other_merchant, billing_number="B-900", batch=theirs)
    ours = {row["invoice_number"]: row for row in report_rows(Transaction.objects.filter(merchant=merchant))}
    found = [
        ours["INV-A1"],
        ours["INV-A2"],
        {**ours["INV-A1"], "id": -1, "batch_id": theirs.pk},  # ids of another merchant, as a forged row would carry
        {**ours["INV-A2"], "id": -2, "batch_id": None, "billing_id": their_billing.pk},
    ]
    with CaptureQueriesContext(connection) as queries:
        named = [row["file_name"] for row in with_file_names(merchant.pk, [dict(row) for row in found])]
    assert named == ["payments-nov.csv", "members.csv", "", ""]
    assert len(queries.captured_queries) == 1
    again = [ours["INV-A1"], ours["INV-A1"], ours["INV-A2"]]
    with CaptureQueriesContext(connection) as queries:
        named = [row["file_name"] for row in with_file_names(merchant.pk, [dict(row) for row in again], chunk=1)]
    assert named == ["payments-nov.csv", "payments-nov.csv", "members.csv"]
    assert len(queries.captured_queries) == 2  # the payment file's name is remembered across chunks


def _link_params(link: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(link).query).items()}


def test_next_pages_show_the_first_pages_totals_without_counting_again(rows, alice, settings):
    settings.REPORTS_PAGE_SIZE = 2
    client = verified_client(alice)
    first = search(client, start_date=(TODAY - 70 * DAY).isoformat())
    totals = first.context["totals"]
    with CaptureQueriesContext(connection) as queries:
        second = client.get(URL + first.context["links"]["next"])
    on_transactions = [q["sql"] for q in queries.captured_queries if '"payments_transaction"' in q["sql"]]
    assert len(on_transactions) == 1 and "COUNT(" not in on_transactions[0]  # the page only
    assert (second.context["totals"].count, second.context["totals"].amount) == (totals.count, totals.amount)
    assert "totals" in _link_params(second.context["links"]["next"])


@pytest.mark.parametrize("change", ["other_search", "tampered", "expired", "other_merchant"])
def test_a_totals_token_of_another_search_merchant_or_too_old_is_counted_again(rows, alice, settings, change):
    settings.REPORTS_PAGE_SIZE = 2
    client = verified_client(alice)
    first = search(client, start_date=(TODAY - 70 * DAY).isoformat())
    params = _link_params(first.context["links"]["next"])
    later = NOW
    if change == "other_search":
        params["status"] = "failed"
        params.pop("after")
    elif change == "tampered":
        params["totals"] = params["totals"].replace(params["totals"][-3:], "abc")
    elif change == "expired":
        settings.REPORTS_TOTALS_MAX_AGE = 60
        later = NOW + timedelta(seconds=61)
    else:
        bob = make_persona(
            Transaction.objects.exclude(merchant=alice.user.merchant).first().merchant, "bob2", admin=True
        )
        client = verified_client(bob)
    expected = Transaction.objects.filter(
        merchant=client.get(URL).wsgi_request.user.merchant,
        execute_date__gte=TODAY - 70 * DAY,
        execute_date__lte=TODAY,
        **({"status": "failed"} if change == "other_search" else {}),
    )
    with time_machine.travel(later, tick=False), CaptureQueriesContext(connection) as queries:
        response = client.get(URL, params)
    assert any("COUNT(" in q["sql"] for q in queries.captured_queries)
    assert response.context["totals"].count == expected.count()


def test_the_table_shows_every_row_of_a_keyset_page(merchant, alice, settings):
    settings.REPORTS_PAGE_SIZE = 30
    for number in range(35):
        make_row(merchant, invoice_number=f"INV-P{number:02d}", execute_date=TODAY - number % 5 * DAY)
    response = search(verified_client(alice))
    page = response.content.decode()
    assert len(response.context["page"].rows) == 30
    assert page.count('data-invoice="INV-P') == 30
    assert "page=2" not in page  # no pager of django-tables2 beside the keyset pager


def test_text_from_a_cardholder_is_escaped_in_the_table(merchant, alice):
    make_row(
        merchant,
        invoice_number="INV-XSS",
        execute_date=TODAY,
        holder='<script>alert("x")</script>',
        description="<b>bold</b>",
    )
    page = search(verified_client(alice)).content.decode()
    assert "<script>alert" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_searches_share_the_form_class_but_not_the_fields_or_their_errors(rows, alice):
    client = verified_client(alice)
    bad = client.get(URL, {"search": "1", "amount": "ten", "status": "nope"})
    good = search(client, status="failed")
    bad_form, good_form = bad.context["filter"].form, good.context["filter"].form
    assert type(bad_form) is type(good_form)
    assert bad_form.fields["amount"] is not good_form.fields["amount"]
    assert set(bad_form.errors) == {"amount", "status"} and not good_form.errors
    assert good_form.cleaned_data["status"] == "failed" and "status" not in bad_form.cleaned_data


@pytest.fixture
def dated_file(merchant):
    """An uploaded file of three single payments: one today, one long ago, one due after today."""
    upload = batch(merchant, Batch.Kind.SINGLE_PAYMENT, "spread.csv")
    for name, day in (("F-TODAY", TODAY), ("F-OLD", TODAY - 60 * DAY), ("F-LATER", TODAY + 40 * DAY)):
        make_row(merchant, invoice_number=name, execute_date=day, batch=upload, status="scheduled")
    return upload


def test_a_file_name_search_covers_the_whole_file_including_rows_due_after_today(dated_file, alice):
    client = verified_client(alice)
    response = search(client, file_name="spread.csv")
    assert sorted(invoices(response)) == ["F-LATER", "F-OLD", "F-TODAY"]
    assert response.context["totals"].count == 3
    criteria = dict(response.context["criteria"])
    assert criteria["CSV File Name"] == "spread.csv" and criteria["Execute Dates"] == "the whole file"
    assert "Start Date" not in criteria and "End Date" not in criteria
    export = client.get("/reports/all/export/", {"file_name": "spread.csv", "format": "csv"})
    body = b"".join(export.streaming_content).decode()
    assert export.status_code == 200 and all(name in body for name in ("F-TODAY", "F-OLD", "F-LATER"))


def test_dates_given_with_a_file_name_narrow_it(dated_file, alice):
    client = verified_client(alice)
    assert invoices(search(client, file_name="spread.csv", start_date=TODAY.isoformat())) == ["F-LATER", "F-TODAY"]
    assert invoices(search(client, file_name="spread.csv", end_date=TODAY.isoformat())) == ["F-TODAY", "F-OLD"]
    bad = client.get(
        URL, {"file_name": "spread.csv", "start_date": TODAY.isoformat(), "end_date": (TODAY - DAY).isoformat()}
    )
    assert "The End Date is before the Start Date." in bad.content.decode() and "page" not in bad.context


def test_the_default_date_window_is_in_the_criteria_and_filled_in_when_the_search_form_is_shown(rows, alice):
    client = verified_client(alice)
    result = search(client, status="failed")
    window = ((TODAY - 30 * DAY).isoformat(), TODAY.isoformat())
    criteria = dict(result.context["criteria"])
    assert (criteria["Start Date"], criteria["End Date"]) == window
    link = re.search(r'href="\?([^"]+)"[^>]*data-testid="show-search-form"', result.content.decode()).group(1)
    form = client.get(URL, QueryDict(html.unescape(link))).context["filter"].form
    assert (form["start_date"].value(), form["end_date"].value()) == window  # there to be changed
    assert "the whole file when a CSV File Name is given" in client.get(URL).content.decode()

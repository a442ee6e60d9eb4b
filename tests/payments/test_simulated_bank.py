"""The simulated bank (PRODUCT P1/P2, DESIGN "The acquirer", TESTING 16-22 at the bank's edge).

Each test gets its own bank file under tmp_path and no faults unless it switches them on.
"""

from __future__ import annotations

import logging
import multiprocessing
import random
import sqlite3
import statistics
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from accounts.models import Merchant
from billing_bo.lib.cards import luhn_valid
from payments.acquirer import get_acquirer
from payments.acquirer.base import AcquirerTimeout, AcquirerUnavailable, CardRejected, Outcome
from payments.acquirer.simulated import SimulatedBank, latency_seconds
from payments.acquirer.simulated_cards import (
    DECLINES,
    MAX_APPROVED_AMOUNT,
    TEST_CARDS,
    TIMEOUT,
    TIMEOUT_AFTER_PROCESSING,
    issuer_for,
)
from tests.dates import next_leap_year

FAR_YEAR = date.today().year + 3


@pytest.fixture(autouse=True)
def bank_file(settings, tmp_path):
    settings.SIMULATED_BANK_PATH = tmp_path / "bank.sqlite3"
    settings.SIMULATED_BANK_LATENCY_MS = 0
    settings.SIMULATED_BANK_LATENCY_P99_MS = 0
    settings.SIMULATED_BANK_TIMEOUT_RATE = 0
    settings.SIMULATED_BANK_TRANSIENT_RATE = 0
    return tmp_path / "bank.sqlite3"


@pytest.fixture
def bank() -> SimulatedBank:
    return SimulatedBank()


def cvv_for(pan: str) -> str:
    return "1234" if pan[:2] in {"34", "37"} else "123"


def tokenize(bank: SimulatedBank, pan: str, month: int = 12, year: int = FAR_YEAR) -> str:
    return bank.tokenize(pan, month, year, cvv_for(pan), "Budi Santoso").token


def approved_sale(bank: SimulatedBank, amount: int = 100_000, key: str = "INV-1#1") -> Outcome:
    outcome = bank.sale(tokenize(bank, "4111111111111111"), amount, key)
    assert outcome.approved
    return outcome


# --- Test cards -------------------------------------------------------------------------------------------

EXPECTED_ISSUERS = {
    "4111111111111111": "BCA",
    "5555555555554444": "Bank Mandiri",
    "4365010000000000": "BNI",
    "5266010000000007": "BRI",
    "4005010000000006": "Citibank",
    "2223010000000006": "Barclays",
    "3568010000000007": "BCA",
    "377701000000008": "BNI",
    "4511010000000052": "CIMB Niaga",
    "5412010000000059": "CIMB Niaga",
    "4700010000000145": "Permata",
    "4622010000000512": "Danamon",
    "5431010000000510": "HSBC",
    "4788010000000546": "OCBC NISP",
    "4844010000000910": "Maybank Indonesia",
    "4899010000000963": "Panin",
    "4147010000000989": "DBS",
    "4266010000000992": "Chase",
}


def test_every_test_card_is_luhn_valid_and_belongs_to_a_listed_issuer():
    assert set(TEST_CARDS) == set(EXPECTED_ISSUERS)
    for pan in TEST_CARDS:
        assert luhn_valid(pan), pan
        assert issuer_for(pan) == EXPECTED_ISSUERS[pan]


ANSWERING_CARDS = [pan for pan, behaviour in TEST_CARDS.items() if behaviour not in {TIMEOUT, TIMEOUT_AFTER_PROCESSING}]


@pytest.mark.parametrize("pan", ANSWERING_CARDS)
def test_sale_answers_as_the_test_card_table_says(bank, pan):
    outcome = bank.sale(tokenize(bank, pan), 250_000, f"key-{pan}")

    code, message = DECLINES.get(TEST_CARDS[pan], ("00", "Approved"))
    assert (outcome.response_code, outcome.message) == (code, message)
    assert outcome.approved is (code == "00")
    assert outcome.issuer == EXPECTED_ISSUERS[pan]
    assert outcome.amount == 250_000
    assert outcome.kind == "sale"
    assert outcome.idempotency_key == f"key-{pan}"
    assert outcome.reference
    assert len(outcome.approval_code) == (6 if outcome.approved else 0)


def test_decline_codes_are_the_documented_ones():
    assert sorted(code for code, _ in DECLINES.values()) == ["05", "14", "51", "54", "91", "96"]


def test_an_unlisted_luhn_valid_card_is_approved_with_an_unknown_issuer(bank):
    card = bank.tokenize("4000 0566 5566 5556", 1, FAR_YEAR, "999", "Siti")
    outcome = bank.sale(card.token, 10_000, "k")

    assert card.issuer == "Unknown issuer"
    assert outcome.approved and outcome.issuer == "Unknown issuer"


def test_approved_sales_get_unique_references_and_six_character_approval_codes(bank):
    token = tokenize(bank, "5555555555554444")
    outcomes = [bank.sale(token, 1_000, f"k{i}") for i in range(20)]

    assert len({o.reference for o in outcomes}) == 20
    assert all(len(o.approval_code) == 6 and o.approval_code.isalnum() for o in outcomes)


# --- Tokenization -----------------------------------------------------------------------------------------


def test_tokenize_normalises_the_number_and_returns_masked_issuer_brand_and_month_end(bank):
    leap = next_leap_year()
    card = bank.tokenize("4111 1111-1111 1111", 2, leap, "123", "Budi Santoso")

    assert card.token.startswith("tok_") and len(card.token) == 28
    assert card.masked == "411111******1111"
    assert (card.issuer, card.brand) == ("BCA", "Visa")
    assert card.expiry == date(leap, 2, 29)


@pytest.mark.parametrize(
    ("pan", "brand"),
    [
        ("5555555555554444", "Mastercard"),
        ("2223010000000006", "Mastercard"),
        ("377701000000008", "American Express"),
        ("3568010000000007", "JCB"),
        ("4365010000000000", "Visa"),
    ],
)
def test_tokenize_tells_the_brand_from_the_leading_digits(bank, pan, brand):
    assert bank.tokenize(pan, 12, FAR_YEAR, cvv_for(pan), "X").brand == brand


def test_tokenizing_the_same_card_twice_gives_two_tokens(bank):
    assert tokenize(bank, "4111111111111111") != tokenize(bank, "4111111111111111")


@pytest.mark.parametrize(
    "pan",
    ["4111111111111112", "411111111111", "41111111111111111113", "4111-1111-abcd-1111", ""],
    ids=["luhn", "too-short", "too-long", "letters", "empty"],
)
def test_tokenize_refuses_an_invalid_card_number_with_14(bank, pan):
    with pytest.raises(CardRejected) as refused:
        bank.tokenize(pan, 12, FAR_YEAR, "123", "X")

    assert (refused.value.response_code, refused.value.message) == ("14", "Invalid card number")
    assert bank.operations() == []


def test_tokenize_refuses_a_card_whose_expiry_month_is_past_with_54(bank):
    today = timezone.localdate()
    last_month = today.replace(day=1) - timedelta(days=1)

    with pytest.raises(CardRejected) as refused:
        bank.tokenize("4111111111111111", last_month.month, last_month.year, "123", "X")

    assert (refused.value.response_code, refused.value.message) == ("54", "Expired card")


def test_tokenize_accepts_a_card_expiring_this_month(bank):
    today = timezone.localdate()
    card = bank.tokenize("4111111111111111", today.month, today.year, "123", "X")

    assert card.expiry.month == today.month and card.expiry >= today


@pytest.mark.parametrize(
    ("pan", "cvv"),
    [("4111111111111111", "12"), ("4111111111111111", "1234"), ("4111111111111111", "12a"), ("377701000000008", "123")],
    ids=["visa-2-digits", "visa-4-digits", "letters", "amex-3-digits"],
)
def test_tokenize_refuses_a_bad_cvv_with_n7(bank, pan, cvv):
    with pytest.raises(CardRejected) as refused:
        bank.tokenize(pan, 12, FAR_YEAR, cvv, "X")

    assert (refused.value.response_code, refused.value.message) == ("N7", "Invalid CVV")


def test_tokenize_accepts_a_four_digit_cvv_for_american_express(bank):
    assert bank.tokenize("377701000000008", 12, FAR_YEAR, "1234", "X").brand == "American Express"


def test_refusals_never_carry_the_card_number(bank):
    with pytest.raises(CardRejected) as refused:
        bank.tokenize("4111111111111111", 12, FAR_YEAR, "1", "X")

    assert "4111111111111111" not in str(refused.value)


# --- Amounts and expiry at sale ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "code", "message"),
    [
        (MAX_APPROVED_AMOUNT, "00", "Approved"),
        (MAX_APPROVED_AMOUNT + 1, "51", "Insufficient funds"),
        (1, "00", "Approved"),
        (0, "13", "Invalid amount"),
        (-5_000, "13", "Invalid amount"),
    ],
)
def test_amount_rules_on_an_approving_card(bank, amount, code, message):
    outcome = bank.sale(tokenize(bank, "4111111111111111"), amount, "k")

    assert (outcome.response_code, outcome.message) == (code, message)


def test_a_sale_on_a_card_that_has_expired_since_tokenization_is_declined_54(bank):
    today = timezone.localdate()
    token = tokenize(bank, "4111111111111111", month=today.month, year=today.year)
    next_month = date(today.year + (today.month == 12), today.month % 12 + 1, 2)

    with time_machine.travel(datetime(next_month.year, next_month.month, 2, 12, tzinfo=UTC), tick=False):
        outcome = bank.sale(token, 10_000, "k")

    assert (outcome.approved, outcome.response_code, outcome.message) == (False, "54", "Expired card")


def test_a_sale_on_an_unknown_token_is_declined_14_and_stored(bank):
    outcome = bank.sale("tok_nope", 10_000, "k")

    assert (outcome.approved, outcome.response_code, outcome.message) == (False, "14", "Unknown card token")
    assert bank.find("k") == outcome


# --- Idempotency ------------------------------------------------------------------------------------------


def test_the_same_key_twice_returns_the_first_outcome_and_charges_once(bank):
    token = tokenize(bank, "4111111111111111")
    first = bank.sale(token, 10_000, "INV-7#1")
    second = bank.sale(token, 10_000, "INV-7#1")

    assert second == first
    assert bank.count_sales_by_key() == {"INV-7#1": 1}
    assert len(bank.operations(idempotency_key="INV-7#1")) == 1


def test_the_same_key_with_another_amount_still_returns_the_first_outcome(bank):
    token = tokenize(bank, "4111111111111111")
    first = bank.sale(token, 10_000, "k")

    assert bank.sale(token, 99_999, "k") == first
    assert bank.find("k").amount == 10_000


def test_a_decline_is_stored_under_its_key_too(bank):
    token = tokenize(bank, "4622010000000512")
    first = bank.sale(token, 10_000, "k")

    assert not first.approved
    assert bank.sale(token, 10_000, "k") == first
    assert len(bank.operations()) == 1


def test_eight_threads_with_the_same_key_make_exactly_one_sale(bank):
    token = tokenize(bank, "4111111111111111")
    barrier = threading.Barrier(8)
    outcomes: list[Outcome] = []

    def charge():
        barrier.wait()
        outcomes.append(SimulatedBank().sale(token, 10_000, "same-key"))

    threads = [threading.Thread(target=charge) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(outcomes) == 8
    assert len({o.reference for o in outcomes}) == 1
    assert bank.count_sales_by_key() == {"same-key": 1}


def _charge_in_child(token: str, keys: list[str], results) -> None:
    bank = SimulatedBank()
    for key in keys:
        results.put(bank.sale(token, 10_000, key).reference)


def test_several_processes_with_the_same_keys_make_one_sale_per_key(bank):
    token = tokenize(bank, "4111111111111111")  # the parent opens a connection before forking
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    keys = [f"k{i}" for i in range(10)]
    children = [context.Process(target=_charge_in_child, args=(token, keys, results)) for _ in range(4)]
    for child in children:
        child.start()
    references = [results.get(timeout=20) for _ in range(40)]
    for child in children:
        child.join(timeout=20)

    assert all(child.exitcode == 0 for child in children)
    assert len(set(references)) == 10
    assert bank.count_sales_by_key() == {key: 1 for key in keys}


def test_find_returns_none_for_a_key_the_bank_never_saw(bank):
    assert bank.find("never-seen") is None


# --- Void and refund --------------------------------------------------------------------------------------


def test_void_approves_once_and_then_refuses(bank):
    sale = approved_sale(bank)

    void = bank.void(sale.reference, "void-1")
    again = bank.void(sale.reference, "void-2")

    assert (void.approved, void.kind, void.amount, void.issuer) == (True, "void", sale.amount, "BCA")
    assert len(void.approval_code) == 6
    assert (again.approved, again.response_code, again.message) == (False, "12", "Transaction already voided")
    assert bank.void(sale.reference, "void-1") == void


@pytest.mark.parametrize("reference", ["declined", "SIM-UNKNOWN"])
def test_void_of_a_declined_or_unknown_sale_is_refused_12(bank, reference):
    declined = bank.sale(tokenize(bank, "4511010000000052"), 10_000, "sale")
    target = declined.reference if reference == "declined" else reference

    outcome = bank.void(target, "void")

    assert (outcome.approved, outcome.response_code, outcome.message) == (False, "12", "Invalid transaction")


def test_partial_refunds_approve_up_to_what_is_left_and_refuse_beyond(bank):
    sale = approved_sale(bank, amount=100_000)

    first = bank.refund(sale.reference, 30_000, "r1")
    over = bank.refund(sale.reference, 70_001, "r2")
    rest = bank.refund(sale.reference, 70_000, "r3")
    more = bank.refund(sale.reference, 1, "r4")

    assert (first.approved, first.kind, first.amount) == (True, "refund", 30_000)
    assert (over.approved, over.response_code, over.message) == (False, "13", "Invalid amount")
    assert rest.approved
    assert (more.approved, more.response_code) == (False, "13")


def test_a_refund_over_the_sale_amount_is_refused_13(bank):
    sale = approved_sale(bank, amount=100_000)

    assert bank.refund(sale.reference, 100_001, "r").response_code == "13"
    assert bank.refund(sale.reference, 0, "r0").response_code == "13"


def test_a_refund_is_idempotent_by_key(bank):
    sale = approved_sale(bank, amount=100_000)

    first = bank.refund(sale.reference, 60_000, "r")
    assert bank.refund(sale.reference, 60_000, "r") == first
    assert bank.refund(sale.reference, 60_000, "r-other").response_code == "13"


def test_void_after_a_refund_is_refused(bank):
    sale = approved_sale(bank)
    bank.refund(sale.reference, 1_000, "r")

    outcome = bank.void(sale.reference, "v")

    assert (outcome.approved, outcome.response_code, outcome.message) == (False, "12", "Transaction already refunded")


def test_refund_after_a_void_is_refused(bank):
    sale = approved_sale(bank)
    bank.void(sale.reference, "v")

    outcome = bank.refund(sale.reference, 1_000, "r")

    assert (outcome.approved, outcome.response_code, outcome.message) == (False, "12", "Transaction already voided")


def test_concurrent_refunds_never_give_back_more_than_the_sale(bank):
    sale = approved_sale(bank, amount=100_000)
    barrier = threading.Barrier(8)
    outcomes: list[Outcome] = []

    def refund(i: int):
        barrier.wait()
        outcomes.append(SimulatedBank().refund(sale.reference, 30_000, f"r{i}"))

    threads = [threading.Thread(target=refund, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(o.amount for o in outcomes if o.approved) == 90_000
    assert sum(o.approved for o in outcomes) == 3


# --- Time-outs, transient errors, latency -----------------------------------------------------------------


def test_the_never_answering_card_times_out_and_records_nothing(bank):
    token = tokenize(bank, "4147010000000989")

    with pytest.raises(AcquirerTimeout):
        bank.sale(token, 10_000, "k")

    assert bank.find("k") is None
    assert bank.operations() == []


def test_the_timeout_after_processing_card_is_later_found_approved(bank):
    token = tokenize(bank, "4266010000000992")

    with pytest.raises(AcquirerTimeout):
        bank.sale(token, 10_000, "k")

    found = bank.find("k")
    assert found is not None and found.approved and found.issuer == "Chase"
    assert bank.sale(token, 10_000, "k") == found  # a retry with the same key gets the stored answer
    assert bank.count_sales_by_key() == {"k": 1}


@pytest.mark.parametrize(("second_draw", "recorded"), [(0.25, False), (0.75, True)], ids=["before", "after"])
def test_injected_timeouts_happen_before_or_after_processing(bank, settings, monkeypatch, second_draw, recorded):
    token = tokenize(bank, "4111111111111111")
    settings.SIMULATED_BANK_TIMEOUT_RATE = 1.0
    monkeypatch.setattr(random, "random", lambda: second_draw)

    with pytest.raises(AcquirerTimeout):
        bank.sale(token, 10_000, "k")

    assert (bank.find("k") is not None) is recorded
    assert len(bank.operations(kind="sale")) == int(recorded)


def test_transient_rate_one_raises_unavailable_and_stores_nothing(bank, settings):
    token = tokenize(bank, "4111111111111111")
    sale = bank.sale(token, 10_000, "sale")
    settings.SIMULATED_BANK_TRANSIENT_RATE = 1.0

    with pytest.raises(AcquirerUnavailable):
        bank.sale(token, 10_000, "k")
    with pytest.raises(AcquirerUnavailable):
        bank.void(sale.reference, "v")
    with pytest.raises(AcquirerUnavailable):
        bank.refund(sale.reference, 1, "r")

    assert bank.find("k") is None  # find and tokenize are never faulted
    assert tokenize(bank, "4111111111111111")
    assert [op["idempotency_key"] for op in bank.operations()] == ["sale"]


def test_fixed_latency_sleeps_about_the_configured_time(bank, settings):
    token = tokenize(bank, "4111111111111111")
    settings.SIMULATED_BANK_LATENCY_MS = 20

    started = time.perf_counter()
    bank.sale(token, 10_000, "k")
    elapsed = time.perf_counter() - started

    assert 0.020 <= elapsed < 1.0


def test_latency_with_a_p99_is_lognormal_with_that_median_and_p99(settings):
    settings.SIMULATED_BANK_LATENCY_MS = 50
    settings.SIMULATED_BANK_LATENCY_P99_MS = 300
    random.seed(1234)

    samples = sorted(latency_seconds() for _ in range(20_000))

    assert statistics.median(samples) == pytest.approx(0.050, rel=0.05)
    assert samples[int(len(samples) * 0.99)] == pytest.approx(0.300, rel=0.15)


def test_latency_is_fixed_when_p99_is_not_above_the_median(settings):
    settings.SIMULATED_BANK_LATENCY_MS = 50
    settings.SIMULATED_BANK_LATENCY_P99_MS = 50

    assert {latency_seconds() for _ in range(10)} == {0.05}


# --- Storage: outside the back office, no card numbers ----------------------------------------------------


def test_the_bank_file_holds_no_full_card_number_and_no_cvv_column(bank, bank_file, caplog):
    caplog.set_level(logging.DEBUG, logger="payments.acquirer.simulated")
    pans = ["4111111111111111", "5555555555554444", "4622010000000512", "377701000000008", "4000056655665556"]
    for i, pan in enumerate(pans):
        token = tokenize(bank, pan)
        sale = bank.sale(token, 10_000 + i, f"k{i}", description=f"careless caller put {pan} here")
        if sale.approved:
            bank.refund(sale.reference, 1_000, f"r{i}")

    raw = b"".join(path.read_bytes() for path in bank_file.parent.iterdir() if path.name.startswith(bank_file.name))
    for pan in pans:
        assert pan.encode() not in raw
        assert pan not in caplog.text
    columns = {
        row[1]
        for table in ("cards", "operations")
        for row in sqlite3.connect(bank_file).execute(f"PRAGMA table_info({table})")
    }
    assert columns and not any("cvv" in column.lower() or "pan" in column.lower() for column in columns)


def test_the_bank_file_is_in_wal_mode(bank, bank_file):
    tokenize(bank, "4111111111111111")

    assert sqlite3.connect(bank_file).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.django_db
def test_a_rolled_back_back_office_transaction_does_not_undo_a_bank_sale(bank):
    token = tokenize(bank, "4111111111111111")

    with pytest.raises(RuntimeError), transaction.atomic():
        Merchant.objects.create(name="Gamma", code="gamma")
        bank.sale(token, 10_000, "k")
        raise RuntimeError("the back office crashes before committing")

    assert not Merchant.objects.filter(code="gamma").exists()
    found = bank.find("k")
    assert found is not None and found.approved
    assert bank.count_sales_by_key() == {"k": 1}


# --- Test-support helpers and wiring ----------------------------------------------------------------------


def test_operations_filter_by_key_and_kind_and_reset_empties_the_bank(bank):
    sale = approved_sale(bank, key="s")
    bank.refund(sale.reference, 1_000, "r")

    assert [op["kind"] for op in bank.operations()] == ["sale", "refund"]
    assert [op["idempotency_key"] for op in bank.operations(kind="refund")] == ["r"]
    assert bank.operations(idempotency_key="s", kind="refund") == []
    assert bank.operations(idempotency_key="s")[0]["parent_reference"] == ""

    bank.reset()

    assert bank.operations() == [] and bank.find("s") is None


def test_changing_the_bank_path_switches_to_another_file(bank, settings, tmp_path):
    approved_sale(bank, key="s")
    settings.SIMULATED_BANK_PATH = tmp_path / "other" / "bank.sqlite3"

    assert bank.find("s") is None
    assert (tmp_path / "other" / "bank.sqlite3").exists()


def test_the_default_acquirer_setting_is_the_simulated_bank():
    assert isinstance(get_acquirer(), SimulatedBank)

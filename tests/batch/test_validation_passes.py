"""Validation's two passes (B2): the plain-row pass never lets through a cell that the cell-by-cell rules
refuse, and every cell keeps the reason the cell-by-cell rules give it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
import pandas as pd

from batch import validation
from tests.batch.conftest import REGISTRATION_ROW

TODAY = date(2026, 11, 30)
VARIANTS = [
    # valid, in forms the plain pass does not all know
    ("card_number", "4111-1111-1111-1111"),
    ("amount", "1.000.000"),
    ("type", "RECURRING"),
    ("schedule_type", "Date"),
    ("schedule_days", "1;15"),
    ("schedule_days", "1|15|"),
    ("schedule_months", "ALL"),
    ("schedule_months", "1, 2"),
    ("email", "A@B.CO"),
    ("phone", "081234567890"),
    ("holder_phone", ""),
    # invalid
    ("card_number", "4111 1111 1111 1112"),
    ("card_number", "=4111111111111111"),
    ("card_number", "4111\t1111 1111 1111"),
    ("expiry", "10/26"),
    ("expiry", "1/28"),
    ("amount", "12,5"),
    ("amount", "5"),
    ("amount", "99999999999999999999"),
    ("amount", "1.00.000"),
    ("customer_name", "+628123"),
    ("customer_name", "@SUM(A1)"),
    ("customer_name", "-SUM(A1)"),
    ("holder_name", "-1"),
    ("customer_id", "-CUST"),
    ("email", "-a@b.co"),
    ("amount", "-5000"),
    ("customer_id", ""),
    ("email", "a@b"),
    ("email", "=a@b.co"),
    ("phone", "+62 812"),
    ("billing_number", "GYM 1"),
    ("billing_number", "STORED-1"),
    ("type", "monthly"),
    ("schedule_type", "weekly"),
    ("schedule_days", "29"),
    ("schedule_days", ""),
    ("schedule_months", "13"),
    ("schedule_months", "jan"),
    ("schedule_weekdays", "mon"),  # a weekday on a date schedule: ignored, valid
    # the first pass reads these by bytes: each must end with the rules' verdict
    ("phone", "++6281234567"),
    ("phone", "+6281234567890123"),
    ("phone", "0812345"),
    ("holder_phone", "0812 3456 789"),
    ("expiry", "1a/28"),
    ("expiry", "13/28"),
    ("expiry", "00/29"),
    ("expiry", "12-28"),
    ("amount", "1.000.0000"),
    ("amount", "0001"),
    ("amount", "1.000,00"),
    ("amount", "１２３４５"),
    ("billing_number", "-GYM"),
    ("billing_number", "GYM_1.2/3-x"),
    ("billing_number", "G" * 65),
    ("billing_number", "GYMé"),
    ("type", "Reminder"),
    ("card_number", "4111 1111 1111 111"),
    ("card_number", "٤١١١١١١١١١١١١١١١"),
    ("schedule_days", "1\x1f15"),  # the separator the schedule pass joins cells with
    # text cells: control characters and the stored field's length (in characters, not bytes)
    ("customer_name", "Andi\x00Wijaya"),
    ("customer_id", "CUST\n501"),
    ("holder_name", "ANDI\u0085"),
    ("email", "a\x7f@b.co"),
    ("customer_id", "C" * 65),
    ("customer_id", "é" * 64),
    ("holder_name", "A" * 121),
    ("email", "a" * 243 + "@example.com"),
]
DAY_VARIANTS = [
    ("schedule_weekdays", "Monday|FRI"),
    ("schedule_weekdays", "7"),
    ("schedule_weekdays", "funday"),
    ("schedule_weekdays", "monkey|sunshine"),
]
FULL_DATE_VARIANTS = [
    ("schedule_dates", "2027-01-15|15/02/2027"),
    ("schedule_dates", "2026-11-29"),
    ("schedule_dates", "2027-02-30"),
    ("schedule_dates", "2027-1-5"),
    ("schedule_dates", ""),
    ("schedule_months", "all"),
]


def frame_of_variants() -> pd.DataFrame:
    rows = []
    for base_changes, variants in (
        ({}, VARIANTS),
        ({"schedule_type": "day", "schedule_days": "", "schedule_weekdays": "mon|fri"}, DAY_VARIANTS),
        (
            {"schedule_type": "full_date", "schedule_days": "", "schedule_months": "", "schedule_dates": "2027-03-01"},
            FULL_DATE_VARIANTS,
        ),
    ):
        for column, value in [(None, None), *variants]:
            row = {**REGISTRATION_ROW, **base_changes, "billing_number": f"GYM-{len(rows)}"}
            if column:
                row[column] = value
            rows.append(row)
    return pd.DataFrame(rows, dtype=str)


def test_the_plain_row_pass_agrees_with_the_cell_by_cell_rules_on_every_cell():
    frame = frame_of_variants()
    limits = {"today": TODAY, "min_amount": Decimal(10_000), "max_amount": Decimal(100_000_000)}
    result = validation.validate(frame, "registration", stored_keys={"STORED-1"}, **limits)
    keys = frame["billing_number"]
    every_rule = validation._validate_cells(
        frame,
        "registration",
        TODAY,
        limits["min_amount"],
        limits["max_amount"],
        np.asarray(keys.duplicated(keep=False)),
        np.asarray(keys.isin(["STORED-1"])),
    )
    assert result.reasons.equals(every_rule.reasons)
    assert result.invalid.tolist() == (every_rule.reasons != "").any(axis=1).tolist()
    invalid = set(frame.index[result.invalid])
    assert invalid and len(invalid) < len(frame)  # both passes had work
    assert result.reasons.loc[0].eq("").all()  # the base row is valid
    amounts = result.amounts.to_numpy()
    assert np.allclose(amounts[~result.invalid.to_numpy()], every_rule.amounts.to_numpy()[~result.invalid.to_numpy()])


def test_a_full_date_that_is_not_on_the_calendar_is_refused_in_either_form():
    rows = []
    for dates in ("2027-02-30", "30/02/2027", "2027-04-31|2027-05-01", "2027-02-28"):
        base = {"schedule_type": "full_date", "schedule_days": "", "schedule_months": "", "schedule_dates": dates}
        rows.append({**REGISTRATION_ROW, **base, "billing_number": f"GYM-{len(rows)}"})
    limits = {"today": TODAY, "min_amount": Decimal(10_000), "max_amount": Decimal(100_000_000)}

    result = validation.validate(pd.DataFrame(rows, dtype=str), "registration", stored_keys=set(), **limits)

    assert result.reasons["schedule_dates"].tolist() == [
        "Not a date: YYYY-MM-DD or DD/MM/YYYY, separated by |.",
        "Not a date: YYYY-MM-DD or DD/MM/YYYY, separated by |.",
        "Not a date: YYYY-MM-DD or DD/MM/YYYY, separated by |.",
        "",
    ]


def test_card_numbers_are_masked_first_six_last_four_and_short_ones_to_their_last_four():
    cells = pd.Series(
        ["4111 1111 1111 1111", "5555-5555-5555-4444", "4111111111111111111", "123456789", "1234", "abc", ""],
        dtype=str,
    )
    assert validation.mask_card_column(cells).tolist() == [
        "411111******1111",
        "555555******4444",
        "411111*********1111",
        "****6789",
        "1234",
        "abc",
        "",
    ]


def test_validation_in_chunks_gives_each_chunk_what_the_whole_file_gives_its_rows():
    frame = pd.concat([frame_of_variants()] * 3, ignore_index=True)
    frame["billing_number"] = [f"GYM-{n}" for n in range(len(frame))]
    frame.loc[[5, 70], "billing_number"] = "TWICE"  # a duplicate across two chunks
    limits = {"today": TODAY, "min_amount": Decimal(10_000), "max_amount": Decimal(100_000_000)}
    whole = validation.validate(frame, "registration", stored_keys={"STORED-1", "GYM-40"}, **limits)

    chunks = list(
        validation.validate_in_chunks(frame, "registration", stored_keys={"STORED-1", "GYM-40"}, rows=17, **limits)
    )

    assert [(start, end) for start, end, _ in chunks] == [
        (n, min(n + 17, len(frame))) for n in range(0, len(frame), 17)
    ]
    reasons = pd.concat([result.reasons for _, _, result in chunks])
    assert reasons.equals(whole.reasons)
    assert "Appears more than once in this file." in set(reasons.loc[[5, 70], "billing_number"])
    assert reasons.loc[40, "billing_number"] == "Registered already."
    amounts = pd.concat([result.amounts for _, _, result in chunks])
    assert amounts.equals(whole.amounts)


def test_validate_takes_the_stored_keys_as_a_future_still_being_fetched():
    from concurrent.futures import Future

    frame = frame_of_variants()
    limits = {"today": TODAY, "min_amount": Decimal(10_000), "max_amount": Decimal(100_000_000)}
    keys: Future = Future()
    keys.set_result(pd.Series(["STORED-1"], dtype=str))

    result = validation.validate(frame, "registration", stored_keys=keys, **limits)

    assert result.reasons.equals(validation.validate(frame, "registration", stored_keys={"STORED-1"}, **limits).reasons)
    assert "Registered already." in set(result.reasons["billing_number"])


def test_validate_fetches_stored_keys_given_as_still_to_fetch_once_on_the_validating_thread():
    import threading

    from batch.pipeline import _OnFirstAsk

    frame = frame_of_variants()
    limits = {"today": TODAY, "min_amount": Decimal(10_000), "max_amount": Decimal(100_000_000)}
    askers = []

    def fetch():
        askers.append(threading.current_thread())
        return pd.Series(["STORED-1"], dtype=str)

    result = validation.validate(frame, "registration", stored_keys=_OnFirstAsk(fetch), **limits)

    assert askers == [threading.current_thread()]
    assert result.reasons.equals(validation.validate(frame, "registration", stored_keys={"STORED-1"}, **limits).reasons)


def test_a_single_payments_billing_number_must_be_one_of_the_billings_given_as_a_set_a_series_or_a_future():
    from concurrent.futures import Future

    from tests.batch.conftest import PAYMENT_ROW

    numbers = ["GYM-1", "GYM-2", "", "NOPE", "GYM-2"]
    frame = pd.DataFrame(
        [{**PAYMENT_ROW, "invoice_number": f"INV-{n}", "billing_number": b} for n, b in enumerate(numbers)]
    )
    limits = {"today": TODAY, "min_amount": Decimal(10_000), "max_amount": Decimal(100_000_000), "stored_keys": set()}
    fetched: Future = Future()
    fetched.set_result(pd.Series(["GYM-2", "GYM-1"], dtype=str))

    for billings in ({"GYM-1", "GYM-2"}, pd.Series(["GYM-1", "GYM-2", "OTHER"], dtype=str), fetched):
        result = validation.validate(frame.astype(str), "single_payment", billings=billings, **limits)
        assert result.invalid.tolist() == [False, False, False, True, False]
        assert result.errors == {3: {"billing_number": validation.UNKNOWN_BILLING}}
    assert validation.validate(frame.astype(str), "single_payment", **limits).invalid.tolist() == [
        True,
        True,
        False,
        True,
        True,
    ]  # no billings given: the merchant has none


def test_card_digits_drop_spaces_and_dashes_and_any_other_whitespace_between_digits():
    plain = pd.Series(["4111 1111-1111 1111", "5555555555554444", ""], dtype="string[pyarrow]")
    assert validation.card_digits(plain).tolist() == ["4111111111111111", "5555555555554444", ""]
    tabbed = pd.Series(["4111\t1111\n1111\r1111", "4111 1111 1111 1111"], dtype="string[pyarrow]")
    assert validation.card_digits(tabbed).tolist() == ["4111111111111111"] * 2


def test_a_pan_in_free_text_is_masked_and_text_with_scattered_digits_is_kept():
    cells = pd.Series(
        ["PAN 4111111111111111 INSIDE", "1 2 3 4 5 6 7 8 9 10 11 12 13 14", "Andi", ""], dtype="string[pyarrow]"
    )
    assert validation.mask_pans_in_column(cells).tolist() == [
        "PAN 411111******1111 INSIDE",
        "1 2 3 4 5 6 7 8 9 10 11 12 13 14",
        "Andi",
        "",
    ]


def test_cells_are_stripped_of_ascii_and_unicode_whitespace_and_empty_rows_are_dropped():
    from batch.reader import _stripped_rows

    frame = pd.DataFrame(
        {
            "a": ["x", "\u00a0y\u00a0", "", "\tz "],
            "b": ["1", "2", "  ", "Café"],
            "c": ["plain", "plain", "", "plain"],
        },
        dtype="string[pyarrow]",
    )
    assert _stripped_rows(frame).to_dict("list") == {
        "a": ["x", "y", "z"],
        "b": ["1", "2", "Café"],
        "c": ["plain", "plain", "plain"],
    }


def test_the_plain_pass_reads_the_schedule_type_in_any_letter_case():
    cells = pd.Series(["date", "DATE", "Day", "full_DATE", "dates", "", "dAté", "day "], dtype="string[pyarrow]")

    found = validation._equal_ignoring_case(cells, ("date", "day", "full_date"))

    assert found["date"].tolist() == [True, True, False, False, False, False, False, False]
    assert found["day"].tolist() == [False, False, True, False, False, False, False, False]
    assert found["full_date"].tolist() == [False, False, False, True, False, False, False, False]


def test_a_worker_process_validates_a_few_rows_of_each_kind_when_it_starts():
    from celery.signals import worker_process_init

    from billing_bo.celery import warm_batch_validation

    assert warm_batch_validation in [receiver() for _, receiver in worker_process_init.receivers]
    registration, single_payment = validation.warm_up()

    assert registration.invalid.tolist() == [False, True, True]  # the second example row is "stored"
    assert registration.errors[1] == {"billing_number": "Registered already."}
    assert len(registration.errors[2]) >= 12  # a bad cell in (almost) every column: every rule ran
    assert single_payment.invalid.tolist() == [False, True, True]
    assert single_payment.errors[2]["execute_date"] == "This date is in the past."


def test_keys_repeated_in_the_file_and_keys_stored_are_found_in_one_hash_pass():
    keys = pd.Series(["GYM-1", "GYM-2", "GYM-1", "", "Café-3", "GYM-4", "", "ST-9"], dtype="string[pyarrow]")
    for stored in (
        pd.Series(["ST-9", "Café-3", "OTHER", "GYM-1"], dtype="string[pyarrow]"),
        pd.Series([], dtype=str),
        pd.Series(["ST-9"], dtype=str),
    ):
        duplicated, used = validation._repeated_and_stored(keys, stored)

        assert duplicated.tolist() == keys.duplicated(keep=False).tolist()
        assert used.tolist() == keys.isin(stored).tolist()


def test_many_keys_are_numbered_by_parts_with_the_verdicts_of_one_memo_table(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(7)
    keys = pd.Series(
        [f"GYM-{n}" for n in rng.integers(0, 3000, 4000)] + ["", "Café", "x", "", "Café"], dtype="string[pyarrow]"
    )
    stored = pd.Series([f"GYM-{n}" for n in rng.integers(0, 6000, 3000)] + ["Café", ""], dtype="string[pyarrow]")
    monkeypatch.setattr(validation, "PARTS_FROM", 0)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for shared in (None, pool):
            duplicated, used = validation._repeated_and_stored(keys, stored, shared)

            assert duplicated.tolist() == keys.duplicated(keep=False).tolist()
            assert used.tolist() == keys.isin(stored).tolist()

    frame = frame_of_variants()
    limits = {"today": TODAY, "min_amount": Decimal(10_000), "max_amount": Decimal(100_000_000)}
    by_parts = validation.validate(frame, "registration", stored_keys={"STORED-1"}, **limits)
    monkeypatch.setattr(validation, "PARTS_FROM", 10**12)
    assert by_parts.reasons.equals(
        validation.validate(frame, "registration", stored_keys={"STORED-1"}, **limits).reasons
    )


def test_bytes_are_counted_per_cell_in_short_cells_and_in_cells_longer_than_255_bytes():
    short = pd.Series(["", "12a", "x" * 250 + "1", "99", "", "1"], dtype="string[pyarrow]")
    long = pd.Series(["", "12a", "x" * 300 + "1" * 260, "99", "", "1"], dtype="string[pyarrow]")

    assert validation._bytes_in(short, b"0123456789").tolist() == [0, 2, 1, 2, 0, 1]
    assert validation._bytes_in(long, b"0123456789").tolist() == [0, 2, 260, 2, 0, 1]
    assert validation._bytes_in(long, b"x").tolist() == [0, 0, 300, 0, 0, 0]

"""Validation (B2) through ``validate()``: every rule gives each bad cell its reason, the valid cells none; card
masking, PANs in free text, stripping, and the worker's warm-up."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from batch import validation
from billing_bo.lib.cards import luhn_valid
from tests.batch.conftest import REGISTRATION_ROW

TODAY = date(2026, 11, 30)
VARIANTS = [
    # valid, in forms other than the templates'
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
    # near misses of each format
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


# Row position in ``frame_of_variants()`` -> its reasons (every other row is valid).
EXPECTED_ERRORS = {
    12: {"card_number": "This card number fails the check digit (Luhn): a typo?"},
    13: {"card_number": "Formulas are not accepted: remove the leading = + - @ or tab."},
    15: {"expiry": "This card has expired."},
    16: {"expiry": "Not an expiry date: MM/YY."},
    17: {"amount": "Not a whole Rupiah amount: 250000 or 250.000."},
    18: {"amount": "Must be between Rp 10.000 and Rp 100.000.000."},
    19: {"amount": "Must be between Rp 10.000 and Rp 100.000.000."},
    20: {"amount": "Not a whole Rupiah amount: 250000 or 250.000."},
    21: {"customer_name": "Formulas are not accepted: remove the leading = + - @ or tab."},
    22: {"customer_name": "Formulas are not accepted: remove the leading = + - @ or tab."},
    23: {"customer_name": "Formulas are not accepted: remove the leading = + - @ or tab."},
    24: {"holder_name": "Formulas are not accepted: remove the leading = + - @ or tab."},
    25: {"customer_id": "Formulas are not accepted: remove the leading = + - @ or tab."},
    26: {"email": "Formulas are not accepted: remove the leading = + - @ or tab."},
    27: {"amount": "Not a whole Rupiah amount: 250000 or 250.000."},
    28: {"customer_id": "Required."},
    29: {"email": "Not an email address."},
    30: {"email": "Formulas are not accepted: remove the leading = + - @ or tab."},
    31: {"phone": "Not a mobile number: 8 to 15 digits, optional +."},
    32: {"billing_number": "Use letters, digits, - _ . / (at most 64)."},
    33: {"billing_number": "Registered already."},
    34: {"type": "Use recurring or reminder."},
    35: {"schedule_type": "Use date, day or full_date."},
    36: {"schedule_days": "Execute days must be 1 to 28: 29 is not."},
    37: {"schedule_days": "Choose at least one execute day."},
    38: {"schedule_months": "Months must be 1 to 12: 13 is not."},
    39: {"schedule_months": "Not a list of numbers or names separated by |."},
    41: {"phone": "Not a mobile number: 8 to 15 digits, optional +."},
    42: {"phone": "At most 16 characters."},
    43: {"phone": "Not a mobile number: 8 to 15 digits, optional +."},
    44: {"holder_phone": "Not a mobile number: 8 to 15 digits, optional +."},
    45: {"expiry": "Not an expiry date: MM/YY."},
    46: {"expiry": "Not an expiry date: MM/YY."},
    47: {"expiry": "Not an expiry date: MM/YY."},
    48: {"expiry": "Not an expiry date: MM/YY."},
    49: {"amount": "Not a whole Rupiah amount: 250000 or 250.000."},
    50: {"amount": "Must be between Rp 10.000 and Rp 100.000.000."},
    51: {"amount": "Not a whole Rupiah amount: 250000 or 250.000."},
    52: {"amount": "Not a whole Rupiah amount: 250000 or 250.000."},
    53: {"billing_number": "Formulas are not accepted: remove the leading = + - @ or tab."},
    55: {"billing_number": "At most 64 characters."},
    56: {"billing_number": "Use letters, digits, - _ . / (at most 64)."},
    58: {"card_number": "This card number fails the check digit (Luhn): a typo?"},
    59: {"card_number": "Not a card number: 13 to 19 digits."},
    61: {"customer_name": "Holds a control character (such as NUL, tab or a line break): remove it."},
    62: {"customer_id": "Holds a control character (such as NUL, tab or a line break): remove it."},
    63: {"holder_name": "Holds a control character (such as NUL, tab or a line break): remove it."},
    64: {"email": "Holds a control character (such as NUL, tab or a line break): remove it."},
    65: {"customer_id": "At most 64 characters."},
    67: {"holder_name": "At most 120 characters."},
    68: {"email": "At most 254 characters."},
    71: {"schedule_weekdays": "Weekdays must be 0 (Monday) to 6 (Sunday): 7 is not."},
    72: {"schedule_weekdays": "Not a list of numbers or names separated by |."},
    73: {"schedule_weekdays": "Not a list of numbers or names separated by |."},
    76: {"schedule_dates": "A Full Date cannot be before 2026-11-30, the first day that can still run: 2026-11-29 is."},
    77: {"schedule_dates": "Not a date: YYYY-MM-DD or DD/MM/YYYY, separated by |."},
    79: {"schedule_dates": "Choose at least one date."},
}


def test_every_variant_gets_its_reason_and_only_its_cell_is_invalid():
    frame = frame_of_variants()
    limits = {"today": TODAY, "min_amount": Decimal(10_000), "max_amount": Decimal(100_000_000)}

    result = validation.validate(frame, "registration", stored_keys={"STORED-1"}, **limits)

    assert result.errors == EXPECTED_ERRORS
    assert result.invalid.tolist() == [position in EXPECTED_ERRORS for position in range(len(frame))]
    assert result.reasons.loc[0].eq("").all()  # the base row is valid
    amounts = result.amounts
    assert amounts.iloc[0] == 250_000 and amounts.iloc[2] == 1_000_000  # 250.000, 1.000.000
    assert amounts.iloc[18] == 5 and amounts.iloc[50] == 1  # read, though out of the limits
    assert amounts.iloc[[17, 19, 20, 27]].isna().all()  # not an amount, or longer than an amount column holds
    assert result.total_amount == sum(amounts.dropna().tolist())


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


def test_a_single_payments_billing_number_must_be_one_of_the_billings_given_as_a_set_or_a_series():
    from tests.batch.conftest import PAYMENT_ROW

    numbers = ["GYM-1", "GYM-2", "", "NOPE", "GYM-2"]
    frame = pd.DataFrame(
        [{**PAYMENT_ROW, "invoice_number": f"INV-{n}", "billing_number": b} for n, b in enumerate(numbers)]
    )
    limits = {"today": TODAY, "min_amount": Decimal(10_000), "max_amount": Decimal(100_000_000), "stored_keys": set()}

    for billings in ({"GYM-1", "GYM-2"}, pd.Series(["GYM-1", "GYM-2", "OTHER"], dtype=str)):
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


def test_keys_repeated_in_the_file_and_keys_stored_are_reported_given_as_a_set_or_a_series():
    keys = ["GYM-1", "GYM-2", "GYM-1", "", "Café-3", "GYM-4", "", "ST-9"]
    frame = pd.DataFrame([{**REGISTRATION_ROW, "billing_number": key} for key in keys], dtype=str)
    limits = {"today": TODAY, "min_amount": Decimal(10_000), "max_amount": Decimal(100_000_000)}
    reference = "Use letters, digits, - _ . / (at most 64)."
    for stored in ({"ST-9", "GYM-1"}, pd.Series(["ST-9", "OTHER", "GYM-1"], dtype="string[pyarrow]")):
        result = validation.validate(frame, "registration", stored_keys=stored, **limits)

        assert result.reasons["billing_number"].tolist() == [
            "Appears more than once in this file.",
            "",
            "Appears more than once in this file.",
            "Required.",
            reference,
            "",
            "Required.",
            "Registered already.",
        ]
    assert validation.validate(frame, "registration", stored_keys=set(), **limits).reasons["billing_number"][7] == ""


def test_the_schedule_type_is_read_in_any_letter_case():
    types = ["date", "DATE", "Date", "dAtE", "dates", "date "]
    frame = pd.DataFrame(
        [{**REGISTRATION_ROW, "billing_number": f"GYM-{n}", "schedule_type": kind} for n, kind in enumerate(types)],
        dtype=str,
    )
    limits = {"today": TODAY, "min_amount": Decimal(10_000), "max_amount": Decimal(100_000_000)}

    result = validation.validate(frame, "registration", stored_keys=set(), **limits)

    assert result.invalid.tolist() == [False, False, False, False, True, False]  # the reader strips cells


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
    from batch.reader import stripped_rows

    frame = pd.DataFrame(
        {
            "a": ["x", "\u00a0y\u00a0", "", "\tz "],
            "b": ["1", "2", "  ", "Café"],
            "c": ["plain", "plain", "", "plain"],
        },
        dtype="string[pyarrow]",
    )
    assert stripped_rows(frame).to_dict("list") == {
        "a": ["x", "y", "z"],
        "b": ["1", "2", "Café"],
        "c": ["plain", "plain", "plain"],
    }


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


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="0123456789", min_size=13, max_size=19), min_size=1, max_size=40))
def test_a_card_number_is_refused_by_its_check_digit_exactly_when_luhn_fails(numbers):
    """The column-wide check digit agrees with the one-card rule the hosted page uses, card by card."""
    frame = pd.DataFrame([REGISTRATION_ROW] * len(numbers), dtype=str)
    frame["card_number"] = numbers
    frame["billing_number"] = [f"BN-{i}" for i in range(len(numbers))]
    limits = {"today": TODAY, "min_amount": Decimal(1), "max_amount": Decimal(10**9)}

    reasons = validation.validate(frame, "registration", stored_keys=set(), **limits).reasons["card_number"]

    assert [("check digit" in reason) for reason in reasons] == [not luhn_valid(number) for number in numbers]

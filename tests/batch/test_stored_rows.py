"""A validated file's rows as BatchRow stores them (B1): the cells read back as they were (quotes,
backslashes, control characters and all), with their errors, status and amount."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pandas as pd
import pyarrow as pa
from django.db import transaction

from batch import rows, validation
from batch.models import Batch, BatchRow
from tests.batch.conftest import REGISTRATION_ROW

CELLS = ["plain", 'say "hi"', "back\\slash", '\\"both\\"', '=HYPERLINK("http://x","y")', "Café ☕ \\N", "tab\there", ""]


def test_stored_rows_read_back_cell_for_cell_with_their_errors_status_and_amount(merchant):
    batch = Batch.objects.create(merchant=merchant, kind="registration", file_name="a.csv", content_hash="a")
    frame = pd.DataFrame(
        [{**REGISTRATION_ROW, "billing_number": f"GYM-{n}", "customer_name": cell} for n, cell in enumerate(CELLS)],
        dtype=str,
    )
    frame.loc[7, "amount"] = "12,5"
    limits = {"today": date(2026, 11, 30), "min_amount": Decimal(10_000), "max_amount": Decimal(10**9)}
    result = validation.validate(frame, "registration", stored_keys=set(), **limits)

    with transaction.atomic():
        rows.store(rows.stored_rows(batch, rows.text_table(frame), result, "billing_number", 0, 5))
        rows.store(rows.stored_rows(batch, rows.text_table(frame), result, "billing_number", 5, len(frame)))

    stored = {row.row_number: row for row in BatchRow.objects.filter(batch=batch)}
    assert sorted(stored) == list(range(2, 2 + len(CELLS)))
    for position, row in frame.iterrows():
        kept = stored[position + 2]
        assert kept.data == row.to_dict()
        assert kept.errors == result.errors.get(position, {})
        assert kept.status == ("invalid" if result.invalid[position] else "valid")
        assert kept.reference == row["billing_number"] and kept.outcome == ""
    assert stored[2].amount == Decimal(250_000) and stored[9].amount is None
    assert set(stored[8].errors) == {"customer_name"}  # the tab
    assert set(stored[9].errors) == {"customer_name", "amount"}


def test_each_rows_cells_are_written_as_the_json_module_writes_them(merchant):
    import json

    batch = Batch(pk=1, merchant=merchant, kind="registration")
    frame = pd.DataFrame(
        [{**REGISTRATION_ROW, "customer_name": cell, "email": "\\" + cell} for cell in [*CELLS, "nul\x00", "☕\u2028"]],
        dtype=str,
    )
    limits = {"today": date(2026, 11, 30), "min_amount": Decimal(10_000), "max_amount": Decimal(10**9)}
    result = validation.validate(frame, "registration", stored_keys=set(), **limits)

    data = (
        rows.stored_rows(batch, rows.text_table(frame), result, "billing_number", 0, len(frame))
        .column("data")
        .to_pylist()
    )

    expected = [json.dumps(["registration", *row], ensure_ascii=False, separators=(",", ":")) for row in frame.values]
    assert data == expected


def test_amounts_reach_the_copy_as_whole_numbers(merchant):
    """Money stays an integer from validation to the COPY: 1689000, not a float's 1689000.0."""
    batch = Batch(pk=1, merchant=merchant, kind="registration")
    amounts = ["1.689.000", "99999999999999", "12,5"]  # the largest amount a money field holds; not an amount
    frame = pd.DataFrame([{**REGISTRATION_ROW, "amount": amount} for amount in amounts], dtype=str)
    limits = {"today": date(2026, 11, 30), "min_amount": Decimal(10_000), "max_amount": Decimal(10**14 - 1)}
    result = validation.validate(frame, "registration", stored_keys=set(), **limits)

    stored = rows.stored_rows(batch, rows.text_table(frame), result, "billing_number", 0, len(frame))

    assert stored.column("amount").type == pa.int64()
    assert stored.column("amount").to_pylist() == [1_689_000, 99_999_999_999_999, None]
    copied = [line.split("\t") for line in rows.copy_text(stored).to_pybytes().decode().splitlines()]
    assert [line[rows.COLUMNS.index("amount")] for line in copied] == ["1689000", "99999999999999", "\\N"]
    assert result.total_amount == Decimal(1_689_000 + 99_999_999_999_999)


def test_the_copy_text_escapes_what_the_text_format_reads_as_syntax(merchant):
    """A backslash, tab, line feed or carriage return in a text field is escaped; JSON's quotes are not."""
    batch = Batch(pk=1, merchant=merchant, kind="registration")
    frame = pd.DataFrame([{**REGISTRATION_ROW, "billing_number": 'A\\b\tc\nd\re"f'}], dtype=str)
    limits = {"today": date(2026, 11, 30), "min_amount": Decimal(10_000), "max_amount": Decimal(10**9)}
    result = validation.validate(frame, "registration", stored_keys=set(), **limits)

    text = (
        rows.copy_text(rows.stored_rows(batch, rows.text_table(frame), result, "billing_number", 0, 1))
        .to_pybytes()
        .decode()
    )

    assert text.endswith("\n") and text.count("\n") == 1 and "\r" not in text
    fields = text[:-1].split("\t")
    assert len(fields) == len(rows.COLUMNS)
    assert fields[rows.COLUMNS.index("reference")] == 'A\\\\b\\tc\\nd\\re"f'
    assert fields[rows.COLUMNS.index("data")].startswith('["registration","A\\\\\\\\b\\\\tc')

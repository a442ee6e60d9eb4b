"""The COPY text of stored batch rows (B1) built by column with Arrow: a cell with a double quote or a
backslash is escaped by Arrow exactly as the json module and COPY's text format would escape it; only a
row with a control character goes through the json module."""

from __future__ import annotations

import json

import pyarrow as pa

from batch.pipeline import _copy_text, _escaped_cells

CELLS = ["plain", 'say "hi"', "back\\slash", '\\"both\\"', '=HYPERLINK("http://x","y")', "Café ☕ \\N", "tab\there", ""]


def test_quotes_and_backslashes_are_escaped_by_arrow_as_json_and_copy_would_and_control_characters_flag_the_row():
    (escaped,), control = _escaped_cells([pa.array(CELLS, pa.large_string())])

    expected = [_copy_text(json.dumps(cell, ensure_ascii=False)[1:-1]) for cell in CELLS]
    for cell, got, want, flagged in zip(CELLS, escaped.to_pylist(), expected, control.tolist(), strict=True):
        assert flagged == ("\t" in cell)
        if not flagged:
            assert got == want, cell


def test_a_column_without_special_characters_is_kept_as_it_is():
    column = pa.array(["a", "b c", "d-1"], pa.large_string())
    (escaped,), control = _escaped_cells([column])

    assert escaped is column and not control.any()

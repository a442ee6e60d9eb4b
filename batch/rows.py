"""A validated file's rows as BatchRow stores them (B1): card numbers masked, each row's cells and errors.

``stored_rows`` gives a part of the file as an Arrow table of BatchRow's columns, in the text the fields
write (``RowCells``: the JSON array ``[kind, cell, ...]``; ``JSONText``: the errors' JSON object), built
by column with Arrow's string functions. ``store`` writes such a table in the caller's transaction: with
one ``COPY`` in PostgreSQL's text format (``copy_text``), elsewhere (SQLite) with one ``INSERT`` per row
through ``executemany``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.db import connection

from .models import Batch, BatchRow
from .validation import Result

COLUMNS = ("merchant_id", "batch_id", "row_number", "data", "errors", "status", "amount", "reference", "outcome")
# The characters the json module escapes in a string (ensure_ascii off): a quote, a backslash, C0 controls.
JSON_ESCAPED = r'["\\\x00-\x1f]'
# COPY's text format: in a text field, these characters are written escaped by a backslash.
COPY_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
COPY_NULL = "\\N"


# As RowCells and JSONText write a value: compact, non-ASCII kept (one encoder, not one per row).
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _join(*texts, separator: str = "") -> pa.Array:
    """Per row, ``texts`` (arrays, or a str for every row) joined by ``separator``."""
    return pc.binary_join_element_wise(*texts, separator)


def text_table(frame: pd.DataFrame) -> pa.RecordBatch:
    """A frame of text cells as Arrow strings, each column one array (``stored_rows`` slices it without
    copying)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    columns = [column.combine_chunks().cast(pa.string()) for column in table.columns]
    return pa.RecordBatch.from_arrays(columns, names=table.column_names)


def _row_cells(kind: str, part: pa.RecordBatch) -> pa.Array:
    """Per row, ``[kind, cell, ...]`` as RowCells writes it: each cell in quotes, between commas. A row
    with a character that json escapes (a quote, a backslash, a control character) in any cell is
    written by the json module itself."""
    cells = part.columns
    written = _join(f'[{_json(kind)},"', _join(*cells, separator='","'), '"]')
    escaped = pc.match_substring_regex(_join(*cells), JSON_ESCAPED)
    if pc.any(escaped).as_py():
        encoded = [_json([kind, *row.values()]) for row in part.filter(escaped).to_pylist()]
        written = pc.replace_with_mask(written, escaped, pa.array(encoded, pa.string()))
    return written


def _row_errors(result: Result, start: int, end: int) -> pa.Array:
    """Per row, ``{column: reason, ...}`` of its invalid cells as JSONText writes it ("{}" for a valid row)."""
    pairs = []
    for column, codes in result.codes.items():
        # Per reason code: '"column":"reason",' ("" for code 0, a valid cell)
        texts = ["", *(f"{_json(column)}:{_json(message)}," for message in result.messages[1:])]
        pairs.append(pc.take(pa.array(texts, pa.string()), codes[start:end]))
    return _join("{", pc.utf8_rtrim(_join(*pairs), ","), "}")  # each pair ends '",': only its comma goes


def stored_rows(batch: Batch, shown: pa.RecordBatch, result: Result, key: str, start: int, end: int) -> pa.Table:
    """Rows ``start`` ... ``end`` of the file (``shown``: cards masked, a ``text_table``) with their
    validation ``result``, as BatchRow's columns."""
    part = shown.slice(start, end - start)
    invalid = pa.array(result.invalid.to_numpy()[start:end])
    count = end - start
    return pa.table(
        {
            "merchant_id": pa.repeat(batch.merchant_id, count),
            "batch_id": pa.repeat(batch.pk, count),
            "row_number": pa.array(np.arange(start + 2, end + 2)),  # the header is line 1
            "data": _row_cells(batch.kind, part),
            "errors": _row_errors(result, start, end),
            "status": pc.if_else(invalid, BatchRow.Status.INVALID.value, BatchRow.Status.VALID.value),
            "amount": pa.array(result.amounts.iloc[start:end].array),  # whole Rupiah as integers, null kept
            "reference": pc.replace_substring(pc.utf8_slice_codeunits(part.column(key), 0, 64), "\x00", ""),
            "outcome": pa.repeat("", count),
        }
    )


def store(rows: pa.Table) -> None:
    """Insert ``rows`` (``stored_rows``) into BatchRow's table, in the caller's transaction."""
    table = BatchRow._meta.db_table
    names = ", ".join(COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.copy_expert(f"COPY {table} ({names}) FROM STDIN", pa.BufferReader(copy_text(rows)))
        else:
            values = zip(*(rows.column(name).to_pylist() for name in COLUMNS), strict=True)
            placeholders = ", ".join(["%s"] * len(COLUMNS))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", list(values))


def copy_text(rows: pa.Table) -> pa.Buffer:
    """``rows`` in COPY's text format: a line per row, a tab between fields, \\N for a missing amount, and
    in a text field a backslash, tab, line feed or carriage return escaped by a backslash. The JSON fields
    hold no raw tab or line break (json escapes control characters) and no quote is doubled, as CSV
    would: fewer bytes to send and parse."""
    fields = []
    for name in COLUMNS:
        column = rows.column(name)
        if name in ("data", "errors"):  # JSON text: only its backslashes (a tab or line break is escaped)
            column = pc.replace_substring(column, "\\", "\\\\")
        elif pa.types.is_string(column.type):
            for raw, escaped in COPY_ESCAPES:
                column = pc.replace_substring(column, raw, escaped)
        else:
            column = pc.cast(column, pa.string()).fill_null(COPY_NULL)
        fields.append(column)
    lines = _join(_join(*fields, separator="\t"), "\n").combine_chunks()
    # All the lines as one string: binary_join over a single list that holds them.
    return pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines), "")[0].as_buffer()

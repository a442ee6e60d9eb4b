"""A validated file's rows as BatchRow stores them (B1): card numbers masked, each row's cells and errors.

``stored_rows`` gives a part of the file as a frame of BatchRow's columns, in the text the fields write
(``RowCells``: the JSON array ``[kind, cell, ...]``; ``JSONText``: the errors' JSON object), built by
column with Arrow's string functions. ``store`` writes such a frame in the caller's transaction: with one
``COPY`` of the frame as CSV on PostgreSQL, elsewhere (SQLite) with one ``INSERT`` per row through
``executemany``.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.db import connection
from pyarrow.csv import WriteOptions, write_csv

from .models import Batch, BatchRow
from .validation import Result

COLUMNS = ("merchant_id", "batch_id", "row_number", "data", "errors", "status", "amount", "reference", "outcome")
# The characters the json module escapes in a string (ensure_ascii off): a quote, a backslash, C0 controls.
JSON_ESCAPED = r'["\\\x00-\x1f]'


# As RowCells and JSONText write a value: compact, non-ASCII kept (one encoder, not one per row).
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _join(*texts, separator: str = "") -> pa.Array:
    """Per row, ``texts`` (arrays, or a str for every row) joined by ``separator``."""
    return pc.binary_join_element_wise(*texts, separator)


def _arrow(column: pd.Series) -> pa.Array:
    """A text column as one Arrow array of strings."""
    values = pa.array(column.array)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.cast(pa.string())


def _row_cells(kind: str, part: pd.DataFrame) -> pa.Array:
    """Per row, ``[kind, cell, ...]`` as RowCells writes it: each cell in quotes, between commas. A row
    with a character that json escapes (a quote, a backslash, a control character) in any cell is
    written by the json module itself."""
    cells = [_arrow(part[column]) for column in part.columns]
    written = _join(f'[{_json(kind)},"', _join(*cells, separator='","'), '"]')
    escaped = pc.match_substring_regex(_join(*cells), JSON_ESCAPED)
    if pc.any(escaped).as_py():
        rows = part[np.asarray(escaped)].itertuples(index=False, name=None)
        encoded = [_json([kind, *row]) for row in rows]
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


def stored_rows(batch: Batch, shown: pd.DataFrame, result: Result, key: str, start: int, end: int) -> pd.DataFrame:
    """Rows ``start`` ... ``end`` of the file (``shown``: cards masked) with their validation ``result``,
    as BatchRow's columns."""
    part = shown.iloc[start:end]
    invalid = result.invalid.to_numpy()[start:end]
    text = pd.ArrowDtype(pa.string())
    return pd.DataFrame(
        {
            "merchant_id": batch.merchant_id,
            "batch_id": batch.pk,
            "row_number": np.arange(start + 2, end + 2),  # the header is line 1
            "data": pd.Series(_row_cells(batch.kind, part), dtype=text),
            "errors": pd.Series(_row_errors(result, start, end), dtype=text),
            "status": np.where(invalid, BatchRow.Status.INVALID.value, BatchRow.Status.VALID.value),
            "amount": result.amounts.iloc[start:end].array,  # whole Rupiah as integers (Int64: NA kept)
            "reference": part[key].str.slice(0, 64).str.replace("\x00", "", regex=False).array,
            "outcome": "",
        },
        columns=list(COLUMNS),
    )


def store(rows: pd.DataFrame) -> None:
    """Insert ``rows`` (``stored_rows``) into BatchRow's table, in the caller's transaction."""
    table = BatchRow._meta.db_table
    names = ", ".join(COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.copy_expert(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT csv)", io.BytesIO(copy_csv(rows)))
        else:
            values = rows.astype(object).where(rows.notna(), None).itertuples(index=False, name=None)
            placeholders = ", ".join(["%s"] * len(COLUMNS))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", list(values))


def copy_csv(rows: pd.DataFrame) -> bytes:
    """``rows`` as the CSV that ``store`` copies: Arrow's CSV writer quotes every text ("" for an empty
    one) and leaves a missing amount unquoted and empty, which COPY reads as NULL."""
    text = io.BytesIO()
    write_csv(pa.Table.from_pandas(rows, preserve_index=False), text, WriteOptions(include_header=False))
    return text.getvalue()

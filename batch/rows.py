"""A validated file's rows as BatchRow stores them (B1): card numbers masked, each row's cells and errors.

``stored_rows`` gives a part of the file as a frame of BatchRow's columns, in the text the fields write
(``RowCells``: the JSON array ``[kind, cell, ...]``; ``JSONText``: the errors' JSON object). ``store``
writes such a frame in the caller's transaction: with one ``COPY`` of the frame as CSV on PostgreSQL,
elsewhere (SQLite) with one ``INSERT`` per row through ``executemany``.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
from django.db import connection
from pyarrow.csv import WriteOptions, write_csv

from .models import Batch, BatchRow
from .validation import Result

COLUMNS = ("merchant_id", "batch_id", "row_number", "data", "errors", "status", "amount", "reference", "outcome")


# As RowCells and JSONText write a value: compact, non-ASCII kept (one encoder, not one per row).
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def stored_rows(batch: Batch, shown: pd.DataFrame, result: Result, key: str, start: int, end: int) -> pd.DataFrame:
    """Rows ``start`` ... ``end`` of the file (``shown``: cards masked) with their validation ``result``,
    as BatchRow's columns."""
    part = shown.iloc[start:end]
    invalid = result.invalid.to_numpy()[start:end]
    errors = result.errors
    cells = zip(*(part[column].tolist() for column in part.columns), strict=True)  # lists: one conversion each
    return pd.DataFrame(
        {
            "merchant_id": batch.merchant_id,
            "batch_id": batch.pk,
            "row_number": np.arange(start + 2, end + 2),  # the header is line 1
            "data": [_json([batch.kind, *row]) for row in cells],
            "errors": [_json(errors[position]) if position in errors else "{}" for position in range(start, end)],
            "status": np.where(invalid, BatchRow.Status.INVALID.value, BatchRow.Status.VALID.value),
            "amount": result.amounts.iloc[start:end].to_numpy(),
            "reference": part[key].str.slice(0, 64).str.replace("\x00", "", regex=False).to_numpy(),
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
            # Arrow's CSV writer quotes every text ("" for an empty one) and leaves a missing amount
            # unquoted and empty: COPY reads that as NULL.
            text = io.BytesIO()
            write_csv(pa.Table.from_pandas(rows, preserve_index=False), text, WriteOptions(include_header=False))
            text.seek(0)
            cursor.copy_expert(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT csv)", text)
        else:
            values = rows.astype(object).where(rows.notna(), None).itertuples(index=False, name=None)
            placeholders = ", ".join(["%s"] * len(COLUMNS))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", list(values))

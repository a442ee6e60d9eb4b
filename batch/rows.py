"""A validated file's rows as BatchRow stores them (B1): card numbers masked, each row's cells and errors.

``stored_rows`` gives a part of the file as a frame of BatchRow's columns, in the text the fields write
(``RowCells``: the JSON array ``[kind, cell, ...]``; ``JSONText``: the errors' JSON object). ``store``
writes such a frame in the caller's transaction: with one ``COPY`` on PostgreSQL, elsewhere (SQLite)
with one ``INSERT`` per row through ``executemany``.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
from django.db import connection

from .models import Batch, BatchRow
from .validation import Result

COLUMNS = ("merchant_id", "batch_id", "row_number", "data", "errors", "status", "amount", "reference", "outcome")
NOT_NULL = ("data", "errors", "status", "reference", "outcome")


def _json(value) -> str:
    """As RowCells and JSONText write a value: compact, non-ASCII kept."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def stored_rows(batch: Batch, shown: pd.DataFrame, result: Result, key: str, start: int, end: int) -> pd.DataFrame:
    """Rows ``start`` ... ``end`` of the file (``shown``: cards masked) with their validation ``result``,
    as BatchRow's columns."""
    part = shown.iloc[start:end]
    invalid = result.invalid.to_numpy()[start:end]
    errors = result.errors
    return pd.DataFrame(
        {
            "merchant_id": batch.merchant_id,
            "batch_id": batch.pk,
            "row_number": np.arange(start + 2, end + 2),  # the header is line 1
            "data": [_json([batch.kind, *cells]) for cells in part.itertuples(index=False, name=None)],
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
            text = io.StringIO()
            rows.to_csv(text, header=False, index=False)  # a missing amount: an empty field, read as NULL
            text.seek(0)
            options = f"FORMAT csv, FORCE_NOT_NULL ({', '.join(NOT_NULL)})"
            cursor.copy_expert(f"COPY {table} ({names}) FROM STDIN WITH ({options})", text)
        else:
            values = rows.astype(object).where(rows.notna(), None).itertuples(index=False, name=None)
            placeholders = ", ".join(["%s"] * len(COLUMNS))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", list(values))

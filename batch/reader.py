"""Reading an uploaded file into a DataFrame of strings, refusing what is not a usable file (B8).

Each refusal is a ``FileRejected`` with a sentence for the user. Checks run cheapest first: size, then
the first bytes (a binary or image file renamed .csv, an XLSX that is not a zip), the zip's entries
(a zip bomb is refused by its declared sizes before anything is inflated), the encoding, then the
header by name (order does not matter; missing and unknown columns are listed).
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import zipfile
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from .columns import COLUMNS, names

if TYPE_CHECKING:
    import pandas as pd


class FileRejected(Exception):
    pass


XLSX_MAGIC = b"PK\x03\x04"
BINARY_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"%PDF", b"\x7fELF", b"MZ", b"\x1f\x8b", b"Rar!", b"7z\xbc\xaf")


def detect_format(name: str, head: bytes) -> str:
    """``csv`` or ``xlsx`` from the name and the first bytes, which must agree."""
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise FileRejected("Upload a .csv or .xlsx file.")
    if suffix == ".xlsx":
        if not head.startswith(XLSX_MAGIC):
            raise FileRejected(
                "This .xlsx file is not an Excel workbook. Save it again from Excel as .xlsx or CSV UTF-8."
            )
        return "xlsx"
    if head.startswith(XLSX_MAGIC):
        raise FileRejected("This file is an Excel workbook renamed .csv. Upload it as .xlsx, or save it as CSV UTF-8.")
    if head.startswith(BINARY_MAGIC) or b"\x00" in head:
        raise FileRejected(
            "This is not a CSV file (it holds binary data). Save the sheet as CSV UTF-8 and upload that."
        )
    return "csv"


def check_xlsx(file: Path | io.BytesIO) -> None:
    """Refuse a zip bomb by its directory: too many entries, too large inflated, or too compressed."""
    try:
        with zipfile.ZipFile(file) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise FileRejected("This .xlsx file is damaged and cannot be opened.") from exc
    if len(entries) > settings.BATCH_XLSX_MAX_ENTRIES:
        raise FileRejected("This .xlsx file has too many parts to be a plain sheet.")
    inflated = sum(entry.file_size for entry in entries)
    packed = max(1, sum(entry.compress_size for entry in entries))
    if inflated > settings.BATCH_XLSX_MAX_INFLATED_BYTES or inflated / packed > settings.BATCH_XLSX_MAX_RATIO:
        raise FileRejected("This .xlsx file unpacks to far more than its size (a zip bomb?). Upload it as CSV UTF-8.")


def _first_line(raw: bytes) -> bytes:
    """The bytes before the first newline (without copying the rest of a large file)."""
    end = raw.find(b"\n")
    return raw if end < 0 else raw[:end]


def read_csv(raw: bytes, delimiter: str) -> pd.DataFrame:
    """Every cell as text, by Arrow's CSV reader (multi-threaded, straight from the bytes, columns kept in
    Arrow). Quoted newlines are kept and blank lines skipped; a malformed file raises pandas'
    ParserError / EmptyDataError."""
    import pandas as pd
    from pyarrow import ArrowInvalid, large_string, py_buffer
    from pyarrow import csv as arrow_csv

    try:
        header = next(csv.reader([_first_line(raw).decode().rstrip("\r")], delimiter=delimiter), [])
        table = arrow_csv.read_csv(
            py_buffer(raw),
            parse_options=arrow_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=arrow_csv.ConvertOptions(
                column_types=dict.fromkeys(header, large_string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            raise pd.errors.EmptyDataError("No columns to parse from file") from exc
        raise pd.errors.ParserError(str(exc)) from exc
    text = pd.StringDtype("pyarrow", na_value=float("nan"))
    # One chunk per column (the parser reads in blocks): each rule's Arrow call then runs once per column.
    return table.combine_chunks().to_pandas(types_mapper=lambda _: text)


def stripped_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell stripped of surrounding whitespace, the rows whose cells are all empty dropped (trailing
    blank lines, empty rows)."""
    frame = frame.apply(lambda column: column.str.strip())
    return frame[(frame != "").any(axis=1)].reset_index(drop=True)


def _cell_text(value) -> str:
    """An XLSX cell as the text a user typed: Excel keeps a typed date as a date cell and a typed number
    as a number cell. A date (at midnight) reads YYYY-MM-DD, a whole number its digits (250000, not
    250000.0 or 2.5E+05); a date with a time of day and any other value read as Python writes them."""
    if isinstance(value, datetime) and value.time() == time(0):
        return f"{value:%Y-%m-%d}"
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return f"{value:.0f}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def read(source: Path | bytes, file_format: str, kind: str) -> pd.DataFrame:
    """All cells as stripped strings (empty for blank), columns by name in the template's order; ``source``
    is the file or its bytes."""
    raw = source.read_bytes() if isinstance(source, Path) else source
    if not raw:
        raise FileRejected("The file is empty.")
    frame = _read_xlsx(raw) if file_format == "xlsx" else _read_csv_upload(raw)
    del raw
    frame = _template_columns(frame, kind)
    frame = stripped_rows(frame.astype(str))
    if frame.empty:
        raise FileRejected("The file has a header but no rows.")
    if len(frame) > settings.BATCH_MAX_ROWS:
        raise FileRejected(
            f"The file has {len(frame):,} rows; at most {settings.BATCH_MAX_ROWS:,} are accepted per file."
        )
    return frame


def _read_xlsx(raw: bytes) -> pd.DataFrame:
    import pandas as pd

    check_xlsx(io.BytesIO(raw))
    try:
        frame = pd.read_excel(io.BytesIO(raw), dtype=object, keep_default_na=False, engine="openpyxl")
    except Exception as exc:  # openpyxl raises many kinds on a malformed workbook
        raise FileRejected("This .xlsx file cannot be read. Save it again from Excel, or as CSV UTF-8.") from exc
    return frame.apply(lambda column: column.map(_cell_text))  # openpyxl made a Python object per cell


def _read_csv_upload(raw: bytes) -> pd.DataFrame:
    """A CSV file in UTF-8 (a BOM allowed), its delimiter (, or ;) told by its header line."""
    import pandas as pd

    try:
        raw.decode("utf-8")  # only a check: the parser reads the bytes
    except UnicodeDecodeError as exc:
        raise FileRejected(
            'The file is not UTF-8 (it looks like Latin-1 / Windows encoding). Save it as "CSV UTF-8" and upload it again.'
        ) from exc
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    first_line = _first_line(raw)
    if b"\r" in first_line.rstrip(b"\r"):
        raise FileRejected(
            "The file's lines end with a carriage return only (the old Mac format). "
            'Save it as "CSV UTF-8" and upload it again.'
        )
    delimiter = ";" if first_line.count(b";") > first_line.count(b",") else ","
    try:
        return read_csv(raw, delimiter)
    except pd.errors.EmptyDataError as exc:
        raise FileRejected("The file is empty.") from exc
    except pd.errors.ParserError as exc:
        raise FileRejected(f"The file is not a well-formed CSV: {str(exc).splitlines()[-1]}") from exc


def _template_columns(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The columns of ``kind``'s template in its order (an optional one left out: its cells empty); a
    header naming a column twice, lacking a required one or naming an unknown one is refused."""
    import pandas as pd

    frame.columns = [str(c).strip().lower().replace(" ", "_") for c in frame.columns]
    twice = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if twice:
        raise FileRejected(
            f"The header names the column {', '.join(twice)} twice. Keep one column of each name and upload again."
        )
    expected = names(kind)
    missing = [c.name for c in COLUMNS[kind] if c.required and c.name not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s): {', '.join(missing)}")
        if extra:
            parts.append(f"unknown column(s): {', '.join(extra)}")
        raise FileRejected(
            f"The header does not match the template ({'; '.join(parts)}). Download the template and compare."
        )
    for column in expected:
        if column not in frame.columns:
            frame[column] = pd.Series("", index=frame.index, dtype=frame.dtypes.iloc[0] if len(frame.columns) else str)
    return frame[expected]

"""Streamed exports (T4) of a report: CSV and XLSX, written row by row with flat memory.

Spreadsheet formula injection (TESTING 14): a text cell starting with = + - @, tab, CR or LF gets a
leading apostrophe, in both formats, so no spreadsheet evaluates it; read back, the cell is the
original text after that one quote. A plain signed number (a phone number such as +6281234567890, a
negative figure) starts like a formula but is none: it is written as it is. Numbers and dates are written
as numbers and dates.

On PostgreSQL the CSV rows are the database's own ``COPY (SELECT ...) TO STDOUT`` of the same cells
(``reports.services.export_sql`` neutralises in SQL): a reader thread runs the COPY into a small bounded
queue and the response takes chunks from it, so memory stays flat and no row is built in Python. Other
databases (SQLite in development and the unit tests) take the Python path.

The XLSX is the smallest valid SpreadsheetML package (inline strings, one style for dates) written
straight into a zip stream, so the first bytes leave before the query has finished and nothing is
buffered beyond one chunk of rows.
"""

from __future__ import annotations

import csv
import queue
import re
import threading
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
# The whole text of a plain signed number; a regular expression of both Python and PostgreSQL.
SIGNED_NUMBER = "[+-][0-9]+([.][0-9]+)?"
_SIGNED_NUMBER = re.compile(SIGNED_NUMBER)
CHUNK_ROWS = 500


def neutralise(value):
    """Text a spreadsheet would run as a formula gets a leading quote; every other value is unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _SIGNED_NUMBER.fullmatch(value):
        return "'" + value
    return value


class _Echo:
    """A file-like that hands back what is written (csv.writer writes one line at a time)."""

    def write(self, value: str) -> str:
        return value


def csv_stream(header: Sequence[str], rows: Iterable[Sequence]) -> Iterator[bytes]:
    writer = csv.writer(_Echo())
    yield "\ufeff".encode()  # the BOM tells spreadsheet programs the file is UTF-8
    yield writer.writerow([neutralise(cell) for cell in header]).encode()
    buffer: list[str] = []
    for row in rows:
        buffer.append(writer.writerow([_csv_cell(cell) for cell in row]))
        if len(buffer) >= CHUNK_ROWS:
            yield "".join(buffer).encode()
            buffer.clear()
    if buffer:
        yield "".join(buffer).encode()


COPY_CHUNK_BYTES = 256 * 1024
COPY_QUEUE_CHUNKS = 8  # at most this many chunks wait for the client: memory stays flat
_DONE = object()


class _CopyPipe:
    """The file COPY writes into: gathers rows into chunks and hands them to the response's queue; once
    the response is closed it drops what still comes (the COPY is being cancelled)."""

    def __init__(self, chunks: queue.Queue, closed: threading.Event):
        self.chunks, self.closed = chunks, closed
        self.buffer: list[bytes] = []
        self.size = 0

    def write(self, data) -> int:
        if self.closed.is_set():
            return len(data)
        self.buffer.append(bytes(data))
        self.size += len(data)
        if self.size >= COPY_CHUNK_BYTES:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if not self.buffer:
            return
        chunk = b"".join(self.buffer)
        self.buffer.clear()
        self.size = 0
        while not self.closed.is_set():
            try:
                self.chunks.put(chunk, timeout=0.5)
                return
            except queue.Full:
                continue


def copy_csv_stream(header: Sequence[str], connection, sql: str, params: Sequence) -> Iterator[bytes]:
    """The CSV of ``header`` and the rows of ``sql`` (a SELECT of ready-made text cells, see
    ``reports.services.export_sql``) through PostgreSQL's ``COPY ... TO STDOUT WITH CSV`` on
    ``connection`` (a Django connection, so the request's transaction and tenancy hold). The same bytes
    as ``csv_stream`` but for line ends (LF instead of CRLF, both valid CSV)."""
    writer = csv.writer(_Echo())
    yield "\ufeff".encode()
    yield writer.writerow([neutralise(cell) for cell in header]).encode()
    connection.ensure_connection()
    raw = connection.connection  # the psycopg2 connection; only the reader thread uses it until the end
    with raw.cursor() as cursor:
        statement = b"COPY (" + cursor.mogrify(sql, list(params)) + b") TO STDOUT WITH (FORMAT csv)"
    chunks: queue.Queue = queue.Queue(maxsize=COPY_QUEUE_CHUNKS)
    closed = threading.Event()

    def read() -> None:
        pipe = _CopyPipe(chunks, closed)
        try:
            with raw.cursor() as cursor:
                cursor.copy_expert(statement.decode(), pipe)
            pipe.flush()
            outcome = _DONE
        except BaseException as error:  # handed to the response, which raises it
            outcome = error
        while not closed.is_set():
            try:
                chunks.put(outcome, timeout=0.5)
                return
            except queue.Full:
                continue

    reader = threading.Thread(target=read, name="report-copy", daemon=True)
    reader.start()
    finished = False
    try:
        while True:
            item = chunks.get()
            if item is _DONE:
                finished = True
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        closed.set()
        if not finished and reader.is_alive():  # the client went away: stop the COPY, do not read it all
            raw.cancel()
        reader.join()
        if not finished and connection.in_atomic_block:
            connection.needs_rollback = True  # the cancelled COPY aborted the transaction


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal(1))) if value == value.to_integral_value() else str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return neutralise(value)


# XLSX

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
    "</Relationships>"
)
# Cell style 1 is a date (built-in number format 14), style 2 bold (the header row).
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
_SHEET_TAIL = "</sheetData></worksheet>"
# Characters XML 1.0 does not allow (controls other than tab, LF, CR); they are dropped from text.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_EXCEL_EPOCH = date(1899, 12, 30)


def _workbook(sheet_name: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f'<sheets><sheet name="{escape(sheet_name[:31])}" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )


def _column_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def _xlsx_cell(ref: str, value, style: int = 0) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return f'<c r="{ref}"><v>{value}</v></c>'
    if isinstance(value, date) and not isinstance(value, datetime):
        return f'<c r="{ref}" s="1"><v>{(value - _EXCEL_EPOCH).days}</v></c>'
    text = _NOT_XML.sub("", str(neutralise(value) if not isinstance(value, datetime) else value.isoformat()))
    style_attr = f' s="{style}"' if style else ""
    # A raw CR would be read back as LF (XML end-of-line handling): write it as a character reference.
    text = escape(text).replace("\r", "&#13;")
    return f'<c r="{ref}" t="inlineStr"{style_attr}><is><t xml:space="preserve">{text}</t></is></c>'


def _xlsx_row(number: int, letters: list[str], values: Sequence, style: int = 0) -> str:
    cells = "".join(_xlsx_cell(f"{letters[i]}{number}", value, style) for i, value in enumerate(values))
    return f'<row r="{number}">{cells}</row>'


class _Sink:
    """A write-only file for ``zipfile``: collects the bytes written until the stream takes them."""

    def __init__(self):
        self._chunks: list[bytes] = []

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def xlsx_stream(
    header: Sequence[str], rows: Iterable[Sequence], *, sheet_name: str = "Report", large: bool = False
) -> Iterator[bytes]:
    """An .xlsx of ``header`` and ``rows``; ``large`` (over ~500k rows) writes the sheet entry as Zip64."""
    sink = _Sink()
    letters = [_column_letters(i) for i in range(len(header))]
    # A sink without seek/tell makes zipfile write data descriptors: nothing is rewritten afterwards.
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=5) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _ROOT_RELS)
        archive.writestr("xl/workbook.xml", _workbook(sheet_name))
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        archive.writestr("xl/styles.xml", _STYLES)
        yield sink.take()
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=large) as sheet:
            sheet.write((_SHEET_HEAD + _xlsx_row(1, letters, header, style=2)).encode())
            buffer: list[str] = []
            for number, row in enumerate(rows, start=2):
                buffer.append(_xlsx_row(number, letters, row))
                if len(buffer) >= CHUNK_ROWS:
                    sheet.write("".join(buffer).encode())
                    buffer.clear()
                    yield sink.take()
            sheet.write(("".join(buffer) + _SHEET_TAIL).encode())
    yield sink.take()

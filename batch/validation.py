"""Cell-by-cell validation of an upload (B2), vectorised by column with pandas and Arrow.

``validate`` returns a reason per cell (``Result.codes``: a reason number per row and column, into
``Result.messages``; ``Result.reasons`` as a frame the shape of the file), so every invalid cell keeps
its own reason. No rule runs per cell in Python: a first pass finds the plainly valid rows with one Arrow
kernel per column (regexes as RE2 on the Arrow strings, Luhn over a digit matrix in numpy, dates with
Arrow's strptime, duplicates and stored keys by hashing); every rule then runs by column on the other
rows only, and schedules that are not in a plain form are parsed once per distinct combination.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache, cached_property, partial

import numpy as np
import pandas as pd

from billing_bo.lib.cards import mask_pans_in_text
from billing_bo.lib.money import format_rupiah
from recurring.schedule import MAX_FULL_DATES, Schedule, ScheduleError

try:  # pandas keeps text columns in Arrow when pyarrow is installed (requirements.txt pins it)
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - the string paths below work without it, slower
    pa = pc = None

PHONE = r"\+?[0-9]{8,15}"
EMAIL = r"[^@ \t\n\r\f\v]+@[^@ \t\n\r\f\v]+\.[^@ \t\n\r\f\v]+"
AMOUNT = r"[0-9]+|[0-9]{1,3}(?:\.[0-9]{3})+"
REFERENCE = r"[A-Za-z0-9][A-Za-z0-9_./-]{0,63}"
DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# A weekday cell names a day by its first three letters or in full (not any word that starts like one).
WEEKDAY_NAMES = {name: number for number, day in enumerate(DAY_NAMES) for name in (day[:3], day)}
TEXT_COLUMNS_WITH_PAN = ("customer_name", "holder_name", "description")


@dataclass
class Result:
    """Per cell: a reason code (0 = valid) per column and the table of reasons; per row: invalid."""

    codes: dict[str, np.ndarray]  # column -> int16 per row, an index into ``messages``
    messages: list[str]
    index: pd.Index
    invalid: pd.Series  # per row
    amounts: pd.Series  # Decimal-able integers, NaN where invalid
    execute_dates: pd.Series | None  # datetime64 per row (single payment)

    @property
    def invalid_count(self) -> int:
        return int(self.invalid.sum())

    @property
    def reasons(self) -> pd.DataFrame:
        """ "" or the reason, per cell (a frame the shape of the file)."""
        table = np.array(self.messages, dtype=object)
        return pd.DataFrame({column: table[codes] for column, codes in self.codes.items()}, index=self.index)

    @cached_property
    def errors(self) -> dict[int, dict[str, str]]:
        """Row position -> {column: reason}, for the invalid rows only."""
        found: dict[int, dict[str, str]] = {}
        for column, codes in self.codes.items():
            for position in np.flatnonzero(codes):
                found.setdefault(int(position), {})[column] = self.messages[codes[position]]
        return found


def _isin(column: pd.Series, values) -> np.ndarray:
    """``column.isin(values)`` through Arrow's hash set when it can (pandas' own path builds a Python
    string per value)."""
    if pa is not None:
        values = values if isinstance(values, pd.Series) else pd.Series(values, dtype=str)
        found = pc.is_in(_text(column), value_set=_text(values))
        return np.asarray(found.fill_null(False), dtype=bool)
    return _bool(column.isin(values))


def card_digits(column: pd.Series) -> pd.Series:
    """The card number without its spaces and dashes (RE2's \\s: space, tab, newline, form feed,
    carriage return). Two plain replacements when no cell holds the rarer ones, else the regex."""
    if pa is not None:
        text = _arrow(column)
        if _bytes_in(column, b"\t\n\f\r").any():
            stripped = pc.replace_substring_regex(text, pattern=r"[\s-]", replacement="")
        else:
            stripped = pc.replace_substring(pc.replace_substring(text, " ", ""), "-", "")
        return pd.Series(
            stripped.to_pandas(types_mapper=lambda _: pd.StringDtype("pyarrow", na_value=np.nan)).array,
            index=column.index,
        )
    return column.str.replace(r"[\s-]", "", regex=True)


def _bool(mask) -> np.ndarray:
    if isinstance(mask, pd.Series):
        return mask.to_numpy(dtype=bool, na_value=False)
    return np.asarray(mask, dtype=bool)


def _text(column: pd.Series):
    """The column's Arrow strings: the array pandas holds when it holds Arrow (no copy, and none of
    ``astype``'s cost per call), else the column converted."""
    if isinstance(column.array, pd.arrays.ArrowStringArray):
        return pa.array(column.array)
    return pa.array(column.astype(str))


def _arrow(column: pd.Series):
    """The column as one Arrow string array (no copy when pandas holds it in Arrow already)."""
    array = _text(column)
    if isinstance(array, pa.ChunkedArray):
        return array.chunk(0) if array.num_chunks == 1 else array.combine_chunks()
    return array


def _buffers(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(the cells' bounds, int64, n + 1 of them; the bytes they index) of the column's Arrow array."""
    return _array_buffers(_arrow(column))


def _array_buffers(array) -> tuple[np.ndarray, np.ndarray]:
    """``_buffers`` of an Arrow string array."""
    _, offsets, data = array.buffers()
    width = np.int64 if pa.types.is_large_string(array.type) else np.int32
    bounds = np.frombuffer(offsets, dtype=width)[array.offset : array.offset + len(array) + 1].astype(
        np.int64, copy=False
    )
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None and bounds[-1] > 0 else np.zeros(1, np.uint8)
    return bounds, raw


def _bytes_in(column: pd.Series, values: bytes) -> np.ndarray:
    """Per cell: how many of its bytes are one of ``values`` (numpy over the Arrow buffer)."""
    bounds, raw = _buffers(column)
    text = raw[bounds[0] : bounds[-1]]
    codes = np.frombuffer(values, dtype=np.uint8)
    if len(codes) > 1 and np.array_equal(codes, np.arange(codes[0], codes[0] + len(codes))):
        hits = (text >= codes[0]) & (text <= codes[-1])  # a range (the digits): two comparisons
    elif len(codes) <= 2:
        hits = text == codes[0]
        for code in codes[1:]:
            hits |= text == code
    else:
        wanted = np.zeros(256, dtype=bool)
        wanted[codes] = True
        hits = wanted[text]
    return _counts_per_cell(hits, bounds)


def _counts_per_cell(hits: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Per cell: how many of its bytes are hits (``hits``: a bool per byte of the cells' text)."""
    if not len(hits):
        return np.zeros(len(bounds) - 1, dtype=np.int32)
    # reduceat gives an empty cell the byte at its start: set to 0 after. Summed in bytes when no cell is
    # longer than a byte counts (else numpy casts every byte to int32 first: four times the text's size in
    # fresh memory, the most of a first run's time at a million rows).
    starts = np.minimum(bounds[:-1] - bounds[0], len(hits) - 1)
    lengths = np.diff(bounds)
    wide = np.uint8 if len(lengths) and lengths.max() <= 255 else np.int32
    counts = np.add.reduceat(hits.view(np.uint8), starts, dtype=wide).astype(np.int32)
    counts[lengths == 0] = 0
    return counts


def _lengths_and_first_bytes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: its length in bytes and its first byte (0 for an empty cell), read from the Arrow
    buffers with numpy: no kernel, no pass over the text."""
    if pa is None:
        text = column.astype(str)
        lengths = text.str.encode("utf-8").str.len().to_numpy(dtype=np.int64)
        first = np.array([ord(cell[0]) if cell and ord(cell[0]) < 128 else 255 * bool(cell) for cell in text])
        return lengths, first.astype(np.uint8)
    bounds, raw = _buffers(column)
    lengths = np.diff(bounds)
    first = np.where(lengths > 0, raw[np.minimum(bounds[:-1], len(raw) - 1)], 0).astype(np.uint8)
    return lengths, first


# The columns whose cells are free text (kept as typed and shown in exports): a leading - starts a formula
# there too. In the other columns - is just a bad value (a negative amount is not a whole Rupiah amount).
TEXT_COLUMNS = (
    "billing_number",
    "invoice_number",
    "customer_id",
    "customer_name",
    "email",
    "holder_name",
    "description",
)
FORMULA_STARTS = np.array([ord(c) for c in "=+@\t\r"], dtype=np.uint8)
TEXT_FORMULA_STARTS = np.array([ord(c) for c in "=+-@\t\r"], dtype=np.uint8)
PHONE_FORMULA_STARTS = np.array([ord(c) for c in "=@\t\r"], dtype=np.uint8)  # a phone may start with +
FORMULA_REASON = "Formulas are not accepted: remove the leading = + - @ or tab."


UNKNOWN_BILLING = "No billing has this number: correct it, or leave it empty and give the customer_id."
CONTROL_REASON = "Holds a control character (such as NUL, tab or a line break): remove it."
LINE_BREAKS_ALLOWED = ("description",)  # a description may run over several lines


@cache
def max_lengths(kind: str) -> dict[str, int]:
    """Per column of ``kind`` stored in a text field: the field's length (the billing's for a registration,
    the transaction's for a single payment), which PostgreSQL enforces."""
    from django.core.exceptions import FieldDoesNotExist
    from django.db.models import CharField

    from payments.models import Transaction
    from recurring.models import Billing

    from .columns import names

    model = Billing if kind == "registration" else Transaction
    found = {}
    for column in names(kind):
        try:
            field = model._meta.get_field(column)
        except FieldDoesNotExist:
            continue
        if isinstance(field, CharField) and field.max_length:
            found[column] = field.max_length
    return found


def _control_characters(column: pd.Series, line_breaks: bool = False) -> np.ndarray:
    """The cells holding a control character (C0, DEL or C1; line feed and carriage return excepted
    when ``line_breaks``), by bytes over the Arrow buffer (a C1 character is the UTF-8 pair C2 80-9F)."""
    if pa is None:
        pattern = r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]" if line_breaks else r"[\x00-\x1f\x7f-\x9f]"
        return _bool(column.str.contains(pattern, regex=True))
    bounds, raw = _buffers(column)
    text = raw[bounds[0] : bounds[-1]]
    hits = (text < 32) | (text == 127)
    if line_breaks:
        hits &= (text != ord("\n")) & (text != ord("\r"))
    lead = text[:-1] == 0xC2
    if lead.any():
        hits[:-1] |= lead & (text[1:] >= 0x80) & (text[1:] <= 0x9F)
    return _counts_per_cell(hits, bounds) > 0


def _text_rules(frame: pd.DataFrame, flags: _Flags, kind: str) -> None:
    """A text cell holds no control character, and no cell is longer than the field that stores it (in
    characters: an Arrow kernel per column)."""
    for column in frame.columns:
        if column in TEXT_COLUMNS:
            flags.flag(column, _control_characters(frame[column], column in LINE_BREAKS_ALLOWED), CONTROL_REASON)
    for column, most in max_lengths(kind).items():
        if column in frame:
            text = frame[column]
            lengths = np.asarray(pc.utf8_length(_text(text))) if pa is not None else text.str.len().to_numpy()
            flags.flag(column, lengths > most, f"At most {most} characters.")


def _plain_free_text(column: pd.Series, name: str) -> np.ndarray:
    """A registration text cell of column ``name`` that passes ``_text_rules`` for sure: no control
    character, and no more bytes than its field has characters."""
    lengths, _ = _lengths_and_first_bytes(column)
    return (lengths <= max_lengths("registration")[name]) & ~_control_characters(column, name in LINE_BREAKS_ALLOWED)


def formula_starts(column: str) -> np.ndarray:
    """The first bytes that make a cell of ``column`` a formula: = + @ tab or carriage return, and - in a
    text column (a phone's + excepted)."""
    if column in TEXT_COLUMNS:
        return TEXT_FORMULA_STARTS
    return PHONE_FORMULA_STARTS if column.endswith("phone") else FORMULA_STARTS


def _starts_a_formula(column: pd.Series, name: str) -> np.ndarray:
    """The cells of column ``name`` that start a formula."""
    lengths, first = _lengths_and_first_bytes(column)
    return (lengths > 0) & np.isin(first, formula_starts(name))


def luhn_ok(digits: pd.Series) -> pd.Series:
    """Luhn over a column of digit strings (13-19 long), with numpy over the digits' bytes: no Python loop
    per card (and no Python string per card when pyarrow holds the column)."""
    if digits.empty:
        return pd.Series([], dtype=bool, index=digits.index)
    if pa is not None:
        return pd.Series(_luhn_padded(_text(digits)), index=digits.index)
    return pd.Series(_luhn_rows(_digit_matrix(digits)), index=digits.index)


DOUBLED = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.uint8)  # a digit doubled, its digits summed
# Luhn by pairs of ASCII digits: a number left-padded with "0" to 20 is 10 pairs (a digit to double, a digit
# to keep), read as 16-bit words; one table gives each pair's share of the sum.
LUHN_PAIRS = np.zeros(1 << 16, dtype=np.uint8)
for _doubled in range(10):
    for _kept in range(10):
        LUHN_PAIRS[(48 + _doubled) | (48 + _kept) << 8] = DOUBLED[_doubled] + _kept


def _luhn_padded(digits) -> np.ndarray:
    """Luhn per cell of an Arrow array of 1-20 ASCII digits (13-19 for card numbers)."""
    padded = pc.utf8_lpad(digits, width=20, padding="0")
    padded = padded.combine_chunks() if isinstance(padded, pa.ChunkedArray) else padded
    bounds, raw = _array_buffers(padded)
    pairs = LUHN_PAIRS[raw[bounds[0] : bounds[-1]].view(np.uint16).reshape(-1, 10)]
    total = pairs[:, 0].copy()  # at most 10 x 18: a byte holds it
    for column in range(1, 10):
        total += pairs[:, column]
    return total % 10 == 0


def _luhn_rows(matrix: np.ndarray) -> np.ndarray:
    """Luhn per row of an n x 19 matrix of digits (left-padded with 0)."""
    total = matrix[:, -1::-2].sum(axis=1, dtype=np.int32)  # the check digit and every second one from it
    total += DOUBLED[matrix[:, -2::-2]].sum(axis=1, dtype=np.int32)  # the others, doubled
    return total % 10 == 0


def _digit_matrix(digits: pd.Series) -> np.ndarray:
    """n x 19 uint8 digits, left-padded with 0 (without pyarrow)."""
    padded = digits.str.rjust(19, "0").to_numpy(dtype="U19")
    return np.frombuffer(padded.astype("S19").tobytes(), dtype=np.uint8).reshape(-1, 19) - ord("0")


def parse_dates(column: pd.Series) -> pd.Series:
    """YYYY-MM-DD or DD/MM/YYYY; NaT where neither."""
    iso = pd.to_datetime(column, format="%Y-%m-%d", errors="coerce")
    dmy = pd.to_datetime(column, format="%d/%m/%Y", errors="coerce")
    return iso.fillna(dmy)


STARS = np.array(["*" * n for n in range(20)], dtype=object)


def mask_card_column(column: pd.Series) -> pd.Series:
    """First 6 and last 4 of a long number (13 characters or more once spaces and dashes are gone),
    "****" and the last 4 of a 5-12 long one; anything else as it was."""
    digits = card_digits(column)
    length = digits.str.len().to_numpy(dtype=np.int64, na_value=0)
    if pa is None:
        stars = pd.Series(STARS[np.clip(length, 10, 29) - 10], index=column.index)
        masked = digits.str.slice(0, 6) + stars.astype(column.dtype) + digits.str.slice(-4)
        short = (length >= 5) & (length <= 12)
        return masked.where(length >= 13, ("*" * 4 + digits.str.slice(-4)).where(short, column))
    text = _text(digits)
    masked = _text(column)
    for size in np.unique(length[length >= 5]):  # one kernel per distinct length (a file has few)
        stop = int(size) - 4
        keep = 6 if size >= 13 else 0
        replaced = pc.utf8_replace_slice(
            text, start=keep, stop=stop, replacement="*" * (stop - keep) if keep else "****"
        )
        masked = pc.if_else(pa.array(length == size), replaced, masked)
    return pd.Series(pd.arrays.ArrowStringArray(masked.cast(pa.large_string())), index=column.index)


def mask_pans_in_column(column: pd.Series) -> pd.Series:
    """``mask_pans_in_text`` on the cells that hold a run of 13 digits or more (the others cannot hold a
    PAN); only cells with 13 digits or more are searched for the run."""
    if pa is not None:
        suspect = pd.Series(False, index=column.index)
        many = _bytes_in(column, b"0123456789") >= 13
        if many.any():
            suspect[many] = _bool(column[many].str.contains(r"[0-9]{13}", regex=True))
    else:
        suspect = column.str.contains(r"[0-9]{13}", regex=True)
    if not suspect.any():
        return column
    column = column.copy()
    column[suspect] = column[suspect].map(mask_pans_in_text)
    return column


class _Flags:
    def __init__(self, frame: pd.DataFrame, codes: dict[str, np.ndarray] | None = None, messages=None):
        """``codes`` and ``messages``: reasons found already (more are added to them)."""
        self.codes = codes or {column: np.zeros(len(frame), dtype=np.int16) for column in frame.columns}
        self.messages = list(messages or [""])
        self._numbers = {message: number for number, message in enumerate(self.messages)}

    def number(self, reason: str) -> int:
        """The code of ``reason`` (a new one the first time)."""
        if reason not in self._numbers:
            self._numbers[reason] = len(self.messages)
            self.messages.append(reason)
        return self._numbers[reason]

    def flag(self, column: str, mask, reason: str) -> None:
        """Record ``reason`` for the cells of ``column`` under ``mask`` that have no reason yet."""
        codes = self.codes[column]
        target = _bool(mask) & (codes == 0)
        if target.any():
            codes[target] = self.number(reason)


def validate(
    frame: pd.DataFrame,
    kind: str,
    *,
    today: date,
    min_amount: Decimal,
    max_amount: Decimal,
    stored_keys: Iterable[str],
    billings: Iterable[str] | None = None,
) -> Result:
    """``stored_keys``: the keys (billing or invoice numbers) the merchant has already, as a set or a
    Series (a Series of a million keys is matched without a Python string per key), or a Future of
    those (still being fetched: awaited only when the first pass needs them). ``billings`` (single
    payments): the merchant's billing numbers, in the same forms; a row's billing_number must be one.

    Two passes. The first decides, with one Arrow kernel per column, which rows are plainly valid (every
    cell in its plain form, the cross-column checks passed); the second runs every rule, cell by cell
    with its reason, on the other rows only. A file is mostly valid: the second pass sees few rows.
    """
    limits = {"today": today, "min_amount": min_amount, "max_amount": max_amount, "stored_keys": stored_keys}
    return next(validate_in_chunks(frame, kind, rows=max(1, len(frame)), billings=billings, **limits))[2]


def validate_in_chunks(
    frame: pd.DataFrame,
    kind: str,
    *,
    today: date,
    min_amount: Decimal,
    max_amount: Decimal,
    stored_keys: Iterable[str],
    rows: int,
    billings: Iterable[str] | None = None,
) -> Iterator[tuple[int, int, Result]]:
    """``validate`` by ``rows`` rows at a time: (start, end, the Result of rows start ... end). The
    duplicates are found over the whole file first (the stored keys are matched once, when the first
    chunk needs them), so each chunk's result is what ``validate`` gives for those rows; a caller stores
    a chunk while the next one is validated."""
    key = "billing_number" if kind == "registration" else "invoice_number"
    keys = frame[key]
    present = np.diff(_buffers(keys)[0]) > 0 if pa is not None else _bool(keys != "")
    found: dict[str, np.ndarray] = {}

    def key_rows(start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """(the rows whose key repeats in the file, the rows whose key is stored), rows start ... end."""
        if not found:
            stored = stored_keys.result() if isinstance(stored_keys, Future) else stored_keys
            stored = stored if isinstance(stored, pd.Series) else pd.Series(list(stored), dtype=str)
            duplicated, used = _repeated_and_stored(keys, stored, pool)
            found["used"], found["duplicated"] = present & used, present & duplicated
        return found["duplicated"][start:end], found["used"][start:end]

    def unknown_billings(start: int, end: int) -> np.ndarray:
        """The rows (start ... end) whose billing_number is not one of ``billings`` (single payments)."""
        if not unknown:
            named = billings.result() if isinstance(billings, Future) else billings
            named = named if isinstance(named, pd.Series) else pd.Series(list(named or ()), dtype=str)
            column = frame["billing_number"]
            given = np.diff(_buffers(column)[0]) > 0 if pa is not None else _bool(column != "")
            unknown.append(given & ~_isin(column, named))
        return unknown[0][start:end]

    unknown: list[np.ndarray] = []

    # Arrow kernels and numpy release the GIL: two threads share the column checks, while this thread
    # asks for the stored keys (a query: the server is another process) and finds the duplicates.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="batch-validate") as pool:
        for start in range(0, max(1, len(frame)), rows):
            end = min(start + rows, len(frame))
            part = frame.iloc[start:end]
            limits = (today, min_amount, max_amount)
            if kind != "registration":
                result = _validate_cells(
                    part, kind, *limits, *key_rows(start, end), unknown_billings=unknown_billings(start, end)
                )
            else:
                result = _validate_registrations(part, *limits, partial(key_rows, start, end), pool)
            yield start, end, result


# A row with a bad cell in every column (and a past full_date), beside the templates' example rows: the
# warm-up runs every rule of both passes.
WARM_UP_BAD_CELLS = {
    "billing_number": "NOT A NUMBER!",
    "invoice_number": "NOT A NUMBER!",
    "customer_name": "=HYPERLINK(1)",
    "email": "not-an-email",
    "phone": "12",
    "card_number": "4111 1111 1111 1112",
    "expiry": "13/99",
    "holder_phone": "phone",
    "amount": "1,5",
    "type": "weekly",
    "schedule_type": "full_date",
    "schedule_dates": "2000-01-01|31/02/2099",
    "execute_date": "2000-01-01",
}


def warm_up() -> list[Result]:
    """Validate a few rows of each kind once (the templates' examples and a row of bad cells), so that a
    worker process's first batch does not pay the first use of every kernel and code path (the Celery
    worker calls this when a worker process starts: billing_bo/celery.py). Returns the Results."""
    import csv
    import io

    from .columns import COLUMNS, example_rows
    from .reader import _read_csv

    results = []
    today = date.today()
    for kind, columns in COLUMNS.items():
        rows = example_rows(kind, today)
        rows.append([WARM_UP_BAD_CELLS.get(column.name, "") for column in columns])
        text = io.StringIO()
        csv.writer(text).writerows([[column.name for column in columns], *rows])
        frame = _read_csv(text.getvalue().encode(), ",")
        limits = {"today": today, "min_amount": Decimal(1), "max_amount": Decimal(10**12)}
        results.append(validate(frame, kind, **limits, stored_keys={rows[1][0]}))
    return results


# From this many keys (the file's and the stored ones together), Arrow's memo table outgrows the CPU's
# caches: the keys are then numbered by parts (at 1M + 1M keys, 40% less time than one table).
PARTS_FROM = 500_000
PARTS = 16


def _repeated_and_stored(keys: pd.Series, stored: pd.Series, pool=None) -> tuple[np.ndarray, np.ndarray]:
    """(the cells whose value appears more than once in the column, the cells whose value is stored): one
    hash pass over the file's keys and the stored ones together (Arrow's dictionary encoding: one memo
    table, so a value has one number in either), then a count per number in the file and a mark per
    number stored (a sixth less than a dictionary encoding and an is_in set of the stored keys). Many
    keys are numbered by parts (``_numbered_by_parts``), on this thread and ``pool``'s."""
    if pa is None or not len(keys):
        return _repeated(keys), _isin(keys, stored)
    text = _arrow(keys).cast(pa.large_string())
    stored_text = _text(stored).cast(pa.large_string())
    if len(text) + len(stored_text) < PARTS_FROM:
        encoded = pa.chunked_array([text, stored_text]).dictionary_encode()
        numbers = np.concatenate([np.asarray(chunk.indices) for chunk in encoded.chunks])
        size = int(numbers.max()) + 1
    else:
        stored_chunks = stored_text.chunks if isinstance(stored_text, pa.ChunkedArray) else [stored_text]
        numbers, size = _numbered_by_parts(pa.concat_arrays([text, *stored_chunks]), pool)
    in_file, in_stored = numbers[: len(text)], numbers[len(text) :]
    stored_numbers = np.zeros(size, dtype=bool)
    stored_numbers[in_stored] = True
    return np.bincount(in_file, minlength=size)[in_file] > 1, stored_numbers[in_file]


def _numbered_by_parts(values, pool=None) -> tuple[np.ndarray, int]:
    """(a number per value of the Arrow string array, equal values equal numbers; how many numbers): the
    values split into PARTS by their length and last two bytes (equal values, same part), each part
    dictionary-encoded on its own (a memo table that stays in the caches), the parts shared between this
    thread and ``pool``'s two (whichever is free takes the next part; none waits for a pool job to
    start: the pool may be busy with the other pass)."""
    import threading

    bounds, raw = _array_buffers(values)
    lengths = np.diff(bounds)
    # In small integers (two million int64 temporaries are fresh memory the kernel zeroes).
    at = bounds[1:] - 1
    np.maximum(at, 0, out=at)
    last = np.where(lengths >= 1, raw[at], 0).astype(np.uint16)
    at -= 1
    np.maximum(at, 0, out=at)
    before = np.where(lengths >= 2, raw[at], 0).astype(np.uint16)
    last *= 31
    last += before
    last += lengths.astype(np.uint8)  # the length's low byte
    part_of = (last % PARTS).astype(np.uint8)
    order = np.argsort(part_of, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(part_of, minlength=PARTS))])
    grouped = values.take(pa.array(order))
    encoded: list = [None] * PARTS
    lock, done = threading.Lock(), threading.Event()
    state: dict = {"next": 0, "finished": 0, "error": None}

    def work() -> None:
        while not done.is_set():
            with lock:
                part = state["next"]
                state["next"] += 1
            if part >= PARTS:
                return
            try:
                chunk = grouped.slice(int(starts[part]), int(starts[part + 1] - starts[part])).dictionary_encode()
                encoded[part] = (np.asarray(chunk.indices), len(chunk.dictionary))
            except BaseException as error:  # noqa: BLE001 - raised on the asking thread below
                state["error"] = error
                done.set()
                return
            with lock:
                state["finished"] += 1
                if state["finished"] == PARTS:
                    done.set()

    if pool is not None:
        for _ in range(2):
            pool.submit(work)
    work()
    done.wait()
    if state["error"] is not None:
        raise state["error"]
    numbers = np.empty(len(values), dtype=np.int64)
    base = 0
    for part, (indices, size) in enumerate(encoded):
        numbers[order[starts[part] : starts[part + 1]]] = indices + base
        base += size
    return numbers, base


def _repeated(keys: pd.Series) -> np.ndarray:
    """The cells whose value appears more than once in the column: Arrow's dictionary encoding (one hash
    pass) and a count per distinct value."""
    if pa is None:
        return _bool(keys.duplicated(keep=False))
    codes = np.asarray(_arrow(keys).dictionary_encode().indices)
    return np.bincount(codes)[codes] > 1 if len(codes) else np.zeros(0, dtype=bool)


def _validate_registrations(
    frame: pd.DataFrame, today: date, min_amount: Decimal, max_amount: Decimal, key_rows, pool
) -> Result:
    """The two passes over registration rows, on ``pool``'s threads; ``key_rows()``: (the rows whose key
    repeats in the file, the rows whose key is stored), called on this thread meanwhile. The keys' two
    reasons come last of the key cell's reasons, so both passes run without them and they are added at
    the end."""
    checks = _plain_registration_checks(frame, today, min_amount, max_amount, pool)
    passes = pool.submit(_two_passes, frame, today, min_amount, max_amount, checks, pool)
    duplicated, used = key_rows()
    codes, messages, amounts = passes.result()
    flags = _Flags(frame, codes, messages)
    flags.flag("billing_number", duplicated, "Appears more than once in this file.")
    flags.flag("billing_number", used, "Registered already.")
    invalid = np.zeros(len(frame), dtype=bool)
    for column_codes in codes.values():
        invalid |= column_codes != 0
    return Result(
        codes=codes,
        messages=flags.messages,
        index=frame.index,
        invalid=pd.Series(invalid, index=frame.index),
        amounts=pd.Series(amounts, index=frame.index),
        execute_dates=None,
    )


def _two_passes(frame: pd.DataFrame, today: date, min_amount: Decimal, max_amount: Decimal, checks, pool):
    """(codes per column, messages, amounts) of every rule but the keys' duplicates and stored ones. The
    first pass's plain cells are valid; every rule of a column runs on its other cells only (the schedule
    cells together, on the rows whose schedule is not in plain form): the schedule cells and some columns
    on ``pool``'s other thread, the other columns on this one."""
    plain, amounts, plain_schedules, settled = _plain_registration_rows(checks)
    codes = {column: np.zeros(len(frame), dtype=np.int16) for column in frame.columns}
    flags = _Flags(frame, codes)
    if settled is None:  # without pyarrow: every rule on the rows not plain
        aside, here = [], [(list(frame.columns), ~plain)]
    else:
        groups = {column: ([column], ~cells) for column, cells in settled.items()}
        aside = [(list(SCHEDULE_COLUMNS), ~plain_schedules)]
        aside += [groups.pop(column) for column in ("card_number", "type", "customer_id", "customer_name")]
        here = list(groups.values())
    limits = (today, min_amount, max_amount, plain_schedules)
    # This job runs on one of the pool's two threads, after every check (submitted before it): the other
    # thread is free for this one.
    elsewhere = pool.submit(_every_rule_by_group, frame, *limits, aside)
    found = _every_rule_by_group(frame, *limits, here) + elsewhere.result()
    for columns, positions, detail in found:
        numbers = np.array([flags.number(message) for message in detail.messages], dtype=np.int16)
        for column in columns:
            codes[column][positions] = numbers[detail.codes[column]]
        if "amount" in columns:
            amounts[positions] = detail.amounts.to_numpy()
    return codes, flags.messages, amounts


def _rows_of(frame: pd.DataFrame, columns: list[str], positions: np.ndarray) -> pd.DataFrame:
    """``frame.iloc[positions]`` of ``columns`` (a new index): one Arrow take per column when pandas holds
    the text in Arrow (``iloc`` costs more than the take on a few rows)."""
    if pa is None or not all(isinstance(frame[column].array, pd.arrays.ArrowStringArray) for column in columns):
        return frame.iloc[positions, [frame.columns.get_loc(column) for column in columns]].reset_index(drop=True)
    return pd.DataFrame(
        {
            column: pd.arrays.ArrowStringArray(_arrow(frame[column]).take(positions), dtype=frame[column].dtype)
            for column in columns
        }
    )


def _every_rule_by_group(
    frame: pd.DataFrame,
    today: date,
    min_amount: Decimal,
    max_amount: Decimal,
    plain_schedules: np.ndarray,
    groups: list[tuple[list[str], np.ndarray]],
) -> list[tuple[list[str], np.ndarray, Result]]:
    """[(columns, their rows' positions, the Result of every rule on those cells)] per (columns, rows)."""
    found = []
    for columns, rows in groups:
        positions = np.flatnonzero(rows)
        if len(positions):
            nothing = np.zeros(len(positions), dtype=bool)
            part = _rows_of(frame, columns, positions)
            detail = _validate_cells(
                part, "registration", today, min_amount, max_amount, nothing, nothing, plain_schedules[positions]
            )
            found.append((columns, positions, detail))
    return found


def _matches(column: pd.Series, pattern: str) -> np.ndarray:
    """Whole-cell match of an RE2 pattern, straight on the Arrow array."""
    if pa is not None:
        found = pc.match_substring_regex(_text(column), pattern=f"^(?:{pattern})$")
        return np.asarray(found.fill_null(False), dtype=bool)
    return _bool(column.str.fullmatch(pattern))


# The plain form of each registration cell: a cell in this form passes every rule of its own column
# (the formula rule included: none starts with = + @ or a tab, except the + of a phone, nor a text cell
# with -).
TEXT = r"[^-=+@\t\r][\s\S]*"
PLAIN = {
    "billing_number": REFERENCE,
    "customer_id": TEXT,
    "customer_name": TEXT,
    "email": r"(?:[^-=+@ \t\n\r\f\v][^@ \t\n\r\f\v]*@[^@ \t\n\r\f\v]+\.[^@ \t\n\r\f\v]+)?",
    "phone": r"(?:\+?[0-9]{8,15})?",
    "expiry": r"(?:0[1-9]|1[0-2])/[0-9]{2}",
    "holder_name": TEXT,
    "holder_phone": r"(?:\+?[0-9]{8,15})?",
    "amount": r"[0-9]{1,15}|[0-9]{1,3}(?:\.[0-9]{3}){1,4}",
    "type": r"(?i)recurring|reminder",
}


def _plain_registration_checks(frame: pd.DataFrame, today: date, min_amount: Decimal, max_amount: Decimal, pool):
    """The first pass's column checks, as jobs on ``pool`` (Arrow kernels and numpy over the columns'
    bytes, which release the GIL); without pyarrow, one job (the PLAIN patterns)."""
    if pa is None:
        return {"pandas": pool.submit(_plain_registration_rows_pandas, frame, today, min_amount, max_amount)}
    checks = {  # the longest first: the two threads end together
        "schedules": partial(_plain_schedules, frame, today),
        "card_number": partial(_plain_cards, frame["card_number"]),
        "amount": partial(_plain_amounts, frame["amount"], min_amount, max_amount),
        "email": partial(_plain_email, frame["email"]),
        "billing_number": partial(_plain_reference, frame["billing_number"]),
        "phone": partial(_plain_phone, frame["phone"]),
        "holder_phone": partial(_plain_phone, frame["holder_phone"]),
        "expiry": partial(_plain_expiry, frame["expiry"], today),
        "type": partial(_plain_type, frame["type"]),
        **{
            column: partial(_plain_text, frame[column], column)
            for column in ("customer_id", "customer_name", "holder_name")
        },
    }
    return {name: pool.submit(check) for name, check in checks.items()}


def _plain_registration_rows(checks: dict) -> tuple:
    """(rows that pass every rule for sure but the keys', the amounts of the amount cells in plain form
    (NaN elsewhere; without pyarrow, of the plain rows), the rows whose schedule cells are in plain form,
    per column the cells in plain form (None without pyarrow)), from the ``checks``' results."""
    if "pandas" in checks:
        return (*checks["pandas"].result(), None)
    settled = {name: job.result() for name, job in checks.items()}
    plain_schedules = settled.pop("schedules")
    amount_ok, values = settled["amount"]
    settled["amount"] = amount_ok
    plain = plain_schedules.copy()
    for cells in settled.values():
        plain &= cells
    return plain, values, plain_schedules, settled


def _plain_type(column: pd.Series) -> np.ndarray:
    """recurring or reminder (in lower case)."""
    return np.asarray(pc.fill_null(pc.is_in(_arrow(column), value_set=TYPES), False), dtype=bool)


TYPES = pa.array(["recurring", "reminder"]) if pa is not None else None
DIGITS = b"0123456789"
LETTERS_DIGITS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _plain_text(column: pd.Series, name: str) -> np.ndarray:
    """TEXT: not empty, not starting a formula; and ``_plain_free_text``."""
    lengths, first = _lengths_and_first_bytes(column)
    return (lengths > 0) & ~np.isin(first, TEXT_FORMULA_STARTS) & _plain_free_text(column, name)


def _plain_email(column: pd.Series) -> np.ndarray:
    return _matches(column, PLAIN["email"]) & _plain_free_text(column, "email")


def _plain_reference(column: pd.Series) -> np.ndarray:
    """REFERENCE, by bytes: 1 to 64 of letters, digits, _ . / -, the first a letter or digit."""
    lengths, first = _lengths_and_first_bytes(column)
    allowed = _bytes_in(column, LETTERS_DIGITS + b"_./-")
    starts = np.isin(first, np.frombuffer(LETTERS_DIGITS, dtype=np.uint8))
    return (lengths >= 1) & (lengths <= 64) & (allowed == lengths) & starts


def _plain_phone(column: pd.Series) -> np.ndarray:
    """PHONE or empty, by bytes: an optional leading + then 8 to 15 digits and nothing else."""
    lengths, first = _lengths_and_first_bytes(column)
    digits = _bytes_in(column, DIGITS)
    plus = (first == ord("+")).astype(np.int64)
    return (lengths == 0) | ((digits == lengths - plus) & (digits >= 8) & (digits <= 15))


def _plain_expiry(column: pd.Series, today: date) -> np.ndarray:
    """MM/YY (month 01-12), not before this month: read from the cells' five bytes."""
    bounds, raw = _buffers(column)
    five = np.diff(bounds) == 5
    found = np.zeros(len(column), dtype=bool)
    if five.any():
        # One byte position at a time (small arrays, not an index matrix of five int64 per cell).
        starts = bounds[:-1][five]
        digits = []
        for position in (0, 1, 3, 4):
            digit = raw[starts + position].astype(np.int16) - ord("0")
            digits.append(digit)
        well_formed = raw[starts + 2] == ord("/")
        for digit in digits:
            well_formed &= (digit >= 0) & (digit <= 9)
        month = digits[0] * 10 + digits[1]
        year = 2000 + digits[2] * 10 + digits[3]
        found[five] = well_formed & (month >= 1) & (month <= 12) & (year * 12 + month >= today.year * 12 + today.month)
    return found


def _plain_amounts(column: pd.Series, min_amount: Decimal, max_amount: Decimal) -> tuple[np.ndarray, np.ndarray]:
    """(amount cells in a plain form and within the limits, their values; NaN elsewhere), checked once per
    distinct cell (a file's amounts repeat: a plan's price)."""
    value_of, distinct = _distinct(column)
    ok, values = _plain_amount_values(pd.Series(pd.arrays.ArrowStringArray(distinct)), min_amount, max_amount)
    return ok[value_of], values[value_of]


def _plain_amount_values(column: pd.Series, min_amount: Decimal, max_amount: Decimal) -> tuple[np.ndarray, np.ndarray]:
    """``_plain_amounts`` cell by cell: plain digits by bytes, the dotted form by its pattern on the cells
    holding a dot."""
    lengths, _ = _lengths_and_first_bytes(column)
    dots = _bytes_in(column, b".")
    simple = (dots == 0) & (_bytes_in(column, DIGITS) == lengths) & (lengths >= 1) & (lengths <= 15)
    ok = simple | _matches_where(column, r"[0-9]{1,3}(?:\.[0-9]{3}){1,4}", dots > 0)
    digits = pc.if_else(pa.array(ok), pc.replace_substring(_arrow(column), ".", ""), "0")
    values = np.asarray(pc.cast(digits, pa.int64())).astype(float)
    ok &= (values >= float(min_amount)) & (values <= float(max_amount))
    values[~ok] = np.nan
    return ok, values


def _plain_registration_rows_pandas(frame: pd.DataFrame, today: date, min_amount: Decimal, max_amount: Decimal):
    """``_plain_registration_rows`` without pyarrow: the PLAIN patterns by column."""
    jobs = [(column, pattern) for column, pattern in PLAIN.items() if pattern != TEXT]
    plain = np.ones(len(frame), dtype=bool)
    for column, pattern in jobs:
        plain &= _matches(frame[column], pattern)
    for column in (column for column, pattern in PLAIN.items() if pattern == TEXT):
        lengths, _ = _lengths_and_first_bytes(frame[column])
        plain &= (lengths > 0) & ~_starts_a_formula(frame[column], column)
    for column in ("customer_id", "customer_name", "holder_name", "email"):
        plain &= _plain_free_text(frame[column], column)
    plain &= _plain_cards(frame["card_number"])
    plain_schedules = _plain_schedules(frame, today)
    plain &= plain_schedules
    expiry = frame["expiry"].where(plain, "99/99")
    months = (2000 + _ints(expiry.str.slice(3, 5))) * 12 + _ints(expiry.str.slice(0, 2))
    plain &= months >= today.year * 12 + today.month
    amounts = _ints(frame["amount"].where(plain, "0").str.replace(".", "", regex=False)).astype(float)
    plain &= (amounts >= float(min_amount)) & (amounts <= float(max_amount))
    amounts[~plain] = np.nan
    return plain, amounts, plain_schedules


def _plain_cards(column: pd.Series) -> np.ndarray:
    """Card numbers of 13-19 digits (spaces and dashes between them) that pass Luhn."""
    if pa is None:
        digits = card_digits(column)
        well_formed = _bool(digits.str.fullmatch(r"[0-9]{13,19}"))
        luhn = np.zeros(len(column), dtype=bool)
        luhn[well_formed] = luhn_ok(digits[well_formed]).to_numpy()
        return luhn
    # By bytes: only digits, spaces and dashes, 13 to 19 digits. The digits of every cell, taken out of the
    # text in one numpy pass, make a new Arrow array (offsets: the running count of digits); its
    # well-formed cells go to Luhn.
    bounds, raw = _buffers(column)
    text = raw[bounds[0] : bounds[-1]]
    is_digit = (text >= ord("0")) & (text <= ord("9"))
    digits = _counts_per_cell(is_digit, bounds)
    separators = _counts_per_cell((text == ord(" ")) | (text == ord("-")), bounds)
    well_formed = (digits + separators == np.diff(bounds)) & (digits >= 13) & (digits <= 19)
    luhn = np.zeros(len(column), dtype=bool)
    if well_formed.any():
        offsets = np.concatenate([[0], np.cumsum(digits, dtype=np.int64)])
        numbers = pa.LargeStringArray.from_buffers(
            len(column), pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(text[is_digit]))
        )
        luhn[well_formed] = _luhn_padded(numbers.filter(pa.array(well_formed)))
    return luhn


def _validate_cells(
    frame: pd.DataFrame,
    kind: str,
    today: date,
    min_amount: Decimal,
    max_amount: Decimal,
    duplicated: np.ndarray,
    used: np.ndarray,
    plain_schedules: np.ndarray | None = None,
    unknown_billings: np.ndarray | None = None,
) -> Result:
    """Every rule on every cell of ``frame``, each invalid cell with its reason. ``duplicated`` and
    ``used``: the rows whose key repeats in the whole file, or is stored already; ``unknown_billings``
    (single payments): the rows naming a billing the merchant does not have. A registration frame
    may hold some of the columns only (the schedule ones together): the rules of those run."""
    from .columns import COLUMNS

    flags = _Flags(frame)
    shapes = {column: _lengths_and_first_bytes(frame[column]) for column in frame.columns}
    empty = {column: lengths == 0 for column, (lengths, _) in shapes.items()}

    # Formula cells (=HYPERLINK(...)): refused everywhere, before any other rule names the cell.
    for column, (lengths, first) in shapes.items():
        flags.flag(column, (lengths > 0) & np.isin(first, formula_starts(column)), FORMULA_REASON)
    _text_rules(frame, flags, kind)

    for spec in COLUMNS[kind]:
        if spec.required and spec.name in frame:
            flags.flag(spec.name, empty[spec.name], "Required.")

    # Card number: digits only (spaces and dashes allowed), 13-19 long, Luhn.
    if "card_number" in frame:
        digits = card_digits(frame["card_number"])
        well_formed = _matches(digits, r"[0-9]{13,19}")
        flags.flag("card_number", ~well_formed & ~empty["card_number"], "Not a card number: 13 to 19 digits.")
        luhn = np.zeros(len(frame), dtype=bool)
        luhn[well_formed] = luhn_ok(digits[well_formed]).to_numpy()
        flags.flag("card_number", well_formed & ~luhn, "This card number fails the check digit (Luhn): a typo?")

    # Expiry MM/YY, not before this month.
    if "expiry" in frame:
        expiry_ok = _matches(frame["expiry"], r"(?:0[1-9]|1[0-2])/[0-9]{2}")
        flags.flag("expiry", ~expiry_ok & ~empty["expiry"], "Not an expiry date: MM/YY.")
        expiry = frame["expiry"].where(expiry_ok, "00/00")
        months = (2000 + _ints(expiry.str.slice(3, 5))) * 12 + _ints(expiry.str.slice(0, 2))
        flags.flag("expiry", expiry_ok & (months < today.year * 12 + today.month), "This card has expired.")

    # Amount: whole Rupiah, plain or with . thousands separators, within the merchant's limits.
    amounts = pd.Series(np.nan, index=frame.index)
    if "amount" in frame:
        amount_ok = _matches(frame["amount"], AMOUNT)
        flags.flag("amount", ~amount_ok & ~empty["amount"], "Not a whole Rupiah amount: 250000 or 250.000.")
        plain = frame["amount"].where(amount_ok, "0").str.replace(".", "", regex=False)
        amounts = pd.Series(np.where(amount_ok, _floats(plain), np.nan), index=frame.index)
        out_of_range = amount_ok & ((amounts < float(min_amount)) | (amounts > float(max_amount))).to_numpy()
        reason = f"Must be between {format_rupiah(min_amount)} and {format_rupiah(max_amount)}."
        flags.flag("amount", out_of_range, reason)

    for column in ("phone", "holder_phone"):
        if column in frame:
            flags.flag(
                column,
                ~empty[column] & ~_matches(frame[column], PHONE),
                "Not a mobile number: 8 to 15 digits, optional +.",
            )
    if "email" in frame:
        flags.flag("email", ~empty["email"] & ~_matches(frame["email"], EMAIL), "Not an email address.")

    key = "billing_number" if kind == "registration" else "invoice_number"
    if key in frame:
        flags.flag(key, ~empty[key] & ~_matches(frame[key], REFERENCE), "Use letters, digits, - _ . / (at most 64).")
        flags.flag(key, duplicated, "Appears more than once in this file.")
        used_reason = "Registered already." if kind == "registration" else "This invoice number is used already."
        flags.flag(key, used, used_reason)

    execute_dates = None
    if kind == "registration":
        if "type" in frame:
            types = frame["type"].str.lower()
            flags.flag("type", ~empty["type"] & ~_isin(types, ["recurring", "reminder"]), "Use recurring or reminder.")
        if "schedule_type" in frame:
            _schedules(frame, flags, today, plain_schedules)
    else:
        neither = empty["billing_number"] & empty["customer_id"]
        flags.flag("billing_number", neither, "Give a billing_number or a customer_id.")
        flags.flag(
            "billing_number",
            ~empty["billing_number"] & ~_matches(frame["billing_number"], REFERENCE),
            "Use letters, digits, - _ . / (at most 64).",
        )
        flags.flag("billing_number", unknown_billings, UNKNOWN_BILLING)
        execute_dates = parse_dates(frame["execute_date"])
        flags.flag(
            "execute_date", execute_dates.isna() & ~empty["execute_date"], "Not a date: YYYY-MM-DD or DD/MM/YYYY."
        )
        flags.flag("execute_date", execute_dates < pd.Timestamp(today), "This date is in the past.")

    invalid = np.zeros(len(frame), dtype=bool)
    for codes in flags.codes.values():
        invalid |= codes != 0
    return Result(
        codes=flags.codes,
        messages=flags.messages,
        index=frame.index,
        invalid=pd.Series(invalid, index=frame.index),
        amounts=amounts,
        execute_dates=execute_dates,
    )


def _floats(column: pd.Series) -> np.ndarray:
    """Digit strings to float64 (callers pass only digits; more than int64 holds is fine)."""
    if pa is not None and len(column):
        return np.asarray(pc.cast(_arrow(column), pa.float64()))
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)


def _ints(column: pd.Series) -> np.ndarray:
    """Digit strings to int64 (callers pass only digits)."""
    if not len(column):
        return np.zeros(0, dtype=np.int64)
    if pa is not None:
        return np.asarray(pc.cast(_text(column), pa.int64()))
    return column.astype("int64").to_numpy()


SCHEDULE_COLUMNS = ("schedule_type", "schedule_days", "schedule_weekdays", "schedule_months", "schedule_dates")
# The plain forms of the schedule cells, matched by column: a row in these forms is a valid schedule for
# sure. Every other row is parsed by ``parse_schedule`` (once per distinct combination), which names the
# cell at fault and why.
DAYS_LIST = r"(?:[1-9]|1[0-9]|2[0-8])(?:\|(?:[1-9]|1[0-9]|2[0-8]))*"
WEEKDAYS_LIST = r"(?:mon|tue|wed|thu|fri|sat|sun|[0-6])(?:\|(?:mon|tue|wed|thu|fri|sat|sun|[0-6]))*"
MONTHS_LIST = r"all|(?:[1-9]|1[0-2])(?:\|(?:[1-9]|1[0-2]))*"
DATE_TEXT = r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{2}/[0-9]{2}/[0-9]{4})"
DATES_LIST = rf"{DATE_TEXT}(?:\|{DATE_TEXT})*"


def _plain_schedules(frame: pd.DataFrame, today: date) -> np.ndarray:
    """The rows whose schedule cells are in their plain forms (so a valid schedule for sure). Each list
    pattern runs on the rows of its schedule type only."""
    if pa is None:
        return _plain_schedules_pandas(frame, today)
    # The type, days, weekdays and months cells repeat (a file holds few distinct schedules): each pattern
    # runs once per distinct cell, and the rows take their cell's verdict.
    is_kind = _equal_ignoring_case(frame["schedule_type"], ("date", "day", "full_date"))
    empty, well_formed = {}, {}
    for column, pattern in (
        ("schedule_days", DAYS_LIST),
        ("schedule_weekdays", f"(?i){WEEKDAYS_LIST}"),
        ("schedule_months", f"(?i){MONTHS_LIST}"),
    ):
        cell_of, cells = _distinct(frame[column])
        empty[column] = _verdicts(pc.equal(pc.binary_length(cells), 0), cell_of)
        well_formed[column] = _verdicts(pc.match_substring_regex(cells, pattern=f"^(?:{pattern})$"), cell_of)
    empty["schedule_dates"] = np.diff(_buffers(frame["schedule_dates"])[0]) == 0
    by_date = is_kind["date"] & empty["schedule_weekdays"] & empty["schedule_dates"] & well_formed["schedule_days"]
    by_day = is_kind["day"] & empty["schedule_days"] & empty["schedule_dates"] & well_formed["schedule_weekdays"]
    plain = (by_date | by_day) & well_formed["schedule_months"]
    full = is_kind["full_date"] & empty["schedule_days"] & empty["schedule_weekdays"] & empty["schedule_months"]
    full &= _matches_where(frame["schedule_dates"], DATES_LIST, full)
    if full.any():
        plain[full] = _future_dates(frame["schedule_dates"][full], today)
    return plain


def _equal_ignoring_case(column: pd.Series, words: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Per ASCII word: the cells equal to it, ASCII letters in either case (the column lowered once by
    Arrow, then one comparison per word)."""
    lowered = pc.ascii_lower(_arrow(column))
    return {word: np.asarray(pc.fill_null(pc.equal(lowered, word), False), dtype=bool) for word in words}


def _distinct(column: pd.Series):
    """(per cell: the number of its value, the distinct values as an Arrow array): one hash pass."""
    encoded = pc.dictionary_encode(_arrow(column), null_encoding="encode")
    return np.asarray(encoded.indices), encoded.dictionary


def _verdicts(per_value, value_of: np.ndarray) -> np.ndarray:
    """A boolean Arrow array per distinct value, as a numpy mask per cell (null: False)."""
    return np.asarray(pc.fill_null(per_value, False), dtype=bool)[value_of]


def _matches_where(column: pd.Series, pattern: str, rows: np.ndarray) -> np.ndarray:
    """``_matches`` on ``rows`` only (False elsewhere)."""
    found = np.zeros(len(column), dtype=bool)
    if rows.any():
        matched = pc.match_substring_regex(_arrow(column).filter(pa.array(rows)), pattern=f"^(?:{pattern})$")
        found[rows] = np.asarray(pc.fill_null(matched, False), dtype=bool)
    return found


def _plain_schedules_pandas(frame: pd.DataFrame, today: date) -> np.ndarray:
    kind = frame["schedule_type"].str.lower()
    months_ok = _matches(frame["schedule_months"], f"(?i){MONTHS_LIST}")
    empty = {column: _bool(frame[column] == "") for column in SCHEDULE_COLUMNS[1:]}
    plain = (
        _bool(kind == "date")
        & _matches(frame["schedule_days"], DAYS_LIST)
        & months_ok
        & empty["schedule_weekdays"]
        & empty["schedule_dates"]
    ) | (
        _bool(kind == "day")
        & _matches(frame["schedule_weekdays"], f"(?i){WEEKDAYS_LIST}")
        & months_ok
        & empty["schedule_days"]
        & empty["schedule_dates"]
    )
    full = (
        _bool(kind == "full_date")
        & _matches(frame["schedule_dates"], DATES_LIST)
        & empty["schedule_days"]
        & empty["schedule_weekdays"]
        & empty["schedule_months"]
    )
    if full.any():
        plain[full] = _future_dates(frame["schedule_dates"][full], today)
    return plain


def _future_dates(cells: pd.Series, today: date) -> np.ndarray:
    """Per cell of DATES_LIST form: every date a calendar date, none before ``today``, few enough."""
    if pa is None:
        few = _bool(cells.str.count(r"\|") < MAX_FULL_DATES)
        parts = cells.str.split("|").explode()
        parsed = parse_dates(parts.astype(str))
        good = (parsed.notna() & (parsed >= pd.Timestamp(today))).groupby(level=0).all()
        return few & good.reindex(cells.index, fill_value=False).to_numpy(dtype=bool)
    lists = pc.split_pattern(_arrow(cells), pattern="|")
    few = np.asarray(pc.list_value_length(lists)) <= MAX_FULL_DATES
    parts = pc.dictionary_encode(pc.list_flatten(lists))  # a date recurs: each distinct one parsed once
    owner = np.asarray(pc.list_parent_indices(lists))
    iso = _calendar_dates(parts.dictionary, "%Y-%m-%d")
    dmy = _calendar_dates(parts.dictionary, "%d/%m/%Y")
    start = pa.scalar(datetime(today.year, today.month, today.day), pa.timestamp("s"))
    ok = _verdicts(pc.greater_equal(pc.coalesce(iso, dmy), start), np.asarray(parts.indices))
    bad = np.bincount(owner[~ok], minlength=len(cells)) > 0
    return few & ~bad


def _calendar_dates(texts, layout: str):
    """Arrow's strptime of ``texts`` in ``layout``, null where a text is not a calendar date in it: the
    kernel rolls an impossible day over (2027-02-30 reads as 2027-03-02), so a date must read back the
    same."""
    parsed = pc.strptime(texts, format=layout, unit="s", error_is_null=True)
    return pc.if_else(pc.equal(pc.strftime(parsed, format=layout), texts), parsed, None)


def _schedules(frame: pd.DataFrame, flags: _Flags, today: date, plain: np.ndarray | None = None) -> None:
    """The schedule cells' reasons; ``plain``: the rows known to be in plain form (the first pass's)."""
    plain = _plain_schedules(frame, today) if plain is None else plain
    rest = ~plain
    if not rest.any():
        return
    positions = np.flatnonzero(rest)
    if pa is None:
        cells = [frame[column][rest] for column in SCHEDULE_COLUMNS]
        combos = cells[0]
        for cell in cells[1:]:
            combos = combos + "\x1f" + cell
        codes, uniques = pd.factorize(combos)
        uniques = list(uniques)
    else:  # the five cells joined, then dictionary-encoded: one parse per distinct combination
        selected = pa.array(rest)
        cells = [_arrow(frame[column]).filter(selected).cast(pa.large_string()) for column in SCHEDULE_COLUMNS]
        encoded = pc.binary_join_element_wise(*cells, pa.scalar("\x1f", pa.large_string())).dictionary_encode()
        codes, uniques = np.asarray(encoded.indices), encoded.dictionary.to_pylist()
    faults: dict[tuple[str, str], list[int]] = {}
    for number, combo in enumerate(uniques):
        parts = combo.split("\x1f")
        if len(parts) != len(SCHEDULE_COLUMNS):  # a cell holds the separator: take the row's own cells
            row = positions[np.argmax(codes == number)]
            parts = [str(frame[column].iloc[row]) for column in SCHEDULE_COLUMNS]
        for column, reason in parse_schedule(*parts, today=today)[1]:
            faults.setdefault((column, reason), []).append(number)
    for (column, reason), members in faults.items():
        mask = np.zeros(len(frame), dtype=bool)
        mask[positions[np.isin(codes, members)]] = True
        flags.flag(column, mask, reason)


def _split(cell: str) -> list[str]:
    return [part for part in re.split(r"[|;,\s]+", cell.strip()) if part]


NOT_A_LIST = "Not a list of numbers or names separated by |."
NOT_DATES = "Not a date: YYYY-MM-DD or DD/MM/YYYY, separated by |."


def _numbers(cell: str, names: dict[str, int] | None = None) -> list[int]:
    """The cell's |-separated numbers (or ``names``); ValueError / KeyError when a part is neither."""
    return [int(part) if part.isdigit() or not names else names[part.lower()] for part in _split(cell)]


def _months(cell: str) -> list[int]:
    return list(range(1, 13)) if cell.strip().lower() == "all" else _numbers(cell)


def _full_dates(cell: str) -> list[date]:
    parsed = parse_dates(pd.Series(_split(cell), dtype=str))
    if parsed.isna().any():
        raise ValueError(NOT_DATES)
    return [day.date() for day in parsed]


def parse_schedule(
    kind: str, days: str, weekdays: str, months: str, dates: str, *, today: date
) -> tuple[dict | None, list[tuple[str, str]]]:
    """(Schedule.to_dict(), []) or (None, [(column at fault, reason), ...]): every cell of the schedule
    type's columns is checked on its own (with Schedule's own rules), so each bad cell gets its reason.
    The cells of another type's columns are ignored."""
    kind = kind.strip().lower()
    if kind not in ("date", "day", "full_date"):
        return None, [("schedule_type", "Use date, day or full_date." if kind else "Required.")]
    cells = {  # per column used by this type: a Schedule built with that cell (others known to be good)
        "full_date": {"schedule_dates": lambda: Schedule.full_dates(_full_dates(dates), first_day=today)},
        "date": {"schedule_days": lambda: Schedule.by_date(_numbers(days), [1])},
        "day": {"schedule_weekdays": lambda: Schedule.by_day(_numbers(weekdays, WEEKDAY_NAMES), [1])},
    }[kind]
    if kind != "full_date":
        cells["schedule_months"] = lambda: Schedule.by_date([1], _months(months))
    faults = []
    for column, build in cells.items():
        try:
            build()
        except ScheduleError as error:
            faults.append((column, str(error)))
        except (ValueError, KeyError):
            faults.append((column, NOT_DATES if column == "schedule_dates" else NOT_A_LIST))
    if faults:
        return None, faults
    if kind == "full_date":
        return Schedule.full_dates(_full_dates(dates), first_day=today).to_dict(), []
    if kind == "date":
        return Schedule.by_date(_numbers(days), _months(months)).to_dict(), []
    return Schedule.by_day(_numbers(weekdays, WEEKDAY_NAMES), _months(months)).to_dict(), []

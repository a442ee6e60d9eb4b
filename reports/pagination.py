"""Keyset pagination (T5): every page is one index range read of ``per_page + 1`` rows, however deep.

A page link carries a cursor: the sort key values and id of the row it continues from, so "Next" reads
``WHERE (key, id) < (last key, last id) ORDER BY key DESC, id DESC LIMIT n + 1`` and never counts or
skips rows (no OFFSET, no COUNT per page; the one total comes from the report's aggregate). "Last" reads
the order backwards. A cursor that does not fit the current sort (edited by hand, sort changed) or
whose values are not valid values of its columns (out of range, malformed) means the first page.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db.models import BooleanField, F, Func, QuerySet, Value

LAST = "last"


class RowCompare(Func):
    """``(a, b, ...) < (x, y, ...)`` (or ``>``): one row-value comparison, which PostgreSQL matches to a
    multi-column index and SQLite (3.15+) evaluates in order."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, fields: Sequence[str], values: Sequence, op: str):
        if op not in ("<", ">"):
            raise ValueError(op)
        self.width, self.op = len(fields), op
        super().__init__(*(F(name) for name in fields), *(Value(value) for value in values))

    def as_sql(self, compiler, connection, **extra_context):
        parts, params = [], []
        for expression in self.get_source_expressions():
            sql, sql_params = compiler.compile(expression)
            parts.append(sql)
            params.extend(sql_params)
        left, right = ", ".join(parts[: self.width]), ", ".join(parts[self.width :])
        return f"({left}) {self.op} ({right})", params


@dataclass
class Page:
    rows: list
    has_next: bool
    has_previous: bool
    next_cursor: str = ""
    previous_cursor: str = ""


def encode_cursor(sort: str, values: Sequence) -> str:
    raw = json.dumps([sort, *[str(value) for value in values]], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str, model, keys: Sequence[str]) -> list | None:
    """The key values of ``cursor`` as Python values, or None when it is not a cursor of ``sort``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, list) or len(data) != len(keys) + 1 or data[0] != sort:
        return None
    values = []
    for name, text in zip(keys, data[1:], strict=True):
        if not isinstance(text, str) or "\x00" in text:  # encode_cursor writes text; NUL fails PostgreSQL
            return None
        field = model._meta.get_field(name)
        try:
            value = field.to_python(text)
            field.run_validators(value)  # the column's range: an integer past 64 bits, a decimal's digits
        except (ValidationError, TypeError, ValueError, ArithmeticError):
            return None
        values.append(value)
    return values


class KeysetPaginator:
    """Pages of ``queryset`` ordered by ``keys`` (the last one unique, normally ``id``), all ascending or
    all descending (``descending``); ``sort`` names the order in cursors."""

    def __init__(self, queryset: QuerySet, keys: Sequence[str], *, descending: bool, sort: str, per_page: int):
        self.queryset, self.keys, self.descending = queryset, list(keys), descending
        self.sort, self.per_page = sort, per_page

    def _ordered(self, backwards: bool) -> QuerySet:
        descending = self.descending != backwards
        return self.queryset.order_by(*(f"-{key}" if descending else key for key in self.keys))

    def _after(self, queryset: QuerySet, values: list, backwards: bool) -> QuerySet:
        forward_op = "<" if self.descending else ">"
        op = forward_op if not backwards else ("<" if forward_op == ">" else ">")
        return queryset.filter(RowCompare(self.keys, values, op))

    def _cursor(self, row) -> str:
        return encode_cursor(self.sort, [_value(row, key) for key in self.keys])

    def page(self, params) -> Page:
        """The page ``params`` (a QueryDict) asks for: ``after=cursor``, ``before=cursor``, ``before=last``."""
        after, before = params.get("after", ""), params.get("before", "")
        model = self.queryset.model
        if before == LAST:
            rows = list(self._ordered(backwards=True)[: self.per_page + 1])
            more = len(rows) > self.per_page
            rows = rows[: self.per_page][::-1]
            return self._page(rows, has_next=False, has_previous=more)
        if before and (values := decode_cursor(before, self.sort, model, self.keys)) is not None:
            rows = list(self._after(self._ordered(backwards=True), values, backwards=True)[: self.per_page + 1])
            more = len(rows) > self.per_page
            rows = rows[: self.per_page][::-1]
            return self._page(rows, has_next=True, has_previous=more)
        queryset = self._ordered(backwards=False)
        started = False
        if after and (values := decode_cursor(after, self.sort, model, self.keys)) is not None:
            queryset, started = self._after(queryset, values, backwards=False), True
        rows = list(queryset[: self.per_page + 1])
        more = len(rows) > self.per_page
        return self._page(rows[: self.per_page], has_next=more, has_previous=started)

    def _page(self, rows: list, *, has_next: bool, has_previous: bool) -> Page:
        page = Page(rows=rows, has_next=has_next and bool(rows), has_previous=has_previous and bool(rows))
        if rows:
            page.next_cursor = self._cursor(rows[-1])
            page.previous_cursor = self._cursor(rows[0])
        return page


def _value(row, key: str):
    return row[key] if isinstance(row, dict) else getattr(row, key)


def page_links(params, page: Page) -> dict[str, str]:
    """Query strings of First / Previous / Next / Last for ``page``, keeping the other parameters."""
    base = params.copy()
    for name in ("after", "before"):
        base.pop(name, None)

    def link(**extra) -> str:
        query = base.copy()
        for name, value in extra.items():
            query[name] = value
        return "?" + query.urlencode() if hasattr(query, "urlencode") else "?" + urlencode(query)

    links = {}
    if page.has_previous:
        links["first"] = link()
        links["previous"] = link(before=page.previous_cursor)
    if page.has_next:
        links["next"] = link(after=page.next_cursor)
        links["last"] = link(before=LAST)
    return links

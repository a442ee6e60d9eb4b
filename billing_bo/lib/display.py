"""JSON data (audit entries, callback bodies) as pages show it: JSON, with times in the page's time zone."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from django.utils import timezone

# An ISO 8601 time stamp with a UTC offset, as ``datetime.isoformat()`` writes an aware time.
_AWARE_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def local_times(value: Any) -> Any:
    """``value`` with every aware ISO time stamp in it moved to the current (the merchant's) time zone."""
    if isinstance(value, dict):
        return {key: local_times(item) for key, item in value.items()}
    if isinstance(value, list):
        return [local_times(item) for item in value]
    if isinstance(value, str) and _AWARE_TIMESTAMP.match(value):
        return timezone.localtime(datetime.fromisoformat(value)).isoformat(timespec="seconds")
    return value


def pretty_json(value: Any) -> str:
    """Indented JSON, times local: a detail page's data."""
    return json.dumps(local_times(value), indent=2, ensure_ascii=False, default=str)


def compact_json(value: Any) -> str:
    """One line: a table cell's data. A plain string is shown as it is, without JSON's quotes."""
    value = local_times(value)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)

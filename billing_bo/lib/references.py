"""Billing and invoice numbers as the merchant gives them (upload files and the API): one rule."""

from __future__ import annotations

import re

REFERENCE = r"[A-Za-z0-9][A-Za-z0-9_./-]{0,63}"
NOT_A_REFERENCE = "Use letters, digits, - _ . / (at most 64)."


def is_reference(value: str) -> bool:
    return re.fullmatch(REFERENCE, value) is not None

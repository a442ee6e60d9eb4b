"""Mobile numbers in one form, so that 0812..., 62812... and +62 812-... are one number."""

from __future__ import annotations

import re

SEPARATORS = re.compile(r"[\s().-]")
COUNTRY = "+62"  # Indonesia: the national form 0812... is +62812...
LONGEST = 16  # "+" and 15 digits (E.164), the width of the phone columns


def normalise_phone(text: str) -> str:
    """The form phone numbers are stored and searched in: +62 and the national number without its 0.

    Separators (spaces, dots, dashes, brackets) are dropped; 0812..., 62812... and +62812... all become
    +62812.... Another country's +number, and anything too long to be an E.164 number, stay as typed
    (separators dropped)."""
    compact = SEPARATORS.sub("", text or "")
    for prefix in ("+62", "62", "0"):
        if compact.startswith(prefix):
            national = compact[len(prefix) :]
            if national.isdigit() and not national.startswith("0") and len(COUNTRY + national) <= LONGEST:
                return COUNTRY + national
            break
    return compact

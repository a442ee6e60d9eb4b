"""Card-number helpers with no Django models: Luhn, masking, the keyed fingerprint (DESIGN "Card data")."""

from __future__ import annotations

import hashlib
import hmac
import re

from django.conf import settings

# 13-19 digits unbroken, or grouped as card numbers are written: 4-4-4-(1..7) ("4111 1111 1111 1111",
# "4111-1111-1111-1111") or 4-6-(4..5) ("3782 822463 10005"). Other dashed digits (invoice numbers such as
# INV-00122-20261130) are left alone.
PAN_RUN = re.compile(r"(?<!\d)(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2}[ -]\d{1,7}|\d{4}[ -]\d{6}[ -]\d{4,5})(?!\d)")


def luhn_valid(number: str) -> bool:
    if not number.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def mask_pan(number: str) -> str:
    """First 6 and last 4 digits, the rest as *."""
    return f"{number[:6]}{'*' * (len(number) - 10)}{number[-4:]}"


def mask_pans_in_text(text: str) -> str:
    """Mask every Luhn-valid run of 13-19 digits (spaced or dashed too), so no full card number reaches a
    log, a callback or the audit log."""

    def masked(match: re.Match) -> str:
        digits = normalise_pan(match.group())
        return mask_pan(digits) if luhn_valid(digits) else match.group()

    return PAN_RUN.sub(masked, text)


def normalise_pan(number: str) -> str:
    return re.sub(r"[\s-]", "", number)


def fingerprint(number: str, key: str) -> str:
    return hmac.new(key.encode(), normalise_pan(number).encode(), hashlib.sha256).hexdigest()


def card_fingerprint(number: str) -> str:
    """The keyed fingerprint the back office keeps of a card number, and what a search by full card number
    matches: HMAC-SHA256 with ``CARD_FINGERPRINT_KEY``, a key kept out of the database (DESIGN "Card data")."""
    return fingerprint(number, settings.CARD_FINGERPRINT_KEY)

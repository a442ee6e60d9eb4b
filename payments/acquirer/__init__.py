"""The acquirer: the bank side of a charge (PRODUCT P1, DESIGN "The acquirer").

``get_acquirer()`` returns the implementation named by ``settings.ACQUIRER`` (a dotted path to a class
with no constructor arguments). The back office only ever talks to this interface.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from .base import (
    Acquirer,
    AcquirerError,
    AcquirerTimeout,
    AcquirerUnavailable,
    CardRejected,
    Outcome,
    TokenizedCard,
)

__all__ = [
    "Acquirer",
    "AcquirerError",
    "AcquirerTimeout",
    "AcquirerUnavailable",
    "CardRejected",
    "Outcome",
    "TokenizedCard",
    "get_acquirer",
]


@cache
def _acquirer(path: str) -> Acquirer:
    return import_string(path)()


def get_acquirer() -> Acquirer:
    return _acquirer(settings.ACQUIRER)

"""Signatures of the callbacks sent to merchants (P8): HMAC-SHA256 over ``timestamp.body``.
An empty key is refused: anyone could compute such a signature."""

from __future__ import annotations

import hashlib
import hmac


def sign(secret: str, timestamp: int, body: bytes) -> str:
    if not secret:
        raise ValueError("No signing secret: a callback is never signed with an empty key.")
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: int, body: bytes, signature: str) -> bool:
    return bool(secret) and hmac.compare_digest(sign(secret, timestamp, body), signature)

"""The raw upload at rest (DESIGN "Card data"): encrypted from the first byte written, so no full card
number is ever on disk, and read back whole into memory by the worker that checks or processes it.

AES-256-GCM (the ``cryptography`` package) in pieces of 1 MiB, so the web process never holds the whole
file: each piece has its own nonce (a random prefix and the piece's number) and is authenticated with
the file's header, its number and whether it is the last, so a piece changed, moved or cut off is
refused. The key is derived (HKDF) from ``CARD_FINGERPRINT_KEY``, which web and worker share and which is
kept out of the database; the file goes when processing is done, the file is refused or invalid, or the
batch expires (``services.expire_unprocessed``).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

MAGIC = b"BBO-BATCH-AESGCM-1\n"
PIECE = 1 << 20
_LENGTH = struct.Struct(">I")


class Unreadable(Exception):
    """The stored file is not one this key wrote (another key, damaged or cut off)."""


def _cipher() -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"batch raw uploads").derive(
        settings.CARD_FINGERPRINT_KEY.encode()
    )
    return AESGCM(key)


def _nonce_and_header(prefix: bytes, number: int, last: bool) -> tuple[bytes, bytes]:
    return prefix + _LENGTH.pack(number), MAGIC + prefix + _LENGTH.pack(number) + (b"\x01" if last else b"\x00")


def store(path: Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to ``path`` encrypted (owner-only), a piece at a time."""
    cipher, prefix = _cipher(), os.urandom(8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(MAGIC + prefix)

        def piece(data: bytes, number: int, last: bool) -> None:
            nonce, header = _nonce_and_header(prefix, number, last)
            sealed = cipher.encrypt(nonce, data, header)
            out.write(_LENGTH.pack(len(sealed)) + sealed)

        pending, number = bytearray(), 0
        for chunk in chunks:
            pending += chunk
            while len(pending) > PIECE:
                piece(bytes(pending[:PIECE]), number, last=False)
                del pending[:PIECE]
                number += 1
        piece(bytes(pending), number, last=True)


def is_encrypted(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(MAGIC)) == MAGIC


def load(path: Path) -> bytes:
    """The file's bytes as uploaded; ``FileNotFoundError`` when it is gone, ``Unreadable`` when damaged."""
    data = memoryview(path.read_bytes())
    if bytes(data[: len(MAGIC)]) != MAGIC:
        raise Unreadable("The stored file is not an encrypted upload.")
    cipher, prefix = _cipher(), bytes(data[len(MAGIC) : len(MAGIC) + 8])
    position, number, pieces = len(MAGIC) + 8, 0, []
    while position < len(data):
        if position + _LENGTH.size > len(data):
            raise Unreadable("The stored file is cut off.")
        (size,) = _LENGTH.unpack_from(data, position)
        sealed = data[position + 4 : position + 4 + size]
        position += 4 + size
        nonce, header = _nonce_and_header(prefix, number, last=position >= len(data))
        try:
            pieces.append(cipher.decrypt(nonce, sealed, header))
        except InvalidTag as error:
            raise Unreadable("The stored file is damaged or was written with another key.") from error
        number += 1
    if not number:
        raise Unreadable("The stored file is cut off.")
    return b"".join(pieces)

"""The raw upload at rest (issue #16.3): encrypted in pieces, read back whole, refused when changed."""

from __future__ import annotations

import pytest

from batch import rawfile

CONTENT = b"invoice_number,card_number\n" + b"INV-1,4111111111111111\n" * 200


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch):
    monkeypatch.setattr(rawfile, "PIECE", 1000)


def test_a_stored_upload_reads_back_as_uploaded_and_holds_no_card_number(tmp_path):
    path = tmp_path / "up" / "1.csv"
    rawfile.store(path, [CONTENT[:700], CONTENT[700:2500], CONTENT[2500:]])
    assert b"4111111111111111" not in path.read_bytes() and path.stat().st_mode & 0o777 == 0o600
    assert rawfile.load(path) == CONTENT


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-10],  # the last piece cut
        lambda data: data + b"\x00\x00",  # bytes after the last piece
        lambda data: data[: len(rawfile.MAGIC) + 8 + 4 + 1000 + 16],  # whole pieces, the last ones missing
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # one bit flipped
        lambda data: b"invoice_number\n",  # a plain file
    ],
)
def test_a_changed_or_cut_file_is_refused(tmp_path, damage):
    path = tmp_path / "1.csv"
    rawfile.store(path, [CONTENT])
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(rawfile.Unreadable):
        rawfile.load(path)


def test_a_file_written_with_another_key_is_refused(tmp_path, settings):
    path = tmp_path / "1.csv"
    rawfile.store(path, [CONTENT])
    settings.CARD_FINGERPRINT_KEY = "another-key"
    with pytest.raises(rawfile.Unreadable):
        rawfile.load(path)

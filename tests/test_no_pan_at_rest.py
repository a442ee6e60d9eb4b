"""TESTING 16-17: no full card number at rest, at most first 6 / last 4 on screens; search by full number
finds the row through the keyed fingerprint."""

from __future__ import annotations

import logging
import os
import re
import time
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.apps import apps
from django.conf import settings
from django.test import Client
from django.urls import reverse

from accounts.audit import Actor
from billing_bo.lib.cards import PAN_RUN, card_fingerprint, luhn_valid, normalise_pan
from payments import services as payments
from payments.models import Transaction
from recurring import scheduler
from tests.conftest import verified_client
from tests.recurring.conftest import make_billing

CARDS = ["4111111111111111", "5555555555554444", "4622010000000512", "4266010000000992"]


# Random values kept as hex: secrets of 32+ characters (TOTP keys, callback secrets, HMAC signatures) and the
# simulated bank's references (SIM + 16 hex). A 13-digit run inside one passes Luhn by chance now and then
# (CI once found 9476616551936 in a stored value); no card number is ever kept inside one.
RANDOM_HEX = re.compile(r"(?<![0-9A-Za-z])[0-9A-Fa-f]{32,}(?![0-9A-Za-z])|\bSIM[0-9A-F]{16}\b")


def luhn_runs(text: str) -> list[str]:
    return [run for run in PAN_RUN.findall(RANDOM_HEX.sub("<hex>", text)) if luhn_valid(normalise_pan(run))]


def every_stored_value() -> str:
    """Every value of every row, a line per row named by its model (so a failure says where)."""
    chunks = []
    for model in apps.get_models():
        for row in model._default_manager.values_list():
            chunks.append(f"{model._meta.label}: " + " | ".join(str(value) for value in row))
    return "\n".join(chunks)


def lines_with_luhn_runs(text: str) -> list[tuple[list[str], str]]:
    """Each line holding a Luhn-valid run, with the runs first (the line may be long)."""
    return [(runs, line) for line in text.splitlines() if (runs := luhn_runs(line))]


def test_no_card_number_in_the_database_logs_files_or_pages(merchant, alice, tmp_path, caplog, settings, monkeypatch):
    from payments import tasks

    monkeypatch.setattr(tasks.charge_many, "delay", lambda ids: None)
    caplog.set_level(logging.DEBUG)
    settings.SIMULATED_BANK_PATH = str(tmp_path / "bank.sqlite3")
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    merchant.callback_url = "https://alpha.example/hooks"  # deliveries are stored, not sent, here
    merchant.callback_secret = "merchant-signing-secret"
    merchant.save()
    with time_machine.travel(datetime(2026, 11, 30, 9, tzinfo=ZoneInfo("Asia/Jakarta")), tick=False):
        admin = verified_client(alice)
        # a hosted registration with a full number typed in
        link_page = admin.post(reverse("recurring:registration_link"), {"valid_days": "7"})
        path = re.search(r'data-testid="registration-url">http://testserver([^<]+)<', link_page.content.decode()).group(
            1
        )
        Client().post(
            path,
            {
                "customer_id": "C-1",
                "customer_name": "Sari",
                "email": "s@example.com",
                "phone": "+6281311112222",
                "card_number": CARDS[0],
                "expiry": "12/30",
                "cvv": "123",
                "holder_name": f"SARI {CARDS[1]}",
                "amount": "100000",
                "schedule-kind": "date",
                "schedule-days": ["1"],
                "schedule-months": ["12"],
            },
        )
        # billings charged by the scheduler, a void, a partial refund, a declined charge, a time-out
        for pan in CARDS:
            make_billing(merchant, pan=pan)
        scheduler.run_day(merchant, date(2026, 11, 30))
        for tx in Transaction.objects.all():
            payments.charge(tx.pk)
            payments.charge(tx.pk)
        actor = Actor.of(alice.user)
        approved = Transaction.objects.filter(status="success").order_by("pk")
        payments.void(actor, approved[0].pk, f"customer read {CARDS[0]} aloud")
        payments.refund(actor, approved[1].pk, approved[1].amount - 1, "partial")
        pages = "".join(
            admin.get(url).content.decode()
            for url in (
                reverse("payments:void") + "?billing_number=" + approved[0].billing_number,
                reverse("recurring:billings"),
                reverse("recurring:registrations"),
                reverse("accounts:activity"),
                reverse("payments:callbacks"),
            )
        )

    stored = every_stored_value()
    assert Transaction.objects.count() >= 4 and "411111******1111" in stored
    assert lines_with_luhn_runs(stored) == []
    assert luhn_runs("\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)) == []
    assert luhn_runs(pages) == [] and "411111******1111" in pages
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.startswith("bank.sqlite3") for p in files)
    for file in files:  # the simulated bank's own storage, mail, media: nothing either
        assert luhn_runs(file.read_bytes().decode("latin-1")) == [], file
    assert not Path(settings.MEDIA_ROOT).exists() or not any(Path(settings.MEDIA_ROOT).iterdir())


def test_a_full_card_number_finds_its_transactions_by_fingerprint(merchant, other_merchant):
    from tests.payments.conftest import make_transaction

    mine = make_transaction(merchant, pan="5555555555554444")
    theirs = make_transaction(other_merchant, pan="5555555555554444")
    make_transaction(merchant, pan="4111111111111111")
    print_key = card_fingerprint("5555-5555-5555-4444")
    assert list(Transaction.objects.filter(merchant=merchant, card_fingerprint=print_key)) == [mine]
    assert theirs.card_fingerprint == mine.card_fingerprint  # same card, same key: only the merchant filter separates
    assert settings.CARD_FINGERPRINT_KEY not in every_stored_value()


def test_the_pan_scan_skips_long_hex_secrets_and_still_finds_a_card_number_beside_them():
    secret = "ab" + "9476616551936" + "cd" * 10  # a Luhn-valid 13-digit run inside a 35-character hex value
    assert luhn_valid("9476616551936") and len(secret) >= 32
    assert luhn_runs(f"key {secret} end") == []
    assert luhn_runs("reference SIM9476616551936ABC") == []
    assert luhn_runs(f"key {secret} card 4111111111111111") == ["4111111111111111"]
    assert luhn_runs("name John4111111111111111") == ["4111111111111111"]  # glued to letters: still found


# Raw uploads (issue #16.3): a file waiting to be processed is kept encrypted, and not for ever --------


@pytest.fixture
def inline_batches(settings, tmp_path, monkeypatch):
    """Batch steps run in this process; uploads and the bank in tmp_path."""
    from batch import pipeline, tasks

    settings.BATCH_UPLOAD_DIR = tmp_path / "uploads"
    settings.SIMULATED_BANK_PATH = str(tmp_path / "bank.sqlite3")
    monkeypatch.setattr(tasks.validate_batch, "delay", pipeline.validate)
    monkeypatch.setattr(tasks.process_batch, "delay", pipeline.process)


def upload_cards(client, cards: list[str]):
    from batch.models import Batch
    from tests.batch.conftest import csv_bytes, rows_of, upload_file
    from tests.dates import card_expiry

    rows = rows_of("registration", len(cards), expiry=card_expiry(years=2))
    for row, pan in zip(rows, cards, strict=True):
        row["card_number"] = pan
    content = csv_bytes(rows, kind="registration")
    client.post(reverse("batch:registration"), {"file": upload_file("members.csv", content)})
    return Batch.objects.order_by("-pk").first()


@pytest.mark.django_db(transaction=True)
def test_a_validated_file_waiting_for_process_holds_no_card_number_at_rest_and_processes(
    alice, tmp_path, inline_batches
):
    from batch import services
    from recurring.models import Billing

    client = verified_client(alice)
    batch = upload_cards(client, CARDS)
    assert batch.status == "validated" and services.raw_path(batch).exists()
    files = [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.startswith("bank.sqlite3")]
    assert files and all(luhn_runs(file.read_bytes().decode("latin-1")) == [] for file in files)
    assert lines_with_luhn_runs(every_stored_value()) == []

    client.post(reverse("batch:process", args=[batch.pk]))
    batch.refresh_from_db()
    assert batch.status == "done" and not services.raw_path(batch).exists()
    assert sorted(Billing.objects.values_list("card_masked", flat=True)) == sorted(
        f"{pan[:6]}{'*' * 6}{pan[-4:]}" for pan in CARDS
    )


@pytest.mark.django_db(transaction=True)
def test_a_file_never_processed_expires_its_raw_file_goes_and_it_may_be_uploaded_again(alice, settings, inline_batches):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import AuditEntry
    from batch import services, tasks
    from batch.models import Batch

    settings.BATCH_EXPIRE_DAYS = 3
    client = verified_client(alice)
    batch = upload_cards(client, CARDS[:2])
    assert services.expire_unprocessed(now=timezone.now() + timedelta(days=3) - timedelta(minutes=1)) == 0
    with time_machine.travel(timezone.now() + timedelta(days=3, minutes=1)):
        tasks.janitor()  # beat's batch janitor expires them
    batch.refresh_from_db()
    assert batch.status == Batch.Status.EXPIRED and "Not processed within 3 days" in batch.message
    assert not services.raw_path(batch).exists()
    entry = AuditEntry.objects.get(action="batch.expired")
    assert (entry.merchant_id, entry.target_id) == (batch.merchant_id, str(batch.pk))
    client.post(reverse("batch:process", args=[batch.pk]))
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.EXPIRED
    again = upload_cards(client, CARDS[:2])
    assert again.pk != batch.pk and again.status == "validated"


@pytest.mark.django_db(transaction=True)
def test_the_janitor_deletes_raw_files_no_batch_waits_for_and_encrypts_old_plain_ones(
    alice, tmp_path, settings, inline_batches
):
    from batch import rawfile, services, tasks

    client = verified_client(alice)
    waiting = upload_cards(client, CARDS[:2])
    done = upload_cards(client, CARDS[2:])
    client.post(reverse("batch:process", args=[done.pk]))
    plain = b"billing_number,card_number\nGYM-1," + CARDS[0].encode() + b"\n"
    services.raw_path(waiting).write_bytes(plain)  # written before files were encrypted
    services.raw_path(done).write_bytes(plain)  # its delete failed
    orphan = services.raw_path(waiting).with_name(f"{waiting.pk + 100}-0123456789abcdef.csv")  # a crashed upload
    orphan.write_bytes(plain)
    writing = orphan.with_name(f"{waiting.pk + 101}-0123456789abcdef.csv")  # an upload not committed yet
    writing.write_bytes(plain)
    settled = time.time() - settings.BATCH_LEASE_SECONDS - 1
    for path in (services.raw_path(waiting), services.raw_path(done), orphan):
        os.utime(path, (settled, settled))
    now = time.time()  # this process's clock (faketime moves it; the file system stamps real time)
    os.utime(writing, (now, now))

    tasks.janitor()
    left = sorted(path for path in (tmp_path / "uploads").rglob("*") if path.is_file())
    assert left == sorted([services.raw_path(waiting), writing])
    assert luhn_runs(services.raw_path(waiting).read_bytes().decode("latin-1")) == []
    assert rawfile.load(services.raw_path(waiting)) == plain

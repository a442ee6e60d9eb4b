"""Uploading a batch and starting its steps (B1-B8; DESIGN "Batches"): what the web process does.

Upload stores the raw file under a generated name (never the user's: ``../`` in a name is harmless)
and a ``Batch`` with the file's SHA-256, unique per merchant (B7). Validation and processing run as
Celery tasks (``batch.pipeline``: pandas and Arrow are loaded by the workers only, not by every web
process) and report progress in ``rows_done``. A lease lets one worker at a time run a batch's step.
"""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError
from django.db import transaction as db
from django.db.models import F, Q
from django.db.models.functions import Least
from django.utils import timezone

from accounts import audit
from accounts.audit import Actor
from billing_bo.lib.cards import mask_pans_in_text
from billing_bo.lib.references import NOT_A_REFERENCE, is_reference
from billing_bo.uploads import file_too_large_message
from payments import services as payments
from payments.models import Transaction
from recurring.models import Billing
from recurring.scheduler import next_schedulable_day

from . import rawfile, reader
from .models import CAN_COME_AGAIN, Batch


class UploadRefused(Exception):
    """The upload is refused before anything is stored; the message says why."""


def take_lease(batch: Batch, status: str) -> bool:
    """One worker at a time runs a batch's step; a dead worker's lease expires and the janitor re-queues it.
    Each take counts as an attempt (the janitor gives up after BATCH_MAX_ATTEMPTS)."""
    now = timezone.now()
    return bool(
        Batch.objects.filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now), pk=batch.pk, status=status).update(
            lease_until=now + timedelta(seconds=settings.BATCH_LEASE_SECONDS), attempts=F("attempts") + 1
        )
    )


def renew_lease(batch: Batch, **fields) -> None:
    Batch.objects.filter(pk=batch.pk).update(
        lease_until=timezone.now() + timedelta(seconds=settings.BATCH_LEASE_SECONDS), **fields
    )


def janitor(now=None) -> int:
    """Re-queue the steps of batches whose worker died (lease expired): validation restarts, processing
    resumes after its committed chunks. A step that BATCH_MAX_ATTEMPTS workers took without finishing
    fails with a reason instead (a file that kills its worker would be re-queued forever). Returns the
    number re-queued."""
    from . import tasks

    now = now or timezone.now()
    stale = Batch.objects.filter(
        status__in=[Batch.Status.UPLOADED, Batch.Status.VALIDATING, Batch.Status.PROCESSING]
    ).filter(
        Q(lease_until__lt=now)
        | Q(lease_until__isnull=True, queued_at__lt=now - timedelta(seconds=settings.BATCH_LEASE_SECONDS))
    )
    count = 0
    for batch in stale.only("pk", "merchant_id", "status", "attempts", "content_hash", "file_name"):
        if batch.attempts >= settings.BATCH_MAX_ATTEMPTS:
            give_up(batch, f"The worker stopped {batch.attempts} times while {_DOING[batch.status]} this file")
            continue
        Batch.objects.filter(pk=batch.pk, status=batch.status).update(lease_until=None, queued_at=now)
        (tasks.process_batch if batch.status == Batch.Status.PROCESSING else tasks.validate_batch).delay(batch.pk)
        count += 1
    return count


_DOING = {
    Batch.Status.UPLOADED: "checking",
    Batch.Status.VALIDATING: "checking",
    Batch.Status.PROCESSING: "processing",
}


def give_up(batch: Batch, reason: str) -> str:
    """End a batch's step for good with ``reason``: checking ends as CHECK_FAILED (the raw file goes, the
    file may be uploaded again), processing as FAILED (committed chunks stay; Process resumes after them)."""
    if batch.status == Batch.Status.PROCESSING:
        status, advice = Batch.Status.FAILED, "Rows of committed chunks stay created. Process again to resume."
    else:
        status, advice = Batch.Status.CHECK_FAILED, "Nothing was stored: upload the file again."
    counts = {"total_rows": 0, "rows_done": 0} if status == Batch.Status.CHECK_FAILED else {}
    Batch.objects.filter(pk=batch.pk, status=batch.status).update(
        status=status, message=f"{reason}. {advice}", lease_until=None, **counts
    )
    if status == Batch.Status.CHECK_FAILED:
        from .models import BatchRow

        BatchRow.objects.filter(merchant_id=batch.merchant_id, batch_id=batch.pk).delete()
        raw_path(batch).unlink(missing_ok=True)
    return status


def expire_unprocessed(now=None) -> int:
    """Batches checked but not processed within BATCH_EXPIRE_DAYS of their upload (ready, or failed while
    processing) expire: their raw file (card numbers, encrypted) is deleted and the page says to upload
    the file again. Returns how many expired."""
    now = now or timezone.now()
    days = settings.BATCH_EXPIRE_DAYS
    old = Batch.objects.filter(
        status__in=[Batch.Status.VALIDATED, Batch.Status.FAILED], uploaded_at__lt=now - timedelta(days=days)
    )
    count = 0
    for batch in old.select_related("merchant"):
        done = " Rows of committed chunks stay created." if batch.chunks_done else ""
        expired = Batch.objects.filter(pk=batch.pk, status=batch.status).update(
            status=Batch.Status.EXPIRED,
            lease_until=None,
            message=f"Not processed within {days} days of the upload: the file was deleted.{done} "
            "Upload it again to process it.",
        )
        if expired:
            raw_path(batch).unlink(missing_ok=True)
            audit.record(
                "batch.expired",
                merchant=batch.merchant,
                target=batch,
                data={"file_name": batch.file_name, "days": days},
            )
            count += 1
    return count


WAITING_FOR_THE_FILE = [
    Batch.Status.UPLOADED,
    Batch.Status.VALIDATING,
    Batch.Status.VALIDATED,
    Batch.Status.PROCESSING,
    Batch.Status.FAILED,
]


def sweep_raw_files() -> int:
    """Delete the raw files no batch waits for (left by a crash or a failed delete: no file with card
    numbers stays for ever), and encrypt in place those of waiting batches written before files were
    encrypted. Files younger than a lease are left alone (an upload may be writing one and not have
    committed its batch yet). Returns how many files were deleted."""
    root = Path(settings.BATCH_UPLOAD_DIR)
    settled = time.time() - settings.BATCH_LEASE_SECONDS
    files = {
        path: path.name.split("-", 1)[0]
        for path in root.glob("*/*")
        if path.is_file() and path.stat().st_mtime < settled
    }
    ids = [int(pk) for pk in files.values() if pk.isdigit()]
    waiting = {
        raw_path(batch)
        for batch in Batch.objects.filter(pk__in=ids, status__in=WAITING_FOR_THE_FILE).only(
            "pk", "merchant_id", "content_hash", "file_name"
        )
    }
    deleted = 0
    for path in files:
        if path not in waiting:
            path.unlink(missing_ok=True)
            deleted += 1
        elif not rawfile.is_encrypted(path):
            encrypted = path.with_name(f".{path.name}.new")
            rawfile.store(encrypted, [path.read_bytes()])
            encrypted.replace(path)  # at once: a worker reading it gets one file or the other
    return deleted


def raw_path(batch: Batch) -> Path:
    return (
        Path(settings.BATCH_UPLOAD_DIR)
        / f"{batch.merchant_id}"
        / f"{batch.pk}-{batch.content_hash[:16]}{Path(batch.file_name).suffix.lower()}"
    )


def upload(actor: Actor, uploaded_file, kind: str) -> Batch:
    """Store the file and its Batch for ``actor``'s merchant, refusing a file too large, of the wrong type or
    seen before (B7, B8)."""
    if uploaded_file.size > settings.BATCH_MAX_BYTES:
        raise UploadRefused(file_too_large_message())  # the web's upload handler drops it before (billing_bo.uploads)
    if uploaded_file.size == 0:
        raise UploadRefused("The file is empty.")
    head = uploaded_file.read(16)
    uploaded_file.seek(0)
    try:
        reader.detect_format(uploaded_file.name, head)
    except reader.FileRejected as refusal:
        raise UploadRefused(str(refusal)) from refusal
    digest = hashlib.sha256()
    for chunk in uploaded_file.chunks():
        digest.update(chunk)
    content_hash = digest.hexdigest()
    merchant = actor.merchant
    first = (
        Batch.objects.filter(merchant=merchant, content_hash=content_hash)
        .exclude(status__in=CAN_COME_AGAIN)
        .select_related("uploaded_by")
        .first()
    )
    if first is not None:
        who = first.uploaded_by.username if first.uploaded_by else "someone"
        when = timezone.localtime(first.uploaded_at, merchant.tzinfo)
        raise UploadRefused(
            f"This file was uploaded already on {when:%Y-%m-%d %H:%M} by {who} ({first.file_name}). "
            "The same file is never processed twice."
        )
    name = Path(uploaded_file.name).name[:255] or "upload.csv"
    with db.atomic():
        batch = Batch.objects.create(
            merchant=merchant,
            kind=kind,
            file_name=name,
            content_hash=content_hash,
            uploaded_by=actor.user,
            queued_at=timezone.now(),
        )
        rawfile.store(raw_path(batch), uploaded_file.chunks())  # encrypted: no card number on disk
        audit.record(
            "batch.uploaded",
            actor=actor,
            target=batch,
            data={"file_name": name, "kind": kind, "size": uploaded_file.size},
        )

        def queue():
            from . import tasks

            tasks.validate_batch.delay(batch.pk)

        db.on_commit(queue)
    return batch


INVALID_ROWS = "This file has invalid rows: fix them and upload the file again (RE UPLOAD FILE)."


def process_refused_because(batch: Batch) -> str:
    """Why Process cannot start ``batch`` now, or "" when it may (``start_processing`` still decides under
    its conditional update)."""
    if batch.invalid_rows:
        return INVALID_ROWS
    if batch.status not in (Batch.Status.VALIDATED, Batch.Status.FAILED):
        return f"{batch.file_name} cannot be processed now: it is {batch.get_status_display().lower()}."
    return ""


def start_processing(actor: Actor, batch: Batch) -> bool:
    """Process (B2): only a clean file, once; a failed batch resumes after its committed chunks."""
    done = Least(F("chunks_done") * settings.BATCH_CHUNK, F("total_rows"))  # the progress starts there
    started = Batch.objects.filter(
        pk=batch.pk, merchant_id=actor.merchant.pk, status__in=[Batch.Status.VALIDATED, Batch.Status.FAILED]
    ).update(
        status=Batch.Status.PROCESSING,
        message="",
        lease_until=None,
        queued_at=timezone.now(),
        attempts=0,
        rows_done=done,
    )
    if not started:
        return False
    audit.record(
        "batch.processed",
        actor=actor,
        target=batch,
        data={"file_name": batch.file_name, "rows": batch.total_rows, "resumed_after_chunks": batch.chunks_done},
    )

    def queue():
        from . import tasks

        tasks.process_batch.delay(batch.pk)

    db.on_commit(queue)
    return True


class PaymentRefused(Exception):
    """A single payment cannot be created as asked; the message says why."""


def create_single_payment(
    actor: Actor,
    *,
    card: dict,
    invoice_number: str,
    amount,
    execute_date,
    billing_number: str = "",
    customer_id: str = "",
    description: str = "",
) -> Transaction:
    """One single payment (B5) of ``actor``'s merchant, charged on its execute date, with a Batch Transaction
    row's rules: an invoice number not used before, a billing number of the merchant's billings or a customer
    ID, an amount within the merchant's limits, an execute date from today on. ``card``: the arguments of
    ``payments.tokenize_card`` (raises ``CardRejected``). Due today after today's scheduler run: queued now,
    as a processed file's rows are."""
    merchant = actor.merchant
    today = merchant.local_today()
    mine = Transaction.objects.filter(merchant_id=merchant.pk)
    if refusal := _single_payment_refused_because(merchant, mine, invoice_number, billing_number, customer_id):
        raise PaymentRefused(refusal)
    if refusal := merchant.charge_amount_refused_because(amount):
        raise PaymentRefused(refusal)
    if execute_date < today:
        raise PaymentRefused(f"The execute date must be today ({today:%Y-%m-%d}) or later.")
    tokens = payments.tokenize_card(**card)
    try:
        with db.atomic():
            tx = Transaction.objects.create(
                merchant=merchant,
                invoice_number=invoice_number,
                billing_number=billing_number,
                customer_id=customer_id,
                kind=Transaction.Kind.SINGLE_PAYMENT,
                description=mask_pans_in_text(description),
                amount=amount,
                execute_date=execute_date,
                **tokens,
            )
            audit.record(
                "payments.single_payment.created",
                actor=actor,
                target=tx,
                data={
                    "invoice_number": invoice_number,
                    "billing_number": billing_number,
                    "customer_id": customer_id,
                    "amount": str(amount),
                    "execute_date": execute_date.isoformat(),
                    "card": tx.card_masked,
                },
            )
            if execute_date == today and next_schedulable_day(merchant) > today:
                payments.enqueue_charges([tx.pk])
    except IntegrityError as exc:  # the same invoice number created meanwhile
        raise PaymentRefused(f"The invoice number {invoice_number} is used already.") from exc
    return tx


def _single_payment_refused_because(merchant, mine, invoice_number: str, billing_number: str, customer_id: str) -> str:
    if not is_reference(invoice_number):
        return f"Invoice number: {NOT_A_REFERENCE}"
    if mine.filter(invoice_number=invoice_number).exists():
        return f"The invoice number {invoice_number} is used already."
    if not billing_number and not customer_id:
        return "Give a billing_number or a customer_id."
    if billing_number and not Billing.objects.filter(merchant_id=merchant.pk, billing_number=billing_number).exists():
        return "No billing has this number: correct it, or leave it empty and give the customer_id."
    return ""

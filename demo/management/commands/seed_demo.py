"""The demo merchant of the embedded default: created once, kept on every later run (``make run``).

Its transactions are charged through the simulated bank like any other, so the demo shows real
approvals, declines with the bank's messages and issuers.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Merchant, User
from accounts.services import create_device
from payments import services as payments
from payments.acquirer import CardRejected
from payments.models import Transaction
from recurring.models import Billing
from recurring.schedule import Schedule
from recurring.services import refresh_next_date

# Test cards of the simulated bank (docs/simulated-bank.md): holders are invented.
# Demo cards expire this many years after the day the demo is made (December), valid whenever it runs.
CARD_YEARS = 4

DEMO_CARDS = (
    ("4111111111111111", "Andi Wijaya"),
    ("5555555555554444", "Siti Rahmawati"),
    ("4365010000000000", "Budi Hartono"),
    ("5266010000000007", "Dewi Lestari"),
    ("4005010000000006", "Rina Kusuma"),
    ("3568010000000007", "Agus Salim"),
    ("4511010000000052", "Hendra Gunawan"),
    ("4622010000000512", "Maya Putri"),
    ("4788010000000546", "Joko Susilo"),
    ("4700010000000145", "Lina Marlina"),
)
DECLINING = ["4511010000000052", "4622010000000512", "4788010000000546", "4700010000000145"]

CARD_FIELDS = (
    "card_token",
    "card_masked",
    "card_fingerprint",
    "card_expiry",
    "card_issuer",
    "card_brand",
    "holder_name",
    "holder_phone",
)


def card_of(billing) -> dict:
    return {field: getattr(billing, field) for field in CARD_FIELDS}


DEMO_USERS = (
    # user name, password, admin, menus
    ("admin", "demo-admin-pass", True, []),
    ("staff", "demo-staff-pass", False, ["batch_transaction", "registration", "batch_report", "all_report"]),
)


class Command(BaseCommand):
    help = "Create the demo merchant with an admin and a staff user (idempotent) and print how to sign in."

    @transaction.atomic
    def handle(self, *args, **options):
        merchant, _ = Merchant.objects.get_or_create(code="demo", defaults={"name": "Demo Fitness Club"})
        for username, password, is_admin, menus in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "merchant": merchant,
                    "email": f"{username}@demo.example",
                    "first_name": username.title(),
                    "last_name": "Demo",
                    "mobile_number": "+6281200000000",
                    "is_merchant_admin": is_admin,
                    "menu_access": menus,
                },
            )
            if created:
                user.set_password(password)
                user.save(update_fields=["password"])
            if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
                create_device(user, confirmed=True)

        if not Billing.objects.filter(merchant=merchant).exists():
            self.seed_billings(merchant)
        if not Transaction.objects.filter(merchant=merchant).exists():
            logging.getLogger("payments").setLevel(logging.WARNING)  # one line per charge is noise here
            created = self.seed_transactions(merchant)
            self.stdout.write(f"Demo transactions: {created} charged through the simulated bank.")

        self.stdout.write(self.style.SUCCESS(f"Demo merchant: {merchant.name}"))
        for username, password, is_admin, _ in DEMO_USERS:
            role = "merchant admin" if is_admin else "staff"
            self.stdout.write(f"  {username:<6} password {password:<16} ({role})")
        self.stdout.write("  Current code: .venv/bin/python manage.py totp_code USERNAME")

    def seed_transactions(self, merchant: Merchant) -> int:
        """Two months of charges, mostly approved, with each kind of decline; a few due in the coming days."""
        rng = random.Random(20261125)
        cards = {}
        expiry_year = merchant.local_today().year + CARD_YEARS
        for pan, holder in DEMO_CARDS:
            try:
                cards[pan] = payments.tokenize_card(
                    pan, 12, expiry_year, "1234" if pan.startswith("37") else "123", holder, "+6281298765432"
                )
            except CardRejected:  # pragma: no cover - the table holds valid cards
                continue
        approving = [pan for pan in cards if pan not in DECLINING]
        today = merchant.local_today()
        tz = merchant.tzinfo
        count = 0
        billings = list(Billing.objects.filter(merchant=merchant, billing_type=Billing.Type.RECURRING))
        used: set[tuple[int, object]] = set()
        for days_ago in range(62, -4, -1):
            day = today - timedelta(days=days_ago)
            # today's first two are a decline and an approval, so "this month" has both even on the 1st
            forced = {0: True, 1: False} if day == today else {}
            for n in range(rng.randint(3, 7)):
                count += 1
                declines = forced.get(n, rng.random() < 0.22)
                pan = rng.choice(DECLINING if declines else approving)
                billing = rng.choice(billings) if n % 3 and day <= today and n not in forced else None
                if billing is not None and (billing.pk, day) in used:
                    billing = None
                kind = Transaction.Kind.RECURRING if billing else Transaction.Kind.SINGLE_PAYMENT
                member = rng.randint(100, 140)
                if billing is not None:
                    used.add((billing.pk, day))
                tx = Transaction.objects.create(
                    merchant=merchant,
                    invoice_number=f"{billing.billing_number}-{day:%Y%m%d}"
                    if billing
                    else f"INV-{day:%Y%m%d}-{n + 1:03d}",
                    billing=billing,
                    billing_number=billing.billing_number if billing else f"GYM-{member:04d}",
                    customer_id=billing.customer_id if billing else f"CUST-{member:04d}",
                    kind=kind,
                    description="Monthly membership" if billing else "Personal training pack",
                    amount=billing.amount
                    if billing
                    else Decimal(rng.choice([150_000, 250_000, 350_000, 499_000, 1_250_000])),
                    execute_date=day,
                    **(card_of(billing) if billing else cards[pan]),
                )
                if day > today:
                    continue  # scheduled: the scheduler charges it on its day
                payments.charge(tx.pk)
                moment = timezone.make_aware(datetime.combine(day, time(6, rng.randint(0, 59))), tz)
                Transaction.objects.filter(pk=tx.pk).update(created_at=moment, claimed_at=moment, processed_at=moment)
        return count

    def seed_billings(self, merchant: Merchant) -> None:
        """Registrations of every schedule type and both types, so Manage Recurring shows real next dates."""
        today = merchant.local_today()
        plans = [
            (
                "GYM-0001",
                "Andi Wijaya",
                "4111111111111111",
                499_000,
                Schedule.by_date([1], range(1, 13)),
                "recurring",
                "batch",
            ),
            (
                "GYM-0002",
                "Siti Rahmawati",
                "5555555555554444",
                350_000,
                Schedule.by_date([5, 20], range(1, 13)),
                "recurring",
                "batch",
            ),
            (
                "GYM-0003",
                "Budi Hartono",
                "4365010000000000",
                150_000,
                Schedule.by_day([0], range(1, 13)),
                "recurring",
                "hosted",
            ),
            (
                "GYM-0004",
                "Dewi Lestari",
                "5266010000000007",
                250_000,
                Schedule.by_day([1, 4], [1, 4, 7, 10]),
                "recurring",
                "batch",
            ),
            (
                "GYM-0005",
                "Rina Kusuma",
                "4005010000000006",
                1_250_000,
                Schedule.full_dates([today + timedelta(days=d) for d in (3, 33, 63)], first_day=today),
                "recurring",
                "hosted",
            ),
            (
                "GYM-0006",
                "Agus Salim",
                "3568010000000007",
                499_000,
                Schedule.by_date([15], range(1, 13)),
                "reminder",
                "batch",
            ),
            (
                "GYM-0007",
                "Maya Putri",
                "4622010000000512",
                350_000,
                Schedule.by_day([2], range(1, 13)),
                "recurring",
                "batch",
            ),
            (
                "GYM-0008",
                "Joko Susilo",
                "4511010000000052",
                150_000,
                Schedule.by_date([28], [2, 5, 8, 11]),
                "recurring",
                "hosted",
            ),
        ]
        for number, name, pan, amount, schedule, billing_type, source in plans:
            billing = Billing(
                merchant=merchant,
                billing_number=number,
                customer_id=number.replace("GYM", "CUST"),
                customer_name=name,
                email=f"{name.split()[0].lower()}@example.com",
                phone="+6281298765432",
                amount=Decimal(amount),
                billing_type=billing_type,
                source=source,
                **payments.tokenize_card(pan, 12, today.year + CARD_YEARS, "123", name, "+6281298765432"),
            )
            billing.schedule = schedule
            refresh_next_date(billing)
            billing.save()

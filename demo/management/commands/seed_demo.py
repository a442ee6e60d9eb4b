"""The demo merchant of the embedded default: created once, kept on every later run (``make run``).

Its history is made by the product's rules, day by day over the last two months: each billing is charged
only on its schedule's execute dates (``recurring/schedule.py``) from the day it was registered, a soft
decline is retried on the merchant's retry policy days (``recurring/retries.py``), and every charge goes
through the simulated bank like any other, so the demo shows real approvals, declines with the bank's
messages and issuers. Each day is recorded as a scheduler run, so the scheduler starts after today.

Card updates (issue #19): a few cards run out at the end of this month (Cards expiring on the dashboard,
"card expiring" on Manage Recurring; their holders are e-mailed a card update link into var/mail/), and one
billing's card is declined as expired (54) today, then updated by its holder on the hosted card update
page's service, so its charge is made again on the new card: the dashboard's Recovered.
"""

from __future__ import annotations

import logging
import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Merchant, User
from accounts.services import create_device
from payments import services as payments
from payments.acquirer import CardRejected
from payments.models import Transaction
from recurring import card_notices, card_updates
from recurring.models import Billing, CardUpdateLink, SchedulerRun
from recurring.retries import retry_by_policy
from recurring.schedule import Schedule
from recurring.scheduler import invoice_number
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
HISTORY_DAYS = 62  # two months of charges before today
EXPIRING = ("GYM-0002", "GYM-0004", "GYM-0005")  # their cards run out at the end of this month
RECOVERED = "GYM-0009"  # declined as expired (54) today, then its card is updated and the charge recovered


def demo_phone(rng: random.Random) -> str:
    """An invented Indonesian mobile number: +628 and 9-10 more digits."""
    return (
        "+628"
        + str(rng.choice([11, 12, 13, 21, 22, 52, 53, 57, 77, 78, 81, 95, 96]))
        + str(rng.randrange(10**6, 10**8))
    )


def at(merchant: Merchant, day: date, rng: random.Random, hour: int = 6):
    return timezone.make_aware(datetime.combine(day, time(hour, rng.randint(0, 59))), merchant.tzinfo)


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
            created = self.seed_history(merchant)
            self.stdout.write(f"Demo transactions: {created} charged through the simulated bank.")

        self.stdout.write(self.style.SUCCESS(f"Demo merchant: {merchant.name}"))
        for username, password, is_admin, _ in DEMO_USERS:
            role = "merchant admin" if is_admin else "staff"
            self.stdout.write(f"  {username:<6} password {password:<16} ({role})")
        self.stdout.write("  Current code: .venv/bin/python manage.py totp_code USERNAME")

    def seed_history(self, merchant: Merchant) -> int:
        """Each day of the last two months as the scheduler would have run it, then a few single payments
        due in the coming days. Returns the number of transactions."""
        rng = random.Random(20261125)
        expiry_year = merchant.local_today().year + CARD_YEARS
        cards = {}
        for pan, holder in DEMO_CARDS:
            try:
                cvv = "1234" if pan.startswith("37") else "123"
                cards[pan] = payments.tokenize_card(pan, 12, expiry_year, cvv, holder, demo_phone(rng))
            except CardRejected:  # pragma: no cover - the table holds valid cards
                continue
        today = merchant.local_today()
        billings = list(Billing.objects.filter(merchant=merchant, billing_type=Billing.Type.RECURRING))
        for offset in range(HISTORY_DAYS, -1, -1):
            self.run_past_day(merchant, today - timedelta(days=offset), billings, cards, rng)
        for ahead in range(1, 4):  # scheduled: the scheduler charges them on their day
            for n in range(rng.randint(1, 3)):
                self.single_payment(merchant, today + timedelta(days=ahead), n, cards, rng, declines=False)
        for billing in Billing.objects.filter(merchant=merchant):
            refresh_next_date(billing)  # today's run is recorded: from the next execute date on
            billing.save(update_fields=["next_execute_date", "updated_at"])
        self.recover_declined(merchant, today, rng)
        card_notices.notify_expiring(merchant)  # their holders' e-mails in var/mail/, as the hourly task sends
        return Transaction.objects.filter(merchant=merchant).count()

    def run_past_day(self, merchant: Merchant, day: date, billings, cards: dict, rng: random.Random) -> None:
        """What the scheduler does on ``day``: the executions of the billings due that day (registered by
        then), the day's single payments, the retries due that day; all charged, and the run recorded."""
        executions = [
            self.execution(billing, day)
            for billing in billings
            if billing.schedule.is_execute_date(day) and billing.created_at.astimezone(merchant.tzinfo).date() <= day
        ]
        # today's first two single payments are a decline and an approval, so "this month" has both on the 1st
        forced = [True, False] if day == merchant.local_today() else []
        singles = [
            self.single_payment(merchant, day, n, cards, rng, declines=forced[n] if n < len(forced) else None)
            for n in range(rng.randint(2, 5))
        ]
        retries = list(
            Transaction.objects.filter(merchant=merchant, status=Transaction.Status.SCHEDULED, next_retry_date=day)
        )
        for tx in executions + singles + retries:
            self.charge_on(merchant, tx, day, rng)
        moment = at(merchant, day, rng)
        SchedulerRun.objects.create(
            merchant=merchant,
            day=day,
            started_at=moment,
            finished_at=moment + timedelta(seconds=1),
            due=len(executions),
            charged=len(executions),
            single_payments=len(singles),
            retries=len(retries),
        )

    def execution(self, billing: Billing, day: date) -> Transaction:
        """The billing's execution on ``day``, as the scheduler inserts it."""
        return Transaction.objects.create(
            merchant_id=billing.merchant_id,
            billing=billing,
            invoice_number=invoice_number(billing.billing_number, day),
            billing_number=billing.billing_number,
            customer_id=billing.customer_id,
            kind=Transaction.Kind.RECURRING,
            description=f"Recurring {billing.billing_number} {day:%Y-%m-%d}",
            amount=billing.amount,
            execute_date=day,
            **card_of(billing),
        )

    def single_payment(self, merchant, day: date, n: int, cards: dict, rng: random.Random, declines) -> Transaction:
        declines = rng.random() < 0.22 if declines is None else declines
        pan = rng.choice([pan for pan in cards if (pan in DECLINING) == declines])
        member = rng.randint(100, 140)
        return Transaction.objects.create(
            merchant=merchant,
            invoice_number=f"INV-{day:%Y%m%d}-{n + 1:03d}",
            billing_number=f"GYM-{member:04d}",
            customer_id=f"CUST-{member:04d}",
            kind=Transaction.Kind.SINGLE_PAYMENT,
            description="Personal training pack",
            amount=Decimal(rng.choice([150_000, 250_000, 350_000, 499_000, 1_250_000])),
            execute_date=day,
            **cards[pan],
        )

    def charge_on(self, merchant: Merchant, tx: Transaction, day: date, rng: random.Random) -> None:
        """Charge ``tx`` through the bank as on ``day``; a soft decline gets its retry by the merchant's policy
        as it would have on that day (the receiver, on today's date, leaves a past failure failed)."""
        retry = tx.next_retry_date is not None
        payments.charge(tx.pk)
        moment = at(merchant, day, rng)
        stamps = {"claimed_at": moment, "processed_at": moment} | ({} if retry else {"created_at": moment})
        Transaction.objects.filter(pk=tx.pk).update(**stamps)
        tx.refresh_from_db()
        retry_by_policy(tx, tried=day)

    def recover_declined(self, merchant: Merchant, today: date, rng: random.Random) -> None:
        """The billing whose card was declined as expired today: its holder enters a new card on the card
        update link, and the charge is made again on it (a new attempt), as the worker would."""
        billing = Billing.objects.get(merchant=merchant, billing_number=RECOVERED)
        declined = Transaction.objects.get(billing=billing, execute_date=today, status=Transaction.Status.FAILED)
        link, _ = card_updates.create_link(billing, CardUpdateLink.Reason.DECLINED)
        new_card = payments.tokenize_card("5555555555554444", 12, today.year + CARD_YEARS, "123", billing.customer_name)
        card_updates.apply_new_card(link, new_card | {"holder_phone": billing.holder_phone})
        declined.refresh_from_db()
        self.charge_on(merchant, declined, today, rng)

    def seed_billings(self, merchant: Merchant) -> None:
        """Registrations of every schedule type and both types, registered over the last months, so Manage
        Recurring shows real next dates and the history starts at each one's registration."""
        today = merchant.local_today()
        rng = random.Random(20261124)
        plans = demo_plans(today)
        for number, name, pan, amount, schedule, billing_type, source, days_ago in plans:
            phone = demo_phone(rng)
            # a few cards run out at the end of this month; the others years from now
            month, year = (today.month, today.year) if number in EXPIRING else (12, today.year + CARD_YEARS)
            billing = Billing(
                merchant=merchant,
                billing_number=number,
                customer_id=number.replace("GYM", "CUST"),
                customer_name=name,
                email=f"{name.split()[0].lower()}@example.com",
                phone=phone,
                amount=Decimal(amount),
                billing_type=billing_type,
                source=source,
                created_at=at(merchant, today - timedelta(days=days_ago), rng, hour=10),
                **payments.tokenize_card(pan, month, year, "123", name, phone),
            )
            billing.schedule = schedule
            refresh_next_date(billing)
            billing.save()


class Plan(NamedTuple):
    """A demo registration: its billing, card, schedule, type, source and how long ago it was registered."""

    number: str
    holder: str
    pan: str
    amount: int
    schedule: Schedule
    billing_type: str
    source: str
    days_ago: int


def demo_plans(today: date) -> list[Plan]:
    """The demo's registrations, every schedule type and both billing types (a Full Date one around today)."""
    every_month = range(1, 13)
    around_today = [today + timedelta(days=d) for d in (-20, 3, 33)]
    return [
        Plan("GYM-0001", "Andi Wijaya", "4111111111111111", 499_000, Schedule.by_date([1], every_month), "recurring", "batch", 150),
        Plan("GYM-0002", "Siti Rahmawati", "5555555555554444", 350_000, Schedule.by_date([5, 20], every_month), "recurring", "batch", 120),
        Plan("GYM-0003", "Budi Hartono", "4365010000000000", 150_000, Schedule.by_day([0], every_month), "recurring", "hosted", 75),
        Plan("GYM-0004", "Dewi Lestari", "5266010000000007", 250_000, Schedule.by_day([1, 4], every_month), "recurring", "batch", 45),
        Plan("GYM-0005", "Rina Kusuma", "4005010000000006", 1_250_000, Schedule.full_dates(around_today), "recurring", "hosted", 30),
        Plan("GYM-0006", "Agus Salim", "3568010000000007", 499_000, Schedule.by_date([15], every_month), "reminder", "batch", 95),
        Plan("GYM-0007", "Maya Putri", "4622010000000512", 350_000, Schedule.by_day([2], every_month), "recurring", "batch", 60),
        Plan("GYM-0008", "Joko Susilo", "4511010000000052", 150_000, Schedule.by_date([28], every_month), "recurring", "hosted", 40),
        Plan(RECOVERED, "Rudi Hartawan", "4788010000000546", 299_000, Schedule.full_dates([today, today + timedelta(days=30)]), "recurring", "hosted", 20),
    ]  # fmt: skip

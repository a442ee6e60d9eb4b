"""The demo merchant of the embedded default: created once, kept on every later run (``make run``)."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Merchant, User
from accounts.services import create_device

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

        self.stdout.write(self.style.SUCCESS(f"Demo merchant: {merchant.name}"))
        for username, password, is_admin, _ in DEMO_USERS:
            role = "merchant admin" if is_admin else "staff"
            self.stdout.write(f"  {username:<6} password {password:<16} ({role})")
        self.stdout.write("  Current code: .venv/bin/python manage.py totp_code USERNAME")

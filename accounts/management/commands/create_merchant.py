"""O2: create a merchant with its first admin. Prints the admin's one-time sign-in details."""

from __future__ import annotations

import io
import secrets

import qrcode
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import audit
from accounts.models import Merchant, User
from accounts.services import create_device


class Command(BaseCommand):
    help = "Create a merchant and its first admin user (with an authenticator key)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Merchant name, e.g. 'Demo Gym'.")
        parser.add_argument("--code", required=True, help="Short unique code (letters, digits, - and _).")
        parser.add_argument("--time-zone", default="Asia/Jakarta")
        parser.add_argument("--admin-username", required=True)
        parser.add_argument("--admin-email", required=True)

    @transaction.atomic
    def handle(self, *args, **options):
        if Merchant.objects.filter(code=options["code"]).exists():
            raise CommandError(f"A merchant with code {options['code']!r} exists already.")
        if User.objects.filter(username=options["admin_username"]).exists():
            raise CommandError(f"The user name {options['admin_username']!r} is taken.")
        merchant = Merchant(name=options["name"], code=options["code"], time_zone=options["time_zone"])
        try:
            merchant.full_clean()
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        merchant.save()
        password = secrets.token_urlsafe(12)
        admin = User(
            username=options["admin_username"], email=options["admin_email"], merchant=merchant, is_merchant_admin=True
        )
        admin.set_password(password)
        admin.save()
        device = create_device(admin, confirmed=True)
        audit.record("accounts.merchant.created", merchant=merchant, target=merchant, data={"admin": admin.username})

        qr = qrcode.QRCode(border=1)
        qr.add_data(device.config_url)
        art = io.StringIO()
        qr.print_ascii(out=art, invert=True)
        self.stdout.write(self.style.SUCCESS(f"Merchant {merchant.name} ({merchant.code}) created."))
        self.stdout.write(
            f"Admin user name: {admin.username}\nOne-time password: {password}  (change it after signing in)"
        )
        self.stdout.write("Scan this with Google Authenticator:\n" + art.getvalue())

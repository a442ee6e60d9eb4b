"""O2: create a merchant with its first admin, who gets the same one-time link as any new user (A2)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import audit, emails
from accounts.models import Merchant, User
from accounts.services import create_device, enrollment_link


def command_error(exc: ValidationError) -> CommandError:
    """A model's validation errors as one line for the operator (also used by create_operator)."""
    return CommandError("; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items()))


class Command(BaseCommand):
    help = "Create a merchant and its first admin user, and e-mail the admin a one-time set-up link."

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
        if User.objects.filter(username__iexact=options["admin_username"]).exists():
            raise CommandError(f"The user name {options['admin_username']!r} is taken.")
        merchant = Merchant(name=options["name"], code=options["code"], time_zone=options["time_zone"])
        admin = User(username=options["admin_username"], email=options["admin_email"], is_merchant_admin=True)
        admin.set_unusable_password()  # the admin chooses it through the link
        try:
            merchant.full_clean()
            admin.full_clean(exclude=["password", "merchant"])
        except ValidationError as exc:
            raise command_error(exc) from exc
        merchant.save()
        admin.merchant = merchant
        admin.save()
        create_device(admin, confirmed=False)
        audit.record("accounts.merchant.created", merchant=merchant, target=merchant, data={"admin": admin.username})
        link = enrollment_link(admin)
        transaction.on_commit(lambda: emails.send_invitation(admin, link))

        self.stdout.write(self.style.SUCCESS(f"Merchant {merchant.name} ({merchant.code}) created."))
        self.stdout.write(f"Admin {admin.username}: the set-up link was e-mailed to {admin.email}.")

"""Print the current authenticator code of a user (for operators and tests)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.services import current_code


class Command(BaseCommand):
    help = "Print the current 6-digit authenticator code of USERNAME."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        device = TOTPDevice.objects.filter(user__username=username, confirmed=True).first()
        if device is None:
            raise CommandError(f"No confirmed authenticator for user {username!r}.")
        self.stdout.write(current_code(device))

"""O2: a platform operator (no merchant, the Django admin) who signs in like everyone: password and
authenticator, both set up through the same one-time link a merchant admin gets (A2). ``createsuperuser``
makes a user without an authenticator, who can never sign in."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import audit, emails
from accounts.models import User
from accounts.services import create_device, enrollment_link

from .create_merchant import command_error


class Command(BaseCommand):
    help = "Create a platform operator (the Django admin at /admin/) and e-mail a one-time set-up link."

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", required=True)

    @transaction.atomic
    def handle(self, *args, **options):
        username, email = options["username"], options["email"].strip()
        if User.objects.filter(username__iexact=username).exists():
            raise CommandError(f"The user name {username!r} is taken.")
        if User.objects.filter(email__iexact=email).exists():
            raise CommandError(f"A user with the e-mail {email!r} exists already.")
        operator = User(username=username, email=email, is_staff=True, is_superuser=True)
        operator.set_unusable_password()  # the operator chooses it through the link
        try:
            operator.full_clean(exclude=["password"])
        except ValidationError as exc:
            raise command_error(exc) from exc
        operator.save()
        create_device(operator, confirmed=False)
        audit.record("accounts.operator.created", target=operator, data={"email": operator.email})
        link = enrollment_link(operator)
        transaction.on_commit(lambda: emails.send_invitation(operator, link))

        self.stdout.write(self.style.SUCCESS(f"Platform operator {operator.username} created."))
        self.stdout.write(f"The set-up link was e-mailed to {operator.email}; it opens {link.split('/welcome/')[0]}.")

"""An operator makes a merchant's API key (README "API"): the key is printed alone on the last line, once."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.audit import Actor
from accounts.models import Merchant
from api import keys
from api.models import Scope


class Command(BaseCommand):
    help = "Create an API key of a merchant and print it (shown this once: only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("--merchant", required=True, help="The merchant's code.")
        parser.add_argument("--name", required=True, help="What the key is for, e.g. 'membership system'.")
        parser.add_argument(
            "--scopes",
            default=",".join(Scope.values),
            help=f"Comma-separated, of {', '.join(Scope.values)} (default: all).",
        )

    def handle(self, *args, **options):
        merchant = Merchant.objects.filter(code=options["merchant"]).first()
        if merchant is None:
            raise CommandError(f"No merchant has the code {options['merchant']!r}.")
        actor = Actor(user=None, merchant=merchant, name="operator (create_api_key)")
        try:
            key, raw = keys.create_key(actor, options["name"], options["scopes"].split(","))
        except keys.KeyRefused as refusal:
            raise CommandError(str(refusal)) from refusal
        self.stdout.write(f"API key {key.name} of {merchant.name} ({merchant.code}), scopes {', '.join(key.scopes)}.")
        self.stdout.write("Keep it now: it is shown this once. Send it as the header: Authorization: Api-Key <key>")
        self.stdout.write(raw)

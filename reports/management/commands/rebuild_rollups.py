"""Recompute the dashboard's rollups from transactions (after a restore, a bulk import, or to check drift)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Merchant
from reports.rollups import rebuild


class Command(BaseCommand):
    help = "Recompute the dashboard rollups from transactions, for one merchant (--merchant CODE) or all."

    def add_arguments(self, parser):
        parser.add_argument("--merchant", metavar="CODE", help="Only this merchant (its code).")

    def handle(self, *args, merchant: str | None = None, **options):
        if merchant:
            found = Merchant.objects.filter(code=merchant).first()
            if found is None:
                raise CommandError(f"No merchant with code {merchant!r}.")
            rebuild([found.pk])
            self.stdout.write(self.style.SUCCESS(f"Rollups rebuilt for {found.name}."))
        else:
            rebuild()
            self.stdout.write(self.style.SUCCESS("Rollups rebuilt for every merchant."))

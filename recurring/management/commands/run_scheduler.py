"""O2: run the scheduler for one merchant-local day by hand. A day that ran already is a no-op; a day after a
merchant's local today is refused (for all merchants at once: nothing runs)."""

from __future__ import annotations

from datetime import date, datetime

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Merchant
from recurring.scheduler import run_day


class Command(BaseCommand):
    help = "Run the scheduler for DATE (YYYY-MM-DD) for every merchant, or one with --merchant CODE."

    def add_arguments(self, parser):
        parser.add_argument("--date", required=True, help="The merchant-local day, YYYY-MM-DD.")
        parser.add_argument("--merchant", help="A merchant code; all merchants when left out.")

    def handle(self, *args, date: str, merchant: str | None, **options):
        try:
            day = _parse(date)
        except ValueError as exc:
            raise CommandError(f"--date must be YYYY-MM-DD, not {date!r}.") from exc
        merchants = Merchant.objects.order_by("pk")
        if merchant:
            merchants = merchants.filter(code=merchant)
            if not merchants:
                raise CommandError(f"No merchant with code {merchant!r}.")
        # A day that has not begun in a merchant's zone would be recorded as run with nothing due: refused.
        early = [each.code for each in merchants if day > each.local_today()]
        if early:
            raise CommandError(f"{day} has not begun for {', '.join(early)}: run a day up to the merchant's today.")
        for each in merchants:
            existed = each.pk and _finished(each, day)
            run = run_day(each, day)
            if existed:
                self.stdout.write(
                    f"{each.code} {day}: ran already at {run.finished_at:%Y-%m-%d %H:%M:%S} (nothing done)"
                )
            elif run.finished_at is None:
                self.stdout.write(f"{each.code} {day}: another runner holds this day; try again later")
            else:
                self.stdout.write(
                    f"{each.code} {day}: due {run.due}, charged {run.charged}, reminded {run.reminded}, "
                    f"skipped {run.skipped}, single payments {run.single_payments}, retries {run.retries}"
                )


def _parse(value: str) -> date:
    return datetime.strptime(value, "%Y-%m-%d").date()


def _finished(merchant: Merchant, day: date) -> bool:
    from recurring.models import SchedulerRun

    return SchedulerRun.objects.filter(merchant=merchant, day=day, finished_at__isnull=False).exists()

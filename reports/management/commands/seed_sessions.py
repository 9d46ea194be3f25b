"""manage.py seed_sessions N [--app APP_ID] [--days D]: realistic sessions for the reports, in bulk."""

from __future__ import annotations

import sys
import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows.models import App
from reports import days as report_days
from reports import seeding, services


class Command(BaseCommand):
    help = "Make N realistic cancel sessions (reasons, offers, variants, decisions) spread over the last D days."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("count", type=int, help="How many sessions to make.")
        parser.add_argument("--app", dest="app_id", help="The App's app_id (default: the 'seed' App, created "
                                                         "from reports/fixtures/seed-app.json).")
        parser.add_argument("--days", type=int, default=90, help="Spread them over this many days (default 90).")
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for the same data every time.")
        parser.add_argument("--no-refresh", action="store_true", help="Leave the report rollups to beat.")

    def handle(self, *args: object, count: int, app_id: str | None, days: int, seed: int | None,
               no_refresh: bool, **options: object) -> None:
        if count < 1 or days < 1:
            raise CommandError("N and --days must be at least 1")
        if app_id:
            app = App.objects.filter(app_id=app_id).first()
            if app is None:
                raise CommandError(f"No such app: {app_id}")
        else:
            app = seeding.seed_app()
        started = time.monotonic()
        try:
            written = seeding.sessions_seed(app=app, count=count, days=days, seed=seed,
                                            progress=lambda done: self._bar(done, count, started))
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write("")
        self.stdout.write(f"Made {written:,} sessions for {app.app_id} in {time.monotonic() - started:.1f} s.")
        if not no_refresh:
            began = time.monotonic()
            # A day more than the sessions span: a daylight-saving change can move the first one back a day.
            today = report_days.today()
            services.rollups_refresh(first_day=today - timedelta(days=days + 1), last_day=today)
            self.stdout.write(f"Report rollups rebuilt for {days + 2} days in {time.monotonic() - began:.1f} s.")

    def _bar(self, done: int, total: int, started: float) -> None:
        width = 30
        filled = int(width * done / total)
        elapsed = time.monotonic() - started
        rate = done / elapsed if elapsed else 0
        line = (f"\r[{'#' * filled}{'.' * (width - filled)}] {done / total:6.1%} {done:,}/{total:,} sessions "
                f"{elapsed:5.1f} s ({rate:,.0f}/s)")
        self.stderr.write(line, ending="")
        self.stderr.flush()
        if not sys.stderr.isatty() and done < total:
            self.stderr.write("")

"""manage.py reports_refresh [--days N | --all]: rebuild the report rollups (beat keeps recent days fresh)."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reports import days as report_days
from reports import services


class Command(BaseCommand):
    help = "Rebuild the reports' daily rollups: the days that can still change, the last N days, or all."

    def add_arguments(self, parser: CommandParser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--days", type=int, help="Rebuild the last N days (today included).")
        group.add_argument("--all", action="store_true", help="Rebuild every day that has sessions.")

    def handle(self, *args: object, days: int | None, all: bool, **options: object) -> None:
        if all:
            count = services.rollups_refresh_all()
        elif days is not None:
            if days < 1:
                raise CommandError("--days must be at least 1")
            today = report_days.today()
            services.rollups_refresh(first_day=today - timedelta(days=days - 1), last_day=today)
            count = days
        else:
            count = services.rollups_refresh_recent()
        self.stdout.write(f"Rebuilt the report rollups of {count} days.")

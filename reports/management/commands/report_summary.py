"""manage.py report_summary APP_ID [--from DATE] [--to DATE] [--include-test]: the reports as JSON."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows.models import App
from reports.filters import ReportFilterForm
from reports.summary import report_summary


class Command(BaseCommand):
    help = ("Print an App's report numbers as JSON: sessions opened, accounts deflected, saved and canceled, "
            "the save rate, revenue kept per currency, the watch list and each experiment.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_id", help="The App's app_id.")
        parser.add_argument("--from", dest="start", help="First day, YYYY-MM-DD (default: as the report pages).")
        parser.add_argument("--to", dest="end", help="Last day, YYYY-MM-DD (default: today).")
        parser.add_argument("--include-test", action="store_true", help="Count test-mode sessions too.")

    def handle(self, *args: object, app_id: str, start: str | None, end: str | None, include_test: bool,
               **options: object) -> None:
        app = App.objects.filter(app_id=app_id).first()
        if app is None:
            raise CommandError(f"No such app: {app_id}")
        form = ReportFilterForm({"start": start or "", "end": end or "", "app": app.pk,
                                 "include_test": "on" if include_test else ""})
        if not form.is_valid():
            raise CommandError("; ".join(str(e) for errors in form.errors.values() for e in errors))
        self.stdout.write(json.dumps(report_summary(form.report()), indent=2))

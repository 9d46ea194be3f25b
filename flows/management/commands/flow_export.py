"""Print an App's whole setup as one JSON document (docs/flow-format.md)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows import selectors
from flows.flow_document import document_dumps, document_export


class Command(BaseCommand):
    help = "Print an App's flows, reasons and offers as one JSON document (never its secret)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_id", help="The App's public app_id.")

    def handle(self, *args, app_id: str, **options) -> None:  # noqa: ANN002, ANN003
        app = selectors.app_by_public_id(app_id)
        if app is None:
            raise CommandError(f"No such app: {app_id}")
        self.stdout.write(document_dumps(document_export(app=app)), ending="")

"""Create the demo App used by /demo/ and by `make run`, when it is missing; `--reset` restores it.

The demo is the document in flows/fixtures/demo-flow.json, loaded through the same import as
`flow_import`, so the demo and the import format cannot drift apart. `make run` runs this on every
start, so an existing demo App is left as it is: staff may have edited it (its flow's copy, offers,
alert rules, allowed origins), and a restart must not undo their work. `--reset` imports the document
again over it.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from flows.flow_document import document_import, document_loads
from flows.models import App

DEMO_DOCUMENT = Path(__file__).resolve().parents[2] / "fixtures" / "demo-flow.json"


class Command(BaseCommand):
    help = ("Create the demo App, its Flow, Reasons and Offers when it is missing (an existing one is left as it "
            "is); --reset restores it.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reset", action="store_true",
                            help="Restore the demo App to flows/fixtures/demo-flow.json, undoing edits made to it.")

    def handle(self, *args: object, reset: bool = False, **options: object) -> None:
        document = document_loads(DEMO_DOCUMENT.read_text("utf-8"))
        app_id = document["app"]["app_id"]
        if not reset and App.objects.filter(app_id=app_id).exists():
            self.stdout.write(f"The demo app {app_id!r} is already there: left as it is "
                              "(`manage.py demo_setup --reset` restores it).")
            return
        result = document_import(document=document)
        verb = "Created" if result.created else "Restored"
        self.stdout.write(f"{verb} demo app {result.app.app_id!r}: open /demo/ to try the cancel flow.")

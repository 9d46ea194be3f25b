"""Create (or refresh) the demo App used by /demo/ and by `make run`.

The demo is the document in flows/fixtures/demo-flow.json, loaded through the same import as
`flow_import`, so the demo and the import format cannot drift apart. A refresh resets the demo App to
that document.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand

from flows.flow_document import document_import, document_loads

DEMO_DOCUMENT = Path(__file__).resolve().parents[2] / "fixtures" / "demo-flow.json"


class Command(BaseCommand):
    help = "Create or refresh the demo App, its Flow, Reasons and Offers."

    def handle(self, *args, **options) -> None:  # noqa: ANN002, ANN003
        result = document_import(document=document_loads(DEMO_DOCUMENT.read_text("utf-8")))
        verb = "Created" if result.created else "Refreshed"
        self.stdout.write(f"{verb} demo app {result.app.app_id!r}: open /demo/ to try the cancel flow.")

"""Create or update an App from a JSON document (docs/flow-format.md): all of it, or nothing."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows.flow_document import DocumentInvalid, ImportResult, document_import, document_loads, document_problems


class Command(BaseCommand):
    help = ("Create or update an App, its flows, reasons and offers from a JSON document (FILE, or - for "
            "standard input). An invalid document changes nothing.")
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The document's path, or - to read standard input.")
        parser.add_argument("--check", action="store_true", help="Only validate the document; change nothing.")

    def handle(self, *args, file: str, check: bool, **options) -> None:  # noqa: ANN002, ANN003
        try:
            text = (options.get("stdin") or sys.stdin).read() if file == "-" else Path(file).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from None
        try:
            document = document_loads(text)
            if check:
                problems = document_problems(document)
                if problems:
                    raise DocumentInvalid(problems)
                self.stdout.write("The document is valid.")
                return
            result = document_import(document=document)
        except DocumentInvalid as exc:
            listed = "\n".join(f"  {problem}" for problem in exc.problems)
            raise CommandError(f"The document is invalid; nothing was changed.\n{listed}") from None
        self._report(result)

    def _report(self, result: ImportResult) -> None:
        if not result.changed_anything and not result.notices:
            self.stdout.write(f"App {result.app.app_id!r} already matches the document; nothing changed.")
            return
        verb = "Created" if result.created else "Updated"
        changes = "; ".join(
            f"{kind} " + ", ".join(f"{count} {what}" for what, count in sorted(counter.items())
                                   if what != "unchanged")
            for kind, counter in result.changes.items() if set(counter) != {"unchanged"}
        )
        self.stdout.write(f"{verb} app {result.app.app_id!r}" + (f": {changes}." if changes else "."))
        if result.secret:
            self.stdout.write(f"The app's secret, shown only this once (it signs embeds and return URLs): "
                              f"{result.secret}")
        for notice in result.notices:
            self.stdout.write(notice)

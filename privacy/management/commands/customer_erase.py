"""Remove one customer's personal data from every table that keeps it, keeping the counts reports need."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from privacy import services

from ._customer import add_customer_arguments, app_and_customer


class Command(BaseCommand):
    help = ("Erase a customer's personal data (sessions, snippet data, feedback, events, webhook bodies, alert "
            "messages, billing requests) and print the rows changed per table. Counts, codes and dates stay.")

    def add_arguments(self, parser: CommandParser) -> None:
        add_customer_arguments(parser)

    def handle(self, *args, **options) -> None:  # noqa: ANN002, ANN003
        app, email, account_id = app_and_customer(options)
        try:
            erasure = services.customer_erase(app=app, email=email, account_id=account_id)
        except services.CustomerBusy as busy:
            raise CommandError("Nothing was erased: " + "; ".join(busy.reasons)) from None
        self.stdout.write(f"Sessions of this customer: {erasure.sessions}")
        for table, count in erasure.counts.items():
            self.stdout.write(f"{table}: {count} changed")
        if not erasure.changed:
            self.stdout.write("Nothing left to erase.")
        for note in erasure.notes:
            self.stderr.write(f"Not changed: {note}")

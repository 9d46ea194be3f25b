"""Print all that is held about one customer, as JSON."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from privacy import selectors

from ._customer import add_customer_arguments, app_and_customer


class Command(BaseCommand):
    help = "Print every row held about a customer (by app and table) as JSON on stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        add_customer_arguments(parser)

    def handle(self, *args, **options) -> None:  # noqa: ANN002, ANN003
        app, email, account_id = app_and_customer(options)
        held = selectors.customer_export(selectors.customer(app=app, email=email, account_id=account_id))
        self.stdout.write(json.dumps(held, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2, sort_keys=True))

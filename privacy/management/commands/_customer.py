"""The arguments customer_erase and customer_export share: --app APP_ID (--email E | --account-id ID)."""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from flows.models import App


def add_customer_arguments(parser: CommandParser) -> None:
    parser.add_argument("--app", required=True, dest="app_id", help="The App's public app_id.")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", default="", help="The customer's email address (any case).")
    who.add_argument("--account-id", default="", dest="account_id", help="The customer's account.internal_id.")


def app_and_customer(options: dict) -> tuple[App, str, str]:
    app = App.objects.filter(app_id=options["app_id"]).first()
    if app is None:
        raise CommandError(f"No such app: {options['app_id']}")
    email, account_id = options["email"].strip(), options["account_id"].strip()
    if not (email or account_id):
        raise CommandError("Give the customer's --email or --account-id (not empty).")
    return app, email, account_id

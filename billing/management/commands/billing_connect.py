"""Connect an App to its billing system from a script (DESIGN §8). The key is read from an environment
variable, never from the command line, where it would sit in shell history and `ps`."""

from __future__ import annotations

import os

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing import services
from billing.providers import PROVIDER_MODULES, ProviderError
from flows.models import App


class Command(BaseCommand):
    help = ("Create or update APP_ID's billing connection. A new connection cancels at the end of the period, "
            "applies each offer's own terms and is not a dry run until staff choose otherwise.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_id")
        parser.add_argument("provider", choices=PROVIDER_MODULES)
        parser.add_argument("--api-key-env", required=True, metavar="VAR",
                            help="The environment variable holding the API key.")
        parser.add_argument("--site", help="Chargebee: the site of this key's mode (acme-test for a test key, acme "
                                           "for a live one), as in acme.chargebee.com.")
        parser.add_argument("--test-site", metavar="SITE",
                            help="Chargebee: the test site (acme-test), whichever key is being set.")
        parser.add_argument("--live-site", metavar="SITE",
                            help="Chargebee: the live site (acme), whichever key is being set.")
        parser.add_argument("--stripe-account", metavar="ACCT",
                            help="Stripe Connect: the connected account (acct_…) every call acts on; \"\" clears it.")
        parser.add_argument("--api-base", metavar="URL",
                            help="Another server for the SDK to talk to (a provider's test server, a local fake): "
                                 "the provider's own host, or under an address listed in BILLING_ALLOWED_API_BASES. "
                                 "A new address clears the stored keys.")
        parser.add_argument("--region", choices=["us", "eu"], help="Recurly only: the site's region (default us).")
        parser.add_argument("--mode", choices=[m.value for m in App.Mode],
                            help="Which key this is (default: the App's mode).")
        parser.add_argument("--check", action="store_true", help="Then make one harmless read call with it.")

    def handle(self, *args, app_id: str, provider: str, api_key_env: str, site: str | None,  # noqa: ANN002
               api_base: str | None, mode: str | None, check: bool, region: str | None = None,
               test_site: str | None = None, live_site: str | None = None, stripe_account: str | None = None,
               **options) -> None:  # noqa: ANN003
        app = App.objects.filter(app_id=app_id).first()
        if app is None:
            raise CommandError(f"No such app: {app_id}")
        api_key = os.environ.get(api_key_env, "").strip()
        if not api_key:
            raise CommandError(f"The environment variable {api_key_env} is not set or is empty.")
        key_mode = mode or app.mode
        sites = {"test_site": test_site, "site": live_site}
        if site is not None:  # the site of the key's mode, as the key is stored for its mode
            named = "site" if key_mode == App.Mode.LIVE else "test_site"
            if sites[named] not in (None, site):
                raise CommandError(f"--site {site} and --{'live' if named == 'site' else 'test'}-site "
                                   f"{sites[named]} name two {key_mode} sites; give one.")
            sites[named] = site
        if provider != "chargebee" and any(value for value in sites.values()):
            raise CommandError("Sites are Chargebee's: leave out --site, --test-site and --live-site.")
        if stripe_account and provider != "stripe":
            raise CommandError("--stripe-account is for Stripe connections only.")
        connection = getattr(app, "billing_connection", None)
        mode_site = "site" if app.mode == App.Mode.LIVE else "test_site"
        if provider == "chargebee" and not (sites[mode_site] or getattr(connection, mode_site, "")):
            raise CommandError(f"Chargebee needs the App's {app.mode} site: --site (acme-test for a test key, acme "
                               f"for a live one) or --{'live' if mode_site == 'site' else 'test'}-site.")
        try:
            extra: dict[str, str] = {"region": region} if region else {}
            if sites["test_site"] is not None:
                extra["test_site"] = sites["test_site"]
            if stripe_account is not None:
                extra["stripe_account"] = stripe_account.strip()
            connection = services.connection_save(app=app, provider=provider, api_key=api_key, mode=mode,
                                                  site=sites["site"], api_base=api_base, **extra)
        except ValidationError as exc:
            raise CommandError("; ".join(
                " ".join(errors) if field == NON_FIELD_ERRORS else f"{field}: {' '.join(errors)}"
                for field, errors in exc.message_dict.items())) from None
        self.stdout.write(f"{app.app_id} is connected to {connection.get_provider_display()} "
                          f"({mode or app.mode} key{', at ' + connection.api_base if connection.api_base else ''}).")
        if check:
            try:
                self.stdout.write(f"Connection checked: {services.connection_check(connection=connection)}")
            except ProviderError as exc:
                raise CommandError(f"The key was saved, but the check failed: {exc}") from None

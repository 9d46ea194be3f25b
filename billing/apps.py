from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from flows.selectors import retire_app_on_write

        from . import checks  # noqa: F401 - registers the system checks
        from .models import BillingConnection

        # Each event reads the App's billing connection from memory (flows.selectors.app_part).
        retire_app_on_write(BillingConnection, app_pk=lambda row: row.app_id)

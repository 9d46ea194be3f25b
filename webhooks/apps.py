from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self) -> None:
        from flows.selectors import retire_app_on_write

        from . import checks  # noqa: F401 - registers the system checks
        from .models import Endpoint

        # Each event reads the App's endpoints from memory (flows.selectors.app_part).
        retire_app_on_write(Endpoint, app_pk=lambda row: row.app_id)

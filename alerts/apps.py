from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self) -> None:
        from flows.selectors import retire_app_on_write

        from . import checks  # noqa: F401 - registers the system checks
        from .models import AlertRule, AlertSettings

        # Each event reads the App's alert rules and settings from memory (flows.selectors.app_part).
        retire_app_on_write(AlertRule, app_pk=lambda row: row.app_id)
        retire_app_on_write(AlertSettings, app_pk=lambda row: row.app_id)

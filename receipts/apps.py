from django.apps import AppConfig


class ReceiptsConfig(AppConfig):
    name = "receipts"

    def ready(self) -> None:
        from flows.selectors import retire_app_on_write

        from . import checks  # noqa: F401 - registers the system checks
        from .models import ReceiptSettings

        # Each event reads the App's receipt settings from memory (flows.selectors.app_part).
        retire_app_on_write(ReceiptSettings, app_pk=lambda row: row.app_id)

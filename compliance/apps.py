from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"

    def ready(self) -> None:
        from flows.selectors import retire_app_on_write

        from .models import ComplianceRules

        # /precancel reads the App's rules from memory (flows.selectors.app_part): every write retires them.
        retire_app_on_write(ComplianceRules, app_pk=lambda row: row.app_id)

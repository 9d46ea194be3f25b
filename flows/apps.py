from django.apps import AppConfig


class FlowsConfig(AppConfig):
    name = "flows"
    verbose_name = "Cancel flows"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks

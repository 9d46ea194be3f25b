from django.apps import AppConfig


class FlowsConfig(AppConfig):
    name = "flows"
    verbose_name = "Cancel flows"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from . import checks  # noqa: F401 - registers the system checks
        from .models import App
        from .selectors import app_changed

        # Every write of an App, wherever it comes from, retires the copies processes keep of it.
        def retire(sender, instance: App, **kwargs) -> None:  # noqa: ANN001, ANN003
            app_changed(app_id=instance.app_id)

        post_save.connect(retire, sender=App, dispatch_uid="flows.app_changed.save", weak=False)
        post_delete.connect(retire, sender=App, dispatch_uid="flows.app_changed.delete", weak=False)

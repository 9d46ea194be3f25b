from django.apps import AppConfig


class FlowsConfig(AppConfig):
    name = "flows"
    verbose_name = "Cancel flows"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from . import checks  # noqa: F401 - registers the system checks
        from .models import App, Audience, Flow, Reason, Variant
        from .selectors import app_changed, app_pk_of_flow, retire_app_on_write

        # Every write of an App, wherever it comes from, retires the copies processes keep of it.
        def retire(sender, instance: App, **kwargs) -> None:  # noqa: ANN001, ANN003
            app_changed(app_id=instance.app_id)

        post_save.connect(retire, sender=App, dispatch_uid="flows.app_changed.save", weak=False)
        post_delete.connect(retire, sender=App, dispatch_uid="flows.app_changed.delete", weak=False)
        # So does every write of what routing reads from memory (selectors.app_part).
        retire_app_on_write(Flow, app_pk=lambda flow: flow.app_id)
        retire_app_on_write(Audience, app_pk=lambda audience: audience.app_id)
        retire_app_on_write(Variant, app_pk=lambda variant: app_pk_of_flow(variant.flow_id))
        retire_app_on_write(Reason, app_pk=lambda reason: app_pk_of_flow(reason.flow_id))

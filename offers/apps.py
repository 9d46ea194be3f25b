from django.apps import AppConfig


class OffersConfig(AppConfig):
    name = "offers"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed

        from flows.selectors import app_pk_of_flow, app_row_changed, retire_app_on_write

        from .models import Offer

        # A session's offers are worked out from the App's offers kept in memory (flows.selectors.app_part).
        retire_app_on_write(Offer, app_pk=lambda offer: app_pk_of_flow(offer.flow_id))

        def audiences_changed(sender, instance, action: str, pk_set, **kwargs) -> None:  # noqa: ANN001, ANN003
            if not action.startswith("post_"):
                return
            if isinstance(instance, Offer):
                app_row_changed(pk=app_pk_of_flow(instance.flow_id))
            else:  # the Audience side: its App is the offers' App
                app_row_changed(pk=instance.app_id)

        m2m_changed.connect(audiences_changed, sender=Offer.audiences.through,
                            dispatch_uid="offers.app_changed.audiences", weak=False)

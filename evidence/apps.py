from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.exceptions import FieldDoesNotExist
from django.db.models.signals import post_migrate


def first_versions(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    """Flows that existed before versions were kept get their first one, once (`migrate` runs this after
    every migration; a flow with a version is left alone)."""
    from flows.models import Flow

    from .services import flow_versions_record

    state = kwargs.get("apps")
    if state is not None:
        # Migrated backwards (or part way): the tables this needs may not be there.
        try:
            state.get_model("evidence", "FlowVersion")
            state.get_model("flows", "Flow")._meta.get_field("version")
        except LookupError:
            return
        except FieldDoesNotExist:
            return
    unversioned = list(Flow.objects.using(using).filter(version=0).values_list("pk", flat=True))
    if unversioned:
        flow_versions_record(flow_ids=unversioned, source="initial")


class EvidenceConfig(AppConfig):
    name = "evidence"
    verbose_name = "Evidence"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(first_versions, sender=self, dispatch_uid="evidence_first_versions")

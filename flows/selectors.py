from __future__ import annotations

import re
from datetime import datetime

from .models import App, CancelSession, Flow, Reason

# What ids.page_token() makes; anything else is unknown without asking the database.
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def app_by_public_id(app_id: str) -> App | None:
    return App.objects.filter(app_id=app_id).first()


def session_by_token(token: str) -> CancelSession | None:
    if not TOKEN.match(token):
        return None
    return (CancelSession.objects.select_related("app", "flow", "decision")
            .filter(token=token).first())


def reasons_for_flow(*, flow_id: int) -> list[Reason]:
    return list(Reason.objects.filter(flow_id=flow_id, is_active=True))


# A flow's published reasons, kept in each process's memory and stamped with the flow's updated_at: the
# session's own query already reads the flow (select_related), so knowing the copy is current costs
# nothing. Every staff write of a flow's content moves updated_at (services.flow_content_changed, called
# by the admin and the importer), which retires the copy in every process at once.
_reasons_cache: dict[int, tuple[datetime, list[Reason]]] = {}
_REASONS_CACHE_SIZE = 2000


def published_reasons(*, flow: Flow) -> list[Reason]:
    cached = _reasons_cache.get(flow.pk)
    if cached is not None and cached[0] == flow.updated_at:
        return cached[1]
    reasons = reasons_for_flow(flow_id=flow.pk)
    if len(_reasons_cache) >= _REASONS_CACHE_SIZE:
        _reasons_cache.clear()
    _reasons_cache[flow.pk] = (flow.updated_at, reasons)
    return reasons


def forget_published_content(*, flow_ids: list[int]) -> None:
    for flow_id in flow_ids:
        _reasons_cache.pop(flow_id, None)


def apps_allowing_origin(origin: str) -> bool:
    origin = origin.rstrip("/").lower()
    return any(origin in app.origins for app in App.objects.filter(allowed_origins__icontains=origin))

from __future__ import annotations

import re

from .models import App, CancelSession, Reason

# What ids.page_token() makes; anything else is unknown without asking the database.
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def app_by_public_id(app_id: str) -> App | None:
    return App.objects.filter(app_id=app_id).first()


def session_by_token(token: str) -> CancelSession | None:
    if not TOKEN.match(token):
        return None
    return (CancelSession.objects.select_related("app", "flow", "variant", "decision")
            .filter(token=token).first())


def reasons_for_flow(*, flow_id: int) -> list[Reason]:
    return list(Reason.objects.filter(flow_id=flow_id, is_active=True))


def apps_allowing_origin(origin: str) -> bool:
    origin = origin.rstrip("/").lower()
    return any(origin in app.origins for app in App.objects.filter(allowed_origins__icontains=origin))

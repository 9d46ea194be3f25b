from __future__ import annotations

from .models import App, CancelSession, Reason


def app_by_public_id(app_id: str) -> App | None:
    return App.objects.filter(app_id=app_id).first()


def session_by_token(token: str) -> CancelSession | None:
    if not token or len(token) > 64:
        return None
    return (CancelSession.objects.select_related("app", "flow", "decision")
            .filter(token=token).first())


def reasons_for_flow(*, flow_id: int) -> list[Reason]:
    return list(Reason.objects.filter(flow_id=flow_id, is_active=True))


def apps_allowing_origin(origin: str) -> bool:
    origin = origin.rstrip("/").lower()
    return any(origin in app.origins for app in App.objects.filter(allowed_origins__icontains=origin))

"""A session's evidence as JSON for staff, under /admin/evidence/: the same record as
`manage.py session_evidence`, for whoever may view the session in the admin (its App's staff)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from flows.models import CancelSession

from .selectors import session_evidence


@require_GET
def session_json(request: HttpRequest, object_id: str) -> HttpResponse:
    # The session's own admin decides: 404 outside the reader's Apps, 403 without the view permission.
    session_admin = admin.site._registry[CancelSession]
    session = session_admin.checked_object(request, object_id, "view")
    response = JsonResponse(session_evidence(session), json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'inline; filename="evidence-{session.public_id}.json"'
    return response


session_json_view = admin.site.admin_view(session_json)

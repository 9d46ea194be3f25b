"""The way back: the page a cancel receipt's link opens, with one button that keeps the subscription.
Thin: read the signed link, call one service, render. Like the hosted page it runs no script, works
without JavaScript, checks its own form token (no cookie) and is rate limited the same way."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone, translation
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from brightback_site import ratelimits
from flows import csrf
from flows.models import CancelSession, Event, readable_text_on
from flows.reactivation import NothingToKeep, session_reactivate
from flows.views import PAGE_CSP

from . import links, rendering
from .services import language_for, settings_for_app

logger = logging.getLogger(__name__)


class _SeeOther(HttpResponseRedirect):
    status_code = 303


def _language(session: CancelSession | None) -> str:
    if session is not None and session.locale:
        return language_for(session.locale)
    return translation.get_language() or language_for("")


def _render(request: HttpRequest, session: CancelSession | None, state: str, *, status: int = 200,
            until: str = "", token: str = "") -> HttpResponse:
    language = _language(session)
    with translation.override(language):
        context: dict = {"state": state, "session": session, "until": until}
        if session is not None:
            flow = session.flow
            context.update(flow=flow, brand=flow.brand_color, brand_text=readable_text_on(flow.brand_color),
                           background=flow.background_color, app_name=session.app.name,
                           reference=session.public_id,
                           **rendering.support_of(session.app, settings_for_app(app=session.app)))
        if state == "offer":
            context.update(csrf_token=csrf.page_form_token(token), action_url=request.path)
        response = render(request, "receipts/way_back.html", context, status=status)
    response["Content-Language"] = language
    response["Content-Security-Policy"] = PAGE_CSP
    return response


def _kept(session: CancelSession) -> bool:
    return Event.objects.filter(session_id=session.pk, type=Event.Type.SESSION_REACTIVATED).exists()


@csrf_exempt  # the form carries its own token, bound to the link (flows/csrf.py), as the hosted page's does
@never_cache
@require_http_methods(["GET", "POST"])
def way_back(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "POST" and (limited := ratelimits.check(request, scope="decision-ip")):
        return _too_many(request, limited)
    try:
        link = links.way_back_read(token)
    except links.BadLink:
        return _render(request, None, "bad_link", status=400)
    session = (CancelSession.objects.select_related("app", "flow").filter(public_id=link.session_id).first())
    if session is None:
        return _render(request, None, "bad_link", status=404)
    zone = rendering.customer_zone(session)
    with translation.override(_language(session)):
        until = rendering.when(link.until, zone)
    if _kept(session):
        # A second click, a replayed POST or the link opened again: the subscription is kept already.
        return _render(request, session, "kept", until=until) if request.method == "GET" else _SeeOther(request.path)
    if timezone.now() >= link.until:
        return _render(request, session, "ended", status=410, until=until)
    if request.method == "GET":
        return _render(request, session, "offer", until=until, token=token)
    if not csrf.page_form_valid(request, token):
        return _render(request, session, "bad_form", status=403, until=until)
    if limited := ratelimits.check(request, scope="decision-app", key=session.app.app_id):
        return _too_many(request, limited, session)
    try:
        session_reactivate(session=session)
    except NothingToKeep:
        return _render(request, session, "nothing", status=409, until=until)
    return _SeeOther(request.path)


def _too_many(request: HttpRequest, limited: ratelimits.Limited, session: CancelSession | None = None) -> HttpResponse:
    response = _render(request, session, "too_many", status=429)
    response["Retry-After"] = str(limited.retry_after)
    return response

"""The hosted cancel page (DESIGN §3), the snippet, the demo and /healthz. Thin: parse, call, render."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from brightback_site import ratelimits

from . import cancel_terms, csrf, embedding, later_cancel, no_cache, openapi, page_cache, selectors, services, steps
from .models import CancelSession, Decision, Flow, readable_text_on

logger = logging.getLogger(__name__)

MAX_FEEDBACK = 5000


class _SeeOther(HttpResponseRedirect):
    status_code = 303


def _language(session: CancelSession | None) -> str:
    return _language_for(session.locale if session is not None else "")


def _language_for(locale: str) -> str:
    """The snippet's locale first, then the browser's (LocaleMiddleware already read it)."""
    if locale:
        try:
            return translation.get_supported_language_variant(locale.replace("_", "-").lower())
        except LookupError:
            pass
    return translation.get_language() or settings.LANGUAGE_CODE


# The customer's pages run no script and load nothing but the Flow's logo: say so, so that nothing
# injected (a hostile extension, a stored value that slipped through) can run or send data away.
PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
            "base-uri 'none'; frame-ancestors 'none'")


def _customer_headers(response: HttpResponse, language: str | None = None) -> None:
    # LocaleMiddleware would label the page with the browser's language, not the one it is written in.
    response["Content-Language"] = language or translation.get_language()
    response["Content-Security-Policy"] = PAGE_CSP


def _brand(flow: Flow) -> dict:
    return {"brand": flow.brand_color, "brand_text": readable_text_on(flow.brand_color),
            "background": flow.background_color}


def _problem(request: HttpRequest, *, status: int, title: str, message: str,
             session: CancelSession | None = None) -> HttpResponse:
    with translation.override(_language(session)):
        context = {"title": title, "message": message, "session": session}
        if session is not None:
            context.update(flow=session.flow, **_brand(session.flow))
        response = render(request, "flows/problem.html", context, status=status)
        _customer_headers(response)
    return response


def _too_many(request: HttpRequest, limited: ratelimits.Limited,
              session: CancelSession | None = None) -> HttpResponse:
    response = _problem(request, status=429, session=session, title=translation.gettext("Please wait a moment"),
                        message=translation.gettext(
                            "We received too many requests from your connection. Nothing was changed. "
                            "Please try again in a minute."))
    response["Retry-After"] = str(limited.retry_after)
    return response


def _unknown(request: HttpRequest) -> HttpResponse:
    return _problem(request, status=404, title=translation.gettext("This link doesn’t work"),
                    message=translation.gettext(
                        "We couldn’t find this cancellation page. Please go back to your account and "
                        "choose Cancel again."))


def _expired(request: HttpRequest, session: CancelSession) -> HttpResponse:
    with translation.override(_language(session)):
        return _problem(request, status=410, session=session,
                        title=translation.gettext("This page has expired"),
                        message=translation.gettext(
                            "For your security, cancellation pages only work for a limited time. Nothing "
                            "was changed. Please go back to your account and choose Cancel again."))


def render_page(request: HttpRequest, *, session: CancelSession, step: str, reason_code: str = "",
                feedback: str = "", error: str = "", status: int = 200, preview: bool = False) -> HttpResponse:
    flow = session.flow
    reasons = selectors.published_reasons(flow=flow)
    chosen = next((r for r in reasons if r.code == reason_code), None)
    if step == "offers" and reason_code and chosen is None:
        step, reason_code, status = "reasons", "", 400
        error = gettext_lazy("Please choose one of the reasons listed.")
    offers = selectors.offers_on_page(session, reason_code) if step == "offers" else []
    if offers and not preview:
        services.session_offers_shown(session=session, codes=[offer.code for offer in offers])
    context = {
        "session": session, "flow": flow, "reasons": reasons, "offers": offers, "step": step,
        "reason_code": reason_code, "chosen_reason": chosen, "feedback": feedback, "error": error,
        "preview": preview, "support_email": session.app.support_email,
        "action_url": request.path, **_brand(flow), **_cancel_context(session),
    }
    parent = _embed_parent(request)
    if not preview:
        context["csrf_token"] = csrf.page_form_token(session.token)
    if parent is not None:
        context.update(action_url=embedding.action_url(request, parent), embed_parent=parent,
                       embed_script=embedding.SCRIPT)
    first_view = (step == "reasons" and status == 200 and parent is None
                  and not (reason_code or feedback or error or preview))
    with translation.override(_language(session)):
        context["cancel_label"] = cancel_terms.cancel_label(flow, context["cancel_effective"])
        if first_view:
            response = _first_view(request, session=session, reasons=reasons, context=context)
        else:
            response = render(request, "flows/page.html", context, status=status)
        _customer_headers(response)
    response.bb_step = step  # type: ignore[attr-defined]  # the page shown, for the session's evidence
    return response


def _cancel_context(session: CancelSession) -> dict:
    """The customer's rules as the page applies them: where Cancel is, and what it will do."""
    everywhere, _effective = cancel_terms.page_rules(session.compliance)
    return {"cancel_everywhere": everywhere, "cancel_effective": cancel_terms.session_effective(session)}


def _first_view(request: HttpRequest, *, session: CancelSession, reasons: list, context: dict) -> HttpResponse:
    """The reasons step as every customer of the flow first sees it: rendered once (page_cache), filled in."""
    page_key = page_cache.key_of(session=session, language=translation.get_language())
    html = page_cache.rendered(page_key, reasons)
    if html is None:
        slotted = {**context, "csrf_token": page_cache.CSRF_SLOT, "action_url": page_cache.ACTION_SLOT}
        html = render(request, "flows/page.html", slotted).content.decode()
        page_cache.keep(page_key, reasons, html)
    return HttpResponse(page_cache.fill(html, csrf_token=csrf.page_form_token(session.token), action_url=request.path))


def _first_view_kept(request: HttpRequest, token: str) -> HttpResponse | None:
    """The first view of an open session straight from page_cache, after one narrow query and no models
    (or the unknown-link page, when that query found no session); None when that cannot answer (a decided
    or expired session, a copy not rendered yet, a database other than PostgreSQL, the modal), and the full
    path answers instead. That query also writes the view's step where the copies served before tell which
    controls it names (page_cache.expected_steps): checked here against the copy served."""
    if embedding.wants_modal(request):
        return None
    expected = page_cache.expected_steps()
    state = selectors.first_view_state(token, expected_steps=expected.json if expected is not None else None)
    if state is False:
        return _unknown(request)
    if state is None:
        return None
    language = _language_for(state.locale)
    html = _kept_copy(state, language) if state.is_open else None
    if html is None:
        if state.step_id is not None:  # the full path records the page it shows
            steps.withdraw(session_pk=state.session_pk, step_id=state.step_id)
        return None
    if not state.opened:
        services.session_opened(session_pk=state.session_pk)  # the first open only: later views write nothing
    response = HttpResponse(page_cache.fill(html, csrf_token=csrf.page_form_token(token), action_url=request.path))
    _customer_headers(response, language)
    controls = steps.controls_kept(html)
    if state.step_id is not None and expected is not None and state.step_expected is not None \
            and expected.controls[state.step_expected] == controls:
        return response
    if state.step_id is not None:
        steps.withdraw(session_pk=state.session_pk, step_id=state.step_id)
    steps.record(session_pk=state.session_pk, steps=[steps.Step(
        kind=steps.Kind.VIEW, source=steps.Source.PAGE, name="reasons", controls=controls,
        status=response.status_code)])
    page_cache.expect(flow_id=state.flow_id, flow_version=state.flow_version, compliance=state.compliance,
                      controls=controls)
    return response


def _kept_copy(state: selectors.FirstView, language: str) -> str | None:
    """The first view this process keeps for the session's flow content, language and rules, if any."""
    reasons = selectors.published_reasons_kept(flow_id=state.flow_id, updated_at=state.flow_updated_at)
    if reasons is None:
        return None
    return page_cache.rendered(page_cache.key(language=language, title=state.title,
                                              intro=state.intro, support_email=state.support_email,
                                              flow_id=state.flow_id, flow_version=state.flow_version,
                                              compliance=state.compliance), reasons)


def _embed_parent(request: HttpRequest) -> str | None:
    return getattr(request, "bb_embed_parent", None)


def _refused_form(request: HttpRequest) -> HttpResponse:
    return _problem(request, status=403, title=translation.gettext("This form has expired"),
                    message=translation.gettext(
                        "Nothing was changed. Please go back to your account and choose Cancel again."))


def _handoff(request: HttpRequest, session: CancelSession, decision: Decision) -> HttpResponse:
    """The decision's answer inside the modal: the snippet takes the whole window to the signed URL."""
    url = decision.redirect_url or request.build_absolute_uri(reverse("flows:done", args=[session.token]))
    with translation.override(_language(session)):
        response = render(request, "flows/handoff.html", {
            "session": session, "flow": session.flow, **_brand(session.flow), "embed_parent": _embed_parent(request),
            "embed_script": embedding.SCRIPT,
            "decision_data": {"event": selectors.decision_event_type(decision), "url": url},
            "url": url})
        _customer_headers(response)
    return response


# The page checks its own form token (flows/csrf.py): a cookie-paired one fails inside the modal.
@csrf_exempt
@no_cache.never_cache
@require_http_methods(["GET", "POST"])
def page(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "POST" and (limited := ratelimits.check(request, scope="decision-ip")):
        return _too_many(request, limited)
    if request.method == "POST" and not csrf.page_form_valid(request, token):
        return _refused_form(request)
    if request.method == "GET" and (kept := _first_view_kept(request, token)) is not None:
        return kept
    session = selectors.session_by_token(token)
    if session is None:
        return _unknown(request)
    parent = embedding.parent_origin(request, session.app)
    response = _page(request, session, parent)
    _note_steps(request, session, response)
    return embedding.allow_framing(response, request=request, app=session.app) if parent else response


def _note_steps(request: HttpRequest, session: CancelSession, response: HttpResponse) -> None:
    """The request's steps for the session's evidence: the button pressed (a POST), then the page shown."""
    found = []
    if request.method == "POST" and not getattr(response, "bb_click_recorded", False):
        found.append(_click(request, status=response.status_code))
    shown = getattr(response, "bb_step", None)
    if shown:
        found.append(steps.Step(kind=steps.Kind.VIEW, source=steps.Source.PAGE, name=shown,
                                controls=steps.controls_in(response.content.decode()), status=response.status_code))
    steps.record(session_pk=session.pk, steps=found)


def _click(request: HttpRequest, *, status: int) -> steps.Step:
    """The POST as a step of the session's evidence: the button pressed, and the status answered."""
    offer_code = _posted(request, "accept")[:64]
    return steps.Step(kind=steps.Kind.CLICK, source=steps.Source.PAGE, status=status,
                      action="accept" if offer_code else _posted(request, "action")[:32],
                      reason_code=_posted(request, "reason")[:64], offer_code=offer_code)


def _page(request: HttpRequest, session: CancelSession, parent: str | None) -> HttpResponse:
    token = session.token
    request.bb_embed_parent = parent  # type: ignore[attr-defined]  # render_page and _handoff read it
    decision = getattr(session, "decision", None)
    if decision is not None and session.takes_a_later_cancel:
        return _decided(request, session, decision, parent)
    if decision is not None:
        # A replayed POST or a back-button GET: the decision stands, go where it went.
        return _went(request, session, decision, parent)
    if not session.is_open:
        response = _expired(request, session)
        response.bb_step = "expired"  # type: ignore[attr-defined]
        return response
    if request.method == "GET":
        if session.opened_at is None:
            services.session_opened(session_pk=session.pk)
        return render_page(request, session=session, step="reasons")
    if limited := ratelimits.check(request, scope="decision-app", key=session.app.app_id):
        return _too_many(request, limited, session)

    def record(kind: str, reason_code: str, feedback: str, offer_code: str) -> HttpResponse:
        # The click is written with the decision when there is one (the answer's status known beforehand:
        # the modal's hand-off page, else the redirect); a refused or expired one is recorded as it answered.
        click = _click(request, status=200 if parent is not None else _SeeOther.status_code)
        try:
            decision = services.decision_record(session=session, kind=kind, reason_code=reason_code,
                                                feedback=feedback, offer_code=offer_code, click=click)
        except services.SessionClosed:
            return _expired(request, session)
        if parent is not None:
            response = _handoff(request, session, decision)
        else:
            response = _SeeOther(decision.redirect_url or reverse("flows:done", args=[token]))
        if getattr(decision, "bb_click_recorded", False):
            response.bb_click_recorded = True  # type: ignore[attr-defined]  # _note_steps writes it not again
        return response

    return page_post(request, session=session, decide=record)


def _went(request: HttpRequest, session: CancelSession, decision: Decision, parent: str | None) -> HttpResponse:
    if parent is not None:
        return _handoff(request, session, decision)
    return _SeeOther(decision.redirect_url or reverse("flows:done", args=[session.token]))


# The confirmation a later Cancel posts with, so that only a customer who saw their earlier choice and
# chose to cancel anyway supersedes it: a Cancel from a tab opened before that choice shows it first.
CONFIRM_LATER_CANCEL = "later-cancel"


def _decided(request: HttpRequest, session: CancelSession, decision: Decision, parent: str | None) -> HttpResponse:
    """A session whose customer chose to stay, opened again (another tab, the back button, the link later):
    what they chose, and one button that cancels. A replayed save goes where it went, recording nothing."""
    if request.method == "POST":
        action = "accept" if _posted(request, "accept") else _posted(request, "action")
        if action == Decision.Kind.CANCEL and _posted(request, "confirm") == CONFIRM_LATER_CANCEL:
            if limited := ratelimits.check(request, scope="decision-app", key=session.app.app_id):
                return _too_many(request, limited, session)
            try:
                cancel = later_cancel.decision_cancel_later(session=session)
            except services.SessionClosed:
                return _expired(request, session)
            return _went(request, session, cancel, parent)
        if action in (Decision.Kind.NEVERMIND, Decision.Kind.ACCEPT):
            return _went(request, session, decision, parent)
    context = {"session": session, "flow": session.flow, "decision": decision, "action_url": request.path,
               "confirm": CONFIRM_LATER_CANCEL, "csrf_token": csrf.page_form_token(session.token),
               "support_email": session.app.support_email, **_brand(session.flow), **_cancel_context(session)}
    if parent is not None:
        context.update(action_url=embedding.action_url(request, parent), embed_parent=parent,
                       embed_script=embedding.SCRIPT)
    with translation.override(_language(session)), timezone.override(_customer_zone(session)):
        context["cancel_label"] = cancel_terms.cancel_label(session.flow, context["cancel_effective"])
        response = render(request, "flows/decided.html", context)
        _customer_headers(response)
    response.bb_step = "earlier_choice"  # type: ignore[attr-defined]  # the session's evidence names it
    return response


def _customer_zone(session: CancelSession) -> ZoneInfo | None:
    """The customer's time zone, as the snippet read it from their browser (None: the server's)."""
    name = session.data.get("context", {}).get("timezone", "")
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else None
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _posted(request: HttpRequest, name: str) -> str:
    # A NUL character cannot be stored (PostgreSQL refuses it) and never means anything here.
    return request.POST.get(name, "").replace("\x00", "")


Decide = Callable[[str, str, str, str], HttpResponse]


def page_post(request: HttpRequest, *, session: CancelSession, decide: Decide, preview: bool = False) -> HttpResponse:
    """The page's steps for a POST: back, continue to the offers, or a decision handed to `decide`.

    The hosted page records the decision; the admin's preview only shows what it would do. Both go
    through here so the preview cannot drift from what customers get.
    """
    reason_code = _posted(request, "reason")[:64]
    feedback = _posted(request, "feedback")
    if len(feedback) > MAX_FEEDBACK:
        return render_page(request, session=session, step="reasons", reason_code=reason_code,
                           feedback=feedback[:MAX_FEEDBACK], status=400, preview=preview,
                           error=gettext_lazy("Please keep your note under 5,000 characters."))
    offer_code = _posted(request, "accept")[:64]
    action = "accept" if offer_code else _posted(request, "action")
    if action == "back":
        return render_page(request, session=session, step="reasons", reason_code=reason_code, feedback=feedback,
                           preview=preview)
    if action == "continue":
        # render_page checks the reason against the flow's, which it reads anyway.
        return render_page(request, session=session, step="offers", reason_code=reason_code,
                           feedback=feedback, preview=preview)
    if action not in Decision.KINDS:
        return render_page(request, session=session, step="reasons", status=400, preview=preview,
                           error=gettext_lazy("Please choose one of the buttons below."))
    try:
        return decide(action, reason_code, feedback, offer_code)
    except services.BadDecision as exc:
        logger.info("refused decision on %s: %s", session.public_id, exc)
        return render_page(request, session=session, step="reasons", status=400, preview=preview,
                           error=gettext_lazy("That choice isn’t available. Please choose again."))


@never_cache
@require_GET
def done(request: HttpRequest, token: str) -> HttpResponse:
    """Where a decision lands when the page passed no return URL for it."""
    session = selectors.session_by_token(token)
    decision = getattr(session, "decision", None) if session is not None else None
    if decision is None:
        return _unknown(request)
    with translation.override(_language(session)):
        # Decided as the page renders: an email is promised only when one is on its way.
        emailed = services.customer_email_promised(session=session, decision=decision)
        response = render(request, "flows/done.html",
                          {"session": session, "flow": session.flow, "decision": decision, "emailed": emailed,
                           **_brand(session.flow)})
        _customer_headers(response)
    steps.record(session_pk=session.pk, steps=[steps.Step(
        kind=steps.Kind.VIEW, source=steps.Source.PAGE, name="done",
        controls=steps.controls_in(response.content.decode()), status=response.status_code)])
    return response


@lru_cache(maxsize=1)
def _snippet_source() -> bytes:
    return (Path(settings.BASE_DIR) / "static" / "js" / "brightback.js").read_bytes()


@require_GET
def snippet(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(_snippet_source(), content_type="application/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    return response


@never_cache
@extend_schema(**openapi.HEALTHZ)
@api_view(["GET"])
def healthz(request: HttpRequest) -> Response:
    from .health import broker_state, database_state, secrets_state

    database, broker = database_state(), broker_state()
    secrets = secrets_state() if database == "ok" else "ok"
    healthy = database == "ok" and secrets == "ok"
    return Response({"status": "ok" if healthy and broker == "ok" else "degraded",
                     "database": database, "broker": broker, "secrets": secrets}, status=200 if healthy else 503)

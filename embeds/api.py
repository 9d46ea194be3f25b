"""The headless API (DESIGN §8): GET /api/v1/pages/<token> describes the hosted page as data, and
POST /api/v1/pages/<token>/decision records a decision through the same service as the page.

The token is the capability, as for the page: no cookie, no key. Answers carry CORS for the session's
App's allowed origins (no credentials: nothing here reads a cookie); the POST takes only
application/json, which a browser never sends cross-site without the preflight those origins pass.
Rate limits are the page's own scopes. Errors answer {"error": "..."} with a 4xx.
"""

from __future__ import annotations

import json

from django.http import HttpRequest
from django.urls import reverse
from django.utils import translation
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from brightback_site import ratelimits
from flows import later_cancel, services, steps
from flows import selectors as flow_selectors
from flows.models import CancelSession, Decision

from . import openapi
from .selectors import language_of, page_description

MAX_BODY = 16 * 1024
MAX_FEEDBACK = 5000
_FIELDS = {"action", "reason", "feedback", "offer"}


def _error(status: int, message: str) -> Response:
    return Response({"error": message}, status=status)


def _exception_handler(exc: Exception, context: dict) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is not None:
        detail = getattr(exc, "detail", None)
        response.data = {"error": str(detail) if isinstance(detail, str) else "invalid request"}
    return response


def _with_cors(request: HttpRequest, response: Response, session: CancelSession | None) -> Response:
    origin = request.headers.get("Origin", "").rstrip("/").lower()
    response["Vary"] = "Origin"
    if origin and session is not None and origin in session.app.origins:
        response["Access-Control-Allow-Origin"] = origin
    return response


def _too_many(limited: ratelimits.Limited) -> Response:
    response = _error(429, f"too many requests: try again in {limited.retry_after} seconds")
    response["Retry-After"] = str(limited.retry_after)
    return response


def _decided(request: HttpRequest, session: CancelSession, decision: Decision) -> Response:
    url = decision.redirect_url or request.build_absolute_uri(reverse("flows:done", args=[session.token]))
    return Response({"event": flow_selectors.decision_event_type(decision), "redirect_url": url})


class _PageAPI(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    parser_classes: list = []  # the POST reads its JSON itself, to answer in this API's words

    def get_exception_handler(self):  # noqa: ANN201
        return _exception_handler

    @extend_schema(exclude=True)
    def options(self, request, token: str):  # noqa: ANN001, ANN201
        session = flow_selectors.session_by_token(token)
        response = _with_cors(request, Response(status=204), session)
        if "Access-Control-Allow-Origin" in response:
            response["Access-Control-Allow-Methods"] = ", ".join(self.allowed_methods)
            response["Access-Control-Allow-Headers"] = "Content-Type"
            response["Access-Control-Max-Age"] = "600"
        return response


class PageView(_PageAPI):
    @extend_schema(**openapi.PAGE_GET)
    def get(self, request, token: str):  # noqa: ANN001, ANN201
        session = flow_selectors.session_by_token(token)
        if session is None:
            return _error(404, "no such page")
        with translation.override(language_of(session)):
            if not session.is_open and getattr(session, "decision", None) is None:
                return _with_cors(request, _error(410, "this page has expired"), session)
            description = page_description(session)
            decision = getattr(session, "decision", None)
            description["decision"] = _decided(request, session, decision).data if decision is not None else None
            steps.record(session_pk=session.pk, steps=[steps.Step(
                kind=steps.Kind.VIEW, source=steps.Source.API, name="page", controls=_controls(description),
                status=200)])
            return _with_cors(request, Response(description), session)


def _controls(description: dict) -> tuple[str, ...]:
    """The controls the description offers, named as the hosted page's (flows.steps)."""
    return (*(f"reason:{reason['code']}" for reason in description["reasons"]), "feedback",
            *(f"accept:{offer['code']}" for offer in description["offers"]), "nevermind", "cancel")


class DecisionView(_PageAPI):
    @extend_schema(**openapi.DECISION_POST)
    def post(self, request, token: str):  # noqa: ANN001, ANN201
        if limited := ratelimits.check(request, scope="decision-ip"):
            return _too_many(limited)
        session = flow_selectors.session_by_token(token)
        if session is None:
            return _error(404, "no such page")
        response = _decide(request, session)
        if not getattr(response, "bb_click_recorded", False):  # else written with the decision
            steps.record(session_pk=session.pk, steps=[_click(request, response.status_code)])
        return _with_cors(request, response, session)


def _click(request: HttpRequest, status: int) -> steps.Step:
    """The POST as a step of the session's evidence: what it asked for, as far as it could be read."""
    body, _problem = _parse(request.body) if request.content_type == "application/json" else ({}, "")
    return steps.Step(kind=steps.Kind.CLICK, source=steps.Source.API, status=status,
                      action=str(body.get("action") or "")[:32], reason_code=str(body.get("reason") or "")[:64],
                      offer_code=str(body.get("offer") or "")[:64])


def _decide(request: HttpRequest, session: CancelSession) -> Response:
    decision = getattr(session, "decision", None)
    if decision is not None and session.takes_a_later_cancel and _asks_to_cancel(request):
        # A later Cancel is always honoured: it supersedes the save (flows.later_cancel). A page drawn from
        # this API shows the customer their earlier choice (GET: `decision`) before they confirm.
        if limited := ratelimits.check(request, scope="decision-app", key=session.app.app_id):
            return _too_many(limited)
        try:
            decision = later_cancel.decision_cancel_later(session=session)
        except services.SessionClosed:
            return _error(410, "this page has expired")
    if decision is not None:
        return _decided(request, session, decision)  # the same decision again records nothing new
    if not session.is_open:
        return _error(410, "this page has expired")
    if limited := ratelimits.check(request, scope="decision-app", key=session.app.app_id):
        return _too_many(limited)
    if request.content_type != "application/json":
        return _error(415, "the body must be application/json")
    body, problem = _parse(request.body)
    if problem:
        return _error(400, problem)
    try:
        decision = services.decision_record(
            session=session, kind=body["action"], reason_code=body.get("reason") or "",
            feedback=body.get("feedback") or "", offer_code=body.get("offer") or "",
            click=_click(request, 200))  # _decided answers 200
    except services.SessionClosed:
        return _error(410, "this page has expired")
    except services.BadDecision as exc:
        return _error(400, str(exc))
    response = _decided(request, session, decision)
    response.bb_click_recorded = getattr(decision, "bb_click_recorded", False)  # type: ignore[attr-defined]
    return response


def _asks_to_cancel(request: HttpRequest) -> bool:
    if request.content_type != "application/json":
        return False
    body, problem = _parse(request.body)
    return not problem and body["action"] == Decision.Kind.CANCEL


def _parse(raw: bytes) -> tuple[dict, str]:
    """The decision's fields, or a message naming what is wrong with them."""
    if len(raw) > MAX_BODY:
        return {}, f"request body too large (at most {MAX_BODY} bytes)"
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}, "invalid json syntax"
    if not isinstance(body, dict):
        return {}, "request body must be a JSON object"
    if unknown := sorted(set(body) - _FIELDS):
        return {}, f"unknown field: {unknown[0]}"
    if body.get("action") not in Decision.Kind.values:
        return {}, "action must be one of nevermind, accept, cancel"
    for name, longest in (("reason", 64), ("feedback", MAX_FEEDBACK), ("offer", 64)):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            return {}, f"{name} must be a string"
        if len(value) > longest:
            return {}, f"{name} is longer than {longest} characters"
        body[name] = value.replace("\x00", "")  # PostgreSQL cannot store it; it never means anything here
    if body["action"] == "accept" and not body.get("offer"):
        return {}, "offer is required to accept"
    return body, ""

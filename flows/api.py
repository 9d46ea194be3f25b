"""POST /precancel (DESIGN §2), Brightback-compatible answers, never a 500 for bad input."""

from __future__ import annotations

import functools
import io
import json
import logging
import math
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from brightback_site import ratelimits

from . import openapi, selectors, services, signing
from .snippet_data import SnippetDataError, clean_snippet_data

logger = logging.getLogger(__name__)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """Every API error in Brightback's shape: {"valid": false, "message": ...}."""
    response = drf_exception_handler(exc, context)
    if response is not None:
        if isinstance(exc, ParseError):
            message = "invalid json syntax"
        elif isinstance(exc, APIException):
            message = str(exc.detail) if isinstance(exc.detail, str) else "invalid request"
        else:
            message = "invalid request"
        response.data = {"valid": False, "message": message}
    return response


class SnippetJSONParser(BaseParser):
    """Any content type parses as JSON: Brightback.js and older pages send text/plain too."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):  # noqa: ANN001, ANN201
        raw = stream.read(settings.PRECANCEL_MAX_BYTES + 1) if stream is not None else b""
        if len(raw) > settings.PRECANCEL_MAX_BYTES:
            raise _TooLarge()
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise ParseError() from None


def _refuse_constant(name: str) -> float:
    # NaN and Infinity are not JSON, and PostgreSQL's jsonb refuses them.
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is out of range")
    return value


class _TooLarge(APIException):
    status_code = 400
    default_detail = f"request body too large (at most {settings.PRECANCEL_MAX_BYTES} bytes)"


def _fail(status_code: int, message: str) -> Response:
    return Response({"valid": False, "message": message}, status=status_code)


def _too_many(limited: ratelimits.Limited) -> Response:
    response = _fail(429, f"too many requests: try again in {limited.retry_after} seconds")
    response["Retry-After"] = str(limited.retry_after)
    return response


def _origin_allowed(request: HttpRequest, origin: str, app_origins: list[str] | None) -> bool:
    own = f"{request.scheme}://{request.get_host()}".lower()
    origin = origin.rstrip("/").lower()
    if origin == own:
        return True
    if app_origins is None:
        return selectors.apps_allowing_origin(origin)
    return origin in app_origins


def _cors(response: Response, origin: str) -> Response:
    response["Access-Control-Allow-Origin"] = origin
    response["Access-Control-Allow-Credentials"] = "true"
    response["Vary"] = "Origin"
    return response


class PrecancelView(APIView):
    parser_classes = [SnippetJSONParser]
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(exclude=True)
    def options(self, request, *args, **kwargs):  # noqa: ANN001, ANN201
        # Preflight: the body (and so the app) is unknown, so any App listing the origin will do;
        # the POST itself is checked against its own App's list.
        origin = request.headers.get("Origin", "")
        response = Response(status=204)
        if origin and _origin_allowed(request, origin, None):
            _cors(response, origin)
            response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response["Access-Control-Allow-Headers"] = "Content-Type"
            response["Access-Control-Max-Age"] = "600"
        return response

    @extend_schema(**openapi.PRECANCEL)
    def post(self, request, *args, **kwargs):  # noqa: ANN001, ANN201
        return _precancel(request, parse=lambda: request.data)


def _precancel(request: HttpRequest, *, parse: Callable[[], object]) -> Response:
    """POST /precancel, whichever way it is served (precancel_view); `parse` gives the JSON body or raises
    the APIException (ParseError, _TooLarge) that exception_handler turns into the answer."""
    # The App and its routing come from memory under one version, read once (one cache round trip).
    with selectors.app_versions_read_once():
        try:
            response = _precancel_answer(request, parse=parse)
        except APIException as exc:
            response = exception_handler(exc, {"request": request})
            if response is None:  # every APIException has an answer; anything else is raised
                raise
    return _refusal_readable(request, response)


def _refusal_readable(request: HttpRequest, response: Response) -> Response:
    """A refusal the page's own script can read: its message names the problem (a wrong app_id, a refused
    return host, a bad field) and is no secret, so it carries CORS for any origin that the preflight lets
    through (one some App on this server lists), whichever App the body names or whether it parses at all.
    A success carries CORS only for its own App's origins (_precancel_answer), as its URL opens the page.
    """
    origin = request.headers.get("Origin", "")
    if (origin and "Access-Control-Allow-Origin" not in response and not (response.data or {}).get("valid")
            and _origin_allowed(request, origin, None)):
        _cors(response, origin)
    return response


def _precancel_answer(request: HttpRequest, *, parse: Callable[[], object]) -> Response:
    limited = ratelimits.check(request, scope="precancel-ip")
    if limited:
        return _too_many(limited)
    length = request.META.get("CONTENT_LENGTH") or "0"
    if length.isascii() and length.isdigit() and int(length) > settings.PRECANCEL_MAX_BYTES:
        return _fail(400, _TooLarge.default_detail)
    if not request.body.strip():
        return _fail(400, "invalid json syntax")
    try:
        data = clean_snippet_data(parse())
    except SnippetDataError as exc:
        return _fail(400, str(exc))

    app = selectors.app_by_public_id(data["app_id"])
    if app is None:
        return _fail(404, f"No such app:{data['app_id']}")

    origin = request.headers.get("Origin", "")
    if origin and not _origin_allowed(request, origin, app.origins):
        return _fail(403, f"origin {origin} is not allowed for app:{app.app_id}")
    limited = ratelimits.check(request, scope="precancel-app", key=app.app_id)
    if limited:
        response = _too_many(limited)
        return _cors(response, origin) if origin else response

    if app.is_live or data.get("auth"):
        problem = signing.embed_auth_problem(secret=app.secret, data=data, auth=data.get("auth"))
        if problem:
            return _fail(403, problem)

    try:
        session = services.session_start(app=app, data=data)
    except services.ReturnUrlRefused as exc:
        return _fail(400, str(exc))
    except services.NoActiveFlow as exc:
        return _fail(409, str(exc))

    url = _absolute(request, reverse("flows:page", args=[session.token]))
    response = Response({"valid": True, "url": url, "message": url})
    return _cors(response, origin) if origin else response


def _absolute(request: HttpRequest, path: str) -> str:
    if settings.SITE_URL:
        return settings.SITE_URL + path
    return request.build_absolute_uri(path)


class PrecancelAliasView(PrecancelView):
    """/precancel/ (some embeds add the slash): the same endpoint, described once in the schema."""

    schema = None


# --- serving it without DRF's per-request machinery -----------------------------------------------

_RENDERER = JSONRenderer()
_JSON_ACCEPTED = {"*/*", "application/*", "application/json"}


def _plain_post(request: HttpRequest) -> bool:
    """A POST whose answer DRF's negotiation would render as plain JSON: a body with a content type, no
    ?format=, and an Accept header (if any) that takes JSON and carries no parameters (q, indent)."""
    if request.method != "POST" or "format" in request.GET or not request.META.get("CONTENT_TYPE"):
        return False
    length = request.META.get("CONTENT_LENGTH") or ""
    if not (length.isascii() and length.isdigit()) or int(length) == 0:
        return False
    accept = request.META.get("HTTP_ACCEPT")
    if accept is None:
        return True
    types = [item.strip() for item in accept.split(",")]
    return not any(";" in item for item in types) and any(item in _JSON_ACCEPTED for item in types)


def _parse_body(body: bytes) -> object:
    return SnippetJSONParser().parse(io.BytesIO(body))


def precancel_view(view_class: type[PrecancelView]) -> Callable[..., HttpResponseBase]:
    """The URL's view: a plain POST (what the snippet sends) is answered here without DRF's request
    wrapping, negotiation and checks, which cost about a tenth of the request; anything else (the
    preflight, other methods, an Accept or ?format= DRF must negotiate) goes to `view_class` itself.
    The answers are DRF's own: the same Response, exception handler, renderer and headers. The view
    class stays the endpoint's description in the OpenAPI schema (drf-spectacular reads it from here).
    """
    described = view_class.as_view()
    allowed = ", ".join(view_class().allowed_methods)

    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not _plain_post(request):
            return described(request, *args, **kwargs)
        response = _precancel(request, parse=lambda: _parse_body(request.body))
        response.accepted_renderer = _RENDERER
        response.accepted_media_type = _RENDERER.media_type
        response.renderer_context = {}
        response["Allow"] = allowed
        return response

    functools.update_wrapper(view, described)  # cls and initkwargs: what the schema generator reads
    return csrf_exempt(view)

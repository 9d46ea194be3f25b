"""The hosted page inside a business's own page: the snippet's modal (display: "modal").

The snippet opens `/c/<token>?bb_display=modal&bb_origin=<the business page's origin>` in an iframe. The
page is framed only when that origin is one of the session's App's allowed origins (or this server's
own): then its Content-Security-Policy names the App's origins in `frame-ancestors` (X-Frame-Options,
which cannot list origins, is left off; every other answer keeps `frame-ancestors 'none'` and `DENY`), and
one script, allowed by its hash, talks to the snippet with postMessage, always addressed to that origin:
Escape asks it to close the modal, and a decision hands it `{event, url}` (the signed return URL) instead
of a redirect inside the frame, so the snippet can tell the business's page and then take the whole
window there. A page without script still shows a link that does the same (target=_top).
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse

from .models import App

DISPLAY_PARAM, ORIGIN_PARAM = "bb_display", "bb_origin"
_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$")

SCRIPT = (
    '(function(){var o=document.documentElement.getAttribute("data-bb-parent");'
    "if(!o||window.parent===window){return;}"
    "function tell(m){window.parent.postMessage(m,o);}"
    'var d=document.getElementById("bb-decision");'
    'if(d){var v=JSON.parse(d.textContent);tell({brightback:"decision",event:v.event,url:v.url});}'
    'document.addEventListener("keydown",function(e){if(e.key==="Escape"){tell({brightback:"close"});}});'
    "})();"
)
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()


def _own_origin(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}".lower()


def _framing_origins(request: HttpRequest, app: App) -> list[str]:
    # Only well-formed origins reach the header: a stray character in the admin's list must not
    # add a directive.
    return [origin for origin in dict.fromkeys([_own_origin(request), *app.origins]) if _ORIGIN.match(origin)]


def parent_origin(request: HttpRequest, app: App) -> str | None:
    """The business page's origin when the page was asked for as the modal by an origin the App allows."""
    if request.GET.get(DISPLAY_PARAM) != "modal":
        return None
    origin = request.GET.get(ORIGIN_PARAM, "").rstrip("/").lower()
    return origin if origin in _framing_origins(request, app) else None


def wants_modal(request: HttpRequest) -> bool:
    # Most views have no query string: nothing to parse then.
    return bool(request.META.get("QUERY_STRING")) and DISPLAY_PARAM in request.GET


def action_url(request: HttpRequest, parent: str | None) -> str:
    """Where the page's form posts: its own path, keeping the modal's parameters so each step stays framed."""
    if parent is None:
        return request.path
    return f"{request.path}?{urlencode({DISPLAY_PARAM: 'modal', ORIGIN_PARAM: parent})}"


def allow_framing(response: HttpResponse, *, request: HttpRequest, app: App) -> HttpResponse:
    """Let the App's origins (and only them) frame this answer, and run the page's one script."""
    ancestors = " ".join(_framing_origins(request, app))
    response["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; base-uri 'none'; "
        f"script-src '{SCRIPT_HASH}'; frame-ancestors {ancestors}")
    response.xframe_options_exempt = True  # type: ignore[attr-defined]
    return response

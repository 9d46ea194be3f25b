"""Middleware of our own."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from .fields import SecretUnreadable

logger = logging.getLogger(__name__)


class HealthzFirst:
    """Answer GET /healthz before any other middleware.

    Load balancers and container health checks probe the server by its address (Host: 10.0.0.5:8000),
    which ALLOWED_HOSTS rightly refuses for everything else, and over plain HTTP on the private network.
    The answer carries only the database's and the broker's state.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == "/healthz" and request.method in ("GET", "HEAD"):
            from flows.views import healthz

            response = healthz(request)
            response.render()  # a DRF Response; the handler renders it only for views it called itself
            # What SecurityMiddleware and XFrameOptionsMiddleware would have added.
            response["X-Content-Type-Options"] = "nosniff"
            response["Referrer-Policy"] = settings.SECURE_REFERRER_POLICY
            response["Cross-Origin-Opener-Policy"] = settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
            response["X-Frame-Options"] = "DENY"
            return response
        return self.get_response(request)


class ForwardedHeadersFromTrustedProxiesOnly:
    """Forget X-Forwarded-Proto unless the direct peer is one of TRUSTED_PROXIES.

    SECURE_PROXY_SSL_HEADER makes Django believe that header from anyone; only the proxy in front may
    say the request came over HTTPS. (X-Forwarded-For is read by ratelimits.client_ip under the same rule.)
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "HTTP_X_FORWARDED_PROTO" in request.META:
            from brightback_site.ratelimits import peer_is_trusted_proxy

            if not peer_is_trusted_proxy(request):
                del request.META["HTTP_X_FORWARDED_PROTO"]
        return self.get_response(request)


class UnreadableSecretsAre503:
    """A stored secret that no configured key decrypts (SECRET_KEY or FIELD_ENCRYPTION_KEYS changed
    without keeping the old key) makes the server unable to serve, not the request wrong: answer 503,
    as /healthz does, rather than a 500 and a traceback per customer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, SecretUnreadable):
            return None
        logger.error("%s (answered 503 to %s)", exception, request.path_info)
        if request.path_info == "/precancel" or request.path_info.startswith("/api/"):
            response: HttpResponse = JsonResponse(
                {"valid": False, "message": "temporarily unavailable: try again in a few minutes"}, status=503)
        else:
            response = HttpResponse(render_to_string("503.html"), status=503)
        response["Retry-After"] = "120"
        return response


# The customer's hosted page (flows.urls, under c/ in brightback_site/urls.py) serves people with no
# account here: it reads no login and shows no flash message (its form carries its own token, bound to the
# cancel session: flows/csrf.py). The two staff middleware below pass its requests by. (Django's
# SessionMiddleware stays as it is: it costs the page next to nothing, and `check --deploy` looks for it by
# name to tell whether the session cookie must be secure.)
CUSTOMER_PAGES = "/c/"


class _StaffOnly:
    """A Django middleware that leaves the customer's hosted page alone (it needs none of its work)."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(CUSTOMER_PAGES):
            # The next middleware's answer (a coroutine in async mode, as MiddlewareMixin's own call gives).
            return self.get_response(request)  # type: ignore[attr-defined]
        return super().__call__(request)  # type: ignore[misc]


class AuthenticationMiddleware(_StaffOnly, auth_middleware.AuthenticationMiddleware):
    """Django's, for staff pages only: a customer's page has no request.user."""


class MessageMiddleware(_StaffOnly, messages_middleware.MessageMiddleware):
    """Django's, for staff pages only: a customer's page shows no flash messages."""

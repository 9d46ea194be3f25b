"""Middleware of our own."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


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

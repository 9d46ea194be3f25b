"""The staff middleware (logins, flash messages) leave the customer's hosted page alone."""

from __future__ import annotations

from importlib import import_module

import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from brightback_site import middleware

STAFF_ONLY = [middleware.AuthenticationMiddleware, middleware.MessageMiddleware]
ADDS: dict[type, str] = {middleware.AuthenticationMiddleware: "user", middleware.MessageMiddleware: "_messages"}


def _seen(cls: type, path: str) -> HttpRequest:
    """The request as the view behind the middleware `cls` sees it."""
    seen: list[HttpRequest] = []

    def view(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return HttpResponse("ok")

    request = RequestFactory().get(path)
    request.session = import_module(settings.SESSION_ENGINE).SessionStore()  # as SessionMiddleware gives it
    cls(view)(request)
    return seen[0]


@pytest.mark.parametrize("cls", STAFF_ONLY)
def test_the_customer_page_passes_by(cls: type) -> None:
    request = _seen(cls, "/c/a-page-token")
    assert not hasattr(request, ADDS[cls])


@pytest.mark.parametrize("cls", STAFF_ONLY)
def test_staff_pages_get_them_as_django_gives_them(cls: type) -> None:
    request = _seen(cls, "/admin/")
    assert hasattr(request, ADDS[cls])


def test_the_customer_pages_are_where_the_urls_put_them() -> None:
    from django.urls import reverse

    assert reverse("flows:page", args=["t"]).startswith(middleware.CUSTOMER_PAGES)
    assert reverse("flows:done", args=["t"]).startswith(middleware.CUSTOMER_PAGES)

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import path

from brightback_site.urls import urlpatterns as site_urls


def broken(request):  # noqa: ANN001, ANN201
    raise RuntimeError("boom")


urlpatterns = [*site_urls, path("broken", broken)]


@pytest.mark.urls("flows.tests.test_error_pages")
def test_a_server_error_shows_a_calm_page_without_a_trace(db, settings):
    settings.DEBUG = False
    response = Client(raise_request_exception=False).get("/broken")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side" in html
    assert "Traceback" not in html and "boom" not in html


def test_an_unknown_address_shows_a_friendly_404(client, db, settings):
    settings.DEBUG = False
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()

"""The hosted page is never cached: flows.no_cache writes the headers Django's never_cache writes."""

from __future__ import annotations

import json

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.utils.http import parse_http_date
from django.views.decorators.cache import never_cache as djangos_never_cache

from flows import no_cache


def _both(view):  # noqa: ANN001, ANN202
    request = RequestFactory().get("/")
    return djangos_never_cache(view)(request), no_cache.never_cache(view)(request)


def test_the_same_headers_as_djangos_never_cache() -> None:
    theirs, ours = _both(lambda request: HttpResponse("page"))
    assert ours["Cache-Control"] == theirs["Cache-Control"] == no_cache.CACHE_CONTROL
    assert abs(parse_http_date(ours["Expires"]) - parse_http_date(theirs["Expires"])) <= 1


def test_caching_headers_a_view_set_are_merged_as_django_merges_them() -> None:
    def view(request):  # noqa: ANN001, ANN202
        response = HttpResponse("page")
        response["Cache-Control"] = "no-transform"
        return response

    theirs, ours = _both(view)
    assert ours["Cache-Control"] == theirs["Cache-Control"] and "no-transform" in ours["Cache-Control"]


@pytest.mark.django_db
def test_every_hosted_page_answer_is_uncacheable(demo_app, snippet_data) -> None:  # noqa: ANN001
    client = Client()
    url = client.post("/precancel", json.dumps(snippet_data()), content_type="application/json").json()["url"]
    token = url.rsplit("/", 1)[1]
    for response in (client.get(f"/c/{token}"), client.get(f"/c/{token}"), client.get("/c/unknown-token-0123456789"),
                     client.post(f"/c/{token}", {"action": "cancel"})):
        assert response["Cache-Control"] == no_cache.CACHE_CONTROL and parse_http_date(response["Expires"])

"""Django's never_cache for the hosted page, with the same headers written at once.

Django's decorator parses and rebuilds Cache-Control twice and formats the date for every response: on the
hosted page's most common view (a copy already rendered, filled in) that was about a twentieth of the
request. A response that already carries caching headers is left to Django's own function, which merges.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from django.utils.http import http_date

# What add_never_cache_headers writes on a response without caching headers.
CACHE_CONTROL = "max-age=0, no-cache, no-store, must-revalidate, private"

_date: tuple[int, str] = (0, "")


def _expires_now() -> str:
    # Django's Expires: now, to the second (http_date drops the fraction); formatted once a second.
    global _date
    second = int(time.time())
    if _date[0] != second:
        _date = (second, http_date(second))
    return _date[1]


def never_cache(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if "Cache-Control" in response or "Expires" in response:
            add_never_cache_headers(response)
        else:
            response.headers["Expires"] = _expires_now()
            response.headers["Cache-Control"] = CACHE_CONTROL
        return response

    return wrapped

"""The hosted page's CSRF token: Django's own, drawn faster.

Django's get_token() draws a new visitor's 32-character secret and the token's 32-character mask one
character at a time (`secrets.choice`, 64 calls): about 60 µs, a tenth of the page's first view and more
than the rest of that view's own work. This draws both from `os.urandom`, over the same alphabet with the
same uniform distribution, and masks the secret exactly as Django does. Django's CsrfViewMiddleware then
sets the cookie and checks the posted token as it would its own; flows/tests/test_csrf.py holds it to that
(and tests/test_security.py shows a post without the token refused).
"""

from __future__ import annotations

import os

from django.http import HttpRequest
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH

_BASE = len(CSRF_ALLOWED_CHARS)
_INDEX = {char: i for i, char in enumerate(CSRF_ALLOWED_CHARS)}
# A byte picks a character by its remainder; the bytes from here up would favour the first few characters.
_UNBIASED_BELOW = 256 - 256 % _BASE


def random_chars(length: int) -> str:
    chars: list[str] = []
    while len(chars) < length:
        chars += [CSRF_ALLOWED_CHARS[byte % _BASE] for byte in os.urandom(length + length // 4)
                  if byte < _UNBIASED_BELOW]
    return "".join(chars[:length])


def get_token(request: HttpRequest) -> str:
    """What django.middleware.csrf.get_token returns, and with the same effect on the response's cookie."""
    if "CSRF_COOKIE" not in request.META:  # CsrfViewMiddleware puts a valid cookie's secret here
        request.META["CSRF_COOKIE"] = random_chars(CSRF_SECRET_LENGTH)
    request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True
    secret = request.META["CSRF_COOKIE"]
    mask = random_chars(CSRF_SECRET_LENGTH)
    cipher = "".join(CSRF_ALLOWED_CHARS[(_INDEX[s] + _INDEX[m]) % _BASE] for s, m in zip(secret, mask, strict=True))
    return mask + cipher

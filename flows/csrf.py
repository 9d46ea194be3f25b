"""The hosted page's form token: bound to the cancel session, not to a cookie.

The page may be shown in a business's own page (the snippet's modal, flows/embedding.py), where browsers
block third-party cookies, so Django's cookie-paired token cannot work there. The form instead carries an
HMAC of the session's token under SECRET_KEY: the page's own HTML is the only place it appears (another
site cannot read it, and knowing the page's URL is not enough to compute it), and the view checks it on
every POST before anything else. It needs no cookie and no storage, and a replayed or double-clicked
decision still records nothing new (flows.services.decision_record), as before.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

FIELD = "csrfmiddlewaretoken"  # the name {% csrf_token %} renders, so the template stays Django's
_SALT = "flows.page-form"


@lru_cache(maxsize=8)
def _key(secret: str) -> bytes:
    # Django's salted_hmac derives this key from the salt and the secret on every call; it is the same each time.
    return hashlib.sha256((_SALT + secret).encode()).digest()


def _token_under(secret: str, session_token: str) -> str:
    """Django's salted_hmac(_SALT, session_token, secret=secret, algorithm="sha256"), its key derived once."""
    return hmac.new(_key(secret), session_token.encode(), hashlib.sha256).hexdigest()


def page_form_token(session_token: str) -> str:
    return _token_under(settings.SECRET_KEY, session_token)


def page_form_valid(request: HttpRequest, session_token: str) -> bool:
    """The POST carries the token made for this session (under the current SECRET_KEY or a fallback, so
    pages opened before a key rotation still work). Django's test client without enforce_csrf_checks
    skips the check, as it does Django's own."""
    if getattr(request, "_dont_enforce_csrf_checks", False):
        return True
    posted = request.POST.get(FIELD, "")
    if not posted:
        return False
    return any(hmac.compare_digest(_token_under(secret, session_token), posted)
               for secret in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS])
